// The kqueue backend (macOS and the BSDs; on Linux it builds against
// libkqueue, which is how it is tested). It works like the epoll one: each fd
// gets an EVFILT_READ and an EVFILT_WRITE filter, both EV_CLEAR (edge-
// triggered), the first time anything waits on it, and keeps them until it is
// closed. Edge triggering is safe because every op is tried before it waits.
//
// Registrations are not syscalls of their own: they go into a changelist that
// the next kevent() wait carries to the kernel. A change that fails comes
// back as an EV_ERROR entry in that same call and fails the ops waiting on
// its handle with the errno; the other changes are applied all the same
// (the event list always has room for every change's error, which is what
// kevent needs to go on past one).
//
// A handle's backend_state holds the id of the poller it is registered with
// (or queued for), as with epoll.
#include <sys/types.h>
#include <sys/event.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#ifdef LIBKQUEUE
#include <poll.h>

#include <unordered_set>
#endif

#include "sock/loop.hpp"
#include "sock/poller.hpp"

namespace sock {

namespace {

constexpr int max_events = 256;
constexpr int max_changes = 64;  // two per handle; never more than max_events
static_assert(max_changes <= max_events, "every change's error must fit in the event list");

class KqueuePoller final : public Poller {
 public:
  explicit KqueuePoller(int kq) : kq_(kq), id_(new_poller_id()) {}
  ~KqueuePoller() override {
    if (kq_ >= 0) ::close(kq_);
  }

  const char* name() const override { return "kqueue"; }
  int fd() const override { return kq_; }

  int submit(Operation& op) override {
    IoHandle& h = *op.handle;
    if (h.backend_state == id_) return 0;
    if (nchanges_ + 2 > max_changes) flush();
    EV_SET(&changes_[nchanges_++], h.fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &h);
    EV_SET(&changes_[nchanges_++], h.fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, &h);
    h.backend_state = id_;
#ifdef LIBKQUEUE
    registered_.insert(&h);
#endif
    return 0;
  }

  bool cancel(Operation&) override { return true; }

  void forget(IoHandle& h) override {
    if (h.backend_state != id_) return;
    h.backend_state = 0;
#ifdef LIBKQUEUE
    registered_.erase(&h);
#endif
    // Still in the changelist: it never reached the kernel, and must not
    // once the fd is closed (the number may be reused at once).
    bool queued = false;
    for (int i = 0; i < nchanges_;) {
      if (changes_[i].udata == &h) {
        changes_[i] = changes_[--nchanges_];
        queued = true;
      } else {
        i++;
      }
    }
    if (queued || h.fd < 0) return;
    // A kernel kqueue drops an fd's filters when the fd is closed, but
    // libkqueue keeps them (on epoll, whose registration belongs to the open
    // file, which a fork()'s child may still hold) and would go on reporting
    // events for a freed handle, or take a reused fd number for the old one.
    // So they are deleted here, at the cost of one syscall per close, as
    // the epoll backend does. EV_RECEIPT: both are tried even if one fails.
    struct kevent del[2], res[2];
    EV_SET(&del[0], h.fd, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
    EV_SET(&del[1], h.fd, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
    const timespec zero{0, 0};
    ::kevent(kq_, del, 2, res, 2, &zero);
  }

  void abandon() override {
    // A kqueue is not inherited by a fork()'s child (and libkqueue closes
    // the child's copies itself), so this number may already belong to
    // another file: drop it without closing it.
    kq_ = -1;
    nchanges_ = 0;
  }

  int wait(int timeout_ms) override {
    timespec ts, *tp = nullptr;
    if (timeout_ms >= 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
      tp = &ts;
    }
    int n = ::kevent(kq_, changes_, nchanges_, events_, max_events, tp);
    stats_.enters++;
    if (n < 0) {
      // EINTR comes from the wait, after the changes were applied. Any
      // other error keeps them for the next call (adding again is harmless).
      if (errno == EINTR) nchanges_ = 0;
      return -errno;
    }
    nchanges_ = 0;
    for (int i = 0; i < n; i++) {
      const struct kevent& ev = events_[i];
      IoHandle& h = *static_cast<IoHandle*>(ev.udata);
      if (ev.flags & EV_ERROR) {  // a change that failed: data is the errno
        if (ev.data) fail(h, ev.filter, (int)ev.data);
        continue;
      }
      // EV_EOF (the peer closed or reset) or a socket error in fflags wakes
      // both sides, as EPOLLHUP/EPOLLERR do: perform() finds the outcome
      // (data, end of stream), or that the op must wait on.
      int err = (int)ev.fflags;
      bool both = (ev.flags & EV_EOF) || err;
      if ((ev.filter == EVFILT_READ || both) && h.reader) serve(*h.reader, err);
      if ((ev.filter == EVFILT_WRITE || both) && h.writer) serve(*h.writer, err);
    }
#ifdef LIBKQUEUE
    // libkqueue takes up to max_events events from epoll, which may make
    // twice as many kevents (read and write on one fd), and drops those that
    // do not fit in the event list; with EV_CLEAR they never come again. A
    // full list may mean that happened: every waiting op is tried once more
    // (an op that would still block just goes on waiting). A kernel kqueue
    // keeps what does not fit for the next call.
    if (n == max_events)
      for (IoHandle* h : registered_) {
        if (h->reader && ready_now(*h->reader, POLLIN)) serve(*h->reader, no_error_);
        if (h->writer && ready_now(*h->writer, POLLOUT)) serve(*h->writer, no_error_);
      }
#endif
    return n;
  }

 private:
  // The changelist is full: hand it to the kernel now, without taking any
  // events (EV_RECEIPT makes every change report back, so none is skipped).
  void flush() {
    for (int i = 0; i < nchanges_; i++) changes_[i].flags |= EV_RECEIPT;
    const timespec zero{0, 0};
    int n = ::kevent(kq_, changes_, nchanges_, events_, nchanges_, &zero);
    stats_.enters++;
    if (n < 0) {  // none was applied, and they will not be
      int e = errno;
      for (int i = 0; i < nchanges_; i++) fail(*static_cast<IoHandle*>(changes_[i].udata), changes_[i].filter, e);
    }
    for (int i = 0; i < n; i++)
      if ((events_[i].flags & EV_ERROR) && events_[i].data)
        fail(*static_cast<IoHandle*>(events_[i].udata), events_[i].filter, (int)events_[i].data);
    nchanges_ = 0;
  }

  // Perform a woken op. `err` is the socket error the event reported (0 if
  // none): it is the outcome of the first op that gets no data first, as
  // the errno of its syscall is on Linux (connect's SO_ERROR, a recv's
  // ECONNRESET). It is taken from the event rather than left to the
  // syscall because a filter may have read it from the socket already:
  // libkqueue does, with getsockopt(SO_ERROR), which clears it; a kernel
  // kqueue leaves it there, and the syscall's errno is the same one.
  void serve(Operation& op, int& err) {
    bool done = perform(op);
    if (err && hides_error(op, done)) {
      op.result = -err;
      err = 0;
      done = true;
    }
    if (done) loop->complete(op);
  }

  // Whether the op's own outcome is not the whole story when the socket has
  // an error: it would wait, or it saw "connected", the end of the stream
  // or a failure that the error explains. Data received or sent comes
  // first, and a readable wait with data queued leaves the data to the
  // call that follows it.
  static bool hides_error(const Operation& op, bool done) {
    switch (op.kind) {
      case OpKind::recv:
      case OpKind::recv_all:
      case OpKind::recvfrom:
        return !done || op.result <= 0 || op.eof;
      case OpKind::connect:
        return !done || op.result == 0;
      case OpKind::accept:
      case OpKind::send:
      case OpKind::send_all:
      case OpKind::sendto:
      case OpKind::send_file:
        return !done || op.result < 0;
      case OpKind::readable:
        return !data_queued(op.handle->fd);
      case OpKind::writable:
        return true;
      default:  // a wakeup's fd is no socket
        return false;
    }
  }

  static bool data_queued(int fd) {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 && n > 0;
  }

#ifdef LIBKQUEUE
  // Whether a retried op may be performed: connect/readable/writable only
  // wait, and performing them says "ready", so poll() must say so first.
  static bool ready_now(Operation& op, short events) {
    if (op.kind != OpKind::connect && op.kind != OpKind::readable && op.kind != OpKind::writable) return true;
    pollfd p{op.handle->fd, events, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  int no_error_ = 0;
#endif

  // A filter could not be added: the op waiting on that side fails with
  // the errno (as epoll_ctl's error fails the op that would wait), and the
  // next op on the handle tries to register it again.
  void fail(IoHandle& h, int filter, int err) {
    h.backend_state = 0;
#ifdef LIBKQUEUE
    registered_.erase(&h);
#endif
    Operation* op = filter == EVFILT_READ ? h.reader : h.writer;
    if (op) {
      op->result = -err;
      loop->complete(*op);
    }
  }

  int kq_;
  uint32_t id_;
  int nchanges_ = 0;
  struct kevent changes_[max_changes];
  struct kevent events_[max_events];
#ifdef LIBKQUEUE
  std::unordered_set<IoHandle*> registered_;  // for the retry after a full wait
#endif
};

}  // namespace

std::unique_ptr<Poller> make_kqueue_poller(int* err) {
  int kq = ::kqueue();
  if (kq < 0) {
    if (err) *err = errno;
    return nullptr;
  }
  ::fcntl(kq, F_SETFD, FD_CLOEXEC);
  return std::make_unique<KqueuePoller>(kq);
}

}  // namespace sock
