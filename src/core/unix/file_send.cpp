// FileSend: opening the source and one step of the transfer (see
// file_send.hpp). The zero-copy call differs by system; the rest is POSIX.
#include "sock/file_send.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__linux__) && !defined(SOCK_PORTABLE_POSIX)
#include <sys/sendfile.h>
#include <sys/syscall.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <ctime>

#include "sock/error.hpp"
#include "sock/operation.hpp"
#include "portable.hpp"

namespace sock {

namespace {

constexpr size_t kCopyChunk = 65536;

std::atomic<bool> force_copy{false};
std::atomic<double> signal_window{0};

#if defined(__linux__) && !defined(SOCK_PORTABLE_POSIX)
bool sigpipe_pending() {
  sigset_t pending;
  return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

// Take a pending SIGPIPE if it is the one the zero-copy call of this thread
// raised. The kernel sends that one to the calling thread, as if this process
// had sent it (SI_USER, our pid), and sigtimedwait takes a thread's own
// signals before the process's. Any other (a kill -PIPE from elsewhere, meant
// for the process) is put back as it came. (A kill(getpid(), SIGPIPE) by
// another thread of ours, arriving during the call, looks the same.)
void take_back_own_sigpipe(const sigset_t& pipe_set) {
  siginfo_t info;
  timespec zero{0, 0};
  int sig;
  while ((sig = sigtimedwait(&pipe_set, &info, &zero)) < 0 && errno == EINTR) {
  }
  if (sig != SIGPIPE) return;
  if (info.si_code == SI_USER && info.si_pid == ::getpid()) return;
  // Not ours: raise it again, for the process.
  ::syscall(SYS_rt_sigqueueinfo, ::getpid(), SIGPIPE, &info);
}
#endif

// The zero-copy call, with no SIGPIPE: bytes sent, or -1 with errno (ENOSYS
// where there is none, which selects the copy fallback).
long zero_copy_send(int sock_fd, int file_fd, long long* offset, size_t count) {
#if defined(__linux__) && !defined(SOCK_PORTABLE_POSIX)
  // sendfile(2) has no MSG_NOSIGNAL: to a peer that has gone away it raises
  // SIGPIPE, which would kill a Lua host. Block it for the call and take
  // back the one the call raised, leaving the process's own SIGPIPEs alone.
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  bool host_blocks = sigismember(&old_mask, SIGPIPE);
  bool pending_before = sigpipe_pending();
  if (double window = signal_window.load()) {
    timespec wait{(time_t)window, (long)((window - (double)(time_t)window) * 1e9)};
    while (nanosleep(&wait, &wait) < 0 && errno == EINTR) {
    }
  }
  off_t off = offset ? (off_t)*offset : 0;
  ssize_t n = ::sendfile(sock_fd, file_fd, offset ? &off : nullptr, count);
  int e = errno;
  // The call may raise one whatever it returns: it can send part, fail on
  // the next page and return the part. A host that blocks SIGPIPE itself may
  // have had one pending in this thread already, which ours then merged
  // into: that one is the host's, and harmless while it stays blocked.
  if (sigpipe_pending() && !(host_blocks && pending_before)) take_back_own_sigpipe(pipe_set);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = e;
  return (long)n;
#else
  return portable_sendfile(sock_fd, file_fd, offset, count);
#endif
}

bool no_zero_copy(int e) { return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ESPIPE || e == ENOTSOCK; }

int dup_cloexec(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

// One step of the copy fallback: refill the buffer if it is empty, then one
// send. Same results as the step.
bool copy_step(FileSend& f, int sock_fd, Operation& op) {
  for (;;) {
    if (f.pos == f.len) {
      if (!f.buf) {
        f.buf = static_cast<char*>(std::malloc(kCopyChunk));
        if (!f.buf) {
          op.result = -ENOMEM;
          return true;
        }
      }
      size_t want = f.remaining < 0 || (unsigned long long)f.remaining > kCopyChunk ? kCopyChunk : (size_t)f.remaining;
      ssize_t n = f.positional ? ::pread(f.fd, f.buf, want, (off_t)f.offset) : ::read(f.fd, f.buf, want);
      if (n < 0) {
        if (errno == EINTR) continue;
        op.result = -errno;
        return true;
      }
      if (n == 0) {
        f.ended = true;
        op.result = 0;
        return true;
      }
      f.pos = 0;
      f.len = (size_t)n;
      if (f.positional) f.offset += n;
    }
    ssize_t n = ::send(sock_fd, f.buf + f.pos, f.len - f.pos, portable_send_flags);
    if (n >= 0) {
      f.pos += (size_t)n;
      f.sent += n;
      if (f.remaining > 0) f.remaining -= n;
      op.result = (long)n;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    op.result = -errno;
    return true;
  }
}

}  // namespace

int FileSend::open_path(const char* path, long long off) {
  release();
  fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);  // a FIFO must not block us
  positional = true;
  offset = off < 0 ? 0 : off;
  return fd < 0 ? -errno : 0;
}

int FileSend::open_fd(int source_fd, long long off) {
  release();
  fd = dup_cloexec(source_fd);
  positional = off >= 0;  // else at the fd's position, which moves
  offset = off;
  // EBADF would read as 'closed', which is what the socket says when it is.
  return fd < 0 ? (errno == EBADF ? -EINVAL : -errno) : 0;
}

int FileSend::open_file(std::FILE* file, long long off) {
  release();
  fd = dup_cloexec(fileno(file));
  // From where the Lua program stands in the file (stdio may have read ahead
  // of the fd's position), which is left where it was. A file that cannot
  // seek (a pipe from io.popen) is read where it stands.
  long pos = off < 0 ? std::ftell(file) : 0;
  positional = off >= 0 || pos >= 0;
  offset = off < 0 ? pos : off;
  return fd < 0 ? (errno == EBADF ? -EINVAL : -errno) : 0;
}

void FileSend::release() {
  ended = false;
  if (fd >= 0) ::close(fd);
  fd = -1;
  std::free(buf);
  buf = nullptr;
  pos = len = 0;
}

void file_send_force_copy(bool on) { force_copy = on; }
bool file_send_forcing_copy() { return force_copy; }
bool file_send_signal_window(double seconds) {
  signal_window = seconds > 0 && seconds < 60 ? seconds : 0;
  return !portable_paths;  // only Linux's sendfile(2) raises SIGPIPE
}

// One step of an OpKind::send_file op (called by perform).
bool perform_send_file(Operation& op) {
  FileSend& f = *op.file;
  int sock_fd = op.handle->fd;
  if (f.fd < 0) {
    op.result = -ERR_CLOSED;
    return true;
  }
  if (f.remaining == 0) {  // nothing more to send
    f.ended = true;
    op.result = 0;
    return true;
  }
  if (f.copy || force_copy) {
    f.copy = true;
    return copy_step(f, sock_fd, op);
  }
  for (;;) {
    size_t count = f.remaining < 0 || (unsigned long long)f.remaining > file_send_max_step ? file_send_max_step
                                                                                          : (size_t)f.remaining;
    long n = zero_copy_send(sock_fd, f.fd, f.positional ? &f.offset : nullptr, count);
    if (n > 0) {
      f.sent += n;
      if (f.positional) f.offset += n;
      if (f.remaining > 0) f.remaining -= n;
      op.result = n;
      return true;
    }
    if (n == 0) {  // the file ended
      f.ended = true;
      op.result = 0;
      return true;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return false;
    if (no_zero_copy(e)) {
      f.copy = true;
      return copy_step(f, sock_fd, op);
    }
    op.result = -e;
    return true;
  }
}

}  // namespace sock
