// Address core: name maps, SockAddr formatting, unix paths, resolve of numeric
// hosts (never a DNS lookup: tests stay on loopback), IP text <-> binary.
#include <catch2/catch.hpp>

#include "sock/address.hpp"
#include "test_net.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

using namespace sock;

namespace {

std::string text_of(const addrinfo* ai) {
  return SockAddr(ai->ai_addr, ai->ai_addrlen).to_string();
}

size_t count(const AddrList& list) {
  size_t n = 0;
  for (const addrinfo* ai = list.first(); ai; ai = ai->ai_next) n++;
  return n;
}

std::string pton_ntop(int af, const char* text) {
  unsigned char bin[16];
  size_t len = 0;
  if (!sock::inet_pton(af, text, bin, &len)) return "<invalid>";
  char out[INET6_ADDRSTRLEN];
  REQUIRE(sock::inet_ntop(af, bin, out, sizeof out));
  return out;
}

}  // namespace

TEST_CASE("families, socket types, protocols and flags map both ways", "[address]") {
  CHECK(family_from_name("inet") == AF_INET);
  CHECK(family_from_name("inet6") == AF_INET6);
  CHECK(family_from_name("unix") == AF_UNIX);
  CHECK(family_from_name("ipx") == -1);
  CHECK(family_from_name("") == -1);
  CHECK(std::string(family_name(AF_INET6)) == "inet6");
  CHECK(family_name(12345) == nullptr);

  CHECK(socktype_from_name("tcp") == SOCK_STREAM);
  CHECK(socktype_from_name("udp") == SOCK_DGRAM);
  CHECK(socktype_from_name("raw") == SOCK_RAW);
  CHECK(socktype_from_name("TCP") == -1);  // names are exact
  CHECK(std::string(socktype_name(SOCK_DGRAM)) == "udp");

  const char* protocols[] = {"ip", "ipv6", "tcp", "udp", "raw", "icmp", "igmp", "icmpv6"};
  for (const char* name : protocols) {
    int value = protocol_from_name(name);
    REQUIRE(value >= 0);
    CHECK(std::string(protocol_name(value)) == name);
  }
  CHECK(protocol_from_name("sctp") == -1);

  CHECK(default_protocol(SOCK_STREAM) == IPPROTO_TCP);
  CHECK(default_protocol(SOCK_DGRAM) == IPPROTO_UDP);
  CHECK(default_protocol(SOCK_RAW) == IPPROTO_RAW);
  CHECK(default_protocol(0) == 0);

  CHECK(addr_flag_from_name("passive") == AI_PASSIVE);
  CHECK(addr_flag_from_name("cannonname") == AI_CANONNAME);
  CHECK(addr_flag_from_name("canonname") == AI_CANONNAME);
  CHECK(addr_flag_from_name("numerichost") == AI_NUMERICHOST);
  CHECK(addr_flag_from_name("numericserv") == AI_NUMERICSERV);
  CHECK(addr_flag_from_name("all") == AI_ALL);
  CHECK(addr_flag_from_name("v4mapped") == AI_V4MAPPED);
  CHECK(addr_flag_from_name("addrconfig") == AI_ADDRCONFIG);
  CHECK(addr_flag_from_name("xyz") == -1);
}

TEST_CASE("is_ipv4 accepts only the strict dotted quad", "[address]") {
  CHECK(is_ipv4("127.0.0.1"));
  CHECK(is_ipv4("0.0.0.0"));
  CHECK(is_ipv4("255.255.255.255"));
  CHECK(is_ipv4("10.0.200.9"));
  CHECK_FALSE(is_ipv4("1.2.3"));
  CHECK_FALSE(is_ipv4("127.1"));
  CHECK_FALSE(is_ipv4("1.2.3.4.5"));
  CHECK_FALSE(is_ipv4("256.1.1.1"));
  CHECK_FALSE(is_ipv4("1.2.3.999"));
  CHECK_FALSE(is_ipv4("1.2.3.1000"));
  CHECK_FALSE(is_ipv4("01.2.3.4"));  // octal to inet_aton: refused
  CHECK_FALSE(is_ipv4("1.2.3.04"));
  CHECK_FALSE(is_ipv4("1.2.3.4 "));
  CHECK_FALSE(is_ipv4(" 1.2.3.4"));
  CHECK_FALSE(is_ipv4("1..2.3"));
  CHECK_FALSE(is_ipv4("1.2.3."));
  CHECK_FALSE(is_ipv4("0x7f.0.0.1"));
  CHECK_FALSE(is_ipv4("-1.2.3.4"));
  CHECK_FALSE(is_ipv4(""));
  CHECK_FALSE(is_ipv4("::1"));
  CHECK_FALSE(is_ipv4(std::string_view("1.2.3.4\0", 8)));
}

TEST_CASE("is_ipv6", "[address]") {
  CHECK(is_ipv6("::1"));
  CHECK(is_ipv6("::"));
  CHECK(is_ipv6("2001:db8::1"));
  CHECK(is_ipv6("::ffff:1.2.3.4"));
  CHECK(is_ipv6("FE80::A"));
  CHECK_FALSE(is_ipv6("1.2.3.4"));
  CHECK_FALSE(is_ipv6("2001:db8::1::2"));
  CHECK_FALSE(is_ipv6("fe80::1%lo"));  // a scope is not part of the address
  CHECK_FALSE(is_ipv6("[::1]"));
  CHECK_FALSE(is_ipv6(""));
  CHECK_FALSE(is_ipv6(std::string(100, ':')));
}

TEST_CASE("inet_pton / inet_ntop round trips to the canonical text", "[address]") {
  CHECK(pton_ntop(AF_INET, "127.0.0.1") == "127.0.0.1");
  CHECK(pton_ntop(AF_INET, "1.2.3") == "<invalid>");
  CHECK(pton_ntop(AF_INET6, "::1") == "::1");
  CHECK(pton_ntop(AF_INET6, "0:0:0:0:0:0:0:1") == "::1");
  CHECK(pton_ntop(AF_INET6, "2001:0DB8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
  CHECK(pton_ntop(AF_INET6, "::ffff:10.0.0.1") == "::ffff:10.0.0.1");
  CHECK(pton_ntop(AF_INET6, "127.0.0.1") == "<invalid>");

  unsigned char bin[16];
  size_t len = 0;
  REQUIRE(sock::inet_pton(AF_INET, "10.20.30.40", bin, &len));
  CHECK(len == 4);
  CHECK(bin[0] == 10);
  CHECK(bin[3] == 40);
  REQUIRE(sock::inet_pton(AF_INET6, "::2", bin, &len));
  CHECK(len == 16);
  CHECK(bin[15] == 2);
  CHECK_FALSE(sock::inet_pton(AF_UNIX, "::2", bin, &len));

  char small[3];  // "::2" needs 4
  CHECK_FALSE(sock::inet_ntop(AF_INET6, bin, small, sizeof small));
  CHECK_FALSE(sock::inet_ntop(AF_UNIX, bin, small, sizeof small));
}

TEST_CASE("inet_ntop formats every IPv4 byte as the system does, and refuses a short buffer", "[address]") {
  // (IPv4 is formatted by hand: compared here with the system's inet_ntop.)
  const unsigned char samples[][4] = {{0, 0, 0, 0},     {255, 255, 255, 255}, {127, 0, 0, 1}, {10, 0, 100, 9},
                                      {1, 22, 3, 204},  {99, 100, 101, 199},  {9, 10, 11, 200}};
  auto check_same = [](const unsigned char* b) {
    char ours[INET_ADDRSTRLEN], system[INET_ADDRSTRLEN];
    REQUIRE(sock::inet_ntop(AF_INET, b, ours, sizeof ours));
    REQUIRE(::inet_ntop(AF_INET, b, system, sizeof system) != nullptr);
    CHECK(std::string(ours) == system);
  };
  for (const auto& b : samples) check_same(b);
  for (int v = 0; v < 256; v++) {
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(255 - v), (unsigned char)(v / 2), 7};
    check_same(b);
  }
  const unsigned char b[4] = {192, 168, 100, 200};  // "192.168.100.200": 15 characters and the NUL
  char exact[16], short_by_one[15];
  CHECK(sock::inet_ntop(AF_INET, b, exact, sizeof exact));
  CHECK(std::string(exact) == "192.168.100.200");
  CHECK_FALSE(sock::inet_ntop(AF_INET, b, short_by_one, sizeof short_by_one));
}

TEST_CASE("SockAddr from IP text formats as ip:port and [ip6]:port", "[address]") {
  SockAddr sa;
  REQUIRE(sockaddr_from_ip("127.0.0.1", 8080, sa) == 0);
  CHECK(sa.family() == AF_INET);
  CHECK(sa.port() == 8080);
  CHECK(sa.len == sizeof(sockaddr_in));
  CHECK(sa.to_string() == "127.0.0.1:8080");

  REQUIRE(sockaddr_from_ip("::1", 80, sa) == 0);
  CHECK(sa.family() == AF_INET6);
  CHECK(sa.to_string() == "[::1]:80");
  char ip[INET6_ADDRSTRLEN];
  REQUIRE(sa.ip_string(ip, sizeof ip));
  CHECK(std::string(ip) == "::1");

  REQUIRE(sockaddr_from_ip("2001:db8:0::1", 0, sa) == 0);
  CHECK(sa.to_string() == "[2001:db8::1]:0");

  REQUIRE(sockaddr_from_ip("fe80::1%1", 53, sa) == 0);  // index 1 is loopback on Linux
  CHECK(reinterpret_cast<const sockaddr_in6*>(sa.get())->sin6_scope_id == 1);
  CHECK(sa.to_string().rfind("[fe80::1%", 0) == 0);

  CHECK(sockaddr_from_ip("1.2.3", 80, sa) == EINVAL);
  CHECK(sockaddr_from_ip("127.0.0.1", 65536, sa) == EINVAL);
  CHECK(sockaddr_from_ip("127.0.0.1", -1, sa) == EINVAL);
  CHECK(sockaddr_from_ip("fe80::1%", 80, sa) == EINVAL);
  CHECK(sockaddr_from_ip("fe80::1%no-such-interface0", 80, sa) == EINVAL);
}

TEST_CASE("SockAddr equality and copies", "[address]") {
  SockAddr a, b;
  REQUIRE(sockaddr_from_ip("127.0.0.1", 1, a) == 0);
  REQUIRE(sockaddr_from_ip("127.0.0.1", 1, b) == 0);
  CHECK(a == b);
  REQUIRE(sockaddr_from_ip("127.0.0.1", 2, b) == 0);
  CHECK(a != b);
  SockAddr copy(a.get(), a.len);
  CHECK(copy == a);
  SockAddr empty;
  CHECK(empty.family() == AF_UNSPEC);
  CHECK(empty.port() == -1);
  CHECK(empty.to_string().empty());
  SockAddr from_null(nullptr, 16);
  CHECK(from_null.len == 0);
}

TEST_CASE("unix paths and Linux abstract names (refused elsewhere)", "[address]") {
  SockAddr sa;
  REQUIRE(sockaddr_from_unix_path("/tmp/sock.test", sa) == 0);
  CHECK(sa.family() == AF_UNIX);
  CHECK(sa.port() == -1);
  CHECK(sa.to_string() == "/tmp/sock.test");
  CHECK(sa.len == offsetof(sockaddr_un, sun_path) + std::strlen("/tmp/sock.test") + 1);

  if (has_abstract_unix_names) {
    REQUIRE(sockaddr_from_unix_path("@abstract", sa) == 0);
    CHECK(sa.to_string() == "@abstract");
    CHECK(reinterpret_cast<const sockaddr_un*>(sa.get())->sun_path[0] == '\0');
    CHECK(sa.len == offsetof(sockaddr_un, sun_path) + 1 + std::strlen("abstract"));

    REQUIRE(sockaddr_from_unix_path(std::string_view("\0name", 5), sa) == 0);
    CHECK(sa.to_string() == "@name");
  } else {
    CHECK(sockaddr_from_unix_path("@abstract", sa) == EAFNOSUPPORT);
    CHECK(sockaddr_from_unix_path(std::string_view("\0name", 5), sa) == EAFNOSUPPORT);
  }

  REQUIRE(sockaddr_from_unix_path("", sa) == 0);  // unnamed
  CHECK(sa.len == offsetof(sockaddr_un, sun_path));
  CHECK(sa.to_string().empty());

  const size_t cap = sizeof(sockaddr_un{}.sun_path);
  CHECK(sockaddr_from_unix_path(std::string(cap - 1, 'a'), sa) == 0);
  CHECK(sockaddr_from_unix_path(std::string(cap, 'a'), sa) == ENAMETOOLONG);
  if (has_abstract_unix_names) {
    CHECK(sockaddr_from_unix_path("@" + std::string(cap - 1, 'a'), sa) == 0);
    CHECK(sockaddr_from_unix_path("@" + std::string(cap, 'a'), sa) == ENAMETOOLONG);
  }
  CHECK(sockaddr_from_unix_path(std::string_view("/tmp/a\0b", 8), sa) == EINVAL);
}

TEST_CASE("AddrList owns its entries and moves", "[address]") {
  SockAddr sa;
  REQUIRE(sockaddr_from_ip("10.1.2.3", 99, sa) == 0);
  AddrList list = AddrList::single(sa, SOCK_DGRAM, IPPROTO_UDP);
  REQUIRE(list.first());
  CHECK(list.first()->ai_next == nullptr);
  CHECK(list.first()->ai_family == AF_INET);
  CHECK(list.first()->ai_socktype == SOCK_DGRAM);
  CHECK(list.first()->ai_protocol == IPPROTO_UDP);
  CHECK(text_of(list.first()) == "10.1.2.3:99");

  AddrList moved = std::move(list);
  CHECK(list.empty());
  REQUIRE(moved.first());
  CHECK(text_of(moved.first()) == "10.1.2.3:99");

  AddrList resolved;
  REQUIRE(resolve("127.0.0.1", "1", SOCK_STREAM, AF_INET, 0, 0, resolved) == 0);
  moved = std::move(resolved);  // frees the single entry, adopts the gai list
  CHECK(text_of(moved.first()) == "127.0.0.1:1");
  moved.reset();
  CHECK(moved.empty());
}

TEST_CASE("resolve numeric hosts", "[address]") {
  AddrList list;
  REQUIRE(resolve("127.0.0.1", "80", SOCK_STREAM, 0, 0, 0, list) == 0);
  REQUIRE(list.first());
  CHECK(count(list) == 1);
  CHECK(list.first()->ai_family == AF_INET);
  CHECK(list.first()->ai_socktype == SOCK_STREAM);
  CHECK(list.first()->ai_protocol == IPPROTO_TCP);
  CHECK(text_of(list.first()) == "127.0.0.1:80");

  REQUIRE(resolve("::1", "443", SOCK_DGRAM, AF_INET6, 0, 0, list) == 0);
  CHECK(list.first()->ai_protocol == IPPROTO_UDP);
  CHECK(text_of(list.first()) == "[::1]:443");

  // No socket type: one entry per type getaddrinfo knows (Windows' gives
  // a single entry of type 0).
  REQUIRE(resolve("127.0.0.1", "0", 0, 0, 0, 0, list) == 0);
#if defined(_WIN32)
  CHECK(count(list) >= 1);
#else
  CHECK(count(list) >= 2);
#endif

  // nullptr port means port 0.
  REQUIRE(resolve("127.0.0.1", nullptr, SOCK_STREAM, 0, 0, 0, list) == 0);
  CHECK(text_of(list.first()) == "127.0.0.1:0");

  // A service name, from /etc/services when present; a missing one fails.
  CHECK(resolve("127.0.0.1", "no-such-service-xyz", SOCK_STREAM, 0, 0, 0, list) == EAI_SERVICE);
  CHECK(std::string(resolve_error_message(EAI_SERVICE)) == "service_not_found");
  // Ports past 65535 would wrap inside getaddrinfo.
  CHECK(resolve("127.0.0.1", "65536", SOCK_STREAM, 0, 0, 0, list) == EAI_SERVICE);
  CHECK(resolve("127.0.0.1", "65535", SOCK_STREAM, 0, 0, 0, list) == 0);
}

TEST_CASE("resolve '*' means all interfaces of the family", "[address]") {
  AddrList list;
  REQUIRE(resolve("*", "0", SOCK_STREAM, AF_INET, 0, 0, list) == 0);
  CHECK(text_of(list.first()) == "0.0.0.0:0");
  REQUIRE(resolve("*", "5000", SOCK_STREAM, AF_INET6, 0, 0, list) == 0);
  CHECK(text_of(list.first()) == "[::]:5000");
  REQUIRE(resolve("*", "1", SOCK_STREAM, 0, 0, 0, list) == 0);
  CHECK(text_of(list.first()) == "0.0.0.0:1");
  REQUIRE(resolve(nullptr, "2", SOCK_DGRAM, 0, 0, 0, list) == 0);
  CHECK(text_of(list.first()) == "0.0.0.0:2");
}

TEST_CASE("resolve for raw sockets and unusual protocols", "[address]") {
  AddrList list;
  // Raw sockets have no port; it is ignored rather than refused.
  REQUIRE(resolve("127.0.0.1", "80", SOCK_RAW, AF_INET, IPPROTO_ICMP, 0, list) == 0);
  CHECK(list.first()->ai_socktype == SOCK_RAW);
  CHECK(list.first()->ai_protocol == IPPROTO_ICMP);
  REQUIRE(resolve("127.0.0.1", nullptr, SOCK_RAW, AF_INET, 0, 0, list) == 0);
  CHECK(list.first()->ai_protocol == IPPROTO_RAW);
  // ICMP "ping" datagram sockets: getaddrinfo does not know the pair.
  REQUIRE(resolve("127.0.0.1", "0", SOCK_DGRAM, AF_INET, IPPROTO_ICMP, 0, list) == 0);
  CHECK(list.first()->ai_socktype == SOCK_DGRAM);
  CHECK(list.first()->ai_protocol == IPPROTO_ICMP);
}

TEST_CASE("resolve unix paths builds one entry", "[address]") {
  AddrList list;
  REQUIRE(resolve("/tmp/x.sock", "80", SOCK_STREAM, AF_UNIX, 0, 0, list) == 0);
  REQUIRE(list.first());
  CHECK(count(list) == 1);
  CHECK(list.first()->ai_family == AF_UNIX);
  CHECK(list.first()->ai_socktype == SOCK_STREAM);
  CHECK(list.first()->ai_protocol == 0);
  CHECK(text_of(list.first()) == "/tmp/x.sock");

  if (has_abstract_unix_names) {
    REQUIRE(resolve("@abs", nullptr, SOCK_DGRAM, AF_UNIX, 0, 0, list) == 0);
    CHECK(text_of(list.first()) == "@abs");
  } else {
    CHECK(resolve("@abs", nullptr, SOCK_DGRAM, AF_UNIX, 0, 0, list) == EAI_SYSTEM);
    CHECK(errno == EAFNOSUPPORT);
  }

  std::string too_long(200, 'p');
  CHECK(resolve(too_long.c_str(), nullptr, SOCK_STREAM, AF_UNIX, 0, 0, list) == EAI_SYSTEM);
  CHECK(std::string(resolve_error_message(EAI_SYSTEM, ENAMETOOLONG)) == "name_too_long");
  CHECK(list.empty());
}

TEST_CASE("resolve failures have normalized names", "[address]") {
  AddrList list;
  int rc = resolve("127.0.0.1", "80", SOCK_STREAM, AF_INET6, 0, 0, list);
  CHECK(rc != 0);
  CHECK(std::string(resolve_error_message(rc)) == "address_family_not_supported");
  rc = resolve("not an address", "80", SOCK_STREAM, 0, 0, AI_NUMERICHOST, list);
  CHECK(std::string(resolve_error_message(rc)) == "host_not_found");
  CHECK(std::string(resolve_error_message(EAI_AGAIN)) == "try_again");
  CHECK(std::string(resolve_error_message(EAI_FAMILY)) == "address_family_not_supported");
  CHECK(std::string(resolve_error_message(EAI_SYSTEM, ECONNREFUSED)) == "connection_refused");
  CHECK(resolve_error_message(EAI_BADFLAGS) != nullptr);
}

TEST_CASE("host_is_numeric says when resolve never blocks", "[address]") {
  CHECK(host_is_numeric(nullptr, 0));
  CHECK(host_is_numeric("*", 0));
  CHECK(host_is_numeric("10.0.0.1", 0));
  CHECK(host_is_numeric("::1", AF_INET6));
  CHECK(host_is_numeric("fe80::1%eth0", 0));
  CHECK(host_is_numeric("any/path", AF_UNIX));
  CHECK_FALSE(host_is_numeric("localhost", 0));
  CHECK_FALSE(host_is_numeric("example.com", AF_INET));
}

TEST_CASE("interface names and indexes", "[address]") {
  const std::string lo_name = test_net::loopback_interface();
  unsigned lo = interface_index(lo_name.c_str());
  REQUIRE(lo != 0);
  char name[IF_NAMESIZE];
  REQUIRE(interface_name(lo, name, sizeof name));
  CHECK(std::string(name) == lo_name);
  CHECK(interface_index("no-such-if0") == 0);
  CHECK_FALSE(interface_name(0, name, sizeof name));
  char tiny[2];
  CHECK_FALSE(interface_name(lo, tiny, sizeof tiny));
}
