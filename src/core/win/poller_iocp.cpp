// The IOCP backend: Windows' completion port. Completion-based, like
// io_uring: each waiting op is one overlapped request (WSARecv, WSASend,
// AcceptEx, ConnectEx, TransmitFile, ...) whose OVERLAPPED lives in the op
// itself (Operation::platform), so waiting allocates nothing; the kernel
// posts the finished request to the port, and one GetQueuedCompletionStatusEx
// per loop turn collects them.
//
// Readiness: a zero-byte WSARecv completes when data (or the end of the
// stream) arrives, without taking any: that is "readable", and the wake-up's
// wait. "Writable" is a zero-byte WSASend.
//
// Sockets are tied to the port on their first request, with
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS where the socket's provider allows
// it: a request that succeeds at once then posts nothing and is finished
// right here (submit returns 1).
//
// Lifetimes: until its completion arrives the kernel may write into the op
// (its OVERLAPPED, its buffer) and the handle's socket, so handle.inflight
// counts them, and the poller keeps its requests in flight in an intrusive
// list (no allocation). Cancelling is CancelIoEx on the op's own OVERLAPPED,
// asynchronous: the op's completion (aborted, or a result that won the race)
// finishes it. Closing a socket aborts what it has pending the same way
// (Wine reports ERROR_HANDLES_CLOSED for those, Windows ERROR_OPERATION_ABORTED).
// Destroying the poller cancels every request and waits for their
// completions (bounded), finishing no op.
#include <io.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "sock/file_send.hpp"
#include "sock/loop.hpp"
#include "sock/poller.hpp"
#include "win.hpp"

namespace sock {

namespace {

// IoHandle::backend_state: the poller id shifted left by one (tied to our
// port) and the low bit: completions of immediate successes are skipped.
constexpr uint32_t skips_success = 1;

constexpr ULONG max_request = ULONG(INT_MAX);  // Winsock counts bytes in an int

// What an AcceptEx needs besides its OVERLAPPED: the socket it accepts
// into, made beforehand, and where it writes the local and remote address,
// each in a slot of sizeof(sockaddr_storage) + 16 bytes. One is lent to an
// accept op (through Operation::backend_data) from its request's start
// until its completion has been read.
constexpr DWORD accept_address_slot = sizeof(sockaddr_storage) + 16;
struct AcceptBuffer {
  SOCKET socket = INVALID_SOCKET;
  char bytes[2 * accept_address_slot];
};

// The op whose request's state is `r` (its Operation::platform).
Operation& op_of(PlatformOpState& r) {
  static_assert(std::is_standard_layout_v<Operation>, "offsetof(Operation, platform) is defined");
  return *reinterpret_cast<Operation*>(reinterpret_cast<char*>(&r) - offsetof(Operation, platform));
}

ULONG request_len(const Operation& op) {
  size_t left = op.len - op.done;
  return left > max_request ? max_request : (ULONG)left;
}

// What a completion (or an immediate success) means for the op: false when
// it must go on with another request (a partial recv_all/send_all, a spurious
// wake-up), true when the op has its result.
bool finished(Operation& op, DWORD bytes, int err) {
  PlatformOpState& r = op.platform;
  // A request that moved bytes before it was cancelled or failed reports
  // them: they are gone from (or arrived in) the buffer, and the caller
  // must count them. Its error comes with the next request.
  bool moved = bytes > 0 && op.kind != OpKind::accept && op.kind != OpKind::connect;
  if (moved && op.kind != OpKind::recv_all && op.kind != OpKind::send_all) err = 0;
  switch (op.kind) {
    case OpKind::recv_all:
    case OpKind::send_all:
      if (bytes > 0) {
        op.done += bytes;
        if (!err && op.done < op.len) return false;
        if (err) {
          op.result = -err;
          return true;
        }
      } else if (err == 0 && op.kind == OpKind::recv_all) {
        op.eof = true;
      } else if (err) {
        op.result = -err;
        return true;
      }
      op.result = (long)op.done;
      return true;
    case OpKind::recv:
    case OpKind::recvfrom:
      // A datagram larger than the buffer: POSIX gives the part that fit.
      if (err == EMSGSIZE) err = 0;
      if (op.kind == OpKind::recvfrom && !err) op.addrlen = r.addrlen;
      op.result = err ? -err : (long)bytes;
      return true;
    case OpKind::send:
    case OpKind::sendto:
      op.result = err ? -err : (long)bytes;
      return true;
    case OpKind::readable:
    case OpKind::writable:
      op.result = err ? -err : 0;
      return true;
    case OpKind::wakeup:
      if (err) {
        op.result = -err;
        return true;
      }
      if (!perform(op)) return false;  // resets it; someone else took the signal: wait on
      return true;
    case OpKind::connect:
      if (!err && setsockopt(op.handle->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) == SOCKET_ERROR)
        err = last_socket_error();
      op.result = err ? -err : 0;
      return true;
    case OpKind::accept: {
      SOCKET listener = op.handle->fd;
      auto& accepting = *static_cast<AcceptBuffer*>(op.backend_data);
      SOCKET s = accepting.socket;
      accepting.socket = INVALID_SOCKET;  // (this op's now, to close or to hand out)
      if (!err && setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char*)&listener, sizeof listener) ==
                      SOCKET_ERROR)
        err = last_socket_error();
      if (err) {
        closesocket(s);
        // The peer gave up before we took its connection: wait for the next.
        if (err == ECONNRESET || err == ECONNABORTED) return false;
        op.result = -err;
        return true;
      }
      sockaddr *local = nullptr, *remote = nullptr;
      INT local_len = 0, remote_len = 0;
      winsock_extensions().get_accept_ex_sockaddrs(accepting.bytes, 0, accept_address_slot, accept_address_slot,
                                                   &local, &local_len, &remote, &remote_len);
      op.addrlen = 0;
      if (op.addr && remote && remote_len > 0 && (size_t)remote_len <= sizeof(sockaddr_storage)) {
        std::memcpy(op.addr, remote, (size_t)remote_len);
        op.addrlen = remote_len;
      }
      op.result = (long)s;
      return true;
    }
    case OpKind::send_file: {
      FileSend& f = *op.file;
      if (err) {
        op.result = -err;
        return true;
      }
      if (f.copy)
        file_send_copied(f, bytes);
      else
        file_send_transmitted(f, bytes);
      op.result = (long)bytes;
      return true;
    }
  }
  op.result = -EINVAL;
  return true;
}

class IocpPoller final : public Poller {
 public:
  int init() {
    int rc = network_init();
    if (rc < 0) return rc;
    const WinsockExtensions& ext = winsock_extensions();
    if (!ext.accept_ex || !ext.connect_ex || !ext.get_accept_ex_sockaddrs || !ext.transmit_file) return -ENOSYS;
    port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (!port_) return -win32_errno(GetLastError());
    id_ = new_poller_id() & 0x7fffffff;
    if (!id_) id_ = new_poller_id() & 0x7fffffff;
    return 0;
  }

  ~IocpPoller() override {
    if (port_) {
      drain();
      CloseHandle(port_);
    }
    // (A buffer still lent, to a request the drain gave up on, is left to
    // the kernel: it may still write into it.)
    for (AcceptBuffer* b : free_accept_buffers_) delete b;
  }

  const char* name() const override { return "iocp"; }
  bool completes_ops() const override { return true; }
  int fd() const override { return -1; }  // a port is not something poll() can watch

  bool try_now(Operation& op) override {
    if (op.kind == OpKind::connect) return false;  // ConnectEx connects (see submit)
    return Poller::try_now(op);
  }

  int submit(Operation& op) override {
    int rc = associate(*op.handle);
    if (rc < 0) return rc;
    return issue(op);
  }

  bool cancel(Operation& op) override {
    PlatformOpState& r = op.platform;
    if (!r.in_flight) return true;
    // ERROR_NOT_FOUND: it has finished already, and its completion is on
    // its way. Either way the completion finishes the op.
    if (op.handle->fd != INVALID_SOCKET) CancelIoEx((HANDLE)op.handle->fd, &r.overlapped);
    return false;
  }

  // Closing the socket aborts what it still has pending: nothing to do first.
  void forget(IoHandle&) override {}

  int close(IoHandle& h) override {
    SOCKET s = h.fd;
    h.fd = INVALID_SOCKET;
    if (s == INVALID_SOCKET) return 0;
    return closesocket(s) == SOCKET_ERROR ? -last_socket_error() : 0;
  }

  int wait(int timeout_ms) override {
    OVERLAPPED_ENTRY entries[128];
    ULONG n = 0;
    stats_.enters++;
    DWORD timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
    if (!GetQueuedCompletionStatusEx(port_, entries, 128, &n, timeout, FALSE)) {
      DWORD e = GetLastError();
      return e == WAIT_TIMEOUT ? 0 : -win32_errno(e);
    }
    for (ULONG i = 0; i < n; i++) {
      if (!entries[i].lpOverlapped) continue;  // (nothing posts these)
      auto* r = reinterpret_cast<PlatformOpState*>(entries[i].lpOverlapped);
      Operation& op = op_of(*r);
      end_request(*r);
      int err = status_of(op, entries[i].dwNumberOfBytesTransferred);
      on_completion(op, entries[i].dwNumberOfBytesTransferred, err);
    }
    return (int)n;
  }

  // No fork() on Windows: nothing is ever shared with a child.
  void abandon() override {}

 private:
  // Tie the handle's socket to the port, once.
  int associate(IoHandle& h) {
    if ((h.backend_state >> 1) == id_) return 0;
    if (!CreateIoCompletionPort((HANDLE)h.fd, port_, 0, 0)) return -win32_errno(GetLastError());
    uint32_t state = id_ << 1;
    // Not with every provider: a layered one may complete a request at once
    // and still post its completion.
    WSAPROTOCOL_INFOW info;
    int len = sizeof info;
    if (getsockopt(h.fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char*)&info, &len) == 0 &&
        (info.dwServiceFlags1 & XP1_IFS_HANDLES) &&
        SetFileCompletionNotificationModes((HANDLE)h.fd,
                                           FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE))
      state |= skips_success;
    h.backend_state = state;
    return 0;
  }

  void begin_request(Operation& op) {
    PlatformOpState& r = op.platform;
    std::memset(&r.overlapped, 0, sizeof r.overlapped);
    r.in_flight = true;
    r.prev = nullptr;
    r.next = head_;
    if (head_) head_->prev = &r;
    head_ = &r;
    op.handle->inflight++;
    inflight_++;
    stats_.requests++;
  }

  void end_request(PlatformOpState& r) {
    if (!r.in_flight) return;
    r.in_flight = false;
    if (r.prev) r.prev->next = r.next;
    else head_ = r.next;
    if (r.next) r.next->prev = r.prev;
    r.prev = r.next = nullptr;
    IoHandle& h = *op_of(r).handle;
    if (h.inflight) h.inflight--;
    inflight_--;
  }

  // The errno value a completion carries (0: success). The OVERLAPPED's
  // status is an NTSTATUS (its upper half is garbage under Wine); Winsock
  // turns it into its own error for a socket that is still open.
  static int status_of(Operation& op, DWORD& bytes) {
    if ((DWORD)op.platform.overlapped.Internal == 0) return 0;
    if (op.handle->fd == INVALID_SOCKET) return ECANCELED;  // closed meanwhile: aborted
    DWORD flags = 0;
    if (WSAGetOverlappedResult(op.handle->fd, &op.platform.overlapped, &bytes, FALSE, &flags)) return 0;
    return last_socket_error();
  }

  void on_completion(Operation& op, DWORD bytes, int err) {
    if (!op.pending) {  // cannot happen through Loop; never reissue it
      return_accept_buffer(op);
      return;
    }
    bool done = finished(op, bytes, err);
    return_accept_buffer(op);  // (read by finished; a new request takes another)
    if (!done) {
      if (op.cancel_code) {  // withdrawn meanwhile: stop here, keeping the progress made
        op.result = -ECANCELED;
      } else {
        int rc = issue(op);
        if (rc == 0) return;
        if (rc < 0) op.result = rc;
      }
    }
    loop->complete(op);
  }

  // Lend an accept op its AcceptBuffer, with a socket of the listener's
  // family to accept into. 0 or an errno value.
  int lend_accept_buffer(Operation& op) {
    AcceptBuffer* b = nullptr;
    if (!free_accept_buffers_.empty()) {
      b = free_accept_buffers_.back();
      free_accept_buffers_.pop_back();
    } else {
      b = new (std::nothrow) AcceptBuffer;
      if (!b) return ENOMEM;
    }
    op.backend_data = b;
    b->socket = open_socket(listener_family(op.handle->fd), SOCK_STREAM, 0);
    if (b->socket != INVALID_SOCKET) return 0;
    int err = last_socket_error();
    return_accept_buffer(op);
    return err;
  }

  // Take an accept op's AcceptBuffer back once its request is over (no-op
  // for other ops), closing the socket it accepted into if nobody took it
  // (a connection accepted just before a cancel, an error).
  void return_accept_buffer(Operation& op) {
    if (op.kind != OpKind::accept || !op.backend_data) return;
    auto* b = static_cast<AcceptBuffer*>(op.backend_data);
    op.backend_data = nullptr;
    if (b->socket != INVALID_SOCKET) {
      closesocket(b->socket);
      b->socket = INVALID_SOCKET;
    }
    try {
      free_accept_buffers_.push_back(b);
    } catch (const std::bad_alloc&) {
      delete b;
    }
  }

  // Start the op's request. 0: pending (its completion comes through wait);
  // 1: finished at once, result in op; -errno: could not be started.
  int issue(Operation& op) {
    for (;;) {
      // The copy fallback of a file send refills its buffer first (one read
      // and one send, as on POSIX); what that send left is the request.
      if (op.kind == OpKind::send_file && op.file->copy && op.file->pos == op.file->len && perform(op)) return 1;
      DWORD bytes = 0;
      int err = 0;
      switch (start_request(op, bytes, err)) {
        case Started::pending:
        case Started::posted:  // finished at once, and its completion is posted all the same
          return 0;
        case Started::not_started:
          return -err;
        case Started::retry:
          continue;
        case Started::done_now:  // (err: failed at once) nothing is posted: the request is over
          end_request(op.platform);
          break;
      }
      bool done = finished(op, bytes, err);
      return_accept_buffer(op);
      if (done) return 1;
      if (op.cancel_code) {
        op.result = -ECANCELED;
        return 1;
      }
    }
  }

  enum class Started {
    pending,      // the completion comes through wait()
    posted,       // succeeded at once, and its completion is posted anyway
    done_now,     // succeeded (bytes) or failed (err) at once; nothing posted
    not_started,  // no request was made (err)
    retry,        // no request was made; the op changed course (a file send now copies): issue again
  };

  Started start_request(Operation& op, DWORD& bytes, int& err) {
    PlatformOpState& r = op.platform;
    SOCKET fd = op.handle->fd;
    const WinsockExtensions& ext = winsock_extensions();
    BOOL ok = FALSE;
    int rc = 0;
    // Prepared before the request is counted in flight, so that a failure
    // to prepare leaves nothing behind.
    if (op.kind == OpKind::accept) {
      err = lend_accept_buffer(op);
      if (err) return Started::not_started;
    } else if (op.kind == OpKind::connect) {
      err = op.addr ? bind_if_unbound(fd, op.addr->ss_family) : EINVAL;
      if (err) return Started::not_started;
    }
    begin_request(op);
    switch (op.kind) {
      case OpKind::recv:
      case OpKind::recv_all:
        r.wsabuf.buf = op.buf + op.done;
        r.wsabuf.len = request_len(op);
        r.flags = (DWORD)(op.flags & ~MSG_WAITALL);
        rc = WSARecv(fd, &r.wsabuf, 1, &bytes, &r.flags, &r.overlapped, nullptr);
        break;
      case OpKind::readable:
      case OpKind::wakeup:
        r.wsabuf.buf = nullptr;
        r.wsabuf.len = 0;
        r.flags = 0;
        rc = WSARecv(fd, &r.wsabuf, 1, &bytes, &r.flags, &r.overlapped, nullptr);
        break;
      case OpKind::recvfrom:
        r.wsabuf.buf = op.buf;
        r.wsabuf.len = request_len(op);
        r.flags = (DWORD)op.flags;
        r.addrlen = sizeof(sockaddr_storage);
        rc = WSARecvFrom(fd, &r.wsabuf, 1, &bytes, &r.flags, (sockaddr*)op.addr, op.addr ? &r.addrlen : nullptr,
                         &r.overlapped, nullptr);
        break;
      case OpKind::send:
      case OpKind::send_all:
        r.wsabuf.buf = op.buf + op.done;
        r.wsabuf.len = request_len(op);
        rc = WSASend(fd, &r.wsabuf, 1, &bytes, (DWORD)op.flags, &r.overlapped, nullptr);
        break;
      case OpKind::writable:
        r.wsabuf.buf = nullptr;
        r.wsabuf.len = 0;
        rc = WSASend(fd, &r.wsabuf, 1, &bytes, 0, &r.overlapped, nullptr);
        break;
      case OpKind::sendto:
        r.wsabuf.buf = op.buf;
        r.wsabuf.len = request_len(op);
        rc = WSASendTo(fd, &r.wsabuf, 1, &bytes, (DWORD)op.flags, (const sockaddr*)op.addr, op.addrlen,
                       &r.overlapped, nullptr);
        break;
      case OpKind::accept: {
        auto& accepting = *static_cast<AcceptBuffer*>(op.backend_data);
        ok = ext.accept_ex(fd, accepting.socket, accepting.bytes, 0,
                           accept_address_slot, accept_address_slot, &bytes, &r.overlapped);
        rc = ok ? 0 : SOCKET_ERROR;
        break;
      }
      case OpKind::connect:
        ok = ext.connect_ex(fd, (const sockaddr*)op.addr, op.addrlen, nullptr, 0, nullptr, &r.overlapped);
        rc = ok ? 0 : SOCKET_ERROR;
        break;
      case OpKind::send_file: {
        FileSend& f = *op.file;
        if (f.copy) {  // the rest of the copy buffer
          r.wsabuf.buf = f.buf + f.pos;
          r.wsabuf.len = (ULONG)(f.len - f.pos);
          rc = WSASend(fd, &r.wsabuf, 1, &bytes, 0, &r.overlapped, nullptr);
          break;
        }
        HANDLE file = (HANDLE)_get_osfhandle(f.fd);
        long long at = f.offset;
        if (!f.positional) {  // where the descriptor stands
          LARGE_INTEGER zero{}, pos{};
          SetFilePointerEx(file, zero, &pos, FILE_CURRENT);
          at = pos.QuadPart;
        }
        r.overlapped.Offset = (DWORD)(unsigned long long)at;
        r.overlapped.OffsetHigh = (DWORD)((unsigned long long)at >> 32);
        // At most what the socket's send buffer takes: a step that waits
        // for the peer to read may be withdrawn (a deadline, a close), and
        // one that fits is finished at once, so the count sent is known.
        size_t step = file_send_max_step;
        int sndbuf = 0, optlen = sizeof sndbuf;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, (char*)&sndbuf, &optlen) == 0 && sndbuf >= 4096 &&
            (size_t)sndbuf < step)
          step = (size_t)sndbuf;
        size_t count = f.remaining < 0 || (unsigned long long)f.remaining > step ? step : (size_t)f.remaining;
        ok = ext.transmit_file(fd, file, (DWORD)count, 0, &r.overlapped, nullptr, 0);
        rc = ok ? 0 : SOCKET_ERROR;
        if (!ok && WSAGetLastError() != WSA_IO_PENDING && WSAGetLastError() != ERROR_IO_PENDING) {
          // TransmitFile will not read this source (a pipe, a console): copy it.
          int e = last_socket_error();
          if (e == EINVAL || e == EOPNOTSUPP || e == EBADF) {
            end_request(r);
            f.copy = true;
            return Started::retry;
          }
        }
        break;
      }
    }
    if (rc == 0) {
      if (!(op.handle->backend_state & skips_success)) return Started::posted;
      // A wake-up that was signalled already: its waiter learns of it
      // through the port, next turn, as of one signalled later (its owner
      // expects the wait to finish through the loop, never at once; the
      // resolver's did, and lost the wake-up). The reset is done then.
      if (op.kind == OpKind::wakeup && PostQueuedCompletionStatus(port_, 0, 0, &r.overlapped))
        return Started::posted;
      if (op.kind == OpKind::accept || op.kind == OpKind::connect || op.kind == OpKind::send_file) {
        // The byte count of these comes from the OVERLAPPED.
        DWORD flags = 0;
        WSAGetOverlappedResult(fd, &r.overlapped, &bytes, FALSE, &flags);
      }
      return Started::done_now;
    }
    int wsa = WSAGetLastError();
    if (wsa == WSA_IO_PENDING || wsa == ERROR_IO_PENDING) return Started::pending;
    err = wsa_errno(wsa);
    if (err <= 0) err = EIO;
    return Started::done_now;
  }

  static int listener_family(SOCKET fd) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (getsockname(fd, (sockaddr*)&ss, &len) == SOCKET_ERROR) return AF_INET;
    return ss.ss_family;
  }

  // ConnectEx wants a bound socket: bind an unbound one to the wildcard
  // address, as connect() does by itself. 0 or an errno value.
  static int bind_if_unbound(SOCKET fd, int family) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (getsockname(fd, (sockaddr*)&ss, &len) == 0) return 0;
    if (WSAGetLastError() != WSAEINVAL) return last_socket_error();
    std::memset(&ss, 0, sizeof ss);
    ss.ss_family = (ADDRESS_FAMILY)family;
    len = family == AF_INET6 ? sizeof(sockaddr_in6) : family == AF_INET ? sizeof(sockaddr_in) : 0;
    if (!len) return EAFNOSUPPORT;
    if (bind(fd, (sockaddr*)&ss, len) == SOCKET_ERROR) return last_socket_error();
    return 0;
  }

  // Withdraw every request and wait for their completions, finishing no op.
  void drain() {
    for (PlatformOpState* r = head_; r; r = r->next) {
      SOCKET fd = op_of(*r).handle->fd;
      if (fd != INVALID_SOCKET) CancelIoEx((HANDLE)fd, &r->overlapped);
    }
    int idle_rounds = 0;
    while (inflight_ > 0 && idle_rounds < 20) {
      OVERLAPPED_ENTRY entries[64];
      ULONG n = 0;
      if (!GetQueuedCompletionStatusEx(port_, entries, 64, &n, 100, FALSE) || n == 0) {
        idle_rounds++;
        continue;
      }
      for (ULONG i = 0; i < n; i++) {
        if (!entries[i].lpOverlapped) continue;
        auto* r = reinterpret_cast<PlatformOpState*>(entries[i].lpOverlapped);
        end_request(*r);
        return_accept_buffer(op_of(*r));  // (closes a socket accepted just before the cancel)
      }
    }
  }

  HANDLE port_ = nullptr;
  uint32_t id_ = 0;
  PlatformOpState* head_ = nullptr;  // requests in flight
  size_t inflight_ = 0;
  std::vector<AcceptBuffer*> free_accept_buffers_;  // (the lent ones are in their ops)
};

}  // namespace

std::unique_ptr<Poller> make_iocp_poller(int* err) {
  auto p = std::make_unique<IocpPoller>();
  int rc = p->init();
  if (rc < 0) {
    if (err) *err = -rc;
    return nullptr;
  }
  return p;
}

}  // namespace sock
