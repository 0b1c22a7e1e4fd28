// Socket addresses: sock::sockaddr_from_ip, sockaddr_from_unix_path, and the
// SockAddr accessors on whatever bytes and length an address may come with
// (the kernel hands out unix addresses of any length up to the structure's).
//  - an IP address that parses has the family its text says, the port it
//    was given, and its text form parses back to the same address;
//  - a unix path that is accepted reads back as itself (abstract names with
//    '@'), and a refused one is refused for the reason documented;
//  - the accessors never read or write outside the structure.
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <memory>

#include "fuzz_input.hpp"
#include "sock/address.hpp"

static void check_ip(FuzzInput& in) {
  int port = in.value<int32_t>();
  if (in.byte() & 1) port &= 0xffff;  // mostly valid ports
  std::string_view text = in.rest();
  sock::SockAddr sa;
  int rc = sock::sockaddr_from_ip(text, port, sa);
  if (port < 0 || port > 65535) {
    FUZZ_CHECK(rc == EINVAL);
    return;
  }
  FUZZ_CHECK(rc == 0 || rc == EINVAL);
  if (rc) return;
  FUZZ_CHECK(sa.family() == AF_INET || sa.family() == AF_INET6);
  FUZZ_CHECK(sa.port() == port);
  if (sock::is_ipv4(text)) FUZZ_CHECK(sa.family() == AF_INET);
  char ip[INET6_ADDRSTRLEN];
  FUZZ_CHECK(sa.ip_string(ip, sizeof ip));
  std::string s = sa.to_string();
  FUZZ_CHECK(!s.empty());
  // The ip text alone (no scope) gives the same address bytes.
  sock::SockAddr again;
  FUZZ_CHECK(sock::sockaddr_from_ip(ip, port, again) == 0);
  FUZZ_CHECK(again.family() == sa.family());
  if (sa.family() == AF_INET) {
    FUZZ_CHECK(again == sa);
    FUZZ_CHECK(s == std::string(ip) + ":" + std::to_string(port));
  } else {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&sa.storage);
    auto* b = reinterpret_cast<const sockaddr_in6*>(&again.storage);
    FUZZ_CHECK(std::memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0);
    FUZZ_CHECK(s.size() > 2 && s[0] == '[');
  }
}

static void check_unix(FuzzInput& in) {
  std::string_view path = in.rest();
  sock::SockAddr sa;
  int rc = sock::sockaddr_from_unix_path(path, sa);
  constexpr size_t cap = sizeof(sockaddr_un{}.sun_path);
  bool abstract = !path.empty() && (path[0] == '\0' || path[0] == '@');
  if (rc == ENAMETOOLONG) {
    FUZZ_CHECK(path.size() + (abstract ? 0 : 1) > cap);
    return;
  }
  if (rc == EINVAL) {
    FUZZ_CHECK(!abstract && has_nul(path));
    return;
  }
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(sa.family() == AF_UNIX);
  FUZZ_CHECK(sa.port() == -1);
  FUZZ_CHECK(sa.len <= sizeof(sockaddr_un));
  std::string back = sa.unix_path();
  if (path.empty()) {
    FUZZ_CHECK(back.empty());
  } else if (abstract) {
    FUZZ_CHECK(back.size() == path.size() && back[0] == '@');
    FUZZ_CHECK(back.compare(1, std::string::npos, path.substr(1)) == 0);
  } else {
    FUZZ_CHECK(back == path);
  }
  FUZZ_CHECK(sa.to_string() == back);
  char ip[INET6_ADDRSTRLEN];
  FUZZ_CHECK(!sa.ip_string(ip, sizeof ip));
}

// Any bytes, any length, any family: what a recvfrom or accept may fill in.
static void check_raw(FuzzInput& in) {
  int family_pick = in.byte() % 5;
  size_t len = in.value<uint16_t>() % (sizeof(sockaddr_storage) + 64);
  std::string_view raw = in.rest();
  // Exactly `len` bytes of source: ASan sees any read past them.
  std::unique_ptr<unsigned char[]> src(new unsigned char[len ? len : 1]);
  std::memset(src.get(), 0, len ? len : 1);
  std::memcpy(src.get(), raw.data(), raw.size() < len ? raw.size() : len);
  static const int families[] = {AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC, 12345};
  if (len >= sizeof(sa_family_t) && family_pick < 5) {
    sa_family_t f = sa_family_t(families[family_pick]);
    std::memcpy(src.get() + offsetof(sockaddr, sa_family), &f, sizeof f);
  }
  sock::SockAddr sa(reinterpret_cast<const sockaddr*>(src.get()), socklen_t(len));
  FUZZ_CHECK(sa.len <= sizeof(sockaddr_storage));
  (void)sa.family();
  (void)sa.port();
  char ip[INET6_ADDRSTRLEN];
  for (size_t cap : {sizeof ip, size_t(1), size_t(0), size_t(8)}) {
    if (sa.ip_string(ip, cap)) FUZZ_CHECK(strnlen(ip, cap) < cap);
  }
  std::string text = sa.to_string();
  std::string path = sa.unix_path();
  FUZZ_CHECK(path.size() <= sizeof(sockaddr_un{}.sun_path));
  sock::SockAddr copy(sa.get(), sa.len);
  FUZZ_CHECK(copy == sa);
  sock::AddrList list = sock::AddrList::single(sa, SOCK_STREAM, 0);
  FUZZ_CHECK(list.first() && list.first()->ai_addrlen == sa.len);
  FUZZ_CHECK(std::memcmp(list.first()->ai_addr, sa.get(), sa.len) == 0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  switch (in.byte() % 3) {
    case 0: check_ip(in); break;
    case 1: check_unix(in); break;
    default: check_raw(in); break;
  }
  return 0;
}
