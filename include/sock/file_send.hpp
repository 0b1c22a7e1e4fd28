// Sending a file over a socket: what s:sendfile needs from the OS, with no
// Lua in it. A FileSend is one transfer: its own file descriptor (opened from
// a path, or a duplicate of the caller's, so that the caller closing theirs
// meanwhile cannot make it read from a reused number) and its progress.
//
// It moves through OpKind::send_file ops: each performs one step (one
// sendfile(2) of at most max_step bytes, or one read + send of the copy
// fallback), so the caller can give way between steps; a readiness backend
// performs the step once the socket is writable, a completion backend
// submits it. The zero-copy path falls back to read + send through a 64 KiB
// buffer where the kernel cannot sendfile from that source or to that socket.
#pragma once

#include <cstddef>
#include <cstdio>

namespace sock {

struct FileSend {
  int fd = -1;               // ours: opened or duplicated
  bool positional = false;   // read at `offset` (else at the fd's own position, advancing it)
  long long offset = 0;      // the next byte to read from the file, when positional
  long long remaining = -1;  // bytes still to send, -1: up to the end of the file
  long long sent = 0;
  bool copy = false;         // the read + send fallback
  char* buf = nullptr;       // copy: bytes read and not yet sent are [pos, len)
  size_t pos = 0, len = 0;
  bool ended = false;        // the file ended (a step's result 0 says so)

  // Where the transfer starts. Each returns 0 or -errno and sets fd,
  // positional and offset; `offset` < 0 means "not given".
  int open_path(const char* path, long long offset);  // a FIFO is opened non-blocking
  int open_fd(int source_fd, long long offset);       // from offset, else where the fd stands
  int open_file(std::FILE* file, long long offset);   // from offset, else where the Lua program stands

  // Close the fd and free the buffer (idempotent).
  void release();
  ~FileSend() { release(); }
};

// The largest sendfile(2) of one step: a reader that keeps up would otherwise
// keep one call going for as long as the file lasts.
constexpr size_t file_send_max_step = 1u << 20;

// Test hooks: always use the copy fallback; wait this many seconds with
// SIGPIPE blocked before each sendfile(2) (0: no wait), so that a test can
// send the process a SIGPIPE meanwhile. The latter returns false where the
// zero-copy call needs no SIGPIPE blocking (and the window never opens).
void file_send_force_copy(bool on);
bool file_send_forcing_copy();
bool file_send_signal_window(double seconds);

}  // namespace sock
