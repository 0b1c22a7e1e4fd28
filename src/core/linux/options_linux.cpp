// Linux's socket options: the ones beyond the portable table, and the
// conversions where Linux differs (ip_mreqn, SO_PEERCRED, SO_BINDTODEVICE).
// See options_os.hpp.
#include "../options_os.hpp"

#include <cerrno>

namespace sock {

namespace {

using K = OptionKind;
constexpr bool R = true, W = true, NO = false;

// Within each level these follow the portable ones (options.cpp merges them).
// The #ifdefs are for constants older kernel headers do not have yet.
constexpr OptionInfo kLinuxOptions[] = {
    // ---- SOL_SOCKET ----
    {"so_reuseport", SOL_SOCKET, SO_REUSEPORT, K::Bool, R, W},
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

    // ---- IPPROTO_TCP ----
    {"tcp_maxseg", IPPROTO_TCP, TCP_MAXSEG, K::Int, R, W},
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

    // ---- IPPROTO_IP ----
    {"ip_recverr", IPPROTO_IP, IP_RECVERR, K::Bool, R, W},
    {"ip_freebind", IPPROTO_IP, IP_FREEBIND, K::Bool, R, W},
    {"ip_transparent", IPPROTO_IP, IP_TRANSPARENT, K::Bool, R, W},
    {"ip_bind_address_no_port", IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, K::Bool, R, W},
    {"ip_multicast_all", IPPROTO_IP, IP_MULTICAST_ALL, K::Bool, R, W},
    {"ip_nodefrag", IPPROTO_IP, IP_NODEFRAG, K::Bool, R, W},
    {"ip_mtu_discover", IPPROTO_IP, IP_MTU_DISCOVER, K::Int, R, W},  // IP_PMTUDISC_*
    {"ip_mtu", IPPROTO_IP, IP_MTU, K::Int, R, NO},                   // connected sockets

    // ---- IPPROTO_IPV6 ----
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
};

}  // namespace

const OptionInfo* os_option_table(size_t* count) {
  *count = sizeof(kLinuxOptions) / sizeof(kLinuxOptions[0]);
  return kLinuxOptions;
}

// ip_mreqn: the interface by address or by index, whichever was given.
static int set_mreqn(socket_t fd, const OptionInfo& option, ip_mreqn& req, std::string_view iface) {
  unsigned index;
  if (int err = parse_interface(iface, &req.imr_address, &index)) return err;
  req.imr_ifindex = int(index);
  return set_raw_option(fd, option, &req, sizeof req);
}

int set_ipv4_interface_option(socket_t fd, const OptionInfo& option, std::string_view iface) {
  ip_mreqn req{};
  return set_mreqn(fd, option, req, iface);
}

int set_membership4_option(socket_t fd, const OptionInfo& option, std::string_view group,
                           std::string_view iface) {
  ip_mreqn req{};
  if (!parse_ip(AF_INET, group, &req.imr_multiaddr)) return -EINVAL;
  return set_mreqn(fd, option, req, iface);
}

int get_peer_credentials(socket_t fd, const OptionInfo& option, PeerCredentials* cred) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (int err = get_raw_option(fd, option, &peer, &len)) return err;
  cred->pid = peer.pid;
  cred->uid = peer.uid;
  cred->gid = peer.gid;
  return 0;
}

long long socket_error_as_errno(long long pending) { return pending; }  // already errno

int check_string_option(const OptionInfo& option, std::string_view value) {
  // The kernel would quietly cut a long device name and maybe bind elsewhere.
  if (option.level == SOL_SOCKET && option.optname == SO_BINDTODEVICE && value.size() >= IF_NAMESIZE)
    return -ENODEV;
  return 0;
}

}  // namespace sock
