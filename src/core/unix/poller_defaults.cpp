// What every backend does the same way unless it knows better: trying an op,
// close and shutdown are plain syscalls.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sock/loop.hpp"
#include "sock/poller.hpp"

namespace sock {

bool Poller::try_now(Operation& op) { return Loop::try_now(op); }

int Poller::close(IoHandle& handle) {
  forget(handle);
  int fd = handle.fd;
  handle.fd = -1;
  // The fd is gone even when close() reports EINTR: never retry it.
  if (fd >= 0 && ::close(fd) < 0 && errno != EINTR) return -errno;
  return 0;
}

int Poller::shutdown(IoHandle& handle, int how) {
  return ::shutdown(handle.fd, how) < 0 ? -errno : 0;
}

}  // namespace sock
