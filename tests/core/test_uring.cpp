// The loop over the io_uring backend: the scenarios of test_loop.cpp, plus
// what only a completion backend can get wrong (cancels racing results, fds
// closed with requests in flight, tearing the ring down under them).
// Where the kernel or the sandbox refuses io_uring, each test fails and says
// why: build with -DSOCK_URING=OFF on such a machine.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>

#include "sock/clock.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"
#include "sock/socket.hpp"

using namespace sock;

namespace {

std::unique_ptr<Poller> uring() {
  int err = 0;
  auto p = make_uring_poller(&err);
  if (!p) FAIL("io_uring cannot be set up here (" << std::strerror(err) << "); build with -DSOCK_URING=OFF");
  return p;
}

struct Pair {
  Socket a, b;
  explicit Pair(int type = SOCK_STREAM) {
    int fds[2];
    REQUIRE(make_socketpair(type, fds) == 0);
    a.adopt(fds[0], AF_UNIX, type, 0);
    b.adopt(fds[1], AF_UNIX, type, 0);
  }
};

int completions = 0;
void count_completion(Operation*) { completions++; }

void init_op(Operation& op, OpKind kind, IoHandle& h, char* buf = nullptr, size_t len = 0) {
  op.kind = kind;
  op.handle = &h;
  op.buf = buf;
  op.len = len;
  op.on_complete = count_completion;
}

// Run the loop until `n` completions have been counted (or 5 s pass).
void run_until(Loop& loop, int n) {
  double start = monotonic_now();
  while (completions < n && monotonic_now() - start < 5) REQUIRE(loop.run_once(1) >= 0);
  REQUIRE(completions == n);
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

TEST_CASE("uring: a recv that would block completes when data arrives", "[uring]") {
  Loop loop(uring());
  REQUIRE(std::string(loop.poller().name()) == "io_uring");
  Pair pair;
  char buf[16];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(op));
  REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
  REQUIRE(pair.a.io.inflight == 1);
  REQUIRE(loop.run_once(0) == 0);  // nothing yet
  REQUIRE(::send(pair.b.fd(), "hello", 5, 0) == 5);
  run_until(loop, 1);
  REQUIRE(op.result == 5);
  REQUIRE(std::memcmp(buf, "hello", 5) == 0);
  REQUIRE(pair.a.io.reader == nullptr);
  REQUIRE(pair.a.io.inflight == 0);
}

TEST_CASE("uring: a deadline cancels the op with ETIMEDOUT", "[uring][timer]") {
  Loop loop(uring());
  Pair pair;
  char buf[4];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  double start = monotonic_now();
  REQUIRE(loop.start(op, start + 0.05) == 0);
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(monotonic_now() - start >= 0.05);
  REQUIRE(pair.a.io.inflight == 0);
  // The socket stays usable.
  REQUIRE(::send(pair.b.fd(), "x", 1, 0) == 1);
  REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
  run_until(loop, 2);
  REQUIRE(op.result == 1);
}

TEST_CASE("uring: recv_all keeps its progress when the deadline passes", "[uring][timer]") {
  Loop loop(uring());
  Pair pair;
  char buf[10];
  Operation op;
  init_op(op, OpKind::recv_all, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(op, monotonic_now() + 0.1) == 0);
  loop.run_once(0);
  REQUIRE(::send(pair.b.fd(), "abc", 3, 0) == 3);
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(op.done == 3);
  REQUIRE(std::memcmp(buf, "abc", 3) == 0);
}

TEST_CASE("uring: send_all cut short by its deadline reports exactly what was sent", "[uring][timer]") {
  Loop loop(uring());
  Pair pair;
  std::string payload(8 << 20, 'z');  // more than both socket buffers hold
  Operation op;
  init_op(op, OpKind::send_all, pair.a.io, &payload[0], payload.size());
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(op));
  size_t before = op.done;
  REQUIRE(loop.start(op, monotonic_now() + 0.2) == 0);
  // Drain some, so the kernel's own request moves bytes before the deadline.
  loop.run_once(0);
  std::string sink(1 << 20, '\0');
  size_t drained = 0;
  for (int i = 0; i < 2; i++) {
    ssize_t n = ::recv(pair.b.fd(), &sink[0], sink.size(), MSG_DONTWAIT);
    if (n > 0) drained += (size_t)n;
    loop.run_once(0.01);
  }
  run_until(loop, 1);
  REQUIRE(op.result == -ETIMEDOUT);
  REQUIRE(op.done > before);  // the ring sent some
  // Every byte reported sent is in the peer's socket, and no more.
  for (;;) {
    ssize_t n = ::recv(pair.b.fd(), &sink[0], sink.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    drained += (size_t)n;
  }
  REQUIRE(drained == op.done);
}

TEST_CASE("uring: a loop built on one thread can be driven from another", "[uring]") {
  Loop loop(uring());
  Pair pair;
  char buf[8];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(::send(pair.b.fd(), "t", 1, 0) == 1);
  long result = 0;
  std::thread t([&] {
    if (loop.start(op, monotonic_now() + 5) != 0) return;
    double start = monotonic_now();
    while (completions < 1 && monotonic_now() - start < 5) loop.run_once(1);
    result = op.result;
  });
  t.join();
  REQUIRE(completions == 1);
  REQUIRE(result == 1);
}

TEST_CASE("uring: close_handle wakes the waiters with ERR_CLOSED", "[uring]") {
  Loop loop(uring());
  Pair pair;
  char buf[4];
  Operation reader, second;
  init_op(reader, OpKind::recv, pair.a.io, buf, sizeof buf);
  init_op(second, OpKind::recv, pair.a.io, buf, sizeof buf);
  REQUIRE(loop.start(reader, -1) == 0);
  REQUIRE(loop.start(second, -1) == -ERR_BUSY);
  completions = 0;
  loop.close_handle(pair.a.io);
  pair.a.close();  // at once, as the binding does: the CQE comes later
  run_until(loop, 1);
  REQUIRE(reader.result == -ERR_CLOSED);
  REQUIRE(pair.a.io.inflight == 0);
}

TEST_CASE("uring: a request queued before its fd closes never reaches a reused fd", "[uring]") {
  Loop loop(uring());
  auto* pair = new Pair;
  char buf[16];
  Operation op;
  init_op(op, OpKind::recv, pair->a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(op, -1) == 0);  // queued, not yet submitted
  int old_fd = pair->a.fd();
  loop.close_handle(pair->a.io);
  pair->a.close();
  Pair fresh;  // most likely gets old_fd back
  INFO("old fd " << old_fd << ", new fds " << fresh.a.fd() << " " << fresh.b.fd());
  REQUIRE(::send(fresh.b.fd(), "mine", 4, 0) == 4);
  REQUIRE(::send(fresh.a.fd(), "mine", 4, 0) == 4);
  run_until(loop, 1);
  REQUIRE(op.result == -ERR_CLOSED);
  char got[8];
  REQUIRE(::recv(fresh.a.fd(), got, sizeof got, 0) == 4);
  REQUIRE(::recv(fresh.b.fd(), got, sizeof got, 0) == 4);
  delete pair;
}

TEST_CASE("uring: a result that beats its cancel is delivered, not lost", "[uring]") {
  Loop loop(uring());
  Pair pair;
  char buf[16];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(op, -1) == 0);
  REQUIRE(loop.run_once(0) == 0);  // submitted and waiting in the kernel
  REQUIRE(::send(pair.b.fd(), "hello", 5, 0) == 5);
  loop.cancel(op, ETIMEDOUT);  // too late, most likely
  run_until(loop, 1);
  // Either way, all five bytes are somewhere.
  size_t have = op.result > 0 ? (size_t)op.result : 0;
  if (op.result < 0) REQUIRE(op.result == -ETIMEDOUT);
  ssize_t rest = ::recv(pair.a.fd(), buf + have, sizeof buf - have, MSG_DONTWAIT);
  if (rest > 0) have += (size_t)rest;
  REQUIRE(have == 5);
  REQUIRE(std::memcmp(buf, "hello", 5) == 0);
}

TEST_CASE("uring: send_all moves a payload larger than the socket buffer", "[uring]") {
  Loop loop(uring());
  Pair pair;
  std::string payload(4 << 20, 'x');
  for (size_t i = 0; i < payload.size(); i++) payload[i] = (char)(i * 31);
  std::string got(payload.size(), '\0');
  Operation send_op, recv_op;
  init_op(send_op, OpKind::send_all, pair.a.io, &payload[0], payload.size());
  init_op(recv_op, OpKind::recv_all, pair.b.io, &got[0], got.size());
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(send_op));  // 4 MiB cannot fit at once
  REQUIRE(send_op.done > 0);
  REQUIRE(loop.start(send_op, monotonic_now() + 10) == 0);
  if (!Loop::try_now(recv_op))
    REQUIRE(loop.start(recv_op, monotonic_now() + 10) == 0);
  else
    completions++;
  run_until(loop, 2);
  REQUIRE(send_op.result == (long)payload.size());
  REQUIRE(recv_op.result == (long)payload.size());
  REQUIRE(got == payload);
}

TEST_CASE("uring: connect to a closed port completes with ECONNREFUSED", "[uring]") {
  Loop loop(uring());
  sockaddr_storage ss;
  socklen_t len;
  {
    Listener gone;  // a port that was free a moment ago, and is closed now
    ss = gone.addr;
    len = gone.len;
  }
  Socket s;
  REQUIRE(s.open(AF_INET, SOCK_STREAM, 0) == 0);
  int rc = s.connect((sockaddr*)&ss, len);
  if (rc == -EINPROGRESS) {
    Operation op;
    init_op(op, OpKind::connect, s.io);
    completions = 0;
    REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
    run_until(loop, 1);
    rc = (int)op.result;
  }
  REQUIRE(rc == -ECONNREFUSED);
  REQUIRE(std::string(error_message(ECONNREFUSED)) == "connection_refused");
}

TEST_CASE("uring: accept and connect through the ring", "[uring]") {
  Loop loop(uring());
  Listener l;
  sockaddr_storage peer{};
  Operation acc;
  init_op(acc, OpKind::accept, l.s.io);
  acc.addr = &peer;
  completions = 0;
  REQUIRE_FALSE(Loop::try_now(acc));
  REQUIRE(loop.start(acc, monotonic_now() + 5) == 0);
  Socket c;
  REQUIRE(c.open(AF_INET, SOCK_STREAM, 0) == 0);
  int rc = c.connect((sockaddr*)&l.addr, l.len);
  Operation con;
  init_op(con, OpKind::connect, c.io);
  int want = 1;
  if (rc == -EINPROGRESS) {
    REQUIRE(loop.start(con, monotonic_now() + 5) == 0);
    want = 2;
  } else {
    REQUIRE(rc == 0);
  }
  run_until(loop, want);
  REQUIRE(acc.result >= 0);
  // A multishot accept (5.19+) does not report the peer; a single-shot one does.
  if (loop.poller().stats().multishot_arms == 0) {
    REQUIRE(acc.addrlen == sizeof(sockaddr_in));
    REQUIRE(peer.ss_family == AF_INET);
  } else {
    REQUIRE(acc.addrlen == 0);
  }
  Socket server_side;
  server_side.adopt((int)acc.result, AF_INET, SOCK_STREAM, 0);
  if (want == 2) REQUIRE(con.result == 0);
  REQUIRE(::send(c.fd(), "ping", 4, 0) == 4);
  char buf[8];
  Operation r;
  init_op(r, OpKind::recv_all, server_side.io, buf, 4);
  REQUIRE(loop.start(r, monotonic_now() + 5) == 0);
  run_until(loop, want + 1);
  REQUIRE(r.result == 4);
}

TEST_CASE("uring: recvfrom and sendto carry addresses through the ring", "[uring]") {
  Loop loop(uring());
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
  REQUIRE(loop.start(rf, monotonic_now() + 5) == 0);

  // A sendto handed to the ring directly (a datagram rarely has to wait).
  char msg[] = "datagram";
  Operation st;
  init_op(st, OpKind::sendto, b.io, msg, 8);
  st.addr = &a_addr;
  st.addrlen = a_len;
  REQUIRE(loop.start(st, monotonic_now() + 5) == 0);
  run_until(loop, 2);
  REQUIRE(st.result == 8);
  REQUIRE(rf.result == 8);
  REQUIRE(std::memcmp(rbuf, "datagram", 8) == 0);
  REQUIRE(rf.addrlen == b_len);
  REQUIRE(std::memcmp(&from, &b_addr, b_len) == 0);
  REQUIRE(rf.backend_data == nullptr);
  REQUIRE(st.backend_data == nullptr);
}

TEST_CASE("uring: readable and writable wait through the ring", "[uring]") {
  Loop loop(uring());
  Pair pair;
  Operation r, w;
  init_op(r, OpKind::readable, pair.a.io);
  init_op(w, OpKind::writable, pair.a.io);
  completions = 0;
  REQUIRE(loop.start(w, monotonic_now() + 5) == 0);
  REQUIRE(loop.start(r, monotonic_now() + 5) == 0);
  run_until(loop, 1);
  REQUIRE(w.result == 0);
  REQUIRE(r.pending);
  REQUIRE(::send(pair.b.fd(), "x", 1, 0) == 1);
  run_until(loop, 2);
  REQUIRE(r.result == 0);
}

TEST_CASE("uring: the poller fd becomes readable when a completion is posted", "[uring]") {
  Loop loop(uring());
  int fd = loop.poller().fd();  // a host watches it from now on
  REQUIRE(fd >= 0);
  Pair pair;
  char buf[8];
  Operation op;
  init_op(op, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(op, -1) == 0);
  pollfd pfd{fd, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 50) == 0);  // nothing to report yet
  REQUIRE(::send(pair.b.fd(), "wake", 4, 0) == 4);
  pfd.revents = 0;
  REQUIRE(::poll(&pfd, 1, 2000) == 1);  // without any run_once in between
  REQUIRE((pfd.revents & POLLIN));
  REQUIRE(loop.run_once(0) == 1);
  REQUIRE(op.result == 4);
}

TEST_CASE("uring: destroying the loop with requests in flight is safe", "[uring]") {
  auto p = uring();
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
    loop->run_once(0);
    delete loop;  // withdraws both and waits for the kernel; no callback runs
    // Only now may the ops go (the binding's userdata outlive the loop).
    delete rd;
    delete acc;
  }
  REQUIRE(completions == 0);
  // The kernel no longer writes into buf: data sent now stays in the socket.
  std::memset(buf, 0, sizeof buf);
  REQUIRE(::send(pair.b.fd(), "late", 4, 0) == 4);
  ::usleep(20000);
  REQUIRE(buf[0] == 0);
  char got[8];
  REQUIRE(::recv(pair.a.fd(), got, sizeof got, MSG_DONTWAIT) == 4);
}

TEST_CASE("uring: timers fire with no I/O pending", "[uring][timer]") {
  Loop loop(uring());
  static int fired;
  fired = 0;
  Timer t;
  t.on_fire = [](Timer*) { fired++; };
  double start = monotonic_now();
  loop.add_timer(t, start + 0.03);
  while (loop.timers() > 0 && monotonic_now() - start < 5) loop.run_once(1);
  REQUIRE(fired == 1);
  REQUIRE(monotonic_now() - start >= 0.03);
}

TEST_CASE("uring: when io_uring is refused, make_poller falls back to epoll and says why", "[uring]") {
#ifndef SOCK_HAVE_URING
  WARN("io_uring not built in: fallback test skipped");
  return;
#endif
  // In a child, deny io_uring_setup with EPERM the way a container's seccomp
  // profile does, then ask for io_uring.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{(unsigned short)(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      ::_exit(3);  // no seccomp here: cannot test
    const char* why = nullptr;
    auto p = make_poller("io_uring", &why);
    bool ok = p && std::string(p->name()) == "epoll" && why && std::strstr(why, "EPERM") &&
              std::strstr(why, "io_uring_disabled");
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) {
    FAIL("seccomp is unavailable here, so the fallback cannot be tested");
  }
  REQUIRE(WEXITSTATUS(status) == 0);
}

namespace {

// A client connected to `l`: connect() and wait (up to 5 s) until the
// handshake is done, so the connection sits in the listener's queue.
void connect_client(Socket& c, const Listener& l) {
  REQUIRE(c.open(AF_INET, SOCK_STREAM, 0) == 0);
  int rc = c.connect((const sockaddr*)&l.addr, l.len);
  REQUIRE((rc == 0 || rc == -EINPROGRESS));
  pollfd pfd{c.fd(), POLLOUT, 0};
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  int err = -1;
  socklen_t len = sizeof err;
  REQUIRE(::getsockopt(c.fd(), SOL_SOCKET, SO_ERROR, &err, &len) == 0);
  REQUIRE(err == 0);
}

bool multishot_here(Loop& loop, Listener& l) {
  // The first accept arms it where the kernel has it (5.19+).
  Operation probe;
  init_op(probe, OpKind::accept, l.s.io);
  REQUIRE(loop.start(probe, -1) == 0);
  bool armed = loop.poller().stats().multishot_arms == 1;
  loop.cancel(probe, ETIMEDOUT);
  loop.run_once(0);
  return armed;
}

// A listener whose multishot accept is armed, and an accept op for it.
struct MultishotListener {
  Loop loop{uring()};
  Listener l;
  Operation acc;
  MultishotListener() {
    REQUIRE(multishot_here(loop, l));
    init_op(acc, OpKind::accept, l.s.io);
    completions = 0;
  }
};

}  // namespace

TEST_CASE_METHOD(MultishotListener, "uring: one multishot accept takes every connection; accepts are served from its queue", "[uring]") {
  Socket clients[4];
  for (auto& c : clients) connect_client(c, l);
  // The kernel accepted all four already; the first CQE goes to this op, the
  // other three wait in the queue.
  REQUIRE(loop.start(acc, monotonic_now() + 5) == 0);
  run_until(loop, 1);
  REQUIRE(acc.result >= 0);
  Socket served[4];
  served[0].adopt((int)acc.result, AF_INET, SOCK_STREAM, 0);
  for (int i = 1; i < 4; i++) {
    int rc = loop.start(acc, monotonic_now() + 5);
    REQUIRE(rc >= 0);
    if (rc == 0) run_until(loop, completions + 1);  // its CQE was not reaped yet
    REQUIRE(acc.result >= 0);
    served[i].adopt((int)acc.result, AF_INET, SOCK_STREAM, 0);
  }
  const auto& st = loop.poller().stats();
  REQUIRE(st.multishot_arms == 1);  // armed once (by the probe), never again
  REQUIRE(st.multishot_served >= 1);
  // Each accepted fd is one of the clients' peers: echo through all four.
  for (int i = 0; i < 4; i++) {
    char tag = (char)('a' + i);
    REQUIRE(::send(clients[i].fd(), &tag, 1, 0) == 1);
  }
  std::string seen;
  for (auto& s : served) {
    pollfd pfd{s.fd(), POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, 5000) == 1);
    char c;
    REQUIRE(::recv(s.fd(), &c, 1, 0) == 1);
    seen += c;
  }
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen == "abcd");
}

TEST_CASE_METHOD(MultishotListener, "uring: an accept that times out leaves the multishot armed for the next one", "[uring][timer]") {
  REQUIRE(loop.start(acc, monotonic_now() + 0.05) == 0);
  run_until(loop, 1);
  REQUIRE(acc.result == -ETIMEDOUT);
  Socket c;
  connect_client(c, l);
  int rc = loop.start(acc, monotonic_now() + 5);
  if (rc == 0) run_until(loop, 2);
  REQUIRE(acc.result >= 0);
  ::close((int)acc.result);
  REQUIRE(loop.poller().stats().multishot_arms == 1);
}

TEST_CASE_METHOD(MultishotListener, "uring: closing a listener wakes its accept and drops the connections taken for nobody", "[uring]") {
  Socket c1, c2;
  connect_client(c1, l);
  connect_client(c2, l);
  int rc = loop.start(acc, monotonic_now() + 5);
  if (rc == 0) run_until(loop, 1);
  REQUIRE(acc.result >= 0);
  Socket first;
  first.adopt((int)acc.result, AF_INET, SOCK_STREAM, 0);
  loop.run_once(0.01);  // the second connection is in the queue now
  // An accept waiting when the listener closes gets ERR_CLOSED.
  Operation waiting;
  init_op(waiting, OpKind::accept, l.s.io);
  rc = loop.start(waiting, monotonic_now() + 5);
  if (rc == 1) {  // the second one was served: close it ourselves
    ::close((int)waiting.result);
  } else {
    REQUIRE(rc == 0);
  }
  int before = completions;
  REQUIRE(loop.close_fd(l.s.io) == 0);
  REQUIRE(l.s.fd() == -1);
  if (rc == 0) {
    run_until(loop, before + 1);
    REQUIRE(waiting.result == -ERR_CLOSED);
  }
  // Both clients' peers are gone except `first`: c2 sees its end close.
  pollfd pfd{c2.fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  char buf[4];
  ssize_t n = ::recv(c2.fd(), buf, sizeof buf, 0);
  REQUIRE((n == 0 || (n < 0 && errno == ECONNRESET)));
  // The accepted one still works.
  REQUIRE(::send(c1.fd(), "x", 1, 0) == 1);
  pfd = pollfd{first.fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  REQUIRE(::recv(first.fd(), buf, sizeof buf, 0) == 1);
}

TEST_CASE("uring: the kernel connects when the op carries the address", "[uring]") {
  Loop loop(uring());
  Listener l;
  Socket c;
  REQUIRE(c.open(AF_INET, SOCK_STREAM, 0) == 0);
  sockaddr_storage to = l.addr;
  Operation con;
  init_op(con, OpKind::connect, c.io);
  con.addr = &to;
  con.addrlen = l.len;
  completions = 0;
  uint64_t before = loop.poller().stats().requests;
  REQUIRE(loop.start(con, monotonic_now() + 5) == 0);
  run_until(loop, 1);
  REQUIRE(con.result == 0);
  REQUIRE(loop.poller().stats().requests == before + 1);
  sockaddr_storage peer;
  socklen_t len;
  REQUIRE(c.peer_address(peer, len) == 0);
  // And to a port nobody listens on: the kernel's refusal is the result.
  sockaddr_storage gone_addr;
  {
    Listener gone;
    gone_addr = gone.addr;
  }
  Socket d;
  REQUIRE(d.open(AF_INET, SOCK_STREAM, 0) == 0);
  init_op(con, OpKind::connect, d.io);
  con.addr = &gone_addr;
  con.addrlen = sizeof(sockaddr_in);
  REQUIRE(loop.start(con, monotonic_now() + 5) == 0);
  run_until(loop, 2);
  REQUIRE(con.result == -ECONNREFUSED);
}

TEST_CASE("uring: close goes through the ring and has happened when it returns", "[uring]") {
  Loop loop(uring());
  Pair pair;
  int fd = pair.a.fd();
  // A recv in flight holds the file; closing must still end the stream now.
  char buf[4];
  Operation rd;
  init_op(rd, OpKind::recv, pair.a.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(rd, -1) == 0);
  REQUIRE(loop.run_once(0) == 0);  // submitted
  uint64_t before = loop.poller().stats().requests;
  REQUIRE(loop.close_fd(pair.a.io) == 0);
  REQUIRE(pair.a.fd() == -1);
  REQUIRE(loop.poller().stats().requests == before + 1);
  REQUIRE(::fcntl(fd, F_GETFD) == -1);
  REQUIRE(errno == EBADF);
  pollfd pfd{pair.b.fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 0) == 1);  // no waiting: the peer already sees the end
  char c;
  REQUIRE(::recv(pair.b.fd(), &c, 1, 0) == 0);
  run_until(loop, 1);
  REQUIRE(rd.result == -ERR_CLOSED);
  REQUIRE(pair.a.io.inflight == 0);
}

TEST_CASE("uring: a closed listener frees its port at once, multishot and all", "[uring]") {
  Loop loop(uring());
  Listener l;
  Operation acc;
  init_op(acc, OpKind::accept, l.s.io);
  completions = 0;
  REQUIRE(loop.start(acc, -1) == 0);
  REQUIRE(loop.run_once(0) == 0);  // the accept is in the kernel
  sockaddr_in where;
  std::memcpy(&where, &l.addr, sizeof where);
  REQUIRE(loop.close_fd(l.s.io) == 0);
  Socket again;
  REQUIRE(again.open(AF_INET, SOCK_STREAM, 0) == 0);
  REQUIRE(again.bind((sockaddr*)&where, sizeof where) == 0);  // no SO_REUSEADDR: the port is free
  REQUIRE(again.listen(4) == 0);
  run_until(loop, 1);
  REQUIRE(acc.result == -ERR_CLOSED);
}

TEST_CASE("uring: shutdown returns its result at once and leaves no request behind", "[uring]") {
  Loop loop(uring());
  Pair pair;
  uint64_t before = loop.poller().stats().requests;
  REQUIRE(loop.shutdown_fd(pair.a.io, SHUT_WR) == 0);
  // The syscall, not a request: none is left in flight naming the fd by a
  // number that another socket may take once this one is closed.
  REQUIRE(loop.poller().stats().requests == before);
  char c;
  REQUIRE(::recv(pair.b.fd(), &c, 1, MSG_DONTWAIT) == 0);
  Socket lone;
  REQUIRE(lone.open(AF_INET, SOCK_STREAM, 0) == 0);
  REQUIRE(loop.shutdown_fd(lone.io, SHUT_RDWR) == -ENOTCONN);
  // Completions found while reaping for it are kept for the next turn.
  char buf[4];
  Operation rd;
  init_op(rd, OpKind::recv, pair.b.io, buf, sizeof buf);
  completions = 0;
  REQUIRE(loop.start(rd, monotonic_now() + 5) == 0);
  Pair third;
  REQUIRE(loop.shutdown_fd(third.a.io, SHUT_RD) == 0);
  run_until(loop, 1);
  REQUIRE(rd.result == 0);  // b reads the end of stream a's shutdown sent
}

TEST_CASE("uring: a turn's requests go to the kernel in one io_uring_enter", "[uring]") {
  Loop loop(uring());
  constexpr int n = 20;
  Pair pairs[n];
  char bufs[n][8];
  Operation ops[n];
  completions = 0;
  uint64_t enters = loop.poller().stats().enters;
  uint64_t requests = loop.poller().stats().requests;
  for (int i = 0; i < n; i++) {
    init_op(ops[i], OpKind::recv, pairs[i].a.io, bufs[i], sizeof bufs[i]);
    REQUIRE(loop.start(ops[i], monotonic_now() + 5) == 0);
  }
  REQUIRE(loop.poller().stats().enters == enters);  // queued, nothing submitted yet
  REQUIRE(loop.poller().stats().requests == requests + n);
  REQUIRE(loop.run_once(0) == 0);
  REQUIRE(loop.poller().stats().enters == enters + 1);  // all twenty in one call
  for (auto& pr : pairs) REQUIRE(::send(pr.b.fd(), "data", 4, 0) == 4);
  run_until(loop, n);
  for (auto& op : ops) REQUIRE(op.result == 4);
  // Completions came back in at most a few turns, one enter each.
  REQUIRE(loop.poller().stats().enters - enters <= 4);
}

TEST_CASE("uring: a small stream send goes to the kernel untried, a large one is tried first", "[uring]") {
  Loop loop(uring());
  Pair pair;
  static char big[64 * 1024];
  Operation wr;
  init_op(wr, OpKind::send_all, pair.a.io, big, sizeof big);
  CHECK_FALSE(loop.poller().sends_untried(wr));
  char msg[] = "hello";
  init_op(wr, OpKind::send_all, pair.a.io, msg, 5);
  REQUIRE(loop.poller().sends_untried(wr));
  // Untried (op.tried false): one request, which the kernel tries when the
  // turn submits it -- no waiting for room first, and nothing sent before.
  completions = 0;
  uint64_t before = loop.poller().stats().requests;
  REQUIRE(loop.start(wr, monotonic_now() + 5) == 0);
  pollfd pfd{pair.b.fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 0) == 0);
  run_until(loop, 1);
  REQUIRE(wr.result == 5);
  REQUIRE(loop.poller().stats().requests == before + 1);
  char got[8];
  REQUIRE(::recv(pair.b.fd(), got, sizeof got, 0) == 5);
  REQUIRE(std::memcmp(got, "hello", 5) == 0);
  // Once a host watches the ring's fd, every request is submitted on its
  // own: an untried send would save nothing, and sends are tried first.
  REQUIRE(loop.poller().fd() >= 0);
  CHECK_FALSE(loop.poller().sends_untried(wr));
}

TEST_CASE("uring: an untried send into a full socket waits for room and loses nothing", "[uring]") {
  Loop loop(uring());
  Pair pair;
  // Fill a's send buffer (and b's receive buffer) with 'x'.
  std::string fill(4096, 'x');
  size_t filled = 0;
  for (;;) {
    ssize_t n = ::send(pair.a.fd(), fill.data(), fill.size(), MSG_DONTWAIT);
    if (n < 0) break;
    filled += (size_t)n;
  }
  REQUIRE(errno == EAGAIN);
  char msg[] = "the end";
  Operation wr;
  init_op(wr, OpKind::send_all, pair.a.io, msg, 7);
  completions = 0;
  REQUIRE(loop.start(wr, monotonic_now() + 5) == 0);
  REQUIRE(loop.run_once(0) >= 0);
  REQUIRE(completions == 0);  // no room: it waits in the kernel
  // Drain b until the message's end has come, in order, after every 'x'.
  std::string got;
  double start = monotonic_now();
  while (got.size() < filled + 7 && monotonic_now() - start < 5) {
    char buf[65536];
    ssize_t n = ::recv(pair.b.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, (size_t)n);
    REQUIRE(loop.run_once(0) >= 0);
  }
  run_until(loop, 1);
  REQUIRE(wr.result == 7);
  REQUIRE(got.size() == filled + 7);
  REQUIRE(got.find_first_not_of('x') == filled);
  REQUIRE(got.substr(filled) == "the end");
}
