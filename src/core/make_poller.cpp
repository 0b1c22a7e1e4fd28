// Picks the backend at start-up: the one asked for (SOCK_BACKEND, or
// sock.backend() from Lua) if it can run here, else the platform default.
#include <atomic>
#include <cerrno>
#include <cstring>

#include "sock/poller.hpp"

namespace sock {

uint32_t new_poller_id() {
  static std::atomic<uint32_t> last{0};
  uint32_t id;
  do id = ++last; while (id == 0);  // 0 means "not registered"
  return id;
}

#ifndef SOCK_HAVE_URING
std::unique_ptr<Poller> make_uring_poller(int* err) {
  if (err) *err = ENOSYS;
  return nullptr;
}
#endif

#ifndef SOCK_HAVE_KQUEUE
std::unique_ptr<Poller> make_kqueue_poller(int* err) {
  if (err) *err = ENOSYS;
  return nullptr;
}
#endif

#ifndef __linux__
std::unique_ptr<Poller> make_epoll_poller(int* err) {
  if (err) *err = ENOSYS;
  return nullptr;
}
#endif

#ifndef _WIN32
std::unique_ptr<Poller> make_iocp_poller(int* err) {
  if (err) *err = ENOSYS;
  return nullptr;
}
#endif

// The platform's own backend: IOCP on Windows, kqueue where the kernel has
// it, else epoll.
static std::unique_ptr<Poller> make_default_poller() {
#if defined(_WIN32)
  return make_iocp_poller(nullptr);
#elif defined(SOCK_HAVE_KQUEUE) && (defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
                                  defined(__NetBSD__) || defined(__DragonFly__))
  return make_kqueue_poller(nullptr);
#else
  return make_epoll_poller(nullptr);
#endif
}

static const char* kqueue_failure(int err) {
#ifndef SOCK_HAVE_KQUEUE
  (void)err;
  return "kqueue support not built in (SOCK_KQUEUE, or SOCK_LIBKQUEUE_DIR on Linux)";
#else
  switch (err) {
    case EMFILE:
    case ENFILE:
      return "kqueue unavailable: too many open files (EMFILE/ENFILE)";
    case ENOMEM:
      return "kqueue unavailable: out of memory (ENOMEM)";
    default:
      return "kqueue unavailable: kqueue() failed";
  }
#endif
}

// Why io_uring could not be used, for sock.backend()'s second result. The
// text must say which knob to turn, since the fallback is otherwise silent.
static const char* uring_failure(int err) {
#ifndef SOCK_HAVE_URING
  (void)err;
  return "io_uring support not built in (liburing was not found at build time)";
#else
  switch (err) {
    case ENOSYS:
      return "io_uring unavailable: the kernel has no io_uring, or a seccomp filter hides it (ENOSYS)";
    case EPERM:
      return "io_uring unavailable: not permitted (sysctl kernel.io_uring_disabled, or a seccomp filter) (EPERM)";
    case ENOMEM:
      return "io_uring unavailable: no memory for the ring (locked-memory limit, see ulimit -l) (ENOMEM)";
    case EMFILE:
    case ENFILE:
      return "io_uring unavailable: too many open files for the ring's fd (EMFILE/ENFILE)";
    case EINVAL:
      return "io_uring unavailable: the kernel rejected the ring setup, probably too old (EINVAL)";
    default:
      return "io_uring unavailable: io_uring_queue_init failed";
  }
#endif
}

std::unique_ptr<Poller> make_poller(const char* name, const char** fallback_reason) {
  if (fallback_reason) *fallback_reason = nullptr;
  if (name && (!std::strcmp(name, "io_uring") || !std::strcmp(name, "uring"))) {
    int err = 0;
    if (auto p = make_uring_poller(&err)) return p;
    if (fallback_reason) *fallback_reason = uring_failure(err);
  }
  if (name && !std::strcmp(name, "iocp")) {
    int err = 0;
    if (auto p = make_iocp_poller(&err)) return p;
    if (fallback_reason)
      *fallback_reason = err == ENOSYS ? "iocp is Windows' backend: not built in here"
                                       : "iocp unavailable: the completion port or Winsock's extensions could not be set up";
  }
  if (name && !std::strcmp(name, "kqueue")) {
    int err = 0;
    if (auto p = make_kqueue_poller(&err)) return p;
    if (fallback_reason) *fallback_reason = kqueue_failure(err);
  }
  return make_default_poller();
}

}  // namespace sock
