#include "sock/socket.hpp"

#include "portable.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace sock {

static int check(int rc) { return rc < 0 ? -errno : rc; }

int Socket::open(int family_, int type_, int protocol_) {
  close();
  int fd = portable_socket(family_, type_, protocol_);
  if (fd < 0) return -errno;
  adopt(fd, family_, type_, protocol_);
  return 0;
}

int Socket::connect(const sockaddr* addr, socklen_t len) {
  if (::connect(io.fd, addr, len) == 0) return 0;
  // An interrupted connect goes on in the background, like EINPROGRESS.
  return errno == EINTR ? -EINPROGRESS : -errno;
}

int Socket::disconnect() {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  int rc = connect(&unspec, sizeof unspec);
  return rc == -EAFNOSUPPORT ? 0 : rc;  // (some systems say so, and disconnect all the same)
}

int Socket::close() {
  if (io.fd < 0) return 0;
  int fd = io.fd;
  io.fd = -1;
  // The fd is gone even when close() reports EINTR: never retry it.
  int rc = ::close(fd);
  return rc < 0 && errno != EINTR ? -errno : 0;
}

int close_descriptor(int fd) {
  if (fd < 0) return 0;
  return ::close(fd) < 0 && errno != EINTR ? -errno : 0;
}

const int socketpair_family = AF_UNIX;

int make_socketpair(int type, socket_t fds[2]) {
  return check(portable_socketpair(AF_UNIX, type, 0, fds));
}

int max_listen_backlog() {
  static int cached = 0;
  if (cached) return cached;
  int value = SOMAXCONN;
  if (FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
    int v;
    if (std::fscanf(f, "%d", &v) == 1 && v > 0) value = v;
    std::fclose(f);
  }
  cached = value;
  return cached;
}

}  // namespace sock
