#include "sock/options.hpp"

#include "sock/address.hpp"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

// Windows 10 1709 and later have the keep-alive trio; mingw-w64's headers
// do not name them yet (the values are the Windows SDK's ws2ipdef.h ones).
#if defined(_WIN32) && !defined(TCP_KEEPIDLE)
#define TCP_KEEPIDLE 3
#define TCP_KEEPCNT 16
#define TCP_KEEPINTVL 17
#endif

namespace sock {

namespace {

using K = OptionKind;
constexpr bool R = true, W = true, NO = false;

// Options that only configure what recvmsg() control messages carry
// (ip_pktinfo, so_timestamp, ...) are left out: the library has no recvmsg
// with control data, so from Lua they would do nothing.
constexpr OptionInfo kOptions[] = {
    // ---- SOL_SOCKET ----
    {"so_reuseaddr", SOL_SOCKET, SO_REUSEADDR, K::Bool, R, W},
#ifdef SO_REUSEPORT  // (not on Windows)
    {"so_reuseport", SOL_SOCKET, SO_REUSEPORT, K::Bool, R, W},
#endif
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
#ifdef __linux__
    {"so_domain", SOL_SOCKET, SO_DOMAIN, K::Family, R, NO},
    {"so_protocol", SOL_SOCKET, SO_PROTOCOL, K::Protocol, R, NO},
    {"so_rcvbufforce", SOL_SOCKET, SO_RCVBUFFORCE, K::Int, NO, W},
    {"so_sndbufforce", SOL_SOCKET, SO_SNDBUFFORCE, K::Int, NO, W},
    {"so_priority", SOL_SOCKET, SO_PRIORITY, K::Int, R, W},
    {"so_mark", SOL_SOCKET, SO_MARK, K::Int, R, W},
    {"so_bindtodevice", SOL_SOCKET, SO_BINDTODEVICE, K::String, R, W},
    {"so_peercred", SOL_SOCKET, SO_PEERCRED, K::PeerCred, R, NO},
    {"so_busy_poll", SOL_SOCKET, SO_BUSY_POLL, K::Int, R, W},
    {"so_incoming_cpu", SOL_SOCKET, SO_INCOMING_CPU, K::Int, R, W},
    {"so_max_pacing_rate", SOL_SOCKET, SO_MAX_PACING_RATE, K::UInt64, R, W},
#ifdef SO_COOKIE
    {"so_cookie", SOL_SOCKET, SO_COOKIE, K::UInt64, R, NO},
#endif
#ifdef SO_INCOMING_NAPI_ID
    {"so_incoming_napi_id", SOL_SOCKET, SO_INCOMING_NAPI_ID, K::Int, R, NO},
#endif
#ifdef SO_PREFER_BUSY_POLL
    {"so_prefer_busy_poll", SOL_SOCKET, SO_PREFER_BUSY_POLL, K::Bool, R, W},
#endif
#ifdef SO_BUSY_POLL_BUDGET
    {"so_busy_poll_budget", SOL_SOCKET, SO_BUSY_POLL_BUDGET, K::Int, R, W},
#endif
#endif  // __linux__

    // ---- IPPROTO_TCP ----
    {"tcp_nodelay", IPPROTO_TCP, TCP_NODELAY, K::Bool, R, W},
#ifdef TCP_MAXSEG  // (not on Windows)
    {"tcp_maxseg", IPPROTO_TCP, TCP_MAXSEG, K::Int, R, W},
#endif
#ifdef __linux__
    {"tcp_keepidle", IPPROTO_TCP, TCP_KEEPIDLE, K::Int, R, W},    // seconds
    {"tcp_keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, K::Int, R, W},  // seconds
    {"tcp_keepcnt", IPPROTO_TCP, TCP_KEEPCNT, K::Int, R, W},
    {"tcp_cork", IPPROTO_TCP, TCP_CORK, K::Bool, R, W},
    {"tcp_quickack", IPPROTO_TCP, TCP_QUICKACK, K::Bool, R, W},
    {"tcp_defer_accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, K::Int, R, W},  // seconds
    {"tcp_syncnt", IPPROTO_TCP, TCP_SYNCNT, K::Int, R, W},
    {"tcp_linger2", IPPROTO_TCP, TCP_LINGER2, K::Int, R, W},  // seconds
    {"tcp_window_clamp", IPPROTO_TCP, TCP_WINDOW_CLAMP, K::Int, R, W},
    {"tcp_user_timeout", IPPROTO_TCP, TCP_USER_TIMEOUT, K::Int, R, W},  // milliseconds
    {"tcp_congestion", IPPROTO_TCP, TCP_CONGESTION, K::String, R, W},
    {"tcp_fastopen", IPPROTO_TCP, TCP_FASTOPEN, K::Int, R, W},  // queue length
#ifdef TCP_FASTOPEN_CONNECT
    {"tcp_fastopen_connect", IPPROTO_TCP, TCP_FASTOPEN_CONNECT, K::Bool, R, W},
#endif
    {"tcp_notsent_lowat", IPPROTO_TCP, TCP_NOTSENT_LOWAT, K::Int, R, W},
    {"tcp_thin_linear_timeouts", IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, K::Bool, R, W},
#else  // the BSDs, macOS and Windows: the keep-alive trio, under macOS's own name for the first
#if defined(TCP_KEEPIDLE)
    {"tcp_keepidle", IPPROTO_TCP, TCP_KEEPIDLE, K::Int, R, W},  // seconds
#elif defined(TCP_KEEPALIVE)
    {"tcp_keepidle", IPPROTO_TCP, TCP_KEEPALIVE, K::Int, R, W},  // seconds (macOS)
#endif
#ifdef TCP_KEEPINTVL
    {"tcp_keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, K::Int, R, W},  // seconds
#endif
#ifdef TCP_KEEPCNT
    {"tcp_keepcnt", IPPROTO_TCP, TCP_KEEPCNT, K::Int, R, W},
#endif
#ifdef TCP_FASTOPEN
    {"tcp_fastopen", IPPROTO_TCP, TCP_FASTOPEN, K::Int, R, W},
#endif
#ifdef TCP_NOTSENT_LOWAT
    {"tcp_notsent_lowat", IPPROTO_TCP, TCP_NOTSENT_LOWAT, K::Int, R, W},
#endif
#endif  // __linux__

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
#ifdef __linux__
    {"ip_recverr", IPPROTO_IP, IP_RECVERR, K::Bool, R, W},
    {"ip_freebind", IPPROTO_IP, IP_FREEBIND, K::Bool, R, W},
    {"ip_transparent", IPPROTO_IP, IP_TRANSPARENT, K::Bool, R, W},
    {"ip_bind_address_no_port", IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, K::Bool, R, W},
    {"ip_multicast_all", IPPROTO_IP, IP_MULTICAST_ALL, K::Bool, R, W},
    {"ip_nodefrag", IPPROTO_IP, IP_NODEFRAG, K::Bool, R, W},
    {"ip_mtu_discover", IPPROTO_IP, IP_MTU_DISCOVER, K::Int, R, W},  // IP_PMTUDISC_*
    {"ip_mtu", IPPROTO_IP, IP_MTU, K::Int, R, NO},                   // connected sockets
#endif

    // ---- IPPROTO_IPV6 ----
    {"ipv6_v6only", IPPROTO_IPV6, IPV6_V6ONLY, K::Bool, R, W},
    {"ipv6_unicast_hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, K::Int, R, W},
    {"ipv6_multicast_hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, K::Int, R, W},
    {"ipv6_multicast_loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, K::Bool, R, W},
    {"ipv6_multicast_if", IPPROTO_IPV6, IPV6_MULTICAST_IF, K::InterfaceIndex, R, W},
    {"ipv6_join_group", IPPROTO_IPV6, IPV6_JOIN_GROUP, K::Membership6, NO, W},
    {"ipv6_leave_group", IPPROTO_IPV6, IPV6_LEAVE_GROUP, K::Membership6, NO, W},
    {"ipv6_tclass", IPPROTO_IPV6, IPV6_TCLASS, K::Int, R, W},
#ifdef __linux__
    {"ipv6_recverr", IPPROTO_IPV6, IPV6_RECVERR, K::Bool, R, W},
    {"ipv6_mtu_discover", IPPROTO_IPV6, IPV6_MTU_DISCOVER, K::Int, R, W},
    {"ipv6_mtu", IPPROTO_IPV6, IPV6_MTU, K::Int, R, NO},
    {"ipv6_transparent", IPPROTO_IPV6, IPV6_TRANSPARENT, K::Bool, R, W},
#ifdef IPV6_FREEBIND
    {"ipv6_freebind", IPPROTO_IPV6, IPV6_FREEBIND, K::Bool, R, W},
#endif
#ifdef IPV6_MULTICAST_ALL
    {"ipv6_multicast_all", IPPROTO_IPV6, IPV6_MULTICAST_ALL, K::Bool, R, W},
#endif
#endif
};

constexpr size_t kOptionCount = sizeof(kOptions) / sizeof(kOptions[0]);

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
  for (const auto& option : kOptions)
    if (name == option.name) return &option;
  for (const auto& alias : kAliases)
    if (name == alias.alias) return find_exact(alias.canonical);
  return nullptr;
}

// Interface by address ("192.0.2.1", IPv4 only), decimal index or name.
// Fills whichever applies; 0, -EINVAL or -ENODEV.
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
int set_raw(socket_t fd, const OptionInfo& option, const void* data, socklen_t len) {
  return setsockopt(fd, option.level, option.optname, static_cast<const char*>(data), len) == 0 ? 0
                                                                                              : -last_socket_error();
}

int set_int(socket_t fd, const OptionInfo& option, long long value) {
  if (value < INT_MIN || value > INT_MAX) return -EINVAL;
  int v = int(value);
  return set_raw(fd, option, &v, sizeof v);
}

int get_raw(socket_t fd, const OptionInfo& option, void* data, socklen_t* len) {
  return getsockopt(fd, option.level, option.optname, static_cast<char*>(data), len) == 0 ? 0
                                                                                         : -last_socket_error();
}

int get_int(socket_t fd, const OptionInfo& option, long long* out) {
  int v = 0;
  socklen_t len = sizeof v;
  if (int err = get_raw(fd, option, &v, &len)) return err;
  // A few IP options answer with one byte when they can; read what came.
  *out = len == 1 ? (long long)*reinterpret_cast<unsigned char*>(&v) : (long long)v;
  return 0;
}

}  // namespace

const OptionInfo* option_table(size_t* count) {
  *count = kOptionCount;
  return kOptions;
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
      return set_raw(fd, option, &v, sizeof v);
    }
    case K::Seconds: {
      double s = value.seconds;
      if (!(s >= 0)) return -EINVAL;  // negative or NaN
      if (s > 1e12) s = 1e12;         // far beyond what the kernel distinguishes
#ifdef _WIN32  // Winsock's timeouts are a DWORD of milliseconds
      DWORD ms = s * 1000 >= 4294967295.0 ? DWORD(4294967295u) : DWORD(s * 1000);
      return set_raw(fd, option, &ms, sizeof ms);
#else
      timeval tv;
      tv.tv_sec = time_t(s);
      tv.tv_usec = suseconds_t((s - double(tv.tv_sec)) * 1e6);
      return set_raw(fd, option, &tv, sizeof tv);
#endif
    }
    case K::Linger: {
      linger l;
      // (Winsock's l_linger is an unsigned short.)
      if (value.flag &&
          (value.integer < 0 || value.integer > (long long)std::numeric_limits<decltype(l.l_linger)>::max()))
        return -EINVAL;
      l.l_onoff = value.flag ? 1 : 0;
      l.l_linger = value.flag ? decltype(l.l_linger)(value.integer) : 0;
      return set_raw(fd, option, &l, sizeof l);
    }
    case K::String: {
      std::string_view s = value.text;
      if (std::memchr(s.data(), '\0', s.size())) return -EINVAL;
#ifdef SO_BINDTODEVICE
      // The kernel would quietly cut a long name and maybe bind elsewhere.
      if (option.level == SOL_SOCKET && option.optname == SO_BINDTODEVICE &&
          s.size() >= IF_NAMESIZE)
        return -ENODEV;
#endif
      return set_raw(fd, option, s.data(), socklen_t(s.size()));
    }
    case K::Ipv4Interface: {
#ifdef __linux__
      ip_mreqn req{};
      unsigned index;
      if (int err = parse_interface(value.text, &req.imr_address, &index)) return err;
      req.imr_ifindex = int(index);
      return set_raw(fd, option, &req, sizeof req);
#else
      in_addr addr{};
      unsigned index;
      if (int err = parse_interface(value.text, &addr, &index)) return err;
      if (index) return -EINVAL;  // only Linux takes an interface index here
      return set_raw(fd, option, &addr, sizeof addr);
#endif
    }
    case K::InterfaceIndex: {
      unsigned index = 0;
      if (!value.text.empty()) {
        if (int err = parse_interface(value.text, nullptr, &index)) return err;
        return set_int(fd, option, index);
      }
      if (value.integer < 0) return -EINVAL;
      return set_int(fd, option, value.integer);
    }
    case K::Membership4: {
#ifdef __linux__
      ip_mreqn req{};
      if (!parse_ip(AF_INET, value.text, &req.imr_multiaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, &req.imr_address, &index)) return err;
      req.imr_ifindex = int(index);
#else
      ip_mreq req{};
      if (!parse_ip(AF_INET, value.text, &req.imr_multiaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, &req.imr_interface, &index)) return err;
      if (index) return -EINVAL;
#endif
      return set_raw(fd, option, &req, sizeof req);
    }
    case K::SourceMembership4: {
      ip_mreq_source req{};
      if (!parse_ip(AF_INET, value.text, &req.imr_multiaddr)) return -EINVAL;
      if (!parse_ip(AF_INET, value.source, &req.imr_sourceaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, &req.imr_interface, &index)) return err;
      if (index) return -EINVAL;  // this request names the interface by address only
      return set_raw(fd, option, &req, sizeof req);
    }
    case K::Membership6: {
      ipv6_mreq req{};
      if (!parse_ip(AF_INET6, value.text, &req.ipv6mr_multiaddr)) return -EINVAL;
      unsigned index;
      if (int err = parse_interface(value.iface, nullptr, &index)) return err;
      req.ipv6mr_interface = index;
      return set_raw(fd, option, &req, sizeof req);
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
#ifdef _WIN32  // SO_ERROR holds a Winsock code (WSAECONNREFUSED...), not an errno value
      if (err == 0 && value.integer != 0) value.integer = wsa_errno((int)value.integer);
#endif
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
      if (int err = get_raw(fd, option, buf, &len)) return err;
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
    case K::Seconds: {
#ifdef _WIN32
      DWORD ms = 0;
      socklen_t len = sizeof ms;
      if (int err = get_raw(fd, option, &ms, &len)) return err;
      value.seconds = double(ms) / 1000;
#else
      timeval tv{};
      socklen_t len = sizeof tv;
      if (int err = get_raw(fd, option, &tv, &len)) return err;
      value.seconds = double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
#endif
      return 0;
    }
    case K::Linger: {
      linger l{};
      socklen_t len = sizeof l;
      if (int err = get_raw(fd, option, &l, &len)) return err;
      value.flag = l.l_onoff != 0;
      value.integer = l.l_linger;
      return 0;
    }
    case K::String: {
      socklen_t len = sizeof(value.result) - 1;
      if (int err = get_raw(fd, option, value.result, &len)) return err;
      if ((size_t)len > sizeof(value.result) - 1) len = sizeof(value.result) - 1;
      value.result[len] = '\0';
      return 0;
    }
    case K::PeerCred: {
#ifdef SO_PEERCRED
      ucred cred{};
      socklen_t len = sizeof cred;
      if (int err = get_raw(fd, option, &cred, &len)) return err;
      value.cred.pid = cred.pid;
      value.cred.uid = cred.uid;
      value.cred.gid = cred.gid;
      return 0;
#else
      return -ENOPROTOOPT;
#endif
    }
    case K::Ipv4Interface: {
      in_addr addr{};
      socklen_t len = sizeof addr;
      if (int err = get_raw(fd, option, &addr, &len)) return err;
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
