// Windows' socket options: the ones beyond the portable table, and the
// conversions where Winsock differs (DWORD-millisecond timeouts, ip_mreq,
// SO_ERROR's WSA codes). See options_os.hpp.
#include "../options_os.hpp"

#include <cerrno>

// Windows 10 1709 and later have the keep-alive trio; mingw-w64's headers
// do not name them yet (the values are the Windows SDK's ws2ipdef.h ones).
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 3
#define TCP_KEEPCNT 16
#define TCP_KEEPINTVL 17
#endif

namespace sock {

namespace {

using K = OptionKind;
constexpr bool R = true, W = true;

// Within each level these follow the portable ones (options.cpp merges them).
// The Windows SDK's headers name a few constants mingw-w64's do not, hence
// the feature tests.
constexpr OptionInfo kWindowsOptions[] = {
    // ---- IPPROTO_TCP ----
#ifdef TCP_MAXSEG
    {"tcp_maxseg", IPPROTO_TCP, TCP_MAXSEG, K::Int, R, W},
#endif
    {"tcp_keepidle", IPPROTO_TCP, TCP_KEEPIDLE, K::Int, R, W},    // seconds
    {"tcp_keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, K::Int, R, W},  // seconds
    {"tcp_keepcnt", IPPROTO_TCP, TCP_KEEPCNT, K::Int, R, W},
#ifdef TCP_FASTOPEN
    {"tcp_fastopen", IPPROTO_TCP, TCP_FASTOPEN, K::Int, R, W},
#endif
#ifdef TCP_NOTSENT_LOWAT
    {"tcp_notsent_lowat", IPPROTO_TCP, TCP_NOTSENT_LOWAT, K::Int, R, W},
#endif
};

}  // namespace

const OptionInfo* os_option_table(size_t* count) {
  *count = sizeof(kWindowsOptions) / sizeof(kWindowsOptions[0]);
  return kWindowsOptions;
}

// Winsock's timeouts are a DWORD of milliseconds.
int set_seconds_option(socket_t fd, const OptionInfo& option, double seconds) {
  DWORD ms = seconds * 1000 >= 4294967295.0 ? DWORD(4294967295u) : DWORD(seconds * 1000);
  return set_raw_option(fd, option, &ms, sizeof ms);
}

int get_seconds_option(socket_t fd, const OptionInfo& option, double* seconds) {
  DWORD ms = 0;
  socklen_t len = sizeof ms;
  if (int err = get_raw_option(fd, option, &ms, &len)) return err;
  *seconds = double(ms) / 1000;
  return 0;
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

// SO_ERROR holds a Winsock code (WSAECONNREFUSED...), not an errno value.
long long socket_error_as_errno(long long pending) { return wsa_errno(int(pending)); }

int check_string_option(const OptionInfo&, std::string_view) { return 0; }

}  // namespace sock
