// FileSend on Windows: the source is a C runtime descriptor of our own, and
// the zero-copy step is TransmitFile, which the IOCP poller submits (see
// poller_iocp.cpp): the loop's try of a send_file op says "would block" for
// it. The copy fallback (forced by the test hook, or when TransmitFile
// refuses the source) reads here and sends, as on POSIX.
#include "sock/file_send.hpp"

#include <fcntl.h>
#include <io.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "sock/error.hpp"
#include "sock/operation.hpp"
#include "sock/process.hpp"
#include "win.hpp"

namespace sock {

namespace {

constexpr size_t kCopyChunk = 65536;

std::atomic<bool> force_copy{false};

// A descriptor for the same file with a file position of its own
// (ReOpenFile), so reading at an offset leaves the caller's position alone;
// a duplicate (sharing the position) where the file cannot be reopened.
int reopen(int source_fd, bool own_position) {
  HANDLE h = (HANDLE)_get_osfhandle(source_fd);
  if (h == INVALID_HANDLE_VALUE) return -EINVAL;
  HANDLE mine = INVALID_HANDLE_VALUE;
  if (own_position)
    mine = ReOpenFile(h, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, 0);
  if (mine == INVALID_HANDLE_VALUE &&
      !DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &mine, 0, FALSE, DUPLICATE_SAME_ACCESS))
    return -win32_errno(GetLastError());
  int fd = _open_osfhandle((intptr_t)mine, _O_RDONLY | _O_BINARY);
  if (fd < 0) {
    CloseHandle(mine);
    return -EMFILE;
  }
  return fd;
}

// One read of the copy fallback: bytes read, 0 at the end, or -errno.
long read_some(FileSend& f, size_t want) {
  if (f.positional && _lseeki64(f.fd, f.offset, SEEK_SET) < 0) return -errno;
  int n = _read(f.fd, f.buf, (unsigned)want);
  return n < 0 ? -errno : n;
}

bool copy_step(FileSend& f, SOCKET s, Operation& op) {
  if (f.pos == f.len) {
    if (!f.buf) {
      f.buf = static_cast<char*>(std::malloc(kCopyChunk));
      if (!f.buf) {
        op.result = -ENOMEM;
        return true;
      }
    }
    size_t want = f.remaining < 0 || (unsigned long long)f.remaining > kCopyChunk ? kCopyChunk : (size_t)f.remaining;
    long n = read_some(f, want);
    if (n <= 0) {
      if (n == 0) f.ended = true;
      op.result = n;
      return true;
    }
    f.pos = 0;
    f.len = (size_t)n;
    if (f.positional) f.offset += n;
  }
  int n = ::send(s, f.buf + f.pos, (int)(f.len - f.pos), 0);
  if (n == SOCKET_ERROR) {
    int e = last_socket_error();
    if (e == EAGAIN) return false;  // the poller sends the rest (file_send_copy_buffer)
    op.result = -e;
    return true;
  }
  file_send_copied(f, (size_t)n);
  op.result = n;
  return true;
}

}  // namespace

int FileSend::open_path(const char* path, long long off) {
  release();
  // The path is UTF-8, as Lua strings are on every other system.
  int wlen = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, nullptr, 0);
  if (wlen <= 0) return -EINVAL;
  std::wstring wpath((size_t)wlen, L'\0');
  MultiByteToWideChar(CP_UTF8, 0, path, -1, &wpath[0], wlen);
  fd = _wopen(wpath.c_str(), _O_RDONLY | _O_BINARY | _O_NOINHERIT);
  positional = true;
  offset = off < 0 ? 0 : off;
  if (fd >= 0) return 0;
  // Windows refuses to open a directory with EACCES: say what POSIX says.
  int e = errno;
  DWORD attributes = GetFileAttributesW(wpath.c_str());
  if (e == EACCES && attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)) e = EISDIR;
  return -e;
}

int FileSend::open_fd(int source_fd, long long off) {
  release();
  positional = off >= 0;  // else at the fd's position, which moves
  offset = off;
  int rc = reopen(source_fd, positional);
  if (rc < 0) return rc;
  fd = rc;
  return 0;
}

int FileSend::open_file(std::FILE* file, long long off) {
  release();
  // From where the Lua program stands in the file (stdio may have read
  // ahead of the descriptor's position), which is left where it was.
  long long pos = off < 0 ? _ftelli64(file) : 0;
  positional = off >= 0 || pos >= 0;
  offset = off < 0 ? pos : off;
  int rc = reopen(_fileno(file), positional);
  if (rc < 0) return rc;
  fd = rc;
  return 0;
}

void FileSend::release() {
  ended = false;
  if (fd >= 0) _close(fd);
  fd = -1;
  std::free(buf);
  buf = nullptr;
  pos = len = 0;
}

void file_send_force_copy(bool on) { force_copy = on; }
bool file_send_forcing_copy() { return force_copy; }
bool file_send_signal_window(double) { return false; }  // no SIGPIPE on Windows

void file_send_copied(FileSend& f, size_t n) {
  f.pos += n;
  f.sent += (long long)n;
  if (f.remaining > 0) f.remaining -= (long long)n;
}

void file_send_transmitted(FileSend& f, size_t n) {
  f.sent += (long long)n;
  if (f.remaining > 0) f.remaining -= (long long)n;
  if (f.positional) {
    f.offset += (long long)n;
  } else {  // TransmitFile went by the offset it was given: move the position past what it sent
    _lseeki64(f.fd, (long long)n, SEEK_CUR);
  }
  if (n == 0) f.ended = true;
}

bool perform_send_file(Operation& op) {
  FileSend& f = *op.file;
  if (f.fd < 0) {
    op.result = -ERR_CLOSED;
    return true;
  }
  if (f.remaining == 0) {
    f.ended = true;
    op.result = 0;
    return true;
  }
  // Wine's TransmitFile never completes once the peer has reset the
  // connection (seen with Wine 8: the step hangs until its deadline), so
  // under Wine the copy fallback does every step.
  static const bool under_wine = running_under_wine();
  if (f.copy || force_copy || under_wine) {
    f.copy = true;
    return copy_step(f, op.handle->fd, op);
  }
  return false;  // TransmitFile, through the poller
}

}  // namespace sock
