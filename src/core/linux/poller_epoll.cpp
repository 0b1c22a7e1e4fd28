// The epoll backend. Each fd is registered once, edge-triggered, for both
// directions, the first time anything waits on it, and stays registered until
// it is closed: waiting never costs an epoll_ctl. Edge triggering is safe
// because every op is tried before it waits, so no readiness is missed --
// except a stream recv whose queue this backend saw run dry, with no edge
// since (known_empty): the next arrival raises an edge, so it can wait at
// once, saving the recv that would return EAGAIN (a ping-pong's every other
// syscall).
//
// A handle's backend_state holds the id of the poller it is registered with,
// so a handle registered with another poller (one abandoned after fork(),
// say) is registered again with this one.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sock/loop.hpp"
#include "sock/poller.hpp"

namespace sock {

namespace {

constexpr int max_events = 256;

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(int epfd) : epfd_(epfd), id_(new_poller_id()) {}
  ~EpollPoller() override {
    if (epfd_ >= 0) ::close(epfd_);
  }

  const char* name() const override { return "epoll"; }
  int fd() const override { return epfd_; }

  int submit(Operation& op) override {
    IoHandle& h = *op.handle;
    if (h.backend_state == id_) return 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;  // (EPOLLPRI: see known_empty)
    ev.data.ptr = &h;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, h.fd, &ev) < 0) return -errno;
    h.backend_state = id_;
    return 0;
  }

  // Which recv calls may skip their try (see Poller::known_empty): the
  // handle is registered here (an edge for anything that arrives later is
  // certain), and the last stream recv on it took less than it asked for,
  // or would have blocked, with no readable edge reported since. A peek
  // leaves the bytes queued, and an out-of-band or error-queue read says
  // nothing of the data: those never mark the queue empty. Nor does anything
  // once the peer's end of stream, an error or urgent data has been
  // reported (rd_final): a short read may then stop before a FIN, an error
  // or the urgent mark that raise no further edge.
  bool known_empty(const Operation& op) const override {
    return op.kind == OpKind::recv && op.handle->rd_empty && op.handle->backend_state == id_;
  }

  bool try_now(Operation& op) override {
    bool done = Loop::try_now(op);
    note_recv(op, done);
    return done;
  }

  bool cancel(Operation&) override { return true; }

  void forget(IoHandle& h) override {
    // A registration belongs to the open file description, not to the fd:
    // close() drops it only when no other fd refers to that description. A
    // fork()'s child (or a dup) may still hold it, and the kernel would go on
    // reporting events for a handle that is freed. So it is removed here, as
    // libuv does, at the cost of one syscall per close.
    if (h.backend_state == id_ && h.fd >= 0) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, h.fd, nullptr);
    h.backend_state = 0;
  }

  void abandon() override {
    // Closing our copy of the epoll fd leaves the parent's instance alone.
    ::close(epfd_);
    epfd_ = -1;
  }

  int wait(int timeout_ms) override {
    int n = ::epoll_wait(epfd_, events_, max_events, timeout_ms);
    stats_.enters++;
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
      IoHandle& h = *static_cast<IoHandle*>(events_[i].data.ptr);
      uint32_t e = events_[i].events;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) {
        h.rd_empty = false;  // (something came: whoever reads next must look)
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) h.rd_final = true;
        if (h.reader) {
          bool done = perform(*h.reader);
          note_recv(*h.reader, done);
          if (done) loop->complete(*h.reader);
        }
      }
      if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && h.writer && perform(*h.writer))
        loop->complete(*h.writer);
    }
    return n;
  }

 private:
  static void note_recv(Operation& op, bool done) {
    if (op.kind != OpKind::recv || !op.handle->stream || (op.flags & (MSG_PEEK | MSG_OOB | MSG_ERRQUEUE))) return;
    op.handle->rd_empty = !op.handle->rd_final && (!done || (op.result > 0 && (size_t)op.result < op.len));
  }

  int epfd_;
  uint32_t id_;
  epoll_event events_[max_events];
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller(int* err) {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    if (err) *err = errno;
    return nullptr;
  }
  return std::make_unique<EpollPoller>(epfd);
}

}  // namespace sock
