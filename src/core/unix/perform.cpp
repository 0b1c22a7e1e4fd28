// The non-blocking syscall behind each operation kind. Readiness backends call
// this when the fd is ready; every backend calls it once before waiting at all,
// because the fastest wait is the one that never happens.
#include <sys/socket.h>

#include <cerrno>

#include "portable.hpp"
#include "sock/operation.hpp"
#include "sock/wakeup.hpp"

namespace sock {

bool perform_send_file(Operation& op);  // file_send.cpp

namespace {

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

// Finish with a syscall error, or report "would block" (false).
bool fail(Operation& op, int e) {
  if (would_block(e)) return false;
  op.result = -e;
  return true;
}

bool repeat_recv(Operation& op) {
  while (op.done < op.len) {
    ssize_t n = ::recv(op.handle->fd, op.buf + op.done, op.len - op.done, op.flags);
    if (n > 0) {
      op.done += (size_t)n;
    } else if (n == 0) {
      op.eof = true;
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (would_block(errno)) {
      return false;
    } else {
      op.result = -errno;
      return true;
    }
  }
  op.result = (long)op.done;
  return true;
}

bool repeat_send(Operation& op) {
  while (op.done < op.len) {
    ssize_t n = ::send(op.handle->fd, op.buf + op.done, op.len - op.done, op.flags | portable_send_flags);
    if (n >= 0) {
      op.done += (size_t)n;
    } else if (errno == EINTR) {
      continue;
    } else if (would_block(errno)) {
      return false;
    } else {
      op.result = -errno;
      return true;
    }
  }
  op.result = (long)op.done;
  return true;
}

}  // namespace

bool perform(Operation& op) {
  int fd = op.handle->fd;
  for (;;) {
    ssize_t n;
    switch (op.kind) {
      case OpKind::recv:
        n = ::recv(fd, op.buf, op.len, op.flags);
        break;
      case OpKind::recv_all:
        return repeat_recv(op);
      case OpKind::send_all:
        return repeat_send(op);
      case OpKind::recvfrom:
        op.addrlen = sizeof(sockaddr_storage);
        n = ::recvfrom(fd, op.buf, op.len, op.flags, (sockaddr*)op.addr, &op.addrlen);
        break;
      case OpKind::send:
        n = ::send(fd, op.buf, op.len, op.flags | portable_send_flags);
        break;
      case OpKind::sendto:
        n = ::sendto(fd, op.buf, op.len, op.flags | portable_send_flags, (const sockaddr*)op.addr, op.addrlen);
        break;
      case OpKind::accept:
        op.addrlen = sizeof(sockaddr_storage);
        n = portable_accept(fd, (sockaddr*)op.addr, &op.addrlen);
        break;
      case OpKind::connect: {
        if (op.addr && !op.done) {  // first: start connecting
          op.done = 1;
          if (::connect(fd, (const sockaddr*)op.addr, op.addrlen) == 0) {
            op.result = 0;
            return true;
          }
          // An interrupted connect goes on in the background, like EINPROGRESS.
          if (errno == EINPROGRESS || errno == EINTR || errno == EAGAIN) return false;
          op.result = -errno;
          return true;
        }
        // Called once the fd reported writable or an error: the outcome of
        // the connect() in progress is in SO_ERROR.
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err == EINPROGRESS || err == EALREADY) return false;
        op.result = err ? -err : 0;
        return true;
      }
      case OpKind::readable:
      case OpKind::writable:
        op.result = 0;
        return true;
      case OpKind::send_file:
        return perform_send_file(op);
      case OpKind::wakeup:
        if (!wakeup_clear_fd(fd)) return false;  // woken by something else
        op.result = 0;
        return true;
      default:
        op.result = -EINVAL;
        return true;
    }
    if (n >= 0) {
      op.result = (long)n;
      return true;
    }
    if (errno == EINTR) continue;
    return fail(op, errno);
  }
}

}  // namespace sock
