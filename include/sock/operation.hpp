// An I/O operation record and the per-fd state it hangs off. Both are plain
// structs that live inside the socket object that owns them, so waiting for
// I/O allocates nothing.
//
// The same record serves readiness backends (epoll, kqueue: the loop tries
// the syscall, and on "would block" the backend performs it when the fd is
// ready) and completion backends (io_uring, IOCP: the backend submits it and
// the kernel reports the finished result).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sock/platform.hpp"
#include "sock/timer_heap.hpp"

namespace sock {

class Loop;
struct Operation;

enum class OpKind : uint8_t {
  recv,      // one recv(): result = bytes (0 = end of stream)
  recv_all,  // recv until `len` bytes or end of stream: result = bytes, `eof` set if it ended early
  recvfrom,  // one recvfrom() into `addr`: result = bytes
  send,      // one send(): result = bytes
  send_all,  // send until all `len` bytes are gone: result = bytes
  sendto,    // one sendto() to `addr`: result = bytes
  accept,    // accept4() one connection: result = the new fd, peer in `addr`
  connect,   // connect to `addr` (or, without one, wait for a connect() in progress): result = 0
  readable,  // wait until the fd is readable: result = 0
  writable,  // wait until the fd is writable: result = 0
  send_file, // one step of sending `file` (see file_send.hpp): result = bytes sent, 0 when the file ended
  wakeup,    // wait until another thread signals the Wakeup whose handle this is (see wakeup.hpp): result = 0
};

// Whether an operation occupies the read side of its fd (else the write side).
inline bool is_read_side(OpKind k) {
  return k == OpKind::recv || k == OpKind::recv_all || k == OpKind::recvfrom ||
         k == OpKind::accept || k == OpKind::readable || k == OpKind::wakeup;
}

// What a backend keeps per fd. One reader and one writer may wait at a time,
// which is what full-duplex use (reads in one thread, writes in another) needs.
// (Its fields are ordered to leave no holes where a socket_t is an int:
// every socket holds one.)
struct IoHandle {
  socket_t fd = invalid_socket;
  uint32_t backend_state = 0;  // backend bookkeeping, e.g. "registered with epoll"
  Operation* reader = nullptr;
  Operation* writer = nullptr;
  // Completion backends: requests the kernel still holds for this handle's
  // ops (at most one per op). While it is non-zero the kernel may still write
  // into the ops, their buffers and this handle, so none of them may be freed;
  // it drops to 0 once every op has been passed to Loop::complete, or once
  // the Loop (and with it the backend) has been destroyed.
  uint32_t inflight = 0;
  bool stream = false;         // a byte stream (SOCK_STREAM): a short recv means the queue ran dry
  bool rd_empty = false;       // readiness backends: see Poller::known_empty
  bool rd_final = false;       // readiness backends: the peer's end, an error or urgent data was reported
};

struct FileSend;

struct Operation {
  // (The small fields sit together, here and below, so that the struct has
  // no holes: every socket holds two of them.)
  OpKind kind = OpKind::recv;
  bool pending = false;
  bool tried = false;  // its syscall was tried once (Loop::try_op) before it waits
  bool eof = false;    // recv_all: the stream ended before `len` bytes
  int cancel_code = 0; // why the op was cancelled (ETIMEDOUT, ERR_CLOSED), 0 if not
  IoHandle* handle = nullptr;
  Loop* loop = nullptr;

  // Inputs.
  char* buf = nullptr;
  size_t len = 0;
  sockaddr_storage* addr = nullptr;    // sendto: destination; recvfrom/accept: source out
  FileSend* file = nullptr;            // send_file: the transfer, which keeps its own progress
  int flags = 0;                       // MSG_* flags for the syscall
  socklen_t addrlen = 0;

  // Progress and result.
  size_t done = 0;     // recv_all/send_all: bytes moved so far (a caller may start above 0); connect: 1 once connect() was called
  long result = 0;     // >= 0 success value, < 0 is -code (errno or sock::ERR_*)

  // Completion: called from Loop::run_once once the op has finished.
  void (*on_complete)(Operation*) = nullptr;
  void* owner = nullptr;

  // Armed by start when the op has an `expires`. Until then the op's owner
  // may use it for its own ends (the Lua binding starts an op a turn later
  // on it), provided it is disarmed, or has fired, before start.
  Timer deadline;
  Operation* next_ready = nullptr; // intrusive link in the loop's ready queue

  // Completion backends: per-op memory the kernel reads or writes until the
  // op's completion arrives (io_uring: the msghdr of recvmsg/sendmsg), taken
  // from the backend's pool only while the op is in flight. Unused by epoll.
  void* backend_data = nullptr;
  [[no_unique_address]] PlatformOpState platform;  // (takes no room where it is empty)

  // The one way to set an op up for a call: every input is given, and what
  // an earlier call left behind (progress, result, eof, cancel code, the
  // completion callback) is cleared, so nothing carries over from one call
  // into the next. Must not be called while the op is pending.
  void prepare(OpKind k, IoHandle* h, char* b = nullptr, size_t n = 0, int f = 0, sockaddr_storage* a = nullptr,
               socklen_t alen = 0) {
    kind = k;
    handle = h;
    buf = b;
    len = n;
    flags = f;
    addr = a;
    addrlen = alen;
    file = nullptr;
    done = 0;
    result = 0;
    eof = false;
    tried = false;
    cancel_code = 0;
    on_complete = nullptr;
    owner = nullptr;
  }
};

// Perform the operation's syscall once, without blocking. Returns false when
// it would block (the op stays as it was, progress kept), true when it
// finished, successfully or not, with `result` set. Retries EINTR.
bool perform(Operation& op);

}  // namespace sock
