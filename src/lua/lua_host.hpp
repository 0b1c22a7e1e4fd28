// Functions for host programs that drive sock's loop from their own event
// loop (see docs/embedding.md).
#pragma once

#include "lua/compat.hpp"

// With the module table on top: adds sock.next_timeout, closed over the
// scheduler at sched_idx.
void sock_lua_open_host(lua_State* L, int sched_idx);
