// A wake-up from another thread. Any thread calls signal(); the loop learns of
// it through an OpKind::wakeup op on `io`, which completes once the wake-up
// was signalled and leaves it reset. Signals coalesce: several before the op
// completes wake it once. (POSIX: an eventfd on Linux, a non-blocking pipe
// elsewhere; see src/core/unix/wakeup.cpp.)
#pragma once

#include "sock/operation.hpp"

namespace sock {

class Wakeup {
 public:
  Wakeup() = default;
  ~Wakeup() { close(); }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // 0 or -errno.
  int open();
  bool is_open() const { return read_fd_ != invalid_socket; }
  // Any thread, any time after open(); never blocks.
  void signal();
  // Loop thread: reset it. (The wakeup op does this itself; true if it was set.)
  bool clear();
  void close();
  // A fork's child: close this process's copies of the descriptors without
  // touching anything else (another thread of the parent may be using them).
  void drop_after_fork() { close(); }

  // The handle the loop waits on: give it to an OpKind::wakeup op. Its fd is
  // the read side; `io.fd` is copied into the waiter's own handle by callers
  // that register it with a loop (see lua_dns.cpp).
  socket_t wait_fd() const { return read_fd_; }

 private:
  socket_t read_fd_ = invalid_socket;  // (a socket on Windows, where the loop can wait for nothing else)
  socket_t write_fd_ = invalid_socket;  // the same as read_fd_ for an eventfd
};

// What an OpKind::wakeup op does when its fd is ready: reset it. True if it
// had been signalled (the op completes), false if not (it keeps waiting).
bool wakeup_clear_fd(socket_t fd);

}  // namespace sock
