// Socket option table: name lookup rules and set/get round trips on real
// sockets (loopback only).
#include <catch2/catch.hpp>

#include "sock/options.hpp"
#include "sock/process.hpp"
#include "sock/socket.hpp"
#include "test_net.hpp"

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

using namespace sock;

// The keep-alive timing options (tcp_keepidle, tcp_keepintvl, tcp_keepcnt)
// are in the table on Linux, on Windows (win/options_win.cpp names them
// where mingw-w64's headers do not) and where the system headers have them.
#if defined(__linux__) || defined(_WIN32) || defined(TCP_KEEPIDLE) || defined(TCP_KEEPALIVE)
#define HAVE_TCP_KEEP_TIMING 1
#else
#define HAVE_TCP_KEEP_TIMING 0
#endif

namespace {

// A socket closed when the test leaves its scope.
struct Fd {
  socket_t fd;
  explicit Fd(int family = AF_INET, int type = SOCK_STREAM) : fd(test_net::open_socket(family, type)) {
    REQUIRE(fd != invalid_socket);
  }
  ~Fd() { test_net::close_socket(fd); }
};

const OptionInfo& option(const char* name) {
  const OptionInfo* info = find_option(name);
  INFO("option " << name);
  REQUIRE(info != nullptr);
  return *info;
}

void set_bool(socket_t fd, const char* name, bool on) {
  OptionValue v;
  v.flag = on;
  INFO("set " << name);
  REQUIRE(set_option(fd, option(name), v) == 0);
}

bool get_bool(socket_t fd, const char* name) {
  OptionValue v;
  INFO("get " << name);
  REQUIRE(get_option(fd, option(name), v) == 0);
  return v.flag;
}

void set_int(socket_t fd, const char* name, long long n) {
  OptionValue v;
  v.integer = n;
  INFO("set " << name);
  REQUIRE(set_option(fd, option(name), v) == 0);
}

long long get_int(socket_t fd, const char* name) {
  OptionValue v;
  INFO("get " << name);
  REQUIRE(get_option(fd, option(name), v) == 0);
  return v.integer;
}

}  // namespace

TEST_CASE("option names: canonical, luapower's bare so_ names, bare unique names", "[options]") {
  CHECK(std::string(option("so_reuseaddr").name) == "so_reuseaddr");
  CHECK(&option("reuseaddr") == &option("so_reuseaddr"));
  CHECK(&option("SO_REUSEADDR") == &option("so_reuseaddr"));
  CHECK(&option("tcp_nodelay") == &option("nodelay"));
#if HAVE_TCP_KEEP_TIMING
  CHECK(&option("keepidle") == &option("tcp_keepidle"));
#endif
  CHECK(&option("v6only") == &option("ipv6_v6only"));
  CHECK(&option("ttl") == &option("ip_ttl"));
  CHECK(&option("linger") == &option("so_linger"));
  CHECK(&option("ipv6_add_membership") == &option("ipv6_join_group"));

  CHECK(option("so_reuseaddr").level == SOL_SOCKET);
  CHECK(option("so_reuseaddr").optname == SO_REUSEADDR);
  CHECK(option("tcp_nodelay").level == IPPROTO_TCP);
  CHECK(option("tcp_nodelay").optname == TCP_NODELAY);

  CHECK(find_option("no_such_option") == nullptr);
  CHECK(find_option("") == nullptr);
  CHECK(find_option("so_") == nullptr);
  CHECK(find_option(std::string(200, 'x')) == nullptr);

  // A bare name two levels share must carry its prefix.
  OptionLookup loop = lookup_option("multicast_loop");
  CHECK(loop.info == nullptr);
  REQUIRE(loop.candidates[0] != nullptr);
  REQUIRE(loop.candidates[1] != nullptr);
  CHECK(std::string(loop.candidates[0]->name) == "ip_multicast_loop");
  CHECK(std::string(loop.candidates[1]->name) == "ipv6_multicast_loop");
  CHECK(lookup_option("nope").candidates[0] == nullptr);
}

TEST_CASE("the option table is consistent", "[options]") {
  size_t n = 0;
  const OptionInfo* table = option_table(&n);
#if defined(_WIN32)
  REQUIRE(n > 30);  // Winsock has fewer (no Linux-only ones)
#else
  REQUIRE(n > 50);
#endif
  std::set<std::string> names;
  for (size_t i = 0; i < n; i++) {
    const OptionInfo& o = table[i];
    INFO(o.name);
    CHECK(names.insert(o.name).second);  // no duplicates
    CHECK((o.readable || o.writable));
    std::string name = o.name;
    bool prefixed = name.rfind("so_", 0) == 0 || name.rfind("tcp_", 0) == 0 ||
                    name.rfind("ip_", 0) == 0 || name.rfind("ipv6_", 0) == 0;
    CHECK(prefixed);
    CHECK(find_option(o.name) == &o);
  }
}

TEST_CASE("boolean options round trip", "[options]") {
  Fd s;
#if defined(_WIN32)  // Winsock has neither SO_REUSEPORT nor TCP_CORK
  const char* names[] = {"so_reuseaddr", "so_keepalive", "so_broadcast", "so_oobinline", "tcp_nodelay"};
#else
  const char* names[] = {"so_reuseaddr", "so_reuseport", "so_keepalive", "so_broadcast",
                         "so_oobinline", "tcp_nodelay",  "tcp_cork"};
#endif
  for (const char* name : names) {
    set_bool(s.fd, name, true);
    CHECK(get_bool(s.fd, name));
    set_bool(s.fd, name, false);
    CHECK_FALSE(get_bool(s.fd, name));
  }
  CHECK_FALSE(get_bool(s.fd, "so_acceptconn"));
}

#if !HAVE_TCP_KEEP_TIMING
TEST_CASE("keepalive", "[options]") {
  Fd s;
  set_bool(s.fd, "keepalive", true);
  CHECK(get_bool(s.fd, "so_keepalive"));
  set_bool(s.fd, "so_keepalive", false);
  CHECK_FALSE(get_bool(s.fd, "keepalive"));
}
SOCK_NOT_APPLICABLE_TEST_CASE("keepalive family", "[options]",
                              "the system headers name no TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT, "
                              "so tcp_keepidle, tcp_keepintvl and tcp_keepcnt are not in the option table")
#else
TEST_CASE("keepalive family", "[options]") {
  Fd s;
  set_bool(s.fd, "keepalive", true);
  CHECK(get_bool(s.fd, "so_keepalive"));
  if (running_under_wine())
    SOCK_SKIP_REST_OF_TEST("Wine 8 refuses TCP_KEEPALIVE, TCP_KEEPCNT and TCP_KEEPINTVL (WSAENOPROTOOPT), "
                           "which Windows 10 1709 and later have");
  set_int(s.fd, "tcp_keepidle", 30);
  set_int(s.fd, "tcp_keepintvl", 7);
  set_int(s.fd, "tcp_keepcnt", 4);
  CHECK(get_bool(s.fd, "so_keepalive"));
  CHECK(get_int(s.fd, "tcp_keepidle") == 30);
  CHECK(get_int(s.fd, "tcp_keepintvl") == 7);
  CHECK(get_int(s.fd, "tcp_keepcnt") == 4);

  OptionValue v;
  v.integer = 0;  // the kernel refuses a zero idle time
  CHECK(set_option(s.fd, option("tcp_keepidle"), v) == -EINVAL);
  v.integer = 1LL << 40;  // beyond int: refused before the syscall
  CHECK(set_option(s.fd, option("tcp_keepidle"), v) == -EINVAL);
}
#endif

TEST_CASE("buffer sizes", "[options]") {
  Fd s;
  set_int(s.fd, "rcvbuf", 65536);
  // Linux doubles the request for its bookkeeping.
  CHECK(get_int(s.fd, "so_rcvbuf") >= 65536);
  set_int(s.fd, "so_sndbuf", 32768);
  CHECK(get_int(s.fd, "so_sndbuf") >= 32768);
}

TEST_CASE("linger: seconds or off", "[options]") {
  Fd s;
  OptionValue v;
  REQUIRE(get_option(s.fd, option("so_linger"), v) == 0);
  CHECK_FALSE(v.flag);

  v = OptionValue();
  v.flag = true;
  v.integer = 0;  // reset on close
  REQUIRE(set_option(s.fd, option("linger"), v) == 0);
  OptionValue got;
  REQUIRE(get_option(s.fd, option("so_linger"), got) == 0);
  CHECK(got.flag);
  CHECK(got.integer == 0);

  v.integer = 5;
  REQUIRE(set_option(s.fd, option("so_linger"), v) == 0);
  REQUIRE(get_option(s.fd, option("so_linger"), got) == 0);
  CHECK(got.flag);
  CHECK(got.integer == 5);

  v = OptionValue();  // off
  REQUIRE(set_option(s.fd, option("so_linger"), v) == 0);
  REQUIRE(get_option(s.fd, option("so_linger"), got) == 0);
  CHECK_FALSE(got.flag);

  v.flag = true;
  v.integer = -1;
  CHECK(set_option(s.fd, option("so_linger"), v) == -EINVAL);
}

TEST_CASE("timeouts in seconds", "[options]") {
  Fd s;
  OptionValue v;
  v.seconds = 1.5;
  REQUIRE(set_option(s.fd, option("so_rcvtimeo"), v) == 0);
  OptionValue got;
  REQUIRE(get_option(s.fd, option("so_rcvtimeo"), got) == 0);
  CHECK(got.seconds == Approx(1.5).margin(0.01));
  v.seconds = -1;
  CHECK(set_option(s.fd, option("so_sndtimeo"), v) == -EINVAL);
}

TEST_CASE("read-only options and their kinds", "[options]") {
  Fd tcp;
  Fd udp6(AF_INET6, SOCK_DGRAM);
  CHECK(get_int(tcp.fd, "so_type") == SOCK_STREAM);
  CHECK(get_int(udp6.fd, "type") == SOCK_DGRAM);
#if !defined(_WIN32)  // Linux's (and not-applicable test below)
  CHECK(get_int(udp6.fd, "so_domain") == AF_INET6);
  CHECK(get_int(tcp.fd, "so_protocol") == IPPROTO_TCP);
#endif
  CHECK(get_int(tcp.fd, "so_error") == 0);

  OptionValue v;
  CHECK(set_option(tcp.fd, option("so_error"), v) == -ENOPROTOOPT);
  CHECK(get_option(tcp.fd, option("ip_add_membership"), v) == -ENOPROTOOPT);
}

#if defined(_WIN32)
SOCK_NOT_APPLICABLE_TEST_CASE("read-only options so_domain and so_protocol", "[options]",
                              "Winsock has no SO_DOMAIN or SO_PROTOCOL (they are Linux's)")
#endif

TEST_CASE("so_error reports a refused connection", "[options]") {
  // A listener that is closed at once leaves a port nobody listens on.
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  {
    Fd listener;
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  }
  Socket client;  // non-blocking
  REQUIRE(client.open(AF_INET, SOCK_STREAM, 0) == 0);
  int rc = client.connect(reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc == -EINPROGRESS) {
    // (a failed connect: POLLOUT on POSIX, POLLERR|POLLHUP from WSAPoll)
    REQUIRE(test_net::wait_writable(client.fd(), 5000) == 1);
    CHECK(get_int(client.fd(), "so_error") == ECONNREFUSED);
#if !defined(_WIN32)  // Winsock (Wine's at least) keeps a failed connect's error
    CHECK(get_int(client.fd(), "so_error") == 0);  // reading clears it
#endif
  } else {
    CHECK(rc == -ECONNREFUSED);  // refused at once
  }
}

TEST_CASE("v6only on an inet6 socket", "[options]") {
  Fd s(AF_INET6);
  set_bool(s.fd, "ipv6_v6only", true);
  CHECK(get_bool(s.fd, "v6only"));
  set_bool(s.fd, "v6only", false);
  CHECK_FALSE(get_bool(s.fd, "ipv6_v6only"));
  set_int(s.fd, "ipv6_unicast_hops", 7);
  CHECK(get_int(s.fd, "ipv6_unicast_hops") == 7);
}

TEST_CASE("ip options", "[options]") {
  Fd udp(AF_INET, SOCK_DGRAM);
  set_int(udp.fd, "ip_ttl", 33);
  CHECK(get_int(udp.fd, "ttl") == 33);
  set_int(udp.fd, "ip_multicast_ttl", 4);
  CHECK(get_int(udp.fd, "ip_multicast_ttl") == 4);
  set_bool(udp.fd, "ip_multicast_loop", false);
  CHECK_FALSE(get_bool(udp.fd, "ip_multicast_loop"));

  OptionValue v;
  v.text = "127.0.0.1";
  REQUIRE(set_option(udp.fd, option("ip_multicast_if"), v) == 0);
  OptionValue got;
  REQUIRE(get_option(udp.fd, option("ip_multicast_if"), got) == 0);
  CHECK(std::string(got.result) == "127.0.0.1");

  v.text = "no-such-if0";
  CHECK(set_option(udp.fd, option("ip_multicast_if"), v) == -ENODEV);
}

TEST_CASE("multicast membership on loopback", "[options]") {
  Fd udp(AF_INET, SOCK_DGRAM);
  OptionValue v;
  v.text = "239.1.2.3";
#if defined(__linux__)
  v.iface = "lo";
#else  // ip_mreq: the interface by its address only (see options_os.hpp)
  v.iface = "127.0.0.1";
#endif
  int rc = set_option(udp.fd, option("ip_add_membership"), v);
  INFO("ip_add_membership: " << rc);
  // Some sandboxes have no multicast on lo; the request itself must be valid.
  CHECK((rc == 0 || rc == -ENODEV || rc == -EADDRNOTAVAIL || rc == -ENOBUFS));
  if (rc == 0) CHECK(set_option(udp.fd, option("ip_drop_membership"), v) == 0);

  v.text = "not-an-address";
  CHECK(set_option(udp.fd, option("ip_add_membership"), v) == -EINVAL);
  v.text = "239.1.2.3";
  v.iface = "no-such-if0";
  CHECK(set_option(udp.fd, option("ip_add_membership"), v) == -ENODEV);

  OptionValue v6;
  v6.text = "127.0.0.1";  // not an IPv6 group
  Fd udp6(AF_INET6, SOCK_DGRAM);
  CHECK(set_option(udp6.fd, option("ipv6_join_group"), v6) == -EINVAL);
}

#if defined(_WIN32)
SOCK_NOT_APPLICABLE_TEST_CASE("string options", "[options]",
                              "tcp_congestion and so_bindtodevice are Linux's; Winsock has no string options")
#else
TEST_CASE("string options", "[options]") {
  Fd s;
  OptionValue got;
  int rc = get_option(s.fd, option("tcp_congestion"), got);
  REQUIRE(rc == 0);
  CHECK(std::strlen(got.result) > 0);
  OptionValue v;
  v.text = got.result;  // setting the current algorithm is always allowed
  CHECK(set_option(s.fd, option("tcp_congestion"), v) == 0);

  v.text = std::string_view("lo\0x", 4);
  CHECK(set_option(s.fd, option("so_bindtodevice"), v) == -EINVAL);
  v.text = "a-name-longer-than-ifnamsiz";
  CHECK(set_option(s.fd, option("so_bindtodevice"), v) == -ENODEV);
}
#endif

// (Winsock tells a closed socket handle from a live one only as "not a
// socket": WSAENOTSOCK, ENOTSOCK.)
TEST_CASE("options on a closed descriptor fail with EBADF", "[options]") {
#if defined(_WIN32)
  const int closed = ENOTSOCK;
#else
  const int closed = EBADF;
#endif
  socket_t fd;
  {
    Fd s;
    fd = s.fd;
  }
  OptionValue v;
  CHECK(get_option(fd, option("so_reuseaddr"), v) == -closed);
  CHECK(set_option(fd, option("so_reuseaddr"), v) == -closed);
}
