#include "sock/loop.hpp"

#include <cerrno>
#include <climits>
#include <cmath>

#include "sock/clock.hpp"
#include "sock/error.hpp"

namespace sock {

Loop::Loop(std::unique_ptr<Poller> poller) : poller_(std::move(poller)) { poller_->loop = this; }

Loop::~Loop() = default;

bool Loop::try_now(Operation& op) {
  switch (op.kind) {
    case OpKind::connect:  // tried when it has an address to connect to
      return op.addr && !op.done && perform(op);
    case OpKind::wakeup:
    case OpKind::readable:
    case OpKind::writable:
      return false;
    default:
      return perform(op);
  }
}

static Operation*& slot_of(Operation& op) {
  return is_read_side(op.kind) ? op.handle->reader : op.handle->writer;
}

int Loop::start(Operation& op, double expires) {
  op.loop = this;
  op.cancel_code = 0;
  if (expires >= 0 && expires <= monotonic_now()) return -ETIMEDOUT;
  Operation*& slot = slot_of(op);
  if (slot) return -ERR_BUSY;
  slot = &op;
  int rc = poller_->submit(op);
  if (rc != 0) {  // could not wait, or finished at once
    slot = nullptr;
    return rc;
  }
  op.pending = true;
  if (expires >= 0) {
    op.deadline.owner = &op;
    op.deadline.on_fire = on_deadline;
    op.deadline.when = expires;
    timers_.push(&op.deadline);
  }
  return 0;
}

void Loop::on_deadline(Timer* t) {
  Operation* op = static_cast<Operation*>(t->owner);
  op->loop->cancel(*op, ETIMEDOUT);
}

void Loop::cancel(Operation& op, int code) {
  if (!op.pending || op.cancel_code) return;
  op.cancel_code = code;
  timers_.remove(&op.deadline);
  if (poller_->cancel(op)) {
    op.result = -code;
    complete(op);
  }
}

void Loop::cancel_waiters(IoHandle& handle) {
  if (handle.reader) cancel(*handle.reader, ERR_CLOSED);
  if (handle.writer) cancel(*handle.writer, ERR_CLOSED);
}

void Loop::close_handle(IoHandle& handle) {
  cancel_waiters(handle);
  poller_->forget(handle);
}

int Loop::close_fd(IoHandle& handle) {
  if (handle.fd == invalid_socket) return 0;
  cancel_waiters(handle);
  return poller_->close(handle);
}

void Loop::complete(Operation& op) {
  if (!op.pending) return;
  // A completion backend reports a withdrawn op as ECANCELED; the caller
  // wants to know why it was withdrawn.
  if (op.cancel_code && op.result == -ECANCELED) op.result = -op.cancel_code;
  Operation*& slot = slot_of(op);
  if (slot == &op) slot = nullptr;
  timers_.remove(&op.deadline);
  op.pending = false;
  push_ready(op);
}

void Loop::add_timer(Timer& t, double when) {
  timers_.remove(&t);
  // Armed by a timer's callback for a time already due (a sleep_until in the
  // past, runevery(0, f)): it fires next turn, after every timer due now.
  // Its old time would keep it at the top of the heap, ahead of the others,
  // turn after turn.
  if (firing_ && when <= firing_now_) when = std::nextafter(firing_now_, HUGE_VAL);
  t.when = when;
  timers_.push(&t);
}

bool Loop::remove_timer(Timer& t) { return timers_.remove(&t); }

void Loop::push_ready(Operation& op) {
  op.next_ready = nullptr;
  if (ready_tail_)
    ready_tail_->next_ready = &op;
  else
    ready_head_ = &op;
  ready_tail_ = &op;
}

Operation* Loop::pop_ready() {
  Operation* op = ready_head_;
  if (op) {
    ready_head_ = op->next_ready;
    if (!ready_head_) ready_tail_ = nullptr;
    op->next_ready = nullptr;
  }
  return op;
}

int Loop::fire_timers(double now) {
  // Only timers due now, and at most as many as there are: a callback that
  // re-arms its timer for "now" must not keep this loop going forever.
  size_t budget = timers_.size();
  int fired = 0;
  firing_ = true;
  firing_now_ = now;
  while (budget-- > 0 && !interrupted_) {
    Timer* t = timers_.top();
    if (!t || t->when > now) break;
    timers_.pop();
    t->on_fire(t);
    fired++;
  }
  firing_ = false;
  return fired;
}

int Loop::run_once(double timeout) {
  interrupted_ = false;
  signalled_ = false;
  firing_ = false;  // (should a callback have raised out of the last pass)
  int timeout_ms;
  if (ready_head_) {
    timeout_ms = 0;
  } else {
    double wait = timeout;
    if (Timer* t = timers_.top()) {
      double until = t->when - monotonic_now();
      if (until < 0) until = 0;
      if (wait < 0 || until < wait) wait = until;
    }
    if (wait < 0 || wait * 1000.0 >= (double)INT_MAX)
      timeout_ms = -1;
    else
      timeout_ms = (int)std::ceil(wait * 1000.0);  // never wake before the deadline: no spinning
  }
  int n = poller_->wait(timeout_ms);
  if (n < 0 && n != -EINTR) return n;
  signalled_ = n == -EINTR;
  int ran = fire_timers(monotonic_now());
  // Only what was ready when the turn began: ops that callbacks complete
  // meanwhile wait for the next turn, which polls first, so a turn always
  // ends however much work keeps becoming ready.
  Operation* last = ready_tail_;
  while (last && !interrupted_) {
    Operation* op = pop_ready();
    if (!op) break;
    op->on_complete(op);
    ran++;
    if (op == last) break;
  }
  return ran;
}

}  // namespace sock
