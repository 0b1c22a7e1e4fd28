// The Socket methods that are one system call under the same name on every
// platform (Winsock spells these as POSIX does, and last_socket_error()
// gives the errno value on both). Opening, connecting, disconnecting and
// closing differ, and live in src/core/{unix,win}/socket.cpp.
#include "sock/socket.hpp"

#include "sock/platform.hpp"

namespace sock {

// Both report a failure as -1 (Winsock: SOCKET_ERROR).
static int check(int rc) { return rc < 0 ? -last_socket_error() : rc; }

void Socket::adopt(socket_t fd, int family_, int type_, int protocol_) {
  io = IoHandle{};
  io.fd = fd;
  io.stream = type_ == SOCK_STREAM;
  family = family_;
  type = type_;
  protocol = protocol_;
}

int Socket::bind(const sockaddr* addr, socklen_t len) { return check(::bind(io.fd, addr, len)); }

int Socket::listen(int backlog) { return check(::listen(io.fd, backlog)); }

int Socket::shutdown(int how) { return check(::shutdown(io.fd, how)); }

int Socket::local_address(sockaddr_storage& out, socklen_t& len) const {
  len = sizeof out;
  return check(::getsockname(io.fd, (sockaddr*)&out, &len));
}

int Socket::peer_address(sockaddr_storage& out, socklen_t& len) const {
  len = sizeof out;
  return check(::getpeername(io.fd, (sockaddr*)&out, &len));
}

}  // namespace sock
