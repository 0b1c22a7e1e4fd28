// Name lookups that do not block the loop. Inside a sock thread, a host name
// that needs a lookup (not an IP literal, not '*', not a unix path) is
// resolved by sock::Resolver on a worker thread while the thread waits; the
// loop learns of the result through the resolver's wake-up, which one
// OpKind::wakeup op watches (so it works on every backend).
//
// How it reaches Lua: sock_lua_resolve (lua_address.cpp), asked for such a
// name by one of the functions that know how to wait for it, pushes the
// lookup marker and a request object instead of resolving. The C function
// returns those two values to its Lua wrapper (lua/sock_dns.lua), which
// passes the request to sock._lookup(req, [expires]) -- that one waits and
// returns the ai or nil, err -- and calls the C function again with the ai.
// Outside a thread everything stays synchronous.
#pragma once

#include <cstddef>

#include "lua/compat.hpp"

// Whether sock_lua_resolve should hand a lookup of `host` to the resolver:
// `fname` is one of the wrapped functions (addr, connect, bind, listen,
// sendto) and L runs in a sock thread (or a coroutine sock made in one) that
// may wait. The caller has already found that the host needs a lookup.
bool sock_lua_dns_wanted(lua_State* L, const char* fname);

// Push the lookup marker and a request object (2 values) for the resolver.
// host may be null (all interfaces), service null (no port).
void sock_lua_dns_push_request(lua_State* L, const char* host, const char* service, int socktype,
                               int family, int protocol, int flags, const char* fname);

// Module table on top: adds _lookup, _lookup_marker and _resolver_delay (the
// test hook) and sets up the per-state resolver record.
void sock_lua_open_dns(lua_State* L, int sched_idx);
