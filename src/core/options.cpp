#include "sock/options.hpp"

#include "sock/address.hpp"

#include "options_os.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

namespace sock {

namespace {

using K = OptionKind;
constexpr bool R = true, W = true, NO = false;

// The options every supported system has (Linux, macOS and the BSDs,
// Windows); each system's own are in its options file (options_os.hpp).
// Options that only configure what recvmsg() control messages carry
// (ip_pktinfo, so_timestamp, ...) are left out: the library has no recvmsg
// with control data, so from Lua they would do nothing.
constexpr OptionInfo kPortableOptions[] = {
    // ---- SOL_SOCKET ----
    {"so_reuseaddr", SOL_SOCKET, SO_REUSEADDR, K::Bool, R, W},
    {"so_keepalive", SOL_SOCKET, SO_KEEPALIVE, K::Bool, R, W},
    {"so_linger", SOL_SOCKET, SO_LINGER, K::Linger, R, W},
    {"so_rcvbuf", SOL_SOCKET, SO_RCVBUF, K::Int, R, W},
    {"so_sndbuf", SOL_SOCKET, SO_SNDBUF, K::Int, R, W},
    {"so_rcvlowat", SOL_SOCKET, SO_RCVLOWAT, K::Int, R, W},
    {"so_sndlowat", SOL_SOCKET, SO_SNDLOWAT, K::Int, R, W},  // Linux: read-only in effect
    {"so_rcvtimeo", SOL_SOCKET, SO_RCVTIMEO, K::Seconds, R, W},
    {"so_sndtimeo", SOL_SOCKET, SO_SNDTIMEO, K::Seconds, R, W},
    {"so_broadcast", SOL_SOCKET, SO_BROADCAST, K::Bool, R, W},
    {"so_dontroute", SOL_SOCKET, SO_DONTROUTE, K::Bool, R, W},
    {"so_oobinline", SOL_SOCKET, SO_OOBINLINE, K::Bool, R, W},
    {"so_debug", SOL_SOCKET, SO_DEBUG, K::Bool, R, W},
    {"so_error", SOL_SOCKET, SO_ERROR, K::Errno, R, NO},
    {"so_type", SOL_SOCKET, SO_TYPE, K::SockType, R, NO},
    {"so_acceptconn", SOL_SOCKET, SO_ACCEPTCONN, K::Bool, R, NO},

    // ---- IPPROTO_TCP ----
    {"tcp_nodelay", IPPROTO_TCP, TCP_NODELAY, K::Bool, R, W},

    // ---- IPPROTO_IP ----
    {"ip_ttl", IPPROTO_IP, IP_TTL, K::Int, R, W},
    {"ip_tos", IPPROTO_IP, IP_TOS, K::Int, R, W},
    {"ip_hdrincl", IPPROTO_IP, IP_HDRINCL, K::Bool, R, W},
    {"ip_multicast_ttl", IPPROTO_IP, IP_MULTICAST_TTL, K::Int, R, W},
    {"ip_multicast_loop", IPPROTO_IP, IP_MULTICAST_LOOP, K::Bool, R, W},
    {"ip_multicast_if", IPPROTO_IP, IP_MULTICAST_IF, K::Ipv4Interface, R, W},
    {"ip_add_membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, K::Membership4, NO, W},
    {"ip_drop_membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, K::Membership4, NO, W},
    {"ip_add_source_membership", IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, K::SourceMembership4,
     NO, W},
    {"ip_drop_source_membership", IPPROTO_IP, IP_DROP_SOURCE_MEMBERSHIP, K::SourceMembership4,
     NO, W},
    {"ip_block_source", IPPROTO_IP, IP_BLOCK_SOURCE, K::SourceMembership4, NO, W},
    {"ip_unblock_source", IPPROTO_IP, IP_UNBLOCK_SOURCE, K::SourceMembership4, NO, W},

    // ---- IPPROTO_IPV6 ----
    {"ipv6_v6only", IPPROTO_IPV6, IPV6_V6ONLY, K::Bool, R, W},
    {"ipv6_unicast_hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, K::Int, R, W},
    {"ipv6_multicast_hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, K::Int, R, W},
    {"ipv6_multicast_loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, K::Bool, R, W},
    {"ipv6_multicast_if", IPPROTO_IPV6, IPV6_MULTICAST_IF, K::InterfaceIndex, R, W},
    {"ipv6_join_group", IPPROTO_IPV6, IPV6_JOIN_GROUP, K::Membership6, NO, W},
    {"ipv6_leave_group", IPPROTO_IPV6, IPV6_LEAVE_GROUP, K::Membership6, NO, W},
    {"ipv6_tclass", IPPROTO_IPV6, IPV6_TCLASS, K::Int, R, W},
};

// Where a level's options go in the full table: in the order of the
// sections above, so that a listing reads level by level.
int level_rank(int level) {
  if (level == SOL_SOCKET) return 0;
  if (level == IPPROTO_TCP) return 1;
  if (level == IPPROTO_IP) return 2;
  if (level == IPPROTO_IPV6) return 3;
  return 4;
}

// The portable options and this OS's, each level's portable ones first. One
// array, made once, because option_table() hands out a pointer and a count,
// and a lookup answers with pointers into that same array.
const std::vector<OptionInfo>& all_options() {
  static const std::vector<OptionInfo> table = [] {
    size_t os_count = 0;
    const OptionInfo* os_options = os_option_table(&os_count);
    std::vector<OptionInfo> merged(std::begin(kPortableOptions), std::end(kPortableOptions));
    merged.insert(merged.end(), os_options, os_options + os_count);
    std::stable_sort(merged.begin(), merged.end(), [](const OptionInfo& a, const OptionInfo& b) {
      return level_rank(a.level) < level_rank(b.level);
    });
    return merged;
  }();
  return table;
}

// Other spellings people bring from the C headers.
struct Alias {
  const char* alias;
  const char* canonical;
};
constexpr Alias kAliases[] = {
    {"ipv6_add_membership", "ipv6_join_group"},
    {"ipv6_drop_membership", "ipv6_leave_group"},
};

// Level prefixes tried, in this order, for a name given without one.
constexpr const char* kPrefixes[] = {"so_", "tcp_", "ip_", "ipv6_"};

const OptionInfo* find_exact(std::string_view name) {
  for (const auto& option : all_options())
    if (name == option.name) return &option;
  for (const auto& alias : kAliases)
    if (name == alias.alias) return find_exact(alias.canonical);
  return nullptr;
}

}  // namespace

// (Declared in options_os.hpp: the OS files use these too.)

int parse_interface(std::string_view iface, in_addr* address, unsigned* index) {
  if (address) address->s_addr = htonl(INADDR_ANY);
  *index = 0;
  if (iface.empty()) return 0;
  unsigned char bin[16];
  size_t len;
  if (address && inet_pton(AF_INET, iface, bin, &len)) {
    std::memcpy(address, bin, 4);
    return 0;
  }
  char name[IF_NAMESIZE + 1];
  if (iface.size() > IF_NAMESIZE || std::memchr(iface.data(), '\0', iface.size()))
    return -ENODEV;
  std::memcpy(name, iface.data(), iface.size());
  name[iface.size()] = '\0';
  bool digits = true;
  for (char c : iface) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    unsigned long n = std::strtoul(name, nullptr, 10);
    if (n == 0 || n > UINT_MAX) return -ENODEV;
    *index = unsigned(n);
    return 0;
  }
  *index = if_nametoindex(name);
  return *index ? 0 : -ENODEV;
}

bool parse_ip(int af, std::string_view text, void* out) {
  unsigned char bin[16];
  size_t len;
  if (!inet_pton(af, text, bin, &len)) return false;
  std::memcpy(out, bin, len);
  return true;
}

// (Winsock's setsockopt/getsockopt take char pointers; POSIX's take void.)
int set_raw_option(socket_t fd, const OptionInfo& option, const void* data, socklen_t len) {
  return setsockopt(fd, option.level, option.optname, static_cast<const char*>(data), len) == 0 ? 0
                                                                                              : -last_socket_error();
}

int get_raw_option(socket_t fd, const OptionInfo& option, void* data, socklen_t* len) {
  return getsockopt(fd, option.level, option.optname, static_cast<char*>(data), len) == 0 ? 0
                                                                                         : -last_socket_error();
}

int set_ipv4_interface_by_address(socket_t fd, const OptionInfo& option, std::string_view iface) {
  in_addr addr{};
  unsigned index;
  if (int err = parse_interface(iface, &addr, &index)) return err;
  if (index) return -EINVAL;  // only Linux takes an interface index here
  return set_raw_option(fd, option, &addr, sizeof addr);
}

int set_membership4_by_address(socket_t fd, const OptionInfo& option, std::string_view group,
                                std::string_view iface) {
  ip_mreq req{};
  if (!parse_ip(AF_INET, group, &req.imr_multiaddr)) return -EINVAL;
  unsigned index;
  if (int err = parse_interface(iface, &req.imr_interface, &index)) return err;
  if (index) return -EINVAL;  // ip_mreq names the interface by address only
  return set_raw_option(fd, option, &req, sizeof req);
}

namespace {

int set_int(socket_t fd, const OptionInfo& option, long long value) {
  if (value < INT_MIN || value > INT_MAX) return -EINVAL;
  int v = int(value);
  return set_raw_option(fd, option, &v, sizeof v);
}

int get_int(socket_t fd, const OptionInfo& option, long long* out) {
  int v = 0;
  socklen_t len = sizeof v;
  if (int err = get_raw_option(fd, option, &v, &len)) return err;
  // A few IP options answer with one byte when they can; read what came.
  *out = len == 1 ? (long long)*reinterpret_cast<unsigned char*>(&v) : (long long)v;
  return 0;
}

}  // namespace

const OptionInfo* option_table(size_t* count) {
  const std::vector<OptionInfo>& table = all_options();
  *count = table.size();
  return table.data();
}

OptionLookup lookup_option(std::string_view name) {
  OptionLookup found;
  char lower[64];
  if (name.empty() || name.size() >= sizeof lower) return found;
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  }
  std::string_view key(lower, name.size());
  if ((found.info = find_exact(key))) return found;

  // A bare name: it counts only when exactly one level has it.
  int matches = 0;
  char prefixed[80];
  for (const char* prefix : kPrefixes) {
    size_t plen = std::strlen(prefix);
    std::memcpy(prefixed, prefix, plen);
    std::memcpy(prefixed + plen, key.data(), key.size());
    const OptionInfo* option = find_exact(std::string_view(prefixed, plen + key.size()));
    if (!option) continue;
    if (matches < 2) found.candidates[matches] = option;
    matches++;
  }
  if (matches == 1) {
    found.info = found.candidates[0];
    found.candidates[0] = nullptr;
  }
  return found;
}

const OptionInfo* find_option(std::string_view name) { return lookup_option(name).info; }

int set_option(socket_t fd, const OptionInfo& option, const OptionValue& value) {
  if (!option.writable) return -ENOPROTOOPT;
  switch (option.kind) {
    case K::Bool: return set_int(fd, option, value.flag ? 1 : 0);
    case K::Int: return set_int(fd, option, value.integer);
    case K::UInt64: {
      if (value.integer < 0) return -EINVAL;
      uint64_t v = uint64_t(value.integer);
      return set_raw_option(fd, option, &v, sizeof v);
    }
    case K::Seconds: {
      double s = value.seconds;
      if (!(s >= 0)) return -EINVAL;  // negative or NaN
      if (s > 1e12) s = 1e12;         // far beyond what the kernel distinguishes
      return set_seconds_option(fd, option, s);
    }
    case K::Linger: {
      linger l;
      // (Winsock's l_linger is an unsigned short.)
      if (value.flag &&
          (value.integer < 0 || value.integer > (long long)std::numeric_limits<decltype(l.l_linger)>::max()))
        return -EINVAL;
      l.l_onoff = value.flag ? 1 : 0;
      l.l_linger = value.flag ? decltype(l.l_linger)(value.integer) : 0;
      return set_raw_option(fd, option, &l, sizeof l);
    }
    case K::String: {
      std::string_view s = value.text;
      if (std::memchr(s.data(), '\0', s.size())) return -EINVAL;
      if (int err = check_string_option(option, s)) return err;
      return set_raw_option(fd, option, s.data(), socklen_t(s.size()));
    }
    case K::Ipv4Interface: return set_ipv4_interface_option(fd, option, value.text);
    case K::InterfaceIndex: {
      unsigned index = 0;
      if (!value.text.empty()) {
        if (int err = parse_interface(value.text, nullptr, &index)) return err;
        return set_int(fd, option, index);
      }
      if (value.integer < 0) return -EINVAL;
      return set_int(fd, option, value.integer);
    }
    case K::Membership4: return set_membership4_option(fd, option, value.text, value.iface);
    case K::SourceMembership4: {
      ip_mreq_source req{};
      if (!parse_ip(AF_INET, value.text, &req.imr_multiaddr)) return -EINVAL;
      if (!parse_ip(AF_INET, value.source, &req.imr_sourceaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, &req.imr_interface, &index)) return err;
      if (index) return -EINVAL;  // this request names the interface by address only
      return set_raw_option(fd, option, &req, sizeof req);
    }
    case K::Membership6: {
      ipv6_mreq req{};
      if (!parse_ip(AF_INET6, value.text, &req.ipv6mr_multiaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, nullptr, &index)) return err;
      req.ipv6mr_interface = index;
      return set_raw_option(fd, option, &req, sizeof req);
    }
    case K::Errno:
    case K::SockType:
    case K::Family:
    case K::Protocol:
    case K::PeerCred: return -ENOPROTOOPT;
  }
  return -ENOPROTOOPT;
}

int get_option(socket_t fd, const OptionInfo& option, OptionValue& value) {
  if (!option.readable) return -ENOPROTOOPT;
  switch (option.kind) {
    case K::Bool: {
      long long v;
      if (int err = get_int(fd, option, &v)) return err;
      value.flag = v != 0;
      return 0;
    }
    case K::Errno: {
      int err = get_int(fd, option, &value.integer);
      if (err == 0 && value.integer != 0) value.integer = socket_error_as_errno(value.integer);
      return err;
    }
    case K::Int:
    case K::SockType:
    case K::Family:
    case K::Protocol:
    case K::InterfaceIndex: return get_int(fd, option, &value.integer);
    case K::UInt64: {
      unsigned char buf[8] = {};
      socklen_t len = sizeof buf;
      if (int err = get_raw_option(fd, option, buf, &len)) return err;
      if (len == sizeof(uint32_t)) {
        uint32_t v;
        std::memcpy(&v, buf, sizeof v);
        value.integer = v;
      } else {
        uint64_t v;
        std::memcpy(&v, buf, sizeof v);
        // Lua integers are signed; "unlimited" (all ones) reads as -1.
        value.integer = (long long)v;
      }
      return 0;
    }
    case K::Seconds: return get_seconds_option(fd, option, &value.seconds);
    case K::Linger: {
      linger l{};
      socklen_t len = sizeof l;
      if (int err = get_raw_option(fd, option, &l, &len)) return err;
      value.flag = l.l_onoff != 0;
      value.integer = l.l_linger;
      return 0;
    }
    case K::String: {
      socklen_t len = sizeof(value.result) - 1;
      if (int err = get_raw_option(fd, option, value.result, &len)) return err;
      if ((size_t)len > sizeof(value.result) - 1) len = sizeof(value.result) - 1;
      value.result[len] = '\0';
      return 0;
    }
    case K::PeerCred: return get_peer_credentials(fd, option, &value.cred);
    case K::Ipv4Interface: {
      in_addr addr{};
      socklen_t len = sizeof addr;
      if (int err = get_raw_option(fd, option, &addr, &len)) return err;
      if (!sock::inet_ntop(AF_INET, &addr, value.result, sizeof value.result)) return -EINVAL;
      return 0;
    }
    case K::Membership4:
    case K::SourceMembership4:
    case K::Membership6: return -ENOPROTOOPT;
  }
  return -ENOPROTOOPT;
}

}  // namespace sock
