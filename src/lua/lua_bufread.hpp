// Buffered reads for line protocols: s:read, s:readn, s:readline,
// s:readuntil and s:setmaxline, on the per-socket read-ahead buffer
// (LuaSocket::pending) that recv/recvn drain first.
#pragma once

#include "lua/compat.hpp"

// Adds the methods to sock._socket_methods (the module table is on top).
void sock_lua_open_bufread(lua_State* L, int sched_idx);
