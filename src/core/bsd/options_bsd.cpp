// The socket options of macOS and the BSDs: the ones beyond the portable
// table, and the conversions where they differ from Linux (ip_mreq, no
// SO_PEERCRED). See options_os.hpp.
#include "../options_os.hpp"

#include <cerrno>

namespace sock {

namespace {

using K = OptionKind;
constexpr bool R = true, W = true;

// Within each level these follow the portable ones (options.cpp merges them).
// Which of them a system has varies from one BSD (and release) to another,
// hence a feature test for each.
constexpr OptionInfo kBsdOptions[] = {
    // ---- SOL_SOCKET ----
#ifdef SO_REUSEPORT
    {"so_reuseport", SOL_SOCKET, SO_REUSEPORT, K::Bool, R, W},
#endif

    // ---- IPPROTO_TCP ----
#ifdef TCP_MAXSEG
    {"tcp_maxseg", IPPROTO_TCP, TCP_MAXSEG, K::Int, R, W},
#endif
    // The keep-alive trio, under macOS's own name for the first.
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
};

}  // namespace

const OptionInfo* os_option_table(size_t* count) {
  *count = sizeof(kBsdOptions) / sizeof(kBsdOptions[0]);
  return kBsdOptions;
}

// IP_MULTICAST_IF and the memberships name the interface by address only.
int set_ipv4_interface_option(socket_t fd, const OptionInfo& option, std::string_view iface) {
  return set_ipv4_interface_by_address(fd, option, iface);
}
int set_membership4_option(socket_t fd, const OptionInfo& option, std::string_view group,
                           std::string_view iface) {
  return set_membership4_by_address(fd, option, group, iface);
}

// No option in the table has this kind here (so_peercred is Linux's).
int get_peer_credentials(socket_t, const OptionInfo&, PeerCredentials*) { return -ENOPROTOOPT; }

long long socket_error_as_errno(long long pending) { return pending; }  // already errno

int check_string_option(const OptionInfo&, std::string_view) { return 0; }

}  // namespace sock
