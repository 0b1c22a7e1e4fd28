// TLS contexts and sessions for the Lua half (lua/sock_tls.lua), or only
// sock._tls_available = false when the module is built without OpenSSL.
#pragma once

#include "lua/compat.hpp"

void sock_lua_open_tls(lua_State* L);  // module table on top
