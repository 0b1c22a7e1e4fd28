// The portable forms of portable.hpp, and the one-call Linux forms they stand
// in for.
#include "portable.hpp"

#include <fcntl.h>
#include <unistd.h>
#if defined(__FreeBSD__) || defined(__APPLE__)
#include <sys/uio.h>
#endif

#include <cerrno>

namespace sock {

int set_nonblock_cloexec(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  int fdfl = ::fcntl(fd, F_GETFD);
  if (fdfl < 0 || ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -1;
  return 0;
}

// macOS: SIGPIPE is kept away per socket (it has no MSG_NOSIGNAL).
static int set_nosigpipe(int fd) {
#if defined(SO_NOSIGPIPE) && !defined(MSG_NOSIGNAL)
  int on = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
#else
  (void)fd;
  return 0;
#endif
}

// Finish a new fd made without the one-call flags; on failure it is closed.
static int finish_new_fd(int fd) {
  if (fd < 0) return -1;
  if (set_nonblock_cloexec(fd) < 0 || set_nosigpipe(fd) < 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int portable_socket(int family, int type, int protocol) {
  if constexpr (!portable_paths) {
#if defined(SOCK_NONBLOCK)
    return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#endif
  }
  // (A fork+exec in another thread between socket() and fcntl() could leak
  // the fd into the child: the price of systems without SOCK_CLOEXEC.)
  return finish_new_fd(::socket(family, type, protocol));
}

int portable_socketpair(int family, int type, int protocol, int fds[2]) {
  if constexpr (!portable_paths) {
#if defined(SOCK_NONBLOCK)
    return ::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol, fds);
#endif
  }
  if (::socketpair(family, type, protocol, fds) < 0) return -1;
  if (finish_new_fd(fds[0]) < 0) {
    int e = errno;
    ::close(fds[1]);
    errno = e;
    return -1;
  }
  if (finish_new_fd(fds[1]) < 0) {
    int e = errno;
    ::close(fds[0]);
    errno = e;
    return -1;
  }
  return 0;
}

int portable_accept(int fd, sockaddr* addr, socklen_t* addrlen) {
  if constexpr (!portable_paths) {
#if defined(SOCK_NONBLOCK)
    return ::accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#endif
  }
  // An accepted socket does not inherit O_NONBLOCK on Linux (it does on the
  // BSDs): set it either way.
  return finish_new_fd(::accept(fd, addr, addrlen));
}

long portable_sendfile(int sock_fd, int file_fd, long long* offset, size_t count) {
#if defined(__FreeBSD__)
  // Reads at `offset` (the fd's position is not used, nor moved): a
  // transfer from the file's own position reads it with lseek first.
  off_t at = offset ? (off_t)*offset : ::lseek(file_fd, 0, SEEK_CUR);
  if (at < 0) return -1;
  off_t sent = 0;
  int rc = ::sendfile(file_fd, sock_fd, at, count, nullptr, &sent, 0);
  if (!offset && sent > 0) ::lseek(file_fd, at + sent, SEEK_SET);
  // A non-blocking socket that filled part way reports EAGAIN with the part.
  if (sent > 0) return (long)sent;
  return rc < 0 ? -1 : 0;
#elif defined(__APPLE__)
  off_t at = offset ? (off_t)*offset : ::lseek(file_fd, 0, SEEK_CUR);
  if (at < 0) return -1;
  off_t len = (off_t)count;
  int rc = ::sendfile(file_fd, sock_fd, at, &len, nullptr, 0);
  if (!offset && len > 0) ::lseek(file_fd, at + len, SEEK_SET);
  if (len > 0) return (long)len;
  return rc < 0 ? -1 : 0;
#else
  (void)sock_fd, (void)file_fd, (void)offset, (void)count;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace sock
