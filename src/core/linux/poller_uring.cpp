// The io_uring backend (liburing). Completion-based: each waiting op is one
// request in the ring, and its completion (CQE) carries the result.
//
// Readiness: a send that would have blocked asks the kernel to wait for room
// before trying (POLL_FIRST): a full socket buffer does not empty within a
// turn. A recv does not: its request reaches the kernel at the end of the
// turn, and by then the peer has often answered, so the kernel's own first
// try completes it with no poll armed at all. (Measured on the 100-connection
// ping-pong: 6-14% more requests per second than with POLL_FIRST on recvs.)
//
// Batching: submit() and cancel() only queue SQEs; wait() hands them all to
// the kernel and waits for completions in one io_uring_enter per loop turn.
//
// Lifetimes: a request's user_data is its op's address (ops are pointer
// aligned, so the low bits carry a tag). Until the op's CQE arrives the
// kernel may write into the op, its buffer and its handle; handle.inflight
// counts the handle's requests the kernel holds. Cancelling is asynchronous:
// the cancel request carries no pointer, and the op's own CQE (-ECANCELED,
// or a result that won the race) completes it. Destroying the poller
// withdraws every request and drains the ring without touching any op,
// since the ops may be gone by then.
//
// Accept: on 5.19+ a listener gets one multishot accept, armed by its first
// accept op. The kernel then accepts every connection as it arrives and
// posts a CQE per new fd; fds nobody waits for yet queue here (up to
// max_ready_accepts, then the multishot is stopped until the queue drains),
// and an accept op takes from that queue without a syscall. With the queue
// empty an accept is tried with accept4() first, as everywhere, so running
// out of fds is reported at once.
//
// Close goes through the ring too, as a request submitted at once: its
// result is returned synchronously, and a close must have happened (the port
// freed, the peer told) when close() returns. Shutdown is the plain syscall
// (see shutdown()).
//
// Threads: on kernels with DEFER_TASKRUN (6.1) the ring belongs to the first
// thread that submits to it; a Loop must then be driven by that one thread.
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "sock/loop.hpp"
#include "sock/poller.hpp"

namespace sock {

namespace {

constexpr uint64_t tag_mask = 7;
constexpr uint64_t tag_op = 0;         // an op's own request
constexpr uint64_t tag_accept = 1;     // an accept's: a late success is an fd to close on teardown
constexpr uint64_t ud_internal = 2;    // cancels and closes: nothing to do when they finish
constexpr uint64_t tag_multishot = 3;  // a listener's multishot accept: the AcceptQueue's address
constexpr uint64_t tag_sync = 4;       // a request whose caller waits for it (close)

// IoHandle::backend_state: the handle has an AcceptQueue.
constexpr uint32_t has_accept_queue = 1;

// The most bytes one request asks for: sqe->len is 32 bits, and a length
// truncated to them would read as a false end of stream or an empty send
// resubmitted forever. recv_all/send_all go on with a new request.
constexpr size_t max_request_len = size_t(1) << 30;

// Accepted connections a listener may hold for accept calls to come before
// the multishot is stopped, leaving the rest in the kernel's backlog.
constexpr size_t max_ready_accepts = 64;

// The largest stream send handed to the kernel untried (see sends_untried).
constexpr size_t max_untried_send = 16 * 1024;

// One listener's multishot accept and the connections it took that no
// accept op has asked for yet.
struct AcceptQueue {
  IoHandle* handle = nullptr;    // null once the listener is closed
  Operation* waiter = nullptr;   // the accept op waiting for the next connection
  bool armed = false;            // the multishot request is in the kernel
  bool stopping = false;         // a cancel for it is queued
  bool accepted_any = false;     // the kernel took the multishot flag at least once
  std::deque<int> ready;         // accepted fds, oldest first
};

// The result of a tag_sync request, which its caller reaps at once. Aligned
// so that its address leaves the tag bits free.
struct alignas(8) SyncResult {
  bool done = false;
  int res = 0;
};

// recvmsg/sendmsg need a msghdr the kernel reads, and writes back on
// completion (msg_namelen), so it must outlive the request.
struct MsgSlot {
  msghdr msg;
  iovec iov;
  MsgSlot* next_free;
};

uint64_t key_of(const Operation& op) {
  return (uint64_t)(uintptr_t)&op | (op.kind == OpKind::accept ? tag_accept : tag_op);
}

bool is_op(uint64_t ud) {
  uint64_t tag = ud & tag_mask;
  return ud != LIBURING_UDATA_TIMEOUT && (tag == tag_op || tag == tag_accept);
}

class UringPoller final : public Poller {
 public:
  UringPoller() { deferred_cancels_.reserve(16); }

  // 0, or -errno when the kernel will not give us a ring.
  int init() {
    // Newest kernels first. DEFER_TASKRUN runs completions only when we ask
    // for them (one batch per turn instead of interrupting whatever syscall
    // we are in), and R_DISABLED lets the thread that first drives the loop
    // own the ring rather than the one that built it. COOP_TASKRUN and
    // TASKRUN_FLAG do the same, less well, on 5.19+. SUBMIT_ALL keeps a
    // batch going past one bad request. The CQ is larger than the SQ: many
    // requests wait at once, while the SQ only holds one turn's submissions.
    const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                          IORING_SETUP_TASKRUN_FLAG;
    const unsigned flag_sets[] = {
        base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
        base,
        IORING_SETUP_CQSIZE,
        0,
    };
    // Before 5.12 ring memory counts against RLIMIT_MEMLOCK: try smaller rings.
    const unsigned sizes[][2] = {{1024, 4096}, {256, 1024}, {64, 256}};
    int rc = -EINVAL;
    for (auto& size : sizes) {
      for (unsigned flags : flag_sets) {
        io_uring_params p{};
        p.flags = flags;
        p.cq_entries = size[1];
        rc = io_uring_queue_init_params(size[0], &ring_, &p);
        if (rc == 0) {
          // IORING_RECVSEND_POLL_FIRST came with COOP_TASKRUN, in 5.19.
          poll_first_ = flags & IORING_SETUP_COOP_TASKRUN;
          multishot_accept_ = poll_first_;  // both came in 5.19
          enabled_ = !(flags & IORING_SETUP_R_DISABLED);
          ready_ = true;
          return 0;
        }
        if (rc != -EINVAL) break;
      }
      if (rc != -ENOMEM) break;
    }
    return rc;
  }

  ~UringPoller() override {
    if (!ready_) return;
    if (!abandoned_) drain();
    io_uring_queue_exit(&ring_);
    for (auto& kv : accept_queues_) delete kv.second;
    for (AcceptQueue* q : orphans_) delete q;
  }

  const char* name() const override { return "io_uring"; }
  bool completes_ops() const override { return true; }
  // Small sends only: a large one is better started at once, and measured
  // slower through the ring (bulk echo of 64 KiB chunks: 0.8x the rate at
  // 1.2x the CPU per MB); its syscall is small next to its bytes anyway. Not
  // once a host drives the loop (eager_): each request is then submitted on
  // its own, and the send would cost its syscall all the same.
  bool sends_untried(const Operation& op) const override { return !eager_ && op.len <= max_untried_send; }

  int fd() const override {
    // A host watching this fd calls us only when it is readable: from now on
    // nothing may wait in the SQ for the next turn.
    eager_ = true;
    if (io_uring_sq_ready(&ring_)) flush_ring();
    return ring_.ring_fd;
  }

  bool try_now(Operation& op) override {
    if (op.kind == OpKind::connect) return false;  // the kernel connects (see submit)
    if (op.kind == OpKind::accept && (op.handle->backend_state & has_accept_queue)) {
      auto it = accept_queues_.find(op.handle);  // (the flag may be another poller's)
      if (it != accept_queues_.end() && !it->second->ready.empty()) {
        take_ready(*it->second, op);
        return true;
      }
    }
    return Poller::try_now(op);
  }

  void abandon() override {
    // The ring's memory and fd are the parent's too: unmapping and closing
    // our copies (io_uring_queue_exit, in the destructor) is all we may do.
    // The accepted connections queued here are copies as well: close ours.
    abandoned_ = true;
    for (auto& kv : accept_queues_) close_ready(*kv.second);
  }

  int submit(Operation& op) override {
    int rc = op.kind == OpKind::accept && multishot_accept_ ? wait_accept(op) : queue(op, op.tried);
    if (rc == 0 && eager_) flush_ring();
    return rc;
  }

  bool cancel(Operation& op) override {
    // An accept waiting on a multishot has no request of its own: it just
    // stops waiting (the multishot goes on filling the queue).
    if (op.kind == OpKind::accept && op.backend_data) {
      AcceptQueue* q = static_cast<AcceptQueue*>(op.backend_data);
      op.backend_data = nullptr;
      if (q->waiter == &op) q->waiter = nullptr;
      return true;
    }
    // Always asynchronous: even a request still in the SQ is matched by a
    // cancel queued behind it. The op's own CQE completes it.
    uint64_t key = key_of(op);
    if (io_uring_sqe* sqe = get_sqe()) {
      io_uring_prep_cancel64(sqe, key, 0);
      io_uring_sqe_set_data64(sqe, ud_internal);
      if (eager_) flush_ring();
    } else {
      deferred_cancels_.push_back(key);  // the ring is jammed: retried next turn
    }
    return false;
  }

  void forget(IoHandle& h) override {
    drop_accept_queue(h);
    // Requests still in the SQ name the fd by number, and the number may be
    // reused as soon as it is closed: hand them (and the cancels queued
    // behind them) to the kernel now, while the fd is still this socket.
    // Once submitted they hold their own reference to the file.
    if (h.inflight && io_uring_sq_ready(&ring_)) flush_ring();
  }

  int close(IoHandle& h) override {
    bool held = drop_accept_queue(h);  // (first: it must run either way)
    held = held || h.inflight > 0;
    io_uring_sqe* sqe = h.fd >= 0 ? get_sqe() : nullptr;
    if (!sqe) return Poller::close(h);
    // Behind the fd's cancels, so nothing queued for it can reach a reused
    // fd number: the number stays taken until this close runs.
    int fd = h.fd;
    io_uring_prep_close(sqe, fd);
    expect_sync(sqe);
    h.fd = -1;
    if (flush_ring() < 0) {
      // The request never reached the kernel: make it a no-op, so that it
      // cannot close a reused fd number later, and close the fd ourselves.
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, ud_internal);
      return ::close(fd) < 0 && errno != EINTR ? -errno : 0;
    }
    // Requests the kernel still holds keep the file open past its fd. Run
    // their cancellations now (DEFER_TASKRUN would wait for our next turn),
    // so the socket really closes: the port is free, the peer sees it.
    if (held) io_uring_get_events(&ring_);
    reap();  // the close's own CQE was posted when it was submitted
    return sync_.done ? sync_.res : 0;
  }

  int shutdown(IoHandle& h, int how) override {
    // The plain syscall, after handing the kernel what is queued for the
    // turn, so that requests made before the shutdown reach it first. Not
    // a ring request: its result is returned at once, and a request still
    // in flight when we stopped waiting for it would name the fd by number
    // and could shut down whatever socket reuses that number later.
    if (h.fd >= 0 && h.inflight && io_uring_sq_ready(&ring_)) flush_ring();
    return Poller::shutdown(h, how);
  }

  int wait(int timeout_ms) override {
    requeue_cancels();
    int rc = enable();
    if (rc < 0) return rc;
    if (timeout_ms == 0 || io_uring_cq_ready(&ring_)) {
      rc = 0;
      if (io_uring_sq_ready(&ring_)) {
        note_submitted();
        rc = io_uring_submit(&ring_);
      }
    } else if (timeout_ms < 0) {
      note_submitted();
      rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts;
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
      io_uring_cqe* cqe;
      note_submitted();
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    // ETIME: the timeout passed; EBUSY/EAGAIN: the kernel wants completions
    // reaped first (it keeps the submissions queued).
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) return rc;
    int n = reap();
    if (n == 0 && rc == -EINTR) return -EINTR;
    return n;
  }

 private:
  int enable() const {
    if (enabled_) return 0;
    // io_uring_enable_rings() is declared by liburing 2.3 but not exported
    // by its shared library: make the call it would make.
    if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) return -errno;
    enabled_ = true;
    return 0;
  }

  int flush_ring() const {
    int rc = enable();
    if (rc < 0) return rc;
    note_submitted();
    return io_uring_submit(&ring_);
  }

  void note_submitted() const { stats_.enters++; }

  // `sqe` is a request whose caller reaps its result at once, from sync_.
  void expect_sync(io_uring_sqe* sqe) {
    sync_ = SyncResult{};
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&sync_ | tag_sync);
    stats_.requests++;
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // full: make room by submitting what is queued
      flush_ring();
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  // --- multishot accept ---------------------------------------------------

  // An accept op: served from the queue at once (1), or left waiting there (0).
  int wait_accept(Operation& op) {
    IoHandle& h = *op.handle;
    AcceptQueue*& slot = accept_queues_[&h];
    if (!slot) {
      slot = new AcceptQueue;
      slot->handle = &h;
      h.backend_state |= has_accept_queue;
    }
    AcceptQueue& q = *slot;
    if (!q.ready.empty()) {
      take_ready(q, op);
      return 1;
    }
    q.waiter = &op;
    op.backend_data = &q;
    if (!q.armed) {
      int rc = arm(q);
      if (rc < 0) {
        q.waiter = nullptr;
        op.backend_data = nullptr;
        return rc;
      }
    }
    return 0;  // armed, or stopping: its last CQE arms it again for us
  }

  void take_ready(AcceptQueue& q, Operation& op) {
    op.result = q.ready.front();
    op.addrlen = 0;  // a multishot accept does not give the peer's address
    q.ready.pop_front();
    stats_.multishot_served++;
  }

  void close_ready(AcceptQueue& q) {
    for (int fd : q.ready) ::close(fd);
    q.ready.clear();
  }

  // The accept op waiting on `q`, no longer waiting there; null if none.
  static Operation* detach_waiter(AcceptQueue& q) {
    Operation* op = q.waiter;
    q.waiter = nullptr;
    if (op) op->backend_data = nullptr;
    return op;
  }

  // Complete the waiting accept op, if any, with `result` (an fd or -errno).
  void complete_waiter(AcceptQueue& q, int result) {
    if (Operation* op = detach_waiter(q)) {
      op->result = result;
      op->addrlen = 0;
      loop->complete(*op);
    }
  }

  int arm(AcceptQueue& q) {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return -EBUSY;
    io_uring_prep_multishot_accept(sqe, q.handle->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&q | tag_multishot);
    q.armed = true;
    q.stopping = false;
    inflight_++;
    stats_.requests++;
    stats_.multishot_arms++;
    return 0;
  }

  void stop(AcceptQueue& q) {
    if (!q.armed || q.stopping) return;
    if (io_uring_sqe* sqe = get_sqe()) {
      io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&q | tag_multishot, 0);
      io_uring_sqe_set_data64(sqe, ud_internal);
      q.stopping = true;
      if (eager_) flush_ring();
    }
  }

  // The listener is closing: its queued connections go (their peers see a
  // reset or EOF, as with a closed backlog), and the multishot is stopped.
  // The queue itself lives on until the kernel's last CQE for it.
  // Returns whether the kernel still holds a request for it.
  bool drop_accept_queue(IoHandle& h) {
    if (!(h.backend_state & has_accept_queue)) return false;
    h.backend_state &= ~has_accept_queue;
    auto it = accept_queues_.find(&h);
    if (it == accept_queues_.end()) return false;
    AcceptQueue* q = it->second;
    accept_queues_.erase(it);
    close_ready(*q);
    q->handle = nullptr;
    detach_waiter(*q);
    if (!q->armed) {
      delete q;
      return false;
    }
    stop(*q);
    orphans_.push_back(q);
    return true;
  }

  static bool is_listening(int fd) {
    int on = 0;
    socklen_t len = sizeof on;
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
  }

  void on_accept(AcceptQueue* q, int res, bool more) {
    if (!more) {
      q->armed = false;
      q->stopping = false;
      inflight_--;
    }
    if (!q->handle) {  // the listener is gone: nobody will take this one
      if (res >= 0) ::close(res);
      if (!more) {
        orphans_.erase(std::find(orphans_.begin(), orphans_.end(), q));
        delete q;
      }
      return;
    }
    if (res >= 0) {
      q->accepted_any = true;
      if (q->waiter) {
        complete_waiter(*q, res);
      } else {
        q->ready.push_back(res);
        if (q->ready.size() >= max_ready_accepts) stop(*q);
      }
    } else if (res == -EINVAL && !q->accepted_any && is_listening(q->handle->fd)) {
      // A kernel without multishot accept (a socket that is not listening
      // gets EINVAL too, but the accept4() tried first has reported that):
      // single-shot from now on.
      multishot_accept_ = false;
      if (Operation* op = detach_waiter(*q)) {
        int rc = queue(*op, false);
        if (rc < 0) {
          op->result = rc;
          loop->complete(*op);
        }
      }
      return;
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
      complete_waiter(*q, res);  // EMFILE and the like; the next accept re-arms
    }
    if (!more && q->waiter) {
      int rc = arm(*q);
      if (rc < 0) complete_waiter(*q, rc);
    }
  }

  void requeue_cancels() {
    if (deferred_cancels_.empty()) return;
    size_t done = 0;
    for (; done < deferred_cancels_.size(); done++) {
      io_uring_sqe* sqe = get_sqe();
      if (!sqe) break;
      io_uring_prep_cancel64(sqe, deferred_cancels_[done], 0);
      io_uring_sqe_set_data64(sqe, ud_internal);
    }
    deferred_cancels_.erase(deferred_cancels_.begin(), deferred_cancels_.begin() + done);
  }

  // Queue the op's request. `first`: the op was just tried and would have
  // blocked (a send then waits for room before trying again; an untried
  // one, see sends_untried, is tried by the kernel at once).
  int queue(Operation& op, bool first) {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return -EBUSY;
    int fd = op.handle->fd;
    // The kernel fails a request flagged MSG_DONTWAIT instead of waiting, and
    // holds one flagged MSG_WAITALL until it has every byte, where epoll's
    // non-blocking recv returns what there is: both are the caller's to
    // have on the try, not on the request.
    int flags = op.flags & ~(MSG_DONTWAIT | MSG_WAITALL);
    // recv_all/send_all are one request per partial transfer, as epoll makes
    // one syscall per partial transfer: not MSG_WAITALL, with which the kernel
    // (5.18+) reports the bytes moved and swallows the error that stopped it
    // (7 bytes then a reset came back as 7, then a false end of stream).
    size_t left = std::min(op.len - op.done, max_request_len);
    bool data = true;
    switch (op.kind) {
      case OpKind::recv:
      case OpKind::recv_all:
        io_uring_prep_recv(sqe, fd, op.buf + op.done, left, flags);
        break;
      case OpKind::send:
      case OpKind::send_all:
        io_uring_prep_send(sqe, fd, op.buf + op.done, left, flags | MSG_NOSIGNAL);
        break;
      case OpKind::recvfrom:
      case OpKind::sendto: {
        MsgSlot* m = slot_for(op);
        m->iov.iov_base = op.buf;
        m->iov.iov_len = std::min(op.len, max_request_len);
        m->msg = msghdr{};
        m->msg.msg_name = op.addr;
        m->msg.msg_iov = &m->iov;
        m->msg.msg_iovlen = 1;
        if (op.kind == OpKind::recvfrom) {
          m->msg.msg_namelen = op.addr ? sizeof(sockaddr_storage) : 0;
          io_uring_prep_recvmsg(sqe, fd, &m->msg, flags);
        } else {
          m->msg.msg_namelen = op.addr ? op.addrlen : 0;
          io_uring_prep_sendmsg(sqe, fd, &m->msg, flags | MSG_NOSIGNAL);
        }
        break;
      }
      case OpKind::accept:
        op.addrlen = sizeof(sockaddr_storage);
        io_uring_prep_accept(sqe, fd, (sockaddr*)op.addr, op.addr ? &op.addrlen : nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        data = false;
        break;
      case OpKind::readable:
      case OpKind::wakeup:  // then reset by perform, on completion
        io_uring_prep_poll_add(sqe, fd, POLLIN);
        data = false;
        break;
      case OpKind::connect:
        if (op.addr) {  // the kernel connects (and waits for it)
          io_uring_prep_connect(sqe, fd, (const sockaddr*)op.addr, op.addrlen);
          data = false;
          break;
        }
        // A connect() already in progress: wait for writability, then read SO_ERROR.
        io_uring_prep_poll_add(sqe, fd, POLLOUT);
        data = false;
        break;
      case OpKind::writable:
      case OpKind::send_file:  // then one step by perform, on completion
        io_uring_prep_poll_add(sqe, fd, POLLOUT);
        data = false;
        break;
    }
    bool sending = op.kind == OpKind::send || op.kind == OpKind::send_all || op.kind == OpKind::sendto;
    if (data && sending && first && poll_first_) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, key_of(op));
    op.handle->inflight++;
    inflight_++;
    stats_.requests++;
    return 0;
  }

  MsgSlot* slot_for(Operation& op) {
    if (op.backend_data) return static_cast<MsgSlot*>(op.backend_data);
    if (!free_slots_) {  // grows in chunks: a busy UDP socket allocates nothing per op
      constexpr size_t chunk = 32;
      slot_chunks_.emplace_back(new MsgSlot[chunk]);
      for (size_t i = 0; i < chunk; i++) {
        slot_chunks_.back()[i].next_free = free_slots_;
        free_slots_ = &slot_chunks_.back()[i];
      }
    }
    MsgSlot* m = free_slots_;
    free_slots_ = m->next_free;
    op.backend_data = m;
    return m;
  }

  void release_slot(Operation& op) {
    if (!op.backend_data) return;
    MsgSlot* m = static_cast<MsgSlot*>(op.backend_data);
    m->next_free = free_slots_;
    free_slots_ = m;
    op.backend_data = nullptr;
  }

  // Handle every completion there is. Returns how many were seen.
  int reap() {
    int total = 0;
    io_uring_cqe* cqes[64];
    struct {
      uint64_t ud;
      int res;
      unsigned flags;
    } done[64];
    // Bounded, so completions that keep arriving cannot hold the loop here.
    for (int rounds = 0; rounds < 64; rounds++) {
      unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
      if (n == 0) break;
      // Copy out and free the CQ slots first: finishing an op may submit.
      for (unsigned i = 0; i < n; i++) done[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
      io_uring_cq_advance(&ring_, n);
      for (unsigned i = 0; i < n; i++) {
        uint64_t ud = done[i].ud;
        void* ptr = reinterpret_cast<void*>((uintptr_t)(ud & ~tag_mask));
        if (is_op(ud)) {
          finish(*static_cast<Operation*>(ptr), done[i].res);
        } else if (ud == ud_internal || ud == LIBURING_UDATA_TIMEOUT) {
        } else if ((ud & tag_mask) == tag_multishot) {
          on_accept(static_cast<AcceptQueue*>(ptr), done[i].res, done[i].flags & IORING_CQE_F_MORE);
        } else if ((ud & tag_mask) == tag_sync) {
          *static_cast<SyncResult*>(ptr) = SyncResult{true, done[i].res};
        }
      }
      total += (int)n;
    }
    return total;
  }

  // The op's request finished with `res`: record it, then either go on (a
  // partial recv_all/send_all, a spurious wakeup) or complete the op.
  void finish(Operation& op, int res) {
    IoHandle& h = *op.handle;
    if (h.inflight) h.inflight--;
    inflight_--;
    if (!op.pending) {  // cannot happen through Loop; never resubmit it
      release_slot(op);
      return;
    }
    bool again = false;
    bool retry = res == -EAGAIN || res == -EINTR;
    switch (op.kind) {
      case OpKind::recv_all:
      case OpKind::send_all:
        // A cancelled request that had moved bytes reports them, not -ECANCELED.
        if (res > 0) {
          op.done += (size_t)res;
          again = op.done < op.len;
        } else if (res == 0 && op.kind == OpKind::recv_all) {
          op.eof = true;
        } else {
          again = retry || res == 0;
        }
        op.result = res < 0 ? res : (long)op.done;
        break;
      case OpKind::readable:
      case OpKind::writable:
        again = retry;
        op.result = res < 0 ? res : 0;
        break;
      case OpKind::connect:
        if (op.addr) {  // the kernel's own connect: its result is the outcome
          again = retry;
          op.result = res;
          break;
        }
        [[fallthrough]];  // a connect() in progress: its outcome is read once writable
      case OpKind::send_file:
      case OpKind::wakeup:
        // Ready: the op's own non-blocking call is made here. The fd may be
        // closed already (the cancel lost the race): then there is nothing
        // to do, and the op ends as withdrawn.
        if (res >= 0) {
          if (h.fd < 0)
            op.result = -ECANCELED;
          else
            again = !perform(op);
        } else {
          again = retry;
          op.result = res;
        }
        break;
      default:  // recv, send, recvfrom, sendto, accept: one syscall's result
        again = retry;
        op.result = res;
        if (op.kind == OpKind::recvfrom && res >= 0)
          op.addrlen = static_cast<MsgSlot*>(op.backend_data)->msg.msg_namelen;
        break;
    }
    if (again) {
      // Withdrawn meanwhile: stop here, keeping the progress made (done).
      if (op.cancel_code) {
        op.result = -ECANCELED;
      } else {
        int rc = queue(op, false);
        if (rc == 0) return;
        op.result = rc;
      }
    }
    release_slot(op);
    loop->complete(op);
  }

  // Withdraw every request and wait for all of their CQEs, touching no op:
  // the poller is going away, maybe because its owner is, with the ops.
  void drain() {
    // Connections accepted for nobody are closed; queued closes still run.
    for (auto& kv : accept_queues_) close_ready(*kv.second);
    if (inflight_ == 0 && !io_uring_sq_ready(&ring_)) return;
    if (inflight_ > 0) {
      if (io_uring_sqe* sqe = get_sqe()) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, ud_internal);
      }
    }
    if (flush_ring() < 0) return;  // e.g. another thread: queue_exit must do
    // Cancelled socket requests finish at once; the bound only guards against
    // a kernel that cannot cancel them (then io_uring_queue_exit tears them down).
    int idle_rounds = 0;
    while (inflight_ > 0 && idle_rounds < 10) {
      __kernel_timespec ts{0, 100 * 1000000};
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
      if (rc < 0 || !cqe) {
        idle_rounds++;
        continue;
      }
      uint64_t ud = cqe->user_data;
      int res = cqe->res;
      unsigned flags = cqe->flags;
      io_uring_cqe_seen(&ring_, cqe);
      if ((ud & tag_mask) == tag_multishot && ud != LIBURING_UDATA_TIMEOUT) {
        if (res >= 0) ::close(res);  // accepted for nobody
        if (!(flags & IORING_CQE_F_MORE)) inflight_--;
        continue;
      }
      if (!is_op(ud)) continue;
      inflight_--;
      if ((ud & tag_mask) == tag_accept && res >= 0) ::close(res);  // accepted just before the cancel
    }
  }

  mutable io_uring ring_{};
  bool ready_ = false;
  bool poll_first_ = false;
  mutable bool enabled_ = false;
  mutable bool eager_ = false;  // a host watches fd(): submit at once, do not batch
  bool multishot_accept_ = false;
  bool abandoned_ = false;  // a fork's child: never touch the ring again
  size_t inflight_ = 0;         // requests the kernel holds for ops and accept queues
  SyncResult sync_;
  std::unordered_map<const IoHandle*, AcceptQueue*> accept_queues_;
  std::vector<AcceptQueue*> orphans_;  // listeners closed, their multishot not yet ended
  std::vector<uint64_t> deferred_cancels_;
  std::vector<std::unique_ptr<MsgSlot[]>> slot_chunks_;
  MsgSlot* free_slots_ = nullptr;
};

}  // namespace

std::unique_ptr<Poller> make_uring_poller(int* err) {
  auto p = std::make_unique<UringPoller>();
  int rc = p->init();
  if (rc < 0) {
    if (err) *err = -rc;
    return nullptr;
  }
  return p;
}

}  // namespace sock
