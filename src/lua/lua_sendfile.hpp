// s:sendfile(path | fd | file, [offset], [len], [expires]): see lua_sendfile.cpp.
#pragma once

#include "lua/compat.hpp"

// Adds s:sendfile to sock._socket_methods and the test hook
// sock._sendfile_force_copy to the module (the module table is on top).
void sock_lua_open_sendfile(lua_State* L, int sched_idx);
