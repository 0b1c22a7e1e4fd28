// luaopen_sock: assembles the module from the binding files, then runs the
// Lua half (lua/sock.lua, compiled in) over it.
#include "lua/compat.hpp"
#include "lua/lua_address.hpp"
#include "lua/lua_buffer.hpp"
#include "lua/lua_bufread.hpp"
#include "lua/lua_dns.hpp"
#include "lua/lua_host.hpp"
#include "lua/lua_sendfile.hpp"
#include "lua/lua_socket.hpp"
#include "lua/lua_tls.hpp"
#include "lua/scheduler.hpp"
#include "sock/process.hpp"
#include "sock_embedded_lua.hpp"
#include "sock/luaopen_sock.h"

#include <cstdarg>
#include <cstring>

SockTypeCache sock_type_cache;

// Whether `source` (lua_Debug.source) is one of the chunks of sock's Lua
// half. They are loaded with "=name", which no file chunk has ("@path").
static bool is_own_chunk(const char* source) {
  for (const SockLuaChunk& chunk : sock_lua_chunks)
    if (std::strcmp(source, chunk.name) == 0) return true;
  return false;
}

// Push "file:line: " of the first frame outside sock's Lua half, or "" when
// that frame has no line (a C function such as pcall), as luaL_where does.
static void push_where(lua_State* L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (is_own_chunk(ar.source)) continue;
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
    break;
  }
  lua_pushliteral(L, "");
}

int sock_error(lua_State* L, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  push_where(L);
  lua_pushvfstring(L, fmt, args);
  va_end(args);
  lua_concat(L, 2);
  return lua_error(L);
}

// _raise_at_caller(message): the Lua half's argument errors, positioned as
// the binding's are (error's level would have to count the Lua half's own
// frames, which differ from one function to the next).
static int l_raise_at_caller(lua_State* L) {
  return sock_error(L, "%s", luaL_checkstring(L, 1));
}

// _handle_count() -> n | nil: test hook, the process's open handles where
// the system counts them (Windows), for the tests' leak check where there
// is no /proc to list descriptors in.
static int l_handle_count(lua_State* L) {
  long n = sock::process_handle_count();
  if (n < 0) return 0;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

// _cpu_time() -> seconds: test hook, the process's CPU time (os.clock is
// wall time on Windows).
static int l_cpu_time(lua_State* L) {
  lua_pushnumber(L, sock::process_cpu_seconds());
  return 1;
}

// _under_wine() -> true|false: test hook, a Windows build running under Wine.
static int l_under_wine(lua_State* L) {
  lua_pushboolean(L, sock::running_under_wine());
  return 1;
}

// _set_cdata_converter(f): LuaJIT only; see lua_buffer.cpp.
static int l_set_cdata_converter(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "sock.cdata_to_pointer");
  return 0;
}

extern "C" SOCK_LUAOPEN_API int luaopen_sock(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "sock.module");
  if (lua_istable(L, -1)) return 1;  // one module per state, even if opened twice
  lua_pop(L, 1);

  // Another state with the module open disables the metatable cache.
  if (sock_type_cache.open_states.fetch_add(1) != 0) {
    sock_type_cache.socket_mt.store(nullptr);
    sock_type_cache.buffer_mt.store(nullptr);
  }
  lua_newtable(L);
  int module = lua_gettop(L);
  sched_create(L);
  int sched = lua_gettop(L);
  lua_pushvalue(L, sched);
  lua_setfield(L, LUA_REGISTRYINDEX, "sock.scheduler");  // lives as long as the state

  lua_pushvalue(L, module);
  sock_lua_open_buffer(L);
  sock_lua_open_address(L);
  sock_lua_open_socket(L, sched);
  sock_lua_open_bufread(L, sched);   // after socket: adds methods to it
  sock_lua_open_sendfile(L, sched);
  sock_lua_open_dns(L, sched);
  sock_lua_open_host(L, sched);
  sock_lua_open_tls(L);
  lua_pushvalue(L, sched);
  sched_open(L);
  lua_pushcfunction(L, l_set_cdata_converter);
  lua_setfield(L, -2, "_set_cdata_converter");
  lua_pushcfunction(L, l_raise_at_caller);
  lua_setfield(L, -2, "_raise_at_caller");
  lua_pushcfunction(L, l_handle_count);
  lua_setfield(L, -2, "_handle_count");
  lua_pushcfunction(L, l_cpu_time);
  lua_setfield(L, -2, "_cpu_time");
  lua_pushcfunction(L, l_under_wine);
  lua_setfield(L, -2, "_under_wine");
  lua_pop(L, 1);

  // The Lua half: sock.lua, then the other lua/*.lua files, each given the
  // module table.
  for (const SockLuaChunk& chunk : sock_lua_chunks) {
    if (luaL_loadbuffer(L, (const char*)chunk.bytes, chunk.size, chunk.name) != 0) return lua_error(L);
    lua_pushvalue(L, module);
    lua_call(L, 1, 0);
  }
  lua_pushvalue(L, module);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "sock.module");
  return 1;
}
