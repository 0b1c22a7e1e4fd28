/* The entry point of the Lua module, for hosts that link sock::lua (the
 * module as a static library) into their own program instead of loading
 * sock.so from disk. Register it before running Lua code that requires it:
 *
 *   luaL_requiref(L, "sock", luaopen_sock, 0);  (5.2+; or put it in
 *   package.preload.sock on any version)
 *
 * Usable from C and C++. The host includes its own lua.h. */
#ifndef SOCK_LUAOPEN_SOCK_H
#define SOCK_LUAOPEN_SOCK_H

#ifdef __cplusplus
extern "C" {
#endif

struct lua_State;
int luaopen_sock(struct lua_State* L);

#ifdef __cplusplus
}
#endif

#endif
