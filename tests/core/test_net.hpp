// What the core tests need from the system beyond the core itself, in one
// place: waiting for a socket and reading with a deadline, non-blocking mode,
// closing, checking that a descriptor is still open, the environment, a TCP
// pair, the loopback interface's name. POSIX and Windows (Winsock) differ
// here; the tests use these helpers and the core's own portable calls
// (make_socketpair, close_descriptor, ...), with no #ifdef of their own
// except to leave out what a platform lacks.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>
#include <thread>

#include "sock/platform.hpp"
#include "sock/socket.hpp"

#if !defined(_WIN32)
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#endif

namespace test_net {

using sock::socket_t;

// The loopback interface's name, as if_nametoindex knows it: Linux's "lo";
// on Windows the software-loopback adapter's name from its LUID
// ("loopback_0" on Windows, "loopback_1" under Wine 8).
inline std::string loopback_interface() {
#if defined(_WIN32)
  ULONG size = 16 * 1024;
  std::vector<unsigned char> buf;
  ULONG rc;
  do {
    buf.resize(size);
    rc = ::GetAdaptersAddresses(AF_UNSPEC, GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER,
                                nullptr, reinterpret_cast<IP_ADAPTER_ADDRESSES*>(buf.data()), &size);
  } while (rc == ERROR_BUFFER_OVERFLOW);
  REQUIRE(rc == NO_ERROR);
  for (auto* a = reinterpret_cast<IP_ADAPTER_ADDRESSES*>(buf.data()); a; a = a->Next) {
    if (a->IfType != IF_TYPE_SOFTWARE_LOOPBACK) continue;
    char name[IF_MAX_STRING_SIZE + 1];
    REQUIRE(::ConvertInterfaceLuidToNameA(&a->Luid, name, sizeof name) == NO_ERROR);
    return name;
  }
  FAIL("no software loopback adapter");
  return "";
#else
  return "lo";
#endif
}

// A plain system socket (no core wrapper): the descriptor or invalid_socket.
inline socket_t open_socket(int family, int type, int protocol = 0) {
  REQUIRE(sock::network_init() == 0);
  return ::socket(family, type, protocol);
}

// Close a descriptor the test made itself: 0 or -errno.
inline int close_socket(socket_t fd) { return sock::close_descriptor(fd); }

inline bool set_nonblocking(socket_t fd) {
#if defined(_WIN32)
  u_long on = 1;
  return ::ioctlsocket(fd, FIONBIO, &on) == 0;
#else
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
#endif
}

// Wait at most timeout_ms for `events` (POLLIN, POLLOUT) on one socket: 1 if
// it came, 0 on timeout, -errno on failure. (Windows' WSAPoll takes sockets
// only; the resolver's and the loop's wake-ups are sockets there.)
inline int wait_for(socket_t fd, short events, int timeout_ms) {
#if defined(_WIN32)
  WSAPOLLFD p{};
  p.fd = fd;
  p.events = events;
  int rc = ::WSAPoll(&p, 1, timeout_ms);
#else
  pollfd p{fd, events, 0};
  int rc = ::poll(&p, 1, timeout_ms);
#endif
  return rc < 0 ? -sock::last_socket_error() : rc;
}
inline int wait_readable(socket_t fd, int timeout_ms) { return wait_for(fd, POLLIN, timeout_ms); }
inline int wait_writable(socket_t fd, int timeout_ms) { return wait_for(fd, POLLOUT, timeout_ms); }
inline bool is_readable_now(socket_t fd) { return wait_readable(fd, 0) == 1; }

// Make a socket's kernel buffers small (64 KiB asked): a loopback TCP
// pair's grow to megabytes, more than a test's "larger than the buffers"
// payload may be.
inline void small_buffers(socket_t fd) {
  int small = 64 * 1024;
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, reinterpret_cast<const char*>(&small), sizeof small) == 0);
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, reinterpret_cast<const char*>(&small), sizeof small) == 0);
}

// Read what a non-blocking socket holds, waiting at most timeout_ms for the
// first bytes, then taking only what is there already: the byte count (0 if
// nothing came in time, or the stream ended).
inline size_t recv_for(socket_t fd, char* buf, size_t cap, int timeout_ms) {
  size_t got = 0;
  while (got < cap && wait_readable(fd, got ? 0 : timeout_ms) == 1) {
    int n = (int)::recv(fd, buf + got, (int)(cap - got), 0);
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

// The descriptor still refers to something open. On POSIX any file (the
// resolver's wake-up is an eventfd on Linux); on Windows a socket.
inline bool is_open_descriptor(socket_t fd) {
#if defined(_WIN32)
  int type = 0;
  int len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) == 0;
#else
  return ::fcntl(fd, F_GETFD) >= 0;
#endif
}

// A pause between two looks at a condition another thread changes (always
// inside a loop with its own deadline; never as synchronisation).
inline void pause_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

inline void set_env(const char* name, const char* value) {
#if defined(_WIN32)
  REQUIRE(::_putenv_s(name, value) == 0);
#else
  REQUIRE(::setenv(name, value, 1) == 0);
#endif
}
inline void unset_env(const char* name) {
#if defined(_WIN32)
  REQUIRE(::_putenv_s(name, "") == 0);  // an empty value removes it
#else
  REQUIRE(::unsetenv(name) == 0);
#endif
}

// A connected TCP pair over IPv4 loopback, both ends non-blocking, closed
// when it goes out of scope (unless the test closed one and set it to
// invalid_socket).
struct TcpPair {
  socket_t client = sock::invalid_socket, server = sock::invalid_socket;
  TcpPair() {
    socket_t l = open_socket(AF_INET, SOCK_STREAM);
    REQUIRE(l != sock::invalid_socket);
    REQUIRE(set_nonblocking(l));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    REQUIRE(::bind(l, (sockaddr*)&sin, len) == 0);
    REQUIRE(::listen(l, 1) == 0);
    REQUIRE(::getsockname(l, (sockaddr*)&sin, &len) == 0);
    client = open_socket(AF_INET, SOCK_STREAM);
    REQUIRE(client != sock::invalid_socket);
    REQUIRE(set_nonblocking(client));
    if (::connect(client, (sockaddr*)&sin, len) != 0) {
      int e = sock::last_socket_error();  // in progress: EINPROGRESS, or Winsock's WSAEWOULDBLOCK (EAGAIN)
      REQUIRE((e == EINPROGRESS || e == EAGAIN || e == EWOULDBLOCK));
    }
    REQUIRE(wait_readable(l, 5000) == 1);
    server = ::accept(l, nullptr, nullptr);
    REQUIRE(server != sock::invalid_socket);
    close_socket(l);
    REQUIRE(wait_writable(client, 5000) == 1);
    REQUIRE(set_nonblocking(server));
  }
  ~TcpPair() {
    if (client != sock::invalid_socket) close_socket(client);
    if (server != sock::invalid_socket) close_socket(server);
  }
  TcpPair(const TcpPair&) = delete;
  TcpPair& operator=(const TcpPair&) = delete;
};

}  // namespace test_net

// A test case for a feature this platform does not have: it runs nothing and
// says why, and CTest reports it as skipped (the Windows tests match this
// text with SKIP_REGULAR_EXPRESSION), never as passed.
#define SOCK_TEST_NOT_APPLICABLE_TEXT "not applicable on this platform: "
// The same decided at run time, inside a test case: what the test checked so
// far stands (a failed assertion has already ended it), the rest is skipped.
#define SOCK_SKIP_REST_OF_TEST(reason)                                    \
  do {                                                                    \
    std::cout << SOCK_TEST_NOT_APPLICABLE_TEXT << reason << "\n";       \
    return;                                                               \
  } while (0)
#define SOCK_NOT_APPLICABLE_TEST_CASE(name, tags, reason)        \
  TEST_CASE(name, tags "[not_applicable]") {                     \
    std::cout << SOCK_TEST_NOT_APPLICABLE_TEXT << reason << "\n"; \
  }
