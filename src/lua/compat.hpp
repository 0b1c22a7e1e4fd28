// The one place that hides the differences between Lua 5.1, 5.2, 5.3, 5.4 and
// LuaJIT 2.1 (which speaks the 5.1 API plus a few 5.2 functions). Every other
// binding file includes this and writes against the 5.2-style API it provides.
#pragma once

#include <atomic>

// In extern "C", as lua.hpp does: the headers declare C functions, and with
// LUA_BUILD_AS_DLL (the module on Windows, linked against the Lua DLL's
// import library) their LUA_API is only __declspec(dllimport), without the
// extern "C" some distributions add to it.
extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#if defined(LUAJIT_VERSION) || __has_include(<luajit.h>)
#include <luajit.h>
#endif
}

// luaL_error for the binding: the error carries the position of the
// program's line that called sock, as luaL_error's does, except that frames
// of sock's own Lua half (lua/*.lua, compiled in) are passed over: a C
// function called by one of its wrappers (sock_dns.lua's connect,
// sock_helpers.lua's tcp) would otherwise report the wrapper's line. The
// binding raises every error through it; it costs nothing until an error is
// raised. (Defined in module.cpp, which knows the chunk names.)
int sock_error(lua_State* L, const char* fmt, ...);

#if LUA_VERSION_NUM == 501
#define SOCK_LUA51 1
#ifndef LUAJIT_VERSION
#define SOCK_PUC51 1  // plain PUC Lua 5.1: none of the 5.2 API at all
#endif
#endif

#ifdef SOCK_LUA51
#ifndef LUA_OK
#define LUA_OK 0
#endif
#define lua_rawlen(L, i) lua_objlen(L, i)
inline int sock_absindex(lua_State* L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex(L, i) sock_absindex(L, i)
#endif

#ifdef SOCK_PUC51
inline void luaL_setfuncs(lua_State* L, const luaL_Reg* l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name; l++) {
    for (int i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
inline void* luaL_testudata(lua_State* L, int ud, const char* tname) {
  void* p = lua_touserdata(L, ud);
  if (!p || !lua_getmetatable(L, ud)) return nullptr;
  luaL_getmetatable(L, tname);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : nullptr;
}
inline void luaL_setmetatable(lua_State* L, const char* tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#endif

// lua_resume changed signature in 5.2 and again in 5.4. Returns the status;
// *nresults is the number of values the coroutine yielded or returned.
inline int sock_resume(lua_State* co, lua_State* from, int nargs, int* nresults) {
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, from, nargs, nresults);
#elif LUA_VERSION_NUM >= 502
  int status = lua_resume(co, from, nargs);
  *nresults = lua_gettop(co);
  return status;
#else
  (void)from;
  int status = lua_resume(co, nargs);
  *nresults = lua_gettop(co);
  return status;
#endif
}

// A coroutine that finished with an error keeps the error on its stack; a
// coroutine that is dead must not be resumed again. 5.1 has no lua_isyieldable;
// "is this the main thread" is what the binding needs to know.
inline bool sock_is_main_thread(lua_State* L) {
  int is_main = lua_pushthread(L);
  lua_pop(L, 1);
  return is_main == 1;
}

// Integers: 5.3+ have a real integer subtype; earlier versions only doubles.
inline void sock_pushinteger(lua_State* L, long long v) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)v);
#else
  lua_pushnumber(L, (lua_Number)v);
#endif
}

// A number argument that must be a whole number (sizes, ports, fds). Raises a
// message naming `fname` and the argument when it is not. (luaL_argerror
// would name whatever the debug info says, which is '?' through pcall.)
inline long long sock_checkinteger(lua_State* L, int arg, const char* fname) {
#if LUA_VERSION_NUM >= 503
  // An integer first: what sizes and lengths are, without lua_isnumber's
  // conversion attempt.
  if (lua_isinteger(L, arg)) return (long long)lua_tointeger(L, arg);
#endif
  if (!lua_isnumber(L, arg))  // numbers, and strings that convert (as luaL_checkinteger)
    sock_error(L, "bad argument #%d to '%s' (number expected, got %s)", arg, fname, luaL_typename(L, arg));
  lua_Number n = lua_tonumber(L, arg);
  // Converting a double outside long long's range (or NaN) is undefined.
  if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0) || (lua_Number)(long long)n != n)
    sock_error(L, "bad argument #%d to '%s' (number has no integer representation)", arg, fname);
  return (long long)n;
}

inline long long sock_optinteger(lua_State* L, int arg, long long def, const char* fname) {
  return lua_isnoneornil(L, arg) ? def : sock_checkinteger(L, arg, fname);
}

// A userdata without user values. (Lua 5.4's lua_newuserdata gives each one
// user value, 16 bytes that every socket and buffer would carry unused.)
inline void* sock_newuserdata(lua_State* L, size_t size) {
#if LUA_VERSION_NUM >= 504
  return lua_newuserdatauv(L, size, 0);
#else
  return lua_newuserdata(L, size);
#endif
}

// Uservalue: one Lua value attached to a userdata (5.1 uses the env table,
// which must be a table).
inline void sock_setuservalue(lua_State* L, int idx) {
#if LUA_VERSION_NUM >= 502
  lua_setuservalue(L, idx);
#else
  lua_setfenv(L, idx);
#endif
}
inline void sock_getuservalue(lua_State* L, int idx) {
#if LUA_VERSION_NUM >= 502
  lua_getuservalue(L, idx);
#else
  lua_getfenv(L, idx);
#endif
}

// luaL_testudata looks the metatable up by name (interning the string) on
// every call; the socket methods check two userdata per call, so the hot
// types keep their metatable's address here for a pointer compare. The cache
// is filled only while a single Lua state has the module open (with several,
// possibly on several OS threads, every check takes the slow path), and it is
// cleared when a state closes, so a stale address is never trusted.
// (Not thread_local: TLS in a dlopen'ed module crashes LeakSanitizer under
// LuaJIT.)
struct SockTypeCache {
  std::atomic<const void*> socket_mt{nullptr};
  std::atomic<const void*> buffer_mt{nullptr};
  std::atomic<int> open_states{0};
};
extern SockTypeCache sock_type_cache;

// Remember a hot type's metatable (on top of the stack) if this is the only state.
inline void sock_type_cache_fill(std::atomic<const void*>& slot, lua_State* L) {
  slot.store(sock_type_cache.open_states.load() == 1 ? lua_topointer(L, -1) : nullptr);
}
inline void sock_type_cache_close() {
  sock_type_cache.open_states.fetch_sub(1);
  sock_type_cache.socket_mt.store(nullptr);
  sock_type_cache.buffer_mt.store(nullptr);
}

inline void* sock_testudata(lua_State* L, int idx, const char* tname, const void* cached_mt) {
  void* p = lua_touserdata(L, idx);
  if (!p || !lua_getmetatable(L, idx)) return nullptr;
  if (cached_mt && lua_topointer(L, -1) == cached_mt) {
    lua_pop(L, 1);
    return p;
  }
  luaL_getmetatable(L, tname);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : nullptr;
}

// The same for the value on top of the stack, which it pops too (with the
// metatable, in one move: sockets check the userdata they fetch per call).
inline void* sock_testudata_pop(lua_State* L, const char* tname, const void* cached_mt) {
  void* p = lua_touserdata(L, -1);
  if (p && cached_mt && lua_getmetatable(L, -1)) {
    if (lua_topointer(L, -1) == cached_mt) {
      lua_pop(L, 2);
      return p;
    }
    lua_pop(L, 1);
  }
  p = sock_testudata(L, -1, tname, nullptr);
  lua_pop(L, 1);
  return p;
}

// Argument checks that name the function explicitly: luaL_check* would say
// '?' or 'sock.name' depending on the Lua version and how it was called.
inline void sock_checktype(lua_State* L, int arg, int type, const char* fname) {
  if (lua_type(L, arg) != type)
    sock_error(L, "bad argument #%d to '%s' (%s expected, got %s)", arg, fname, lua_typename(L, type),
               luaL_typename(L, arg));
}
inline const char* sock_checkstring(lua_State* L, int arg, const char* fname) {
  if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to '%s' (string expected, got %s)", arg, fname, luaL_typename(L, arg));
  return lua_tostring(L, arg);
}
inline const char* sock_optstring(lua_State* L, int arg, const char* def, const char* fname) {
  return lua_isnoneornil(L, arg) ? def : sock_checkstring(L, arg, fname);
}

// Raise "bad argument #n to 'fname' (msg)" with an explicit function name:
// methods called from Lua-side wrappers would otherwise report '?'.
#define sock_argerror(L, arg, fname, msg) \
  sock_error(L, "bad argument #%d to '%s' (%s)", (int)(arg), (fname), (msg))
