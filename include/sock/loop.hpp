// The event loop: a poller, a timer heap and a queue of finished operations.
// It knows nothing about Lua: whoever starts an operation gives it an
// on_complete callback, and the loop calls that once the result is known.
#pragma once

#include <memory>

#include "sock/operation.hpp"
#include "sock/poller.hpp"
#include "sock/timer_heap.hpp"

namespace sock {

class Loop {
 public:
  explicit Loop(std::unique_ptr<Poller> poller);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Poller& poller() { return *poller_; }

  // Try the op's syscall once, now. True if it finished (result in op).
  // connect/readable/writable ops are never tried: they only wait.
  static bool try_now(Operation& op);

  // The same through the backend, which may serve the op from what it
  // already holds (see Poller::try_now).
  bool try_op(Operation& op) {
    op.tried = true;
    return poller_->try_now(op);
  }

  // Wait for `op` (which would block) to finish; `expires` is a deadline in
  // monotonic seconds, or < 0 for none. Returns 0 (op.on_complete will be
  // called later), 1 if the backend finished it at once (result in op,
  // on_complete is not called), or -code when it cannot wait: -ERR_BUSY if another op
  // already waits on the same side of the fd, -ETIMEDOUT if `expires` has
  // already passed, or the backend's error.
  int start(Operation& op, double expires);

  // Withdraw a pending op; it completes with result -code.
  void cancel(Operation& op, int code);

  // Cancel whatever waits on `handle` with ERR_CLOSED and tell the backend
  // the fd is going away. The caller closes the fd afterwards.
  void close_handle(IoHandle& handle);

  // close_handle, then close the fd through the backend (handle.fd becomes
  // -1). Returns 0 or -errno.
  int close_fd(IoHandle& handle);

  // shutdown(2) through the backend: 0 or -errno.
  int shutdown_fd(IoHandle& handle, int how) { return poller_->shutdown(handle, how); }

  // Timers that are not tied to an op (sleeps). `t.on_fire` runs from run_once.
  void add_timer(Timer& t, double when);
  bool remove_timer(Timer& t);

  // Backends call this for every op that finished.
  void complete(Operation& op);

  // Wait up to `timeout` seconds (< 0: until something happens) for I/O or a
  // timer, then run the callbacks of the timers due and of the ops that had
  // finished when the turn began (what they complete runs next turn). Returns
  // the number of callbacks run, or -errno from the poller.
  int run_once(double timeout);

  // Stop running callbacks in the current run_once; the rest run next time.
  // (The binding uses it to raise a thread's error without losing work.)
  void interrupt() { interrupted_ = true; }

  // Whether the last run_once's wait was cut short by a signal (EINTR): the
  // host may want to act on the signal (run a handler, stop).
  bool signalled() const { return signalled_; }

  size_t timers() const { return timers_.size(); }
  bool has_ready() const { return ready_head_ != nullptr; }

  // When the earliest armed timer (a sleep or an op's deadline) is due, in
  // monotonic seconds, or < 0 if none is armed. A host that drives the loop
  // from its own poll() uses it (with has_ready()) to know when to call
  // run_once(0) even though fd() did not become readable.
  double next_timer_due() const {
    const Timer* t = timers_.top();
    return t ? t->when : -1;
  }

 private:
  static void on_deadline(Timer* t);
  void cancel_waiters(IoHandle& handle);  // both sides, with ERR_CLOSED
  void push_ready(Operation& op);
  Operation* pop_ready();
  int fire_timers(double now);

  std::unique_ptr<Poller> poller_;
  TimerHeap timers_;
  Operation* ready_head_ = nullptr;
  Operation* ready_tail_ = nullptr;
  bool interrupted_ = false;
  bool signalled_ = false;
  bool firing_ = false;     // inside fire_timers, whose pass fires what is due at firing_now_
  double firing_now_ = 0;
};

}  // namespace sock
