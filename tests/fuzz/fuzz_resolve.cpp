// sock::resolve with numeric hosts only: AI_NUMERICHOST is always given, so
// nothing is ever looked up in the DNS, whatever the host text. Service
// names may be looked up in /etc/services (a local file).
//  - success gives a non-empty list whose entries are well-formed addresses
//    of the family asked for, and whose IP text parses back to them;
//  - failure gives a non-empty error message;
//  - host_is_numeric agrees with is_ipv4 / is_ipv6.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "fuzz_input.hpp"
#include "sock/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX, 4242};
  static const int types[] = {0, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, 99};
  static const int protocols[] = {0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, 250};
  uint8_t pick = in.byte();
  int family = families[pick % 5];
  int socktype = types[(pick / 5) % 5];
  int protocol = protocols[in.byte() % 6];
  // Any getaddrinfo flags but AI_ADDRCONFIG (which asks the kernel for the
  // interfaces on every call, and changes nothing for numeric hosts).
  int flags = (in.value<uint16_t>() & (AI_PASSIVE | AI_CANONNAME | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL)) |
              AI_NUMERICHOST;
  uint8_t shape = in.byte();
  std::string host(in.short_string());
  std::string service(in.rest());
  // NUL-terminated C strings cut at the first zero byte, as the binding
  // would refuse them before this point anyway.
  const char* h = (shape & 1) ? nullptr : host.c_str();
  const char* s = (shape & 2) ? nullptr : service.c_str();
  if (shape & 4) h = "*";

  if (h) {
    std::string_view text(h);
    if (sock::is_ipv4(text) || sock::is_ipv6(text)) FUZZ_CHECK(sock::host_is_numeric(h, family));
  }
  FUZZ_CHECK(sock::host_is_numeric(nullptr, family));
  FUZZ_CHECK(sock::host_is_numeric("*", family));

  sock::AddrList list;
  errno = 0;
  int rc = sock::resolve(h, s, socktype, family, protocol, flags, list);
  if (rc != 0) {
    const char* msg = sock::resolve_error_message(rc, errno);
    FUZZ_CHECK(msg && *msg);
    FUZZ_CHECK(list.empty());
    return 0;
  }
  FUZZ_CHECK(!list.empty());
  int count = 0;
  for (const addrinfo* ai = list.first(); ai; ai = ai->ai_next) {
    FUZZ_CHECK(++count < 64);
    FUZZ_CHECK(ai->ai_addr != nullptr);
    FUZZ_CHECK(ai->ai_addrlen <= sizeof(sockaddr_storage));
    sock::SockAddr sa(ai->ai_addr, ai->ai_addrlen);
    FUZZ_CHECK(sa.family() == ai->ai_family);
    if (family != AF_UNSPEC) FUZZ_CHECK(ai->ai_family == family);
    if (ai->ai_family == AF_UNIX) {
      FUZZ_CHECK(family == AF_UNIX);
      continue;
    }
    FUZZ_CHECK(ai->ai_family == AF_INET || ai->ai_family == AF_INET6);
    char ip[INET6_ADDRSTRLEN];
    FUZZ_CHECK(sa.ip_string(ip, sizeof ip));
    FUZZ_CHECK(sa.port() >= 0 && sa.port() <= 65535);
    sock::SockAddr back;
    FUZZ_CHECK(sock::sockaddr_from_ip(ip, sa.port(), back) == 0);
    FUZZ_CHECK(back.family() == sa.family());
    (void)sa.to_string();
  }
  return 0;
}
