// Lua binding of the address core: sock.addr and its ai/sa/ip objects, the
// inet_* / is_ipv* / if_* helpers, and what the socket binding needs to turn
// (host, port) arguments into addresses.
#pragma once

#include "compat.hpp"

#include "sock/platform.hpp"  // sockaddr, addrinfo

// With the module table at the top of the stack, creates the ai/sa/ip
// metatables and sets addr, inet_pton, inet_ntop, is_ipv4, is_ipv6,
// if_nametoindex and if_indextoname in it.
void sock_lua_open_address(lua_State* L);

// Turns the arguments at host_idx (and host_idx + 1) into an address list.
//  - host_idx holds an ai (from sock.addr) or an sa (from recvnext,
//    getsockname, ...): it is used as is and the port slot is ignored
//    (luapower: "an already resolved address can be passed as ai, nil in place
//    of host, port").
//  - otherwise host_idx holds the host (string, or nil for '*'; the path for
//    family AF_UNIX) and host_idx + 1 the port (integer 0-65535, a service
//    name, or nil for 0).
// flags_idx is the stack index of a flags argument (see sock_lua_check_flags),
// 0 for none; extra_flags are or-ed in. protocol 0 means the socket type's
// default.
// Inside a sock thread, a host that needs a lookup (see lua_dns.hpp) is not
// resolved here when fname is one of the functions lua/sock_dns.lua wraps:
// then the lookup marker and a request object are pushed (two values, as on
// failure) and nullptr is returned; the wrapper waits for the lookup and
// calls again with the ai.
// On success pushes ONE value, an ai that owns the returned list (keep it on
// the stack while the list is in use), and returns the first entry. On failure
// pushes nil and the normalized error message and returns nullptr. Raises,
// naming `fname`, on arguments of the wrong type, a port out of range or an ai
// that was freed.
// The list stays valid while the pushed ai is referenced, even if the caller's
// own ai is freed meanwhile.
const addrinfo* sock_lua_resolve(lua_State* L, int host_idx, int socktype, int family,
                                 int protocol, int flags_idx, int extra_flags, const char* fname);

// Pushes an ai that takes over `list` (left empty). For lists resolved
// elsewhere (lua_dns.cpp).
namespace sock { class AddrList; }
void sock_lua_push_addrlist(lua_State* L, sock::AddrList& list);

// Pushes a new standalone sa object holding a copy of the address.
void sock_lua_push_sa(lua_State* L, const sockaddr* sa, socklen_t len);

// The address an sa object at idx holds, or nullptr when idx is not an sa.
const sockaddr* sock_lua_test_sa(lua_State* L, int idx, socklen_t* len);

// getaddrinfo flags from nil (0), a number, a flag name ('passive') or a list
// of names ({'passive', 'numerichost'}; {passive = true} works too). Raises
// "bad argument #idx to 'fname' (unknown flag 'xyz')" for an unknown name.
int sock_lua_check_flags(lua_State* L, int idx, const char* fname);

// Optional family / socket type / protocol arguments: nil or none -> def, 0,
// a name ('inet', 'tcp', 'icmp', ...) or a raw integer. Raise, naming `fname`,
// on an unknown name or a value of another type.
int sock_lua_opt_family(lua_State* L, int idx, int def, const char* fname);
int sock_lua_opt_socktype(lua_State* L, int idx, int def, const char* fname);
int sock_lua_opt_protocol(lua_State* L, int idx, int def, const char* fname);

// Pushes the name of a family / socket type / protocol, or the number when it
// has no name.
void sock_lua_push_family(lua_State* L, int af);
void sock_lua_push_socktype(lua_State* L, int socktype);
void sock_lua_push_protocol(lua_State* L, int protocol);
