// Socket option values: sock::set_option / get_option on real sockets (tcp,
// udp, both families, and a unix socket), with any option of the table or
// any name, and any value: booleans, integers over the whole 64-bit range,
// times including NaN, infinities and negatives, strings with any bytes.
//  - set_option returns 0 or -errno, never anything else, and refuses what
//    the header documents (int out of range, negative or NaN time, read-only
//    option) with the documented error;
//  - get_option returns 0 or -errno, and string results are terminated;
//  - a boolean that was set reads back as set, for the plain on/off options.
// Loopback only: memberships always name the loopback interface, so no
// IGMP/MLD report ever leaves the machine; tcp_congestion gets built-in
// names only (others make the kernel run modprobe).
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>

#include "fuzz_input.hpp"
#include "sock/options.hpp"

namespace {

struct Sockets {
  int fds[5];
  Sockets() {
    fds[0] = ::socket(AF_INET, SOCK_STREAM, 0);
    fds[1] = ::socket(AF_INET6, SOCK_STREAM, 0);
    fds[2] = ::socket(AF_INET, SOCK_DGRAM, 0);
    fds[3] = ::socket(AF_INET6, SOCK_DGRAM, 0);
    fds[4] = ::socket(AF_UNIX, SOCK_STREAM, 0);
    for (int fd : fds) FUZZ_CHECK(fd >= 0);
  }
};

bool valid_rc(int rc) { return rc == 0 || (rc < 0 && rc >= -4095); }

bool plain_bool(const sock::OptionInfo& o) {
  return (o.level == SOL_SOCKET && (o.optname == SO_REUSEADDR || o.optname == SO_KEEPALIVE ||
                                    o.optname == SO_BROADCAST || o.optname == SO_OOBINLINE)) ||
         (o.level == IPPROTO_TCP && o.optname == TCP_NODELAY);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sockets sockets;
  // Every few thousand inputs, fresh sockets: options pile up (memberships
  // are limited per socket) and a socket in a strange state is less useful.
  static unsigned runs = 0;
  if (++runs % 4096 == 0) {
    for (int& fd : sockets.fds) ::close(fd);
    sockets = Sockets();
  }

  FuzzInput in(data, size);
  int fd = sockets.fds[in.byte() % 5];
  uint8_t how = in.byte();

  size_t count = 0;
  const sock::OptionInfo* table = sock::option_table(&count);
  const sock::OptionInfo* option = &table[in.byte() % count];

  sock::OptionValue value;
  value.flag = how & 1;
  value.integer = in.value<int64_t>();
  switch ((how >> 1) & 3) {  // mostly small integers, which the kernel takes
    case 0: value.integer = (int8_t)value.integer; break;
    case 1: value.integer = (int32_t)value.integer; break;
    default: break;
  }
  value.seconds = in.value<double>();
  if (how & 8) value.seconds = std::fmod(std::fabs(value.seconds), 1000.0);
  std::string text(in.short_string());
  std::string iface(in.short_string());
  std::string source(in.short_string());
  std::string name(in.rest());
  if (how & 16) {  // by a name instead
    const sock::OptionInfo* named = sock::find_option(name);
    if (!named) return 0;
    option = named;
  }
  value.text = text;
  value.iface = iface;
  value.source = source;
  using K = sock::OptionKind;
  if (option->kind == K::Membership4 || option->kind == K::Membership6) value.iface = "lo";
  if (option->kind == K::SourceMembership4) value.iface = "127.0.0.1";
  // An unknown congestion algorithm makes the kernel (as root) ask modprobe
  // for a module of that name: only names that are always built in.
  if (option->level == IPPROTO_TCP && option->optname == TCP_CONGESTION)
    value.text = (how & 32) ? "reno" : "cubic";

  int rc = sock::set_option(fd, *option, value);
  FUZZ_CHECK(valid_rc(rc));
  if (!option->writable) {
    FUZZ_CHECK(rc == -ENOPROTOOPT);
  } else {
    if (option->kind == K::Int && (value.integer < INT_MIN || value.integer > INT_MAX))
      FUZZ_CHECK(rc == -EINVAL);
    if (option->kind == K::Seconds && !(value.seconds >= 0)) FUZZ_CHECK(rc == -EINVAL);
    if (option->kind == K::UInt64 && value.integer < 0) FUZZ_CHECK(rc == -EINVAL);
  }

  sock::OptionValue got;
  int grc = sock::get_option(fd, *option, got);
  FUZZ_CHECK(valid_rc(grc));
  if (!option->readable) FUZZ_CHECK(grc == -ENOPROTOOPT);
  if (grc == 0) {
    FUZZ_CHECK(std::memchr(got.result, '\0', sizeof got.result) != nullptr);
    if (option->kind == K::Seconds) FUZZ_CHECK(got.seconds >= 0 && std::isfinite(got.seconds));
    if (rc == 0 && option->kind == K::Bool && plain_bool(*option)) FUZZ_CHECK(got.flag == value.flag);
  }
  return 0;
}
