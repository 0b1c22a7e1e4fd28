/* The entry point of the Lua module, for hosts that link sock::lua (the
 * module as a static library) into their own program instead of loading
 * sock.so / sock.dll from disk. Register it before running Lua code that
 * requires it:
 *
 *   luaL_requiref(L, "sock", luaopen_sock, 0);  (5.2+; or put it in
 *   package.preload.sock on any version)
 *
 * Usable from C and C++. The host includes its own lua.h. */
#ifndef SOCK_LUAOPEN_SOCK_H
#define SOCK_LUAOPEN_SOCK_H

/* SOCK_LUAOPEN_API: how the module's build marks luaopen_sock. The module
 * (sock.so / sock.dll) is built with SOCK_LUA_MODULE defined: the DLL
 * exports it (Windows, any compiler), the shared object keeps it visible
 * while everything else is hidden (GCC and Clang elsewhere). The static
 * sock::lua library and its hosts need no marking. */
#ifndef SOCK_LUAOPEN_API
#if defined(SOCK_LUA_MODULE) && defined(_WIN32)
#define SOCK_LUAOPEN_API __declspec(dllexport)
#elif defined(SOCK_LUA_MODULE) && defined(__GNUC__)
#define SOCK_LUAOPEN_API __attribute__((visibility("default")))
#else
#define SOCK_LUAOPEN_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct lua_State;
SOCK_LUAOPEN_API int luaopen_sock(struct lua_State* L);

#ifdef __cplusplus
}
#endif

#endif
