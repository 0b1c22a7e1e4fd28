// The socket userdata: a core Socket plus the two wait records (read side,
// write side) its operations use, so waiting allocates nothing.
#pragma once

#include "sock/platform.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

#include "lua/scheduler.hpp"
#include "sock/clock.hpp"
#include "sock/poller.hpp"
#include "sock/socket.hpp"

struct LuaWait;
using PushResults = int (*)(lua_State* co, LuaWait& w);

// A buffered read's request (see lua_bufread.cpp).
struct ReadRequest {
  int mode = 0;
  size_t limit = 0;             // read: max; readn: n; readline/readuntil: max
  const char* delim = nullptr;  // readuntil (a Lua string the waiting call keeps alive)
  size_t dlen = 0;
};

// Binds an operation to the sock thread waiting for it. Everything below
// `last_short` describes one call and is set by sock_lua_prepare, never
// left over from the call before.
struct LuaWait {
  WaitHead head;  // first: this is a wait record (see scheduler.hpp)
  sock::Operation op;
  bool write_side = false;       // LuaSocket::wr rather than ::rd (set once, by LuaSocket)
  // From arming until the completion callback has run (op.pending alone ends
  // earlier, when the loop queues the callback): no other call may use the
  // record meanwhile.
  bool armed = false;
  bool last_short = false;       // the last recv returned less than asked (a hint kept across calls on purpose)
  // Giving way (see sched_give_way): the op starts at the next turn, on the
  // timer of its own deadline, which it does not use until it starts.
  bool defer = false;
  // This call:
  bool tries_first = false;      // run_op (try, then wait) rather than wait_op (the caller's own syscalls)
  // The FFI fast path (LuaJIT): the op was prepared and tried by it and must
  // now wait; `head.fname` names the call until its wait function yields.
  bool fast_prepared = false;
  double expires = -1;           // the deadline, kept for ops that re-arm (buffered reads, sendfile)
  PushResults push_results = nullptr;
  ReadRequest req;               // buffered reads
  void* job = nullptr;           // sendfile, TLS: its transfer state

  // The socket this record belongs to (the one whose rd or wr it is).
  struct LuaSocket* socket() const;
};

// Whether a call may use the record now.
inline bool sock_lua_busy(const LuaWait& w) { return w.armed || w.op.pending; }

// Address buffers the kernel fills or reads while an op waits. Only
// listeners and datagram sockets need them, so they are made on first use
// rather than carried by every connection.
struct SocketAddresses {
  sockaddr_storage rd{};  // recvnext: source; accept: peer
  sockaddr_storage wr{};  // sendto: destination
};

// What LuaSocket::pending points to: bytes[pos..] are unread.
struct ReadAhead {
  std::string bytes;
  size_t pos = 0;
};

// An inet or inet6 address, small enough to keep in every accepted socket.
union CompactAddr {
  sockaddr sa;
  sockaddr_in in;
  sockaddr_in6 in6;
};

struct LuaSocket {
  LuaSocket() { wr.write_side = true; }
  sock::Socket s;
  Scheduler* sched = nullptr;
  LuaWait rd, wr;
  std::unique_ptr<SocketAddresses> addrs;
  // Accepted sockets: both ends, turned into the remote_addr/remote_port/
  // local_addr/local_port fields only when Lua first looks at a field.
  CompactAddr peer{}, local{};
  bool fields_pending = false;  // (the object's fields, stored on first access)
  bool bound = false;
  // Buffered reads (s:read/readline/...): bytes received but not yet
  // consumed. Made by the first buffered read that receives, so that the
  // many sockets that never read ahead pay a pointer, not a buffer.
  std::unique_ptr<ReadAhead> pending;
};

// (offsetof on a class that is not standard-layout, as LuaSocket with its
// unique_ptrs is, is conditionally supported: GCC, Clang and MSVC give the
// member's offset for a class without virtual bases.)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
#endif
inline LuaSocket* LuaWait::socket() const {
  static_assert(!std::is_polymorphic_v<LuaSocket>);
  size_t at = write_side ? offsetof(LuaSocket, wr) : offsetof(LuaSocket, rd);
  return reinterpret_cast<LuaSocket*>(reinterpret_cast<char*>(const_cast<LuaWait*>(this)) - at);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// The read-ahead bytes not consumed yet, and where they start.
inline size_t sock_lua_read_ahead_size(const LuaSocket* ls) {
  return ls->pending ? ls->pending->bytes.size() - ls->pending->pos : 0;
}
inline const char* sock_lua_read_ahead_data(const LuaSocket* ls) {
  return ls->pending ? ls->pending->bytes.data() + ls->pending->pos : "";  // (never null: memchr takes it)
}

// The socket's read-ahead buffer, made if it has none. Throws bad_alloc.
inline ReadAhead& sock_lua_make_read_ahead(LuaSocket* ls) {
  if (!ls->pending) ls->pending = std::make_unique<ReadAhead>();
  return *ls->pending;
}

// Drop the first n read-ahead bytes (n <= sock_lua_read_ahead_size). Once
// none are left, a large buffer is freed: an idle connection keeps none.
void sock_lua_consume_read_ahead(LuaSocket* ls, size_t n);

extern const char* const SOCK_SOCKET;

// The socket of the socket object (a table) at idx, or null if it is none.
LuaSocket* sock_lua_tosocket(lua_State* L, int idx);
LuaSocket* sock_lua_checksocket(lua_State* L, int idx, const char* fname);

// The one place a call sets up its wait record: every input of the op and
// of the record for this call, everything an earlier call left cleared. The
// caller has checked sock_lua_busy first.
void sock_lua_prepare(LuaWait& w, LuaSocket* ls, sock::OpKind kind, char* buf, size_t len, int flags,
                      double expires, PushResults push_results, sockaddr_storage* addr = nullptr,
                      socklen_t addrlen = 0);

// Run the prepared op: try it now, else wait (yielding the thread) until it
// finishes or its deadline passes. Returns what its push_results pushes.
int sock_lua_run_op(lua_State* L, LuaSocket* ls, LuaWait& w, const char* fname);

// Wait (yielding the thread) for the prepared op without trying it first,
// with `on_complete` as its completion: for calls that drive their own
// syscalls and only need the loop to say when to go on (buffered reads,
// sendfile). push_results reports a wait that could not start.
int sock_lua_wait_op(lua_State* L, LuaSocket* ls, LuaWait& w, void (*on_complete)(sock::Operation*),
                     const char* fname);

// For a wait_op's completion that has more to do: wait again, for one turn
// when `give_way` (see sched_give_way; the completion is then called with
// result 0, as if the socket had become ready), else for the socket, with
// the same deadline. Returns 0 when the record stays armed, else -code.
int sock_lua_wait_again(LuaWait& w, bool give_way);

// The socket argument (1) of a method that reads a byte stream, inside a
// sock thread: raises for a datagram socket, whose messages it would run
// together.
LuaSocket* sock_lua_stream_socket(lua_State* L, const char* fname);

// The length argument at `idx` of a recv- or send-style call, whose buffer
// or data (sock_lua_checkbuffer) holds `cap` bytes: nil for all of them
// (required for a cdata, whose cap is unknown), else a whole number from 0 to
// cap. `holder` names the bytes in the message: "buffer's" or "data's".
// tcp, udp and TLS calls check theirs alike.
size_t sock_lua_checklength(lua_State* L, int idx, size_t cap, const char* fname, const char* holder);

// An optional `expires` argument: < 0 when absent.
double sock_lua_optexpires(lua_State* L, int idx, const char* fname);

// Push nil and the normalized error for `code` (a positive errno or sock::ERR_*).
int sock_lua_fail(lua_State* L, int code);

// Module table on top; the scheduler is upvalue 1 of the running function.
void sock_lua_open_socket(lua_State* L, int sched_idx);

// The C ABI of the LuaJIT FFI fast path (see lua/sock_ffi.lua, and
// docs/guide.md, "The LuaJIT fast path"). Its
// functions are reached through this table of pointers, which
// sock._fast_api() hands to Lua as a light userdata, never by symbol name:
// LuaJIT's ffi.C cannot see a module DLL's symbols on Windows, and the
// module is built with hidden visibility. `version` and `size` let the Lua
// side refuse a layout it does not know (it then keeps the C API path).
extern "C" {
struct SockFastApi {
  unsigned version;  // kSockFastApiVersion
  unsigned size;     // sizeof(SockFastApi)
  // sock.buffer's layout: where its size and bytes are in the userdata.
  unsigned buffer_size_offset;
  unsigned buffer_data_offset;
  // The results below: >= 0 the call's result, -code for a failure
  // (sock_fast_error_message(code) names it), or one of:
  double wait;  // the op is prepared and must wait: call the wait function
  double slow;  // nothing was done: take the C API path, which says why
  // s:recv(buf, len, expires, flags), arguments checked by the caller:
  // socket, bytes, length >= 1, expires (the caller's number, or NaN for
  // none), flags >= 0.
  double (*recv)(void* socket, char* buf, size_t len, double expires, int flags);
  // s:send(data, len, expires, flags): the same; out[0] is set to 1 for a
  // stream socket (its success is `true`), 0 otherwise, and out[1] to the
  // count that goes with a failure (the bytes sent), -1 when none does.
  double (*send)(void* socket, const char* buf, size_t len, double expires, int flags, double* out);
  const char* (*error_message)(int code);
  // A TLS connection's conn:recv(buf, len, expires) and conn:send(data,
  // len, expires) once its handshake is done (lua_tls.cpp), null without
  // TLS: `session` is its session userdata, the arguments checked as for
  // recv and send above. recv returns the count (0 at the end), send 0 for
  // success (true); `wait` when the results are not such a number or must
  // be waited for: the Lua side then calls the TLS finish function, which
  // pushes them or waits for them. The other results are not used.
  double (*tls_recv)(void* session, char* buf, size_t len, double expires);
  double (*tls_send)(void* session, const char* buf, size_t len, double expires);
};
}
constexpr unsigned kSockFastApiVersion = 2;

// The `wait` and `slow` results of the fast functions.
constexpr double kSockFastWait = -1e15;  // beyond any -code
constexpr double kSockFastSlow = -2e15;

// Where a fast function may go on: the loop, when a sock thread runs (whether
// the running coroutine may wait is checked by the C API function that
// waits, if it has to) and the loop there is this process's; else null: the
// C API path raises or sets the loop up.
sock::Loop* sock_lua_fast_loop(Scheduler* S);

// A fast function's `expires` (NaN for none: the Lua side refuses a NaN of
// the caller's) as sock_lua_optexpires reads the caller's number.
double sock_lua_fast_expires(double t);

// An `expires` (as sock_lua_optexpires gives it, < 0 for none) already
// past: a wait could not start (Loop::start answers -ETIMEDOUT).
inline bool sock_lua_deadline_passed(double expires) { return expires >= 0 && expires <= sock::monotonic_now(); }

// A stream recv that would surely find nothing now, and so waits without
// trying first (one syscall per message saved): on a completion backend,
// right after a recv that came back short (`last_short`: its wait looks at
// the socket itself); on epoll, when the backend saw the queue run dry with
// no readable edge since (Poller::known_empty). A recv whose deadline has
// passed still gets its one try (its wait could not start). For tcp recvs
// (should_try_first) and TLS reads (lua_tls.cpp's fill) alike.
inline bool sock_lua_recv_waits_first(const sock::Poller& poller, const sock::Operation& recv, bool last_short,
                                      double expires) {
  if (!(poller.completes_ops() ? last_short : poller.known_empty(recv))) return false;
  return !sock_lua_deadline_passed(expires);
}
