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
#include "lua/scheduler.hpp"
#include "sock_embedded_lua.hpp"

SockTypeCache sock_type_cache;

// _set_cdata_converter(f): LuaJIT only; see lua_buffer.cpp.
static int l_set_cdata_converter(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "sock.cdata_to_pointer");
  return 0;
}

extern "C" __attribute__((visibility("default"))) int luaopen_sock(lua_State* L) {
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
  lua_pushvalue(L, sched);
  sched_open(L);
  lua_pushcfunction(L, l_set_cdata_converter);
  lua_setfield(L, -2, "_set_cdata_converter");
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
