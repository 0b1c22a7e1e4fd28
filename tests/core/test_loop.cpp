// The loop and its backends (epoll, and kqueue when it is built; IOCP on
// Windows), driven from C++ with plain callbacks.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "sock/clock.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"
#include "sock/socket.hpp"
#include "test_net.hpp"

using namespace sock;
using test_net::TcpPair;

namespace {

struct Pair {
  Socket a, b;
  Pair() {
    socket_t fds[2];
    REQUIRE(make_socketpair(SOCK_STREAM, fds) == 0);
    a.adopt(fds[0], socketpair_family, SOCK_STREAM, 0);
    b.adopt(fds[1], socketpair_family, SOCK_STREAM, 0);
  }
};

int completions = 0;
void count_completion(Operation*) { completions++; }

using MakePoller = std::unique_ptr<Poller> (*)(int*);

}  // namespace

// A test of the loop over a backend, whichever it is: it runs on epoll (tag
// [epoll], the plain name) and, when the kqueue backend is built, on kqueue
// too (tag [kqueue], the name prefixed "kqueue: "); on Windows on IOCP
// alone (tag [iocp], the name prefixed "iocp: "). The body gets
// `make_poller`, the backend's factory.
#if defined(_WIN32)
#define EPOLL_TEST_CASE_(name, tags, fn)
#define IOCP_TEST_CASE_(name, tags, fn) \
  TEST_CASE("iocp: " name, tags "[iocp]") { fn(make_iocp_poller); }
#else
#define EPOLL_TEST_CASE_(name, tags, fn) \
  TEST_CASE(name, tags "[epoll]") { fn(make_epoll_poller); }
#define IOCP_TEST_CASE_(name, tags, fn)
#endif
#ifdef SOCK_HAVE_KQUEUE
#define KQUEUE_TEST_CASE_(name, tags, fn) \
  TEST_CASE("kqueue: " name, tags "[kqueue]") { fn(make_kqueue_poller); }
#else
#define KQUEUE_TEST_CASE_(name, tags, fn)
#endif
#define BACKEND_TEST_CASE_(name, tags, fn)                       \
  static void fn(MakePoller make_poller);                        \
  EPOLL_TEST_CASE_(name, tags, fn)                               \
  KQUEUE_TEST_CASE_(name, tags, fn)                              \
  IOCP_TEST_CASE_(name, tags, fn)                                \
  static void fn(MakePoller make_poller)
#define BACKEND_TEST_CASE(name, tags) BACKEND_TEST_CASE_(name, tags, INTERNAL_CATCH_UNIQUE_NAME(backend_test_))

BACKEND_TEST_CASE("a recv that would block completes when data arrives", "[loop]") {
  Loop loop(make_poller(nullptr));
  Pair pair;
  char buf[16];
  Operation op;
  op.kind = OpKind::recv;
  op.handle = &pair.a.io;
  op.buf = buf;
  op.len = sizeof buf;
  op.on_complete = count_completion;
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(op));
  REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
  REQUIRE(loop.run_once(0) == 0);  // nothing yet
  REQUIRE(::send(pair.b.fd(), "hello", 5, 0) == 5);
  REQUIRE(loop.run_once(5) == 1);
  REQUIRE(completions == 1);
  REQUIRE(op.result == 5);
  REQUIRE(std::memcmp(buf, "hello", 5) == 0);
  REQUIRE(pair.a.io.reader == nullptr);
}

BACKEND_TEST_CASE("a deadline cancels the op with ETIMEDOUT", "[loop][timer]") {
  Loop loop(make_poller(nullptr));
  Pair pair;
  char buf[4];
  Operation op;
  op.kind = OpKind::recv;
  op.handle = &pair.a.io;
  op.buf = buf;
  op.len = sizeof buf;
  op.on_complete = count_completion;
  completions = 0;
  double start = monotonic_now();
  REQUIRE(loop.start(op, start + 0.05) == 0);
  while (completions == 0 && monotonic_now() - start < 5) loop.run_once(5);
  REQUIRE(completions == 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(monotonic_now() - start >= 0.05);
  REQUIRE(std::string(error_name(ETIMEDOUT)) == "timeout");
}

BACKEND_TEST_CASE("a deadline in the past refuses to wait", "[loop][timer]") {
  Loop loop(make_poller(nullptr));
  Pair pair;
  char buf[4];
  Operation op;
  op.kind = OpKind::recv;
  op.handle = &pair.a.io;
  op.buf = buf;
  op.len = sizeof buf;
  REQUIRE(loop.start(op, monotonic_now() - 1) == -ETIMEDOUT);
  REQUIRE(pair.a.io.reader == nullptr);
}

BACKEND_TEST_CASE("a second reader on the same fd is refused as busy", "[loop]") {
  Loop loop(make_poller(nullptr));
  Pair pair;
  char buf[4];
  Operation first, second;
  for (Operation* op : {&first, &second}) {
    op->kind = OpKind::recv;
    op->handle = &pair.a.io;
    op->buf = buf;
    op->len = sizeof buf;
    op->on_complete = count_completion;
  }
  REQUIRE(loop.start(first, -1) == 0);
  REQUIRE(loop.start(second, -1) == -ERR_BUSY);
  completions = 0;
  loop.close_handle(pair.a.io);
  REQUIRE(loop.run_once(0) == 1);
  REQUIRE(first.result == -ERR_CLOSED);
  REQUIRE(std::string(error_name(ERR_CLOSED)) == "closed");
}

BACKEND_TEST_CASE("send_all moves a payload larger than the socket buffer", "[loop]") {
  Loop loop(make_poller(nullptr));
  Pair pair;
  if (socketpair_family != AF_UNIX) {  // Windows' pair is TCP over loopback
    test_net::small_buffers(pair.a.fd());
    test_net::small_buffers(pair.b.fd());
  }
  std::string payload(4 << 20, 'x');
  for (size_t i = 0; i < payload.size(); i++) payload[i] = (char)(i * 31);
  Operation send_op, recv_op;
  send_op.kind = OpKind::send_all;
  send_op.handle = &pair.a.io;
  send_op.buf = payload.data();
  send_op.len = payload.size();
  send_op.on_complete = count_completion;
  std::string got(payload.size(), '\0');
  recv_op.kind = OpKind::recv_all;
  recv_op.handle = &pair.b.io;
  recv_op.buf = got.data();
  recv_op.len = got.size();
  recv_op.on_complete = count_completion;
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(send_op));  // 4 MiB cannot fit at once
  REQUIRE(send_op.done > 0);
  REQUIRE(loop.start(send_op, monotonic_now() + 10) == 0);
  if (!Loop::try_now(recv_op)) REQUIRE(loop.start(recv_op, monotonic_now() + 10) == 0);
  else completions++;
  double start = monotonic_now();
  while (completions < 2 && monotonic_now() - start < 10) loop.run_once(1);
  REQUIRE(completions == 2);
  REQUIRE(send_op.result == (long)payload.size());
  REQUIRE(recv_op.result == (long)payload.size());
  REQUIRE(got == payload);
}

TEST_CASE("recv_all stops at end of stream with what it got", "[loop]") {
  Pair pair;
  REQUIRE(::send(pair.b.fd(), "abc", 3, 0) == 3);
  pair.b.close();
  char buf[10];
  Operation op;
  op.kind = OpKind::recv_all;
  op.handle = &pair.a.io;
  op.buf = buf;
  op.len = sizeof buf;
  REQUIRE(Loop::try_now(op));
  REQUIRE(op.eof);
  REQUIRE(op.done == 3);
}

BACKEND_TEST_CASE("timers fire in order and may be removed", "[loop][timer]") {
  Loop loop(make_poller(nullptr));
  static std::vector<int> fired;
  fired.clear();
  Timer a, b, c;
  int ia = 1, ib = 2, ic = 3;
  a.owner = &ia; b.owner = &ib; c.owner = &ic;
  auto record = [](Timer* t) { fired.push_back(*static_cast<int*>(t->owner)); };
  a.on_fire = b.on_fire = c.on_fire = record;
  double now = monotonic_now();
  loop.add_timer(c, now + 0.03);
  loop.add_timer(a, now + 0.01);
  loop.add_timer(b, now + 0.02);
  REQUIRE(loop.remove_timer(b));
  while (loop.timers() > 0 && monotonic_now() - now < 5) loop.run_once(1);
  REQUIRE(fired == std::vector<int>{1, 3});
}

BACKEND_TEST_CASE("connect to a closed port completes with ECONNREFUSED through the poller", "[loop]") {
  Loop loop(make_poller(nullptr));
  // Find a free port, then close it so nothing listens there.
  Socket probe;
  REQUIRE(probe.open(AF_INET, SOCK_STREAM, 0) == 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(probe.bind((sockaddr*)&sin, sizeof sin) == 0);
  sockaddr_storage ss;
  socklen_t len;
  REQUIRE(probe.local_address(ss, len) == 0);
  probe.close();
  Socket s;
  REQUIRE(s.open(AF_INET, SOCK_STREAM, 0) == 0);
  // The op carries the address, as the binding's connect does: a readiness
  // backend's try connect()s and then waits for the result; a completion
  // backend (IOCP's ConnectEx) connects in the kernel.
  Operation op;
  op.prepare(OpKind::connect, &s.io, nullptr, 0, 0, &ss, len);
  op.on_complete = count_completion;
  completions = 0;
  if (!loop.try_op(op)) {
    REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
    double start = monotonic_now();
    while (completions == 0 && monotonic_now() - start < 10) REQUIRE(loop.run_once(5) >= 0);
    REQUIRE(completions == 1);
  }
  REQUIRE(op.result == -ECONNREFUSED);
  REQUIRE(std::string(error_message(ECONNREFUSED)) == "connection_refused");
}

BACKEND_TEST_CASE("a reset wakes a waiting recv with ECONNRESET, a close with the end of the stream", "[loop]") {
  Loop loop(make_poller(nullptr));
  for (bool reset : {true, false}) {
    TcpPair pair;
    IoHandle h;
    h.fd = pair.client;
    char buf[8];
    Operation op;
    op.prepare(OpKind::recv, &h, buf, sizeof buf);
    op.on_complete = count_completion;
    completions = 0;
    REQUIRE_FALSE(Loop::try_now(op));
    REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
    REQUIRE(loop.run_once(0) == 0);  // registered, nothing yet
    if (reset) {
      linger lg{1, 0};  // close sends a RST
      REQUIRE(::setsockopt(pair.server, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof lg) == 0);
    }
    test_net::close_socket(pair.server);
    pair.server = invalid_socket;
    double start = monotonic_now();
    while (completions == 0 && monotonic_now() - start < 5) REQUIRE(loop.run_once(5) >= 0);
    REQUIRE(completions == 1);
    CHECK(op.result == (reset ? -ECONNRESET : 0));
    loop.close_handle(h);
  }
}
