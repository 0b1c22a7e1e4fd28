// Wakeup on POSIX systems: an eventfd on Linux (one fd, a counter), a
// non-blocking pipe elsewhere and in SOCK_PORTABLE_POSIX builds.
#include "sock/wakeup.hpp"

#include <unistd.h>
#if defined(__linux__) && !defined(SOCK_PORTABLE_POSIX)
#include <sys/eventfd.h>
#define SOCK_WAKEUP_EVENTFD 1
#endif

#include <cerrno>

#include "portable.hpp"

namespace sock {

int Wakeup::open() {
  if (read_fd_ != invalid_socket) return 0;
#ifdef SOCK_WAKEUP_EVENTFD
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return -errno;
  read_fd_ = write_fd_ = fd;
#else
  int fds[2];
  if (::pipe(fds) < 0) return -errno;
  if (set_nonblock_cloexec(fds[0]) < 0 || set_nonblock_cloexec(fds[1]) < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return -e;
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
#endif
  return 0;
}

void Wakeup::signal() {
  if (write_fd_ < 0) return;
#ifdef SOCK_WAKEUP_EVENTFD
  uint64_t one = 1;
#else
  char one = 1;  // a full pipe is signalled already: EAGAIN is fine
#endif
  while (::write(write_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

bool wakeup_clear_fd(int fd) {
  bool was_set = false;
  for (;;) {
#ifdef SOCK_WAKEUP_EVENTFD
    uint64_t value;
#else
    char value[256];
#endif
    ssize_t n = ::read(fd, &value, sizeof value);
    if (n > 0) {
      was_set = true;
#ifdef SOCK_WAKEUP_EVENTFD
      return true;  // one read resets the counter
#else
      continue;
#endif
    }
    if (n < 0 && errno == EINTR) continue;
    return was_set;
  }
}

bool Wakeup::clear() { return read_fd_ >= 0 && wakeup_clear_fd(read_fd_); }

void Wakeup::close() {
  if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
  if (read_fd_ >= 0) ::close(read_fd_);
  read_fd_ = write_fd_ = -1;
}

}  // namespace sock
