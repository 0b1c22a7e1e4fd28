// Lua side of socket options: s:setopt(name, value) and s:getopt(name) for a
// socket binding that already has the fd (option names and value kinds: see
// include/sock/options.hpp).
#pragma once

#include "compat.hpp"
#include "sock/platform.hpp"

// Option name at stack index 2, value at 3 (1 is the socket). Pushes `true`,
// or `nil, err` when the OS refuses (err normalized: 'option_not_supported',
// 'invalid_argument', 'access_denied', 'no_such_device', ...; 'closed' when
// fd < 0), and returns the number of values pushed. Raises, naming `fname`,
// on an unknown or ambiguous name, a read-only option or a value of the wrong
// type.
//
// Values by kind: booleans take true/false (numbers: 0 is false); integers a
// whole number; times (so_rcvtimeo, so_sndtimeo) seconds as a number;
// so_linger a number of seconds (0 = reset on close; fractions round up) or
// false/nil for off; strings a string; ip_multicast_if an IPv4 address, an
// interface name or index; ipv6_multicast_if an interface index or name;
// memberships (ip_add_membership, ipv6_join_group, ...) a group address or a
// table {group = addr, interface = addr|name|index}, and the source-specific
// ones {group = addr, source = addr[, interface = addr]}.
int sock_lua_setopt(lua_State* L, sock::socket_t fd, const char* fname);

// Option name at stack index 2. Pushes the value, or `nil, err`. so_error
// pushes its normalized error name, or a lone nil when there is no pending
// error; so_linger the seconds or false when off; so_type/so_domain/
// so_protocol names ('tcp', 'inet6', ...); so_peercred a table {pid, uid, gid}.
// Raises, naming `fname`, on an unknown or ambiguous name or a write-only
// option.
int sock_lua_getopt(lua_State* L, sock::socket_t fd, const char* fname);
