// Sockets: RAII over a non-blocking, close-on-exec fd, plus the few blocking-
// free syscall wrappers the binding needs. Every function returns 0 (or a
// value) on success and -errno on failure; none of them throws.
#pragma once

#include "sock/platform.hpp"

#include "sock/operation.hpp"

namespace sock {

class Socket {
 public:
  Socket() = default;
  ~Socket() { close(); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Create an fd of the given kind; 0 or -errno.
  int open(int family, int type, int protocol);
  // Take ownership of an fd made elsewhere (accept, socketpair).
  void adopt(socket_t fd, int family, int type, int protocol);

  bool is_open() const { return io.fd != invalid_socket; }
  socket_t fd() const { return io.fd; }

  int bind(const sockaddr* addr, socklen_t len);
  int listen(int backlog);
  // 0 when connected at once, -EINPROGRESS when the caller must wait for
  // writability (an OpKind::connect), -errno on failure.
  int connect(const sockaddr* addr, socklen_t len);
  int shutdown(int how);
  // A datagram socket forgets its peer (connect to AF_UNSPEC on POSIX, to
  // an all-zero address on Windows): 0 or -errno.
  int disconnect();
  int local_address(sockaddr_storage& out, socklen_t& len) const;
  int peer_address(sockaddr_storage& out, socklen_t& len) const;

  // Close the fd (idempotent). The caller must have cancelled pending ops.
  int close();

  IoHandle io;  // the fd and what waits on it
  int family = 0;
  int type = 0;
  int protocol = 0;
};

// Close a descriptor the core handed out and nobody took (an accepted
// connection whose taker went away): 0 or -errno.
int close_descriptor(socket_t fd);

// A connected pair of sockets of the given type; 0 or -errno. Their family
// is socketpair_family: AF_UNIX, or AF_INET on Windows, which has no
// socketpair() and gets two connected loopback sockets instead.
int make_socketpair(int type, socket_t fds[2]);
extern const int socketpair_family;

// The largest listen backlog the system allows (somaxconn).
int max_listen_backlog();

}  // namespace sock
