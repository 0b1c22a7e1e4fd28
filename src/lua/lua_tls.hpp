// TLS contexts and sessions for the Lua half (lua/sock_tls.lua), or only
// sock._tls_available = false when the module is built without OpenSSL.
#pragma once

#include "lua/compat.hpp"

void sock_lua_open_tls(lua_State* L);  // module table on top

#ifdef SOCK_HAVE_TLS
// The FFI fast path's conn:recv and conn:send (SockFastApi::tls_recv and
// tls_send in lua_socket.hpp; `session` is the session userdata's block),
// and the C API function that finishes a call they left (_tls_fast_finish).
double sock_lua_tls_fast_recv(void* session, char* buf, size_t len, double expires);
double sock_lua_tls_fast_send(void* session, const char* buf, size_t len, double expires);
int sock_lua_tls_fast_finish(lua_State* L);
#endif
