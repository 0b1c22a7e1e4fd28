// What differs between systems in socket options, behind one small interface
// so that options.cpp (the portable table, the lookup and the conversions
// every system shares) needs no per-OS #ifdef. Internal to the core.
//
// Exactly one file implements the "this OS" half, picked by CMakeLists.txt:
//   linux/options_linux.cpp  Linux (with any poller, and SOCK_PORTABLE_POSIX)
//   bsd/options_bsd.cpp      macOS and the BSDs
//   win/options_win.cpp      Windows
#pragma once

#include <cstddef>
#include <string_view>

#include "sock/options.hpp"
#include "sock/platform.hpp"

namespace sock {

// ---- from options.cpp, for the OS files ----------------------------------

// setsockopt / getsockopt on the option's level and name: 0 or -errno.
int set_raw_option(socket_t fd, const OptionInfo& option, const void* data, socklen_t len);
int get_raw_option(socket_t fd, const OptionInfo& option, void* data, socklen_t* len);

// Interface by address ("192.0.2.1", IPv4 only, when `address` is given),
// decimal index or name. Fills whichever applies; 0, -EINVAL or -ENODEV.
int parse_interface(std::string_view iface, in_addr* address, unsigned* index);
// An address of family `af` (AF_INET, AF_INET6) into `out`; false if malformed.
bool parse_ip(int af, std::string_view text, void* out);

// K::Ipv4Interface and K::Membership4 where the requests name the interface
// by address only (an in_addr, an ip_mreq: the BSDs, macOS, Windows); an
// index is -EINVAL.
int set_ipv4_interface_by_address(socket_t fd, const OptionInfo& option, std::string_view iface);
int set_membership4_by_address(socket_t fd, const OptionInfo& option, std::string_view group,
                               std::string_view iface);

// ---- from the OS's own file (K::Seconds on POSIX: unix/option_seconds.cpp) ----

// The options this OS has beyond the portable table in options.cpp. The
// lookup and option_table() see both; within each level, these come after
// the portable ones.
const OptionInfo* os_option_table(size_t* count);

// K::Seconds (SO_RCVTIMEO, SO_SNDTIMEO): a struct timeval on POSIX, a DWORD
// of milliseconds on Windows. `seconds` is already checked: 0 to 1e12.
int set_seconds_option(socket_t fd, const OptionInfo& option, double seconds);
int get_seconds_option(socket_t fd, const OptionInfo& option, double* seconds);

// K::Ipv4Interface (IP_MULTICAST_IF) and K::Membership4 (IP_ADD_MEMBERSHIP,
// IP_DROP_MEMBERSHIP): Linux's ip_mreqn takes an interface index; elsewhere
// the request names the interface by address only, and an index is -EINVAL.
int set_ipv4_interface_option(socket_t fd, const OptionInfo& option, std::string_view iface);
int set_membership4_option(socket_t fd, const OptionInfo& option, std::string_view group,
                           std::string_view iface);

// K::PeerCred (SO_PEERCRED): 0 or -errno; -ENOPROTOOPT where there is none.
int get_peer_credentials(socket_t fd, const OptionInfo& option, PeerCredentials* cred);

// K::Errno (SO_ERROR): the pending error as the OS's getsockopt gave it
// (nonzero), as an errno value. Winsock's holds a WSA code.
long long socket_error_as_errno(long long pending);

// K::String: 0, or -errno for a value this OS's kernel would mishandle
// rather than refuse (an over-long SO_BINDTODEVICE name on Linux).
int check_string_option(const OptionInfo& option, std::string_view value);

}  // namespace sock
