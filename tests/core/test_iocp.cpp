// What the IOCP backend (Windows) must get right beyond the loop tests every
// backend runs (test_loop.cpp): the completion-backend scenarios test_uring.cpp
// checks for io_uring - ops the kernel performs (ConnectEx, AcceptEx,
// WSARecvFrom/WSASendTo), withdrawals racing results, a loop destroyed with
// requests in flight. Built on Windows only.
#if defined(_WIN32)

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "sock/clock.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"
#include "sock/socket.hpp"
#include "test_net.hpp"

using namespace sock;

namespace {

std::unique_ptr<Poller> iocp() {
  int err = 0;
  auto p = make_iocp_poller(&err);
  if (!p) FAIL("the IOCP backend cannot be set up here (" << std::strerror(err) << ")");
  return p;
}

struct Pair {
  Socket a, b;
  explicit Pair(int type = SOCK_STREAM) {
    socket_t fds[2];
    REQUIRE(make_socketpair(type, fds) == 0);
    a.adopt(fds[0], socketpair_family, type, 0);
    b.adopt(fds[1], socketpair_family, type, 0);
  }
};

int completions = 0;
void count_completion(Operation*) { completions++; }

void init_op(Operation& op, OpKind kind, IoHandle& h, char* buf = nullptr, size_t len = 0) {
  op.prepare(kind, &h, buf, len);
  op.on_complete = count_completion;
}

// Start `op`; one that finished at once (1: its callback is not called)
// counts as a completion.
void start(Loop& loop, Operation& op, double expires) {
  int rc = loop.start(op, expires);
  REQUIRE(rc >= 0);
  if (rc == 1) completions++;
}

// Run the loop until `n` completions have been counted (or 5 s pass).
void run_until(Loop& loop, int n) {
  double start = monotonic_now();
  while (completions < n && monotonic_now() - start < 5) REQUIRE(loop.run_once(1) >= 0);
  REQUIRE(completions == n);
}

size_t drain(socket_t fd, char* buf, size_t cap, int timeout_ms) {
  return test_net::recv_for(fd, buf, cap, timeout_ms);
}

// A loopback TCP listener on a free port.
struct Listener {
  Socket s;
  sockaddr_storage addr{};
  socklen_t len = 0;
  Listener() {
    REQUIRE(s.open(AF_INET, SOCK_STREAM, 0) == 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(s.bind((sockaddr*)&sin, sizeof sin) == 0);
    REQUIRE(s.listen(16) == 0);
    REQUIRE(s.local_address(addr, len) == 0);
  }
};

}  // namespace

TEST_CASE("iocp: make_poller picks it by name, and it is the default here", "[iocp]") {
  const char* why = nullptr;
  auto p = make_poller("iocp", &why);
  REQUIRE(p);
  CHECK(std::string(p->name()) == "iocp");
  CHECK(why == nullptr);
  CHECK(p->completes_ops());
  auto d = make_poller(nullptr, &why);
  REQUIRE(d);
  CHECK(std::string(d->name()) == "iocp");
}

TEST_CASE("iocp: recv_all keeps its progress when the deadline passes", "[iocp][timer]") {
  Loop loop(iocp());
  Pair pair;
  char buf[10];
  Operation op;
  init_op(op, OpKind::recv_all, pair.a.io, buf, sizeof buf);
  completions = 0;
  start(loop, op, monotonic_now() + 0.2);
  REQUIRE(loop.run_once(0) >= 0);
  REQUIRE(::send(pair.b.fd(), "abc", 3, 0) == 3);
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(op.done == 3);
  REQUIRE(std::memcmp(buf, "abc", 3) == 0);
}

TEST_CASE("iocp: a deadline withdraws the request and the socket stays usable", "[iocp][timer]") {
  Loop loop(iocp());
  Pair pair;
  char buf[4];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  double t0 = monotonic_now();
  start(loop, op, t0 + 0.05);
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(monotonic_now() - t0 >= 0.05);
  REQUIRE(pair.a.io.inflight == 0);
  REQUIRE(::send(pair.b.fd(), "x", 1, 0) == 1);
  op.prepare(OpKind::recv, &pair.a.io, buf, sizeof buf);
  op.on_complete = count_completion;
  start(loop, op, monotonic_now() + 5);
  run_until(loop, 2);
  REQUIRE(op.result == 1);
  REQUIRE(buf[0] == 'x');
}

TEST_CASE("iocp: a loop built on one thread can be driven from another", "[iocp]") {
  Loop loop(iocp());
  Pair pair;
  char buf[8];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(::send(pair.b.fd(), "t", 1, 0) == 1);
  long result = 0;
  std::thread t([&] {
    int rc = loop.start(op, monotonic_now() + 5);
    if (rc < 0) return;
    if (rc == 1) completions++;
    double start = monotonic_now();
    while (completions < 1 && monotonic_now() - start < 5) loop.run_once(1);
    result = op.result;
  });
  t.join();
  REQUIRE(completions == 1);
  REQUIRE(result == 1);
}

TEST_CASE("iocp: close_handle wakes the waiters with ERR_CLOSED", "[iocp]") {
  Loop loop(iocp());
  Pair pair;
  char buf[4];
  Operation reader, second;
  init_op(reader, OpKind::recv, pair.a.io, buf, sizeof buf);
  init_op(second, OpKind::recv, pair.a.io, buf, sizeof buf);
  REQUIRE(loop.start(reader, -1) == 0);
  REQUIRE(loop.start(second, -1) == -ERR_BUSY);
  completions = 0;
  loop.close_handle(pair.a.io);
  pair.a.close();  // at once, as the binding does: the completion comes later
  run_until(loop, 1);
  REQUIRE(reader.result == -ERR_CLOSED);
  REQUIRE(pair.a.io.inflight == 0);
}

TEST_CASE("iocp: a result that beats its withdrawal is delivered, not lost", "[iocp]") {
  Loop loop(iocp());
  Pair pair;
  char buf[16];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(op, -1) == 0);
  REQUIRE(loop.run_once(0) == 0);  // waiting in the kernel
  REQUIRE(::send(pair.b.fd(), "hello", 5, 0) == 5);
  loop.cancel(op, ETIMEDOUT);  // too late, most likely
  run_until(loop, 1);
  // Either way, all five bytes are somewhere.
  size_t have = op.result > 0 ? (size_t)op.result : 0;
  if (op.result < 0) REQUIRE(op.result == -ETIMEDOUT);
  have += drain(pair.a.fd(), buf + have, 5 - have, have < 5 ? 2000 : 0);
  REQUIRE(have == 5);
  REQUIRE(std::memcmp(buf, "hello", 5) == 0);
}

TEST_CASE("iocp: send_all cut short by its deadline reports exactly what was sent", "[iocp][timer]") {
  Loop loop(iocp());
  Pair pair;
  // Small socket buffers (a loopback TCP pair's grow to megabytes), and a
  // payload far beyond them.
  test_net::small_buffers(pair.a.fd());
  test_net::small_buffers(pair.b.fd());
  std::string payload(32 << 20, 'z');
  Operation op;
  init_op(op, OpKind::send_all, pair.a.io, &payload[0], payload.size());
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(op));
  size_t before = op.done;
  start(loop, op, monotonic_now() + 0.3);
  REQUIRE(loop.run_once(0) >= 0);
  // Drain some, so the kernel's own request moves bytes before the deadline.
  std::string sink(1 << 20, '\0');
  size_t drained = drain(pair.b.fd(), &sink[0], 256 * 1024, 2000);
  REQUIRE(drained > 0);
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(op.done > before);  // the kernel sent some
  // Every byte reported sent reaches the peer, and no more.
  for (;;) {
    size_t n = drain(pair.b.fd(), &sink[0], sink.size(), drained < op.done ? 2000 : 200);
    if (n == 0) break;
    drained += n;
  }
  REQUIRE(drained == op.done);
}

TEST_CASE("iocp: accept and connect through the port (AcceptEx, ConnectEx)", "[iocp]") {
  Loop loop(iocp());
  Listener l;
  sockaddr_storage peer{};
  Operation acc;
  init_op(acc, OpKind::accept, l.s.io);
  acc.addr = &peer;
  completions = 0;
  REQUIRE_FALSE(loop.try_op(acc));
  start(loop, acc, monotonic_now() + 5);
  Socket c;
  REQUIRE(c.open(AF_INET, SOCK_STREAM, 0) == 0);
  Operation con;
  con.prepare(OpKind::connect, &c.io, nullptr, 0, 0, &l.addr, l.len);
  con.on_complete = count_completion;
  REQUIRE_FALSE(loop.try_op(con));  // ConnectEx connects
  start(loop, con, monotonic_now() + 5);
  run_until(loop, 2);
  REQUIRE(con.result == 0);
  REQUIRE(acc.result >= 0);
  REQUIRE(acc.addrlen == sizeof(sockaddr_in));
  REQUIRE(peer.ss_family == AF_INET);
  sockaddr_storage mine;
  socklen_t mine_len;
  REQUIRE(c.local_address(mine, mine_len) == 0);  // SO_UPDATE_CONNECT_CONTEXT made it a full socket
  auto* m = reinterpret_cast<const sockaddr_in*>(&mine);
  auto* pe = reinterpret_cast<const sockaddr_in*>(&peer);
  REQUIRE(m->sin_port == pe->sin_port);
  REQUIRE(m->sin_addr.s_addr == pe->sin_addr.s_addr);
  Socket server_side;
  server_side.adopt((socket_t)acc.result, AF_INET, SOCK_STREAM, 0);
  sockaddr_storage theirs;
  socklen_t theirs_len;
  REQUIRE(server_side.peer_address(theirs, theirs_len) == 0);  // SO_UPDATE_ACCEPT_CONTEXT too
  REQUIRE(::send(c.fd(), "ping", 4, 0) == 4);
  char buf[8];
  Operation r;
  init_op(r, OpKind::recv_all, server_side.io, buf, 4);
  start(loop, r, monotonic_now() + 5);
  run_until(loop, 3);
  REQUIRE(r.result == 4);
  REQUIRE(std::memcmp(buf, "ping", 4) == 0);
}

TEST_CASE("iocp: recvfrom and sendto carry addresses through the port", "[iocp]") {
  Loop loop(iocp());
  Socket a, b;
  REQUIRE(a.open(AF_INET, SOCK_DGRAM, 0) == 0);
  REQUIRE(b.open(AF_INET, SOCK_DGRAM, 0) == 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(a.bind((sockaddr*)&sin, sizeof sin) == 0);
  REQUIRE(b.bind((sockaddr*)&sin, sizeof sin) == 0);
  sockaddr_storage a_addr, b_addr;
  socklen_t a_len, b_len;
  REQUIRE(a.local_address(a_addr, a_len) == 0);
  REQUIRE(b.local_address(b_addr, b_len) == 0);

  char rbuf[32];
  sockaddr_storage from{};
  Operation rf;
  init_op(rf, OpKind::recvfrom, a.io, rbuf, sizeof rbuf);
  rf.addr = &from;
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(rf));
  start(loop, rf, monotonic_now() + 5);

  char msg[] = "datagram";
  Operation st;
  init_op(st, OpKind::sendto, b.io, msg, 8);
  st.addr = &a_addr;
  st.addrlen = a_len;
  start(loop, st, monotonic_now() + 5);  // handed to the kernel directly
  run_until(loop, 2);
  REQUIRE(st.result == 8);
  REQUIRE(rf.result == 8);
  REQUIRE(std::memcmp(rbuf, "datagram", 8) == 0);
  REQUIRE(rf.addrlen == b_len);
  REQUIRE(std::memcmp(&from, &b_addr, b_len) == 0);
}

TEST_CASE("iocp: readable and writable wait through the port", "[iocp]") {
  Loop loop(iocp());
  Pair pair;
  Operation r, w;
  init_op(r, OpKind::readable, pair.a.io);
  init_op(w, OpKind::writable, pair.a.io);
  completions = 0;
  start(loop, w, monotonic_now() + 5);
  start(loop, r, monotonic_now() + 5);
  run_until(loop, 1);
  REQUIRE(w.result == 0);
  REQUIRE(r.pending);
  REQUIRE(::send(pair.b.fd(), "x", 1, 0) == 1);
  run_until(loop, 2);
  REQUIRE(r.result == 0);
  char c;  // a readiness wait consumes nothing
  REQUIRE(drain(pair.a.fd(), &c, 1, 2000) == 1);
  REQUIRE(c == 'x');
}

TEST_CASE("iocp: destroying the loop with requests in flight is safe", "[iocp]") {
  auto p = iocp();
  Listener l;
  Pair pair;
  char buf[64];
  sockaddr_storage peer;
  completions = 0;
  {
    auto* rd = new Operation;
    auto* acc = new Operation;
    auto* loop = new Loop(std::move(p));
    init_op(*rd, OpKind::recv, pair.a.io, buf, sizeof buf);
    init_op(*acc, OpKind::accept, l.s.io);
    acc->addr = &peer;
    REQUIRE(loop->start(*rd, -1) == 0);
    REQUIRE(loop->start(*acc, -1) == 0);
    REQUIRE(loop->run_once(0) == 0);
    delete loop;  // withdraws both and waits for the kernel; no callback runs
    // Only now may the ops go (the binding's userdata outlive the loop).
    delete rd;
    delete acc;
  }
  REQUIRE(completions == 0);
  // The kernel no longer writes into buf: data sent now stays in the socket.
  std::memset(buf, 0, sizeof buf);
  REQUIRE(::send(pair.b.fd(), "late", 4, 0) == 4);
  char got[8];
  REQUIRE(drain(pair.a.fd(), got, sizeof got, 2000) == 4);
  REQUIRE(std::memcmp(got, "late", 4) == 0);
  REQUIRE(buf[0] == 0);
}

TEST_CASE("iocp: timers fire with no I/O pending", "[iocp][timer]") {
  Loop loop(iocp());
  static int fired;
  fired = 0;
  Timer t;
  t.on_fire = [](Timer*) { fired++; };
  double t0 = monotonic_now();
  loop.add_timer(t, t0 + 0.03);
  while (loop.timers() > 0 && monotonic_now() - t0 < 5) loop.run_once(1);
  REQUIRE(fired == 1);
  REQUIRE(monotonic_now() - t0 >= 0.03);
}

#endif  // _WIN32
