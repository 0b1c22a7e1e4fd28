// The non-blocking Winsock call behind each operation kind: the loop's first
// try of every op, before the IOCP poller is asked to wait for it (see
// operation.hpp's perform).
#include <cerrno>
#include <climits>

#include "sock/operation.hpp"
#include "sock/wakeup.hpp"
#include "win.hpp"

namespace sock {

bool perform_send_file(Operation& op);  // file_send.cpp

namespace {

// Winsock counts bytes in an int.
int chunk(size_t n) { return n > (size_t)INT_MAX ? INT_MAX : (int)n; }

// Finish with the call's error, or report "would block" (false).
bool fail(Operation& op) {
  int e = last_socket_error();
  if (e == EAGAIN) return false;
  op.result = -e;
  return true;
}

bool repeat_recv(Operation& op) {
  while (op.done < op.len) {
    int n = ::recv(op.handle->fd, op.buf + op.done, chunk(op.len - op.done), op.flags);
    if (n > 0) {
      op.done += (size_t)n;
    } else if (n == 0) {
      op.eof = true;
      break;
    } else {
      return fail(op);
    }
  }
  op.result = (long)op.done;
  return true;
}

bool repeat_send(Operation& op) {
  while (op.done < op.len) {
    int n = ::send(op.handle->fd, op.buf + op.done, chunk(op.len - op.done), op.flags);
    if (n >= 0)
      op.done += (size_t)n;
    else
      return fail(op);
  }
  op.result = (long)op.done;
  return true;
}

// accept() gives a socket with its listener's properties (overlapped,
// non-blocking); made sure of, and kept from child processes.
bool accept_one(Operation& op) {
  op.addrlen = sizeof(sockaddr_storage);
  SOCKET s = ::accept(op.handle->fd, (sockaddr*)op.addr, op.addr ? &op.addrlen : nullptr);
  if (s == INVALID_SOCKET) return fail(op);
  u_long on = 1;
  if ((unsigned long long)s > (unsigned long long)LONG_MAX || ioctlsocket(s, FIONBIO, &on) == SOCKET_ERROR) {
    closesocket(s);
    op.result = -EMFILE;
    return true;
  }
  SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  op.result = (long)s;  // (a SOCKET's value fits 32 bits: handles are 32-bit values for WOW64's sake)
  return true;
}

}  // namespace

bool perform(Operation& op) {
  SOCKET fd = op.handle->fd;
  int n;
  switch (op.kind) {
    case OpKind::recv:
      n = ::recv(fd, op.buf, chunk(op.len), op.flags);
      break;
    case OpKind::recv_all:
      return repeat_recv(op);
    case OpKind::send_all:
      return repeat_send(op);
    case OpKind::recvfrom:
      op.addrlen = sizeof(sockaddr_storage);
      n = ::recvfrom(fd, op.buf, chunk(op.len), op.flags, (sockaddr*)op.addr, op.addr ? &op.addrlen : nullptr);
      break;
    case OpKind::send:
      n = ::send(fd, op.buf, chunk(op.len), op.flags);
      break;
    case OpKind::sendto:
      n = ::sendto(fd, op.buf, chunk(op.len), op.flags, (const sockaddr*)op.addr, op.addrlen);
      break;
    case OpKind::accept:
      return accept_one(op);
    case OpKind::connect: {
      if (op.addr && !op.done) {  // first: start connecting
        op.done = 1;
        if (::connect(fd, (const sockaddr*)op.addr, op.addrlen) == 0) {
          op.result = 0;
          return true;
        }
        return fail(op);  // WSAEWOULDBLOCK: connecting in the background
      }
      int err = 0;
      int len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, (char*)&err, &len) == SOCKET_ERROR) err = WSAGetLastError();
      if (err == WSAEWOULDBLOCK || err == WSAEALREADY || err == WSAEINPROGRESS) return false;
      op.result = err ? -wsa_errno(err) : 0;
      return true;
    }
    case OpKind::readable:
    case OpKind::writable:
      op.result = 0;
      return true;
    case OpKind::send_file:
      return perform_send_file(op);
    case OpKind::wakeup:
      if (!wakeup_clear_fd(fd)) return false;
      op.result = 0;
      return true;
    default:
      op.result = -EINVAL;
      return true;
  }
  if (n == SOCKET_ERROR) {
    // A datagram larger than the buffer: POSIX recv gives the part that fit.
    if (WSAGetLastError() == WSAEMSGSIZE && (op.kind == OpKind::recv || op.kind == OpKind::recvfrom)) {
      op.result = (long)chunk(op.len);
      return true;
    }
    return fail(op);
  }
  op.result = (long)n;
  return true;
}

}  // namespace sock
