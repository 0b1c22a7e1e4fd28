// The epoll backend. Each fd is registered once, edge-triggered, for both
// directions, the first time anything waits on it, and stays registered until
// it is closed: waiting never costs an epoll_ctl. Edge triggering is safe
// because every op is tried before it waits, so no readiness is missed.
//
// A handle's backend_state holds the id of the poller it is registered with,
// so a handle registered with another poller (one abandoned after fork(),
// say) is registered again with this one.
#include <sys/epoll.h>
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
  bool reports_hangups() const override { return true; }
  int fd() const override { return epfd_; }

  int submit(Operation& op) override {
    IoHandle& h = *op.handle;
    if (h.backend_state == id_) return 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &h;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, h.fd, &ev) < 0) return -errno;
    h.backend_state = id_;
    h.hangup_seen = false;
    return 0;
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
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) h.hangup_seen = true;
      if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && h.reader && perform(*h.reader))
        loop->complete(*h.reader);
      if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && h.writer && perform(*h.writer))
        loop->complete(*h.writer);
    }
    return n;
  }

 private:
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
