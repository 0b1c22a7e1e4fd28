// What the kqueue backend does beyond the loop tests every readiness backend
// runs (test_loop.cpp): registrations batched into the wait, a failed
// change that leaves the others alone, forget and abandon. Built where the
// kqueue backend is (on Linux through libkqueue).
#ifdef SOCK_HAVE_KQUEUE

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "sock/clock.hpp"
#include "sock/loop.hpp"
#include "sock/socket.hpp"

using namespace sock;

namespace {

// A unix stream pair as raw fds, with a handle and a recv op on the first.
struct Waiter {
  int fds[2] = {-1, -1};
  IoHandle h;
  char buf[8];
  Operation op;
  bool done = false;
  Waiter() {
    REQUIRE(make_socketpair(SOCK_STREAM, fds) == 0);
    h.fd = fds[0];
    op.prepare(OpKind::recv, &h, buf, sizeof buf);
    op.owner = this;
    op.on_complete = [](Operation* o) { static_cast<Waiter*>(o->owner)->done = true; };
  }
  ~Waiter() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  void start(Loop& loop) {
    REQUIRE_FALSE(Loop::try_now(op));
    REQUIRE(loop.start(op, monotonic_now() + 5) == 0);
  }
  void poke() { REQUIRE(::send(fds[1], "x", 1, 0) == 1); }
};

std::unique_ptr<Poller> kqueue_poller() {
  int err = 0;
  auto p = make_kqueue_poller(&err);
  REQUIRE(p);
  return p;
}

void run_until(Loop& loop, const std::vector<std::unique_ptr<Waiter>>& ws) {
  double start = monotonic_now();
  for (;;) {
    bool all = true;
    for (auto& w : ws) all = all && w->done;
    if (all || monotonic_now() - start > 5) return;
    REQUIRE(loop.run_once(1) >= 0);
  }
}

}  // namespace

TEST_CASE("kqueue: make_poller picks it by name", "[kqueue]") {
  const char* why = nullptr;
  auto p = make_poller("kqueue", &why);
  REQUIRE(p);
  CHECK(std::string(p->name()) == "kqueue");
  CHECK(why == nullptr);
  CHECK(p->fd() >= 0);
}

TEST_CASE("kqueue: registrations go to the kernel with the next wait, not one syscall each", "[kqueue]") {
  Loop loop(kqueue_poller());
  std::vector<std::unique_ptr<Waiter>> ws;
  for (int i = 0; i < 10; i++) {
    ws.push_back(std::make_unique<Waiter>());
    ws.back()->start(loop);
  }
  CHECK(loop.poller().stats().enters == 0);
  REQUIRE(loop.run_once(0) == 0);
  CHECK(loop.poller().stats().enters == 1);
  for (auto& w : ws) w->poke();
  run_until(loop, ws);
  for (auto& w : ws) {
    CHECK(w->done);
    CHECK(w->op.result == 1);
    loop.close_handle(w->h);
  }
}

TEST_CASE("kqueue: a full changelist is flushed, and every registration in it holds", "[kqueue]") {
  Loop loop(kqueue_poller());
  std::vector<std::unique_ptr<Waiter>> ws;
  for (int i = 0; i < 100; i++) {  // 200 changes: more than one changelist
    ws.push_back(std::make_unique<Waiter>());
    ws.back()->start(loop);
  }
  uint64_t flushes = loop.poller().stats().enters;
  CHECK(flushes >= 1);
  CHECK(flushes <= 4);
  for (auto& w : ws) w->poke();
  run_until(loop, ws);
  for (auto& w : ws) {
    CHECK(w->done);
    CHECK(w->op.result == 1);
    loop.close_handle(w->h);
  }
}

TEST_CASE("kqueue: more fds ready at once than one wait takes are all served", "[kqueue]") {
  // 300 readable and writable fds: 600 events, more than one kevent() call
  // returns (and with libkqueue, more than it keeps: see the backend).
  Loop loop(kqueue_poller());
  std::vector<std::unique_ptr<Waiter>> ws;
  for (int i = 0; i < 300; i++) {
    ws.push_back(std::make_unique<Waiter>());
    ws.back()->start(loop);
  }
  REQUIRE(loop.run_once(0) == 0);
  for (auto& w : ws) w->poke();
  run_until(loop, ws);
  int served = 0;
  for (auto& w : ws) {
    served += w->done && w->op.result == 1;
    loop.close_handle(w->h);
  }
  CHECK(served == 300);
}

TEST_CASE("kqueue: a change that fails fails its op and leaves the others alone", "[kqueue]") {
  Loop loop(kqueue_poller());
  std::vector<std::unique_ptr<Waiter>> ws;
  for (int i = 0; i < 3; i++) ws.push_back(std::make_unique<Waiter>());
  ws[0]->start(loop);
  ws[1]->start(loop);
  ::close(ws[1]->fds[0]);  // closed behind the loop's back, its change still queued
  ws[2]->start(loop);
  REQUIRE(loop.run_once(0) == 1);  // the failed one completes
  CHECK(ws[1]->done);
  CHECK(ws[1]->op.result == -EBADF);
  CHECK_FALSE(ws[0]->done);
  CHECK_FALSE(ws[2]->done);
  ws[1]->fds[0] = -1;
  ws[1]->done = true;
  ws[0]->poke();
  ws[2]->poke();
  run_until(loop, ws);
  CHECK(ws[0]->op.result == 1);
  CHECK(ws[2]->op.result == 1);
  loop.close_handle(ws[0]->h);
  loop.close_handle(ws[2]->h);
}

TEST_CASE("kqueue: a handle closed before its change went out never reaches the kernel", "[kqueue]") {
  Loop loop(kqueue_poller());
  Waiter a;
  a.start(loop);  // queued, not yet sent
  REQUIRE(loop.close_fd(a.h) == 0);
  a.fds[0] = -1;
  // The number is free again; a socket that takes it is not registered, and
  // its data must not be reported for the closed handle.
  int fds[2];
  REQUIRE(make_socketpair(SOCK_STREAM, fds) == 0);
  REQUIRE(::send(fds[1], "x", 1, 0) == 1);
  CHECK(loop.poller().wait(0) == 0);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("kqueue: forget deletes the filters of a registered handle whose file lives on", "[kqueue]") {
  // As in a fork()'s child: another fd keeps the file open after ours is
  // closed. A kernel kqueue drops the filters with our fd; libkqueue
  // (epoll underneath) would keep them without the delete.
  Loop loop(kqueue_poller());
  Waiter a;
  a.start(loop);
  REQUIRE(loop.run_once(0) == 0);  // registered now
  int other = ::dup(a.fds[0]);
  REQUIRE(other >= 0);
  REQUIRE(loop.close_fd(a.h) == 0);
  a.fds[0] = -1;
  CHECK(loop.run_once(0) == 1);
  CHECK(a.done);  // closing woke the recv
  a.poke();  // the file, still open through `other`, becomes readable
  CHECK(loop.poller().wait(0) == 0);
  ::close(other);
}

TEST_CASE("kqueue: abandon drops the kqueue without closing its fd", "[kqueue]") {
  auto p = kqueue_poller();
  int fd = p->fd();
  p->abandon();
  CHECK(p->fd() == -1);
  p.reset();
  // Still open: after a fork() the number may belong to another file.
  CHECK(::fcntl(fd, F_GETFD) >= 0);
  ::close(fd);
}

#endif  // SOCK_HAVE_KQUEUE
