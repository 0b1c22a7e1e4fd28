// Wakeup on Windows: a connected pair of loopback sockets. The IOCP loop
// waits on sockets only, and a stream socket's zero-byte receive is its
// "readable"; signal() sends a byte, the wakeup op reads them all.
#include "sock/wakeup.hpp"

#include "sock/socket.hpp"
#include "win.hpp"

namespace sock {

int Wakeup::open() {
  if (read_fd_ != invalid_socket) return 0;
  socket_t fds[2];
  int rc = make_socketpair(SOCK_STREAM, fds);
  if (rc < 0) return rc;
  // One byte at a time, each sent at once: no Nagle delay on a signal.
  BOOL on = TRUE;
  setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, (const char*)&on, sizeof on);
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  return 0;
}

void Wakeup::signal() {
  if (write_fd_ == invalid_socket) return;
  char one = 1;  // a full buffer is signalled already: WSAEWOULDBLOCK is fine
  ::send(write_fd_, &one, 1, 0);
}

bool wakeup_clear_fd(socket_t fd) {
  bool was_set = false;
  char buf[256];
  for (;;) {
    int n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      was_set = true;
      continue;
    }
    return was_set;
  }
}

bool Wakeup::clear() { return read_fd_ != invalid_socket && wakeup_clear_fd(read_fd_); }

void Wakeup::close() {
  if (write_fd_ != invalid_socket) closesocket(write_fd_);
  if (read_fd_ != invalid_socket) closesocket(read_fd_);
  read_fd_ = write_fd_ = invalid_socket;
}

}  // namespace sock
