// Socket options by name: one table of the SOL_SOCKET, TCP, IP and IPv6
// options that make sense to a Lua program, each with the kind of value it
// takes, and get/set functions that convert between that kind and what the OS
// wants. No Lua in here.
//
// Names. Each option has one canonical name with its level's prefix:
// "so_reuseaddr", "tcp_nodelay", "ip_ttl", "ipv6_v6only". A lookup also accepts
//  - the name without its prefix when exactly one level has it ("reuseaddr",
//    luapower's spelling for SOL_SOCKET options, or "nodelay", "keepidle",
//    "v6only"); a bare name two levels share ("multicast_loop", "recverr")
//    must carry its prefix;
//  - any letter case ("SO_REUSEADDR");
//  - a few aliases the OS headers use ("ipv6_add_membership" for
//    "ipv6_join_group").
#pragma once

#include <cstddef>
#include <string_view>

#include "sock/platform.hpp"

namespace sock {

enum class OptionKind {
  Bool,               // int 0/1                <-> boolean
  Int,                // int                    <-> integer
  UInt64,             // uint64_t               <-> integer
  Seconds,            // struct timeval         <-> seconds (fractional)
  Linger,             // struct linger          <-> seconds (0 = RST on close) or off
  String,             // bytes                  <-> string (device, congestion algorithm)
  Errno,              // pending errno          --> normalized name, none when 0
  SockType,           // SOCK_*                 --> 'tcp' 'udp' 'raw'
  Family,             // AF_*                   --> 'inet' 'inet6' 'unix'
  Protocol,           // IPPROTO_*              --> 'tcp' 'udp' ...
  PeerCred,           // struct ucred           --> pid, uid, gid
  Ipv4Interface,      // in_addr / ip_mreqn     <-> address (set: or interface name/index)
  InterfaceIndex,     // int ifindex            <-> index (set: or interface name)
  Membership4,        // ip_mreqn               <-- group [+ interface]
  SourceMembership4,  // ip_mreq_source         <-- group + source [+ interface address]
  Membership6,        // ipv6_mreq              <-- group [+ interface]
};

struct OptionInfo {
  const char* name;  // canonical name, e.g. "so_reuseaddr"
  int level;         // SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6
  int optname;
  OptionKind kind;
  bool readable;
  bool writable;
};

struct PeerCredentials {
  long long pid = 0, uid = 0, gid = 0;
};

// The value of an option, in the members its kind uses.
struct OptionValue {
  bool flag = false;      // Bool; Linger: on/off
  long long integer = 0;  // Int, UInt64, Errno, SockType, Family, Protocol,
                          // InterfaceIndex; Linger: seconds
  double seconds = 0;     // Seconds

  // Inputs for set_option; the caller keeps the text alive during the call.
  std::string_view text;       // String; Ipv4Interface / InterfaceIndex given
                               // by address or name; the group of a membership
  std::string_view iface;      // membership: interface address, name or
                               // decimal index; empty = let the kernel choose
  std::string_view source;     // SourceMembership4: the source address

  // Outputs of get_option.
  char result[64] = "";  // String; Ipv4Interface (address text)
  PeerCredentials cred;  // PeerCred
};

// The canonical table, for documentation and iteration.
const OptionInfo* option_table(size_t* count);

struct OptionLookup {
  const OptionInfo* info = nullptr;          // set when the name is known and unambiguous
  const OptionInfo* candidates[2] = {};      // two of the options a bare name could mean
};

OptionLookup lookup_option(std::string_view name);
// nullptr when the name is unknown or ambiguous.
const OptionInfo* find_option(std::string_view name);

// 0 or -errno. Values the kernel could never take (an int option out of int
// range, a negative time, a malformed group address) are -EINVAL; an unknown
// interface name is -ENODEV; a read-only option is -ENOPROTOOPT.
int set_option(socket_t fd, const OptionInfo& option, const OptionValue& value);
// 0 or -errno; fills the members of `value` the option's kind uses.
int get_option(socket_t fd, const OptionInfo& option, OptionValue& value);

}  // namespace sock
