// Socket objects for Lua: sock.tcp/udp/raw and their methods. Each method
// checks its arguments, tries its syscall at once, and only waits (yielding
// the calling thread) when the syscall would block.
#include "lua/lua_socket.hpp"


#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

#include "lua/lua_address.hpp"
#include "lua/lua_buffer.hpp"
#include "lua/lua_options.hpp"
#include "lua/lua_tls.hpp"
#include "sock/address.hpp"
#include "sock/clock.hpp"
#include "sock/error.hpp"

const char* const SOCK_SOCKET = "sock.socket";

// --- helpers -------------------------------------------------------------

int sock_lua_fail(lua_State* L, int code) {
  lua_pushnil(L);
  lua_pushstring(L, sock::error_message(code));
  return 2;
}

// A socket object is a Lua table, as luapower's are (code rawsets into it,
// and a field stored in it shadows a method of its class); the table holds
// the userdata with the socket itself at key 0.
LuaSocket* sock_lua_tosocket(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return nullptr;
  lua_rawgeti(L, idx, 0);
  // (Popped: the table keeps it alive.)
  return static_cast<LuaSocket*>(sock_testudata_pop(L, SOCK_SOCKET, sock_type_cache.socket_mt.load(std::memory_order_relaxed)));
}

LuaSocket* sock_lua_checksocket(lua_State* L, int idx, const char* fname) {
  LuaSocket* ls = sock_lua_tosocket(L, idx);
  if (!ls) sock_error(L, "bad argument #%d to '%s' (socket expected, got %s)", idx, fname, luaL_typename(L, idx));
  return ls;
}

// An `expires` that is a number and not NaN, as the loop takes it.
static double normalize_expires(double t) {
  if (t < 0) return 0;  // a deadline long past is still a deadline
  if (std::isinf(t)) return -1;
  return t;
}

double sock_lua_optexpires(lua_State* L, int idx, const char* fname) {
  if (lua_isnoneornil(L, idx)) return -1;
  if (lua_type(L, idx) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to '%s' (expires: number expected, got %s)", idx, fname, luaL_typename(L, idx));
  double t = lua_tonumber(L, idx);
  if (t != t) sock_error(L, "bad argument #%d to '%s' (expires is NaN)", idx, fname);
  return normalize_expires(t);
}

// A number as text for an error message (lua_pushfstring's %d takes an int:
// a length of 2^32 + 3 would read as 3).
struct NumberText {
  char text[24];
};
static NumberText size_text(size_t n) {
  NumberText t;
  std::snprintf(t.text, sizeof t.text, "%zu", n);
  return t;
}
static NumberText hex_text(long long n) {
  NumberText t;
  std::snprintf(t.text, sizeof t.text, "%llx", (unsigned long long)n);
  return t;
}

static size_t check_size(lua_State* L, int idx, const char* fname, const char* what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to '%s' (%s: number expected, got %s)", idx, fname, what, luaL_typename(L, idx));
  long long n = sock_checkinteger(L, idx, fname);
  if (n < 0) sock_error(L, "bad argument #%d to '%s' (%s must not be negative)", idx, fname, what);
  return (size_t)n;
}

size_t sock_lua_checklength(lua_State* L, int idx, size_t cap, const char* fname, const char* holder) {
  if (lua_isnoneornil(L, idx)) {
    if (cap == (size_t)-1) sock_error(L, "bad argument #%d to '%s' (length required with a cdata buffer)", idx, fname);
    return cap;
  }
  size_t len = check_size(L, idx, fname, "length");
  if (len > cap)
    sock_error(L, "bad argument #%d to '%s' (length %s exceeds the %s size %s)", idx, fname, size_text(len).text, holder,
               size_text(cap).text);
  return len;
}

// The MSG_* flags a send or receive call may pass on to the kernel. Other
// bits are refused here: the kernel ignores some and rejects others, and not
// alike on both backends (a flags of -1 "worked" on epoll).
constexpr long long kKnownMsgFlags = sock::known_msg_flags;

static int opt_flags(lua_State* L, int idx, const char* fname) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to '%s' (flags: number expected, got %s)", idx, fname, luaL_typename(L, idx));
  long long flags = sock_checkinteger(L, idx, fname);
  if (flags < 0) sock_error(L, "bad argument #%d to '%s' (flags must not be negative)", idx, fname);
  if (long long unknown = flags & ~kKnownMsgFlags)
    sock_error(L, "bad argument #%d to '%s' (flags: 0x%s is no MSG_* flag)", idx, fname,
               hex_text(unknown).text);
  return (int)flags;
}

// The optional `expires` and `flags` of a send or receive call, arguments
// idx and idx + 1. Most calls pass neither: one lua_gettop then tells, in
// place of a check per argument.
struct ExpiresAndFlags {
  double expires = -1;
  int flags = 0;
};
static ExpiresAndFlags opt_expires_flags(lua_State* L, int idx, const char* fname) {
  ExpiresAndFlags r;
  int top = lua_gettop(L);
  if (top >= idx) r.expires = sock_lua_optexpires(L, idx, fname);
  if (top > idx) r.flags = opt_flags(L, idx + 1, fname);
  return r;
}

// Every op is tried at once before it waits, which is what readiness
// backends need and what saves a wait when data is there. The exceptions: on
// a completion backend, a stream recv right after a short one would almost
// surely find nothing, so it goes to the kernel directly; on epoll, a recv
// whose queue the backend saw run dry with no data come since (known_empty)
// would surely find nothing, and waits at once; on io_uring a stream send
// joins the turn's one submission (Poller::sends_untried). A deadline
// already past still gets its one try.
static bool should_try_first(Scheduler* S, const LuaWait& w) {
  if (!S->loop) return true;
  const sock::Poller& poller = S->loop->poller();
  if (w.op.kind == sock::OpKind::send_all && poller.sends_untried(w.op))
    return sock_lua_deadline_passed(w.expires);
  if (w.op.kind != sock::OpKind::recv) return true;
  return !sock_lua_recv_waits_first(poller, w.op, w.last_short, w.expires);
}

static void note_recv_length(LuaWait& w) {
  if (w.op.kind == sock::OpKind::recv) w.last_short = w.op.result >= 0 && (size_t)w.op.result < w.op.len;
}

static int push_wait_results(lua_State* co, void* ctx) {
  LuaWait& w = *static_cast<LuaWait*>(ctx);
  return w.push_results(co, w);
}

// A withdrawn wait's op completed after all (its thread was resumed from
// outside the loop): give back what it took, so that nothing is lost.
static void undo_op(void* ctx) {
  LuaWait& w = *static_cast<LuaWait*>(ctx);
  LuaSocket* ls = w.socket();
  switch (w.op.kind) {
    case sock::OpKind::recv:
    case sock::OpKind::recv_all: {
      // The bytes go back in front of the read-ahead buffer, with those
      // recvn had taken from it (the op's first `done`): they are all in
      // the buffer the kernel was given, which the withdrawn wait still
      // keeps alive.
      size_t got = w.op.kind == sock::OpKind::recv ? (w.op.result > 0 ? (size_t)w.op.result : 0) : w.op.done;
      if (!got || (w.op.flags & MSG_PEEK)) return;
      try {
        ReadAhead& ra = sock_lua_make_read_ahead(ls);
        ra.bytes.insert(ra.pos, w.op.buf, got);
      } catch (const std::exception&) {
      }
      return;
    }
    case sock::OpKind::accept:
      if (w.op.result >= 0) sock::close_descriptor((sock::socket_t)w.op.result);  // nobody will take it
      return;
    default:
      return;
  }
}

static void wait_completed(sock::Operation* op) {
  LuaWait& w = *static_cast<LuaWait*>(op->owner);
  w.armed = false;
  note_recv_length(w);
  sched_complete_wait(w.head.sched, &w.head, push_wait_results, &w, undo_op);
}

// A deferred op's turn has come (see defer_op).
static void deferred_op(sock::Timer* t) {
  LuaWait& w = *static_cast<LuaWait*>(t->owner);
  w.defer = false;
  sock::Loop* loop = sched_loop_here(w.head.sched);
  if (!loop || !w.socket()->s.is_open()) {  // closed meanwhile
    w.op.result = -sock::ERR_CLOSED;
    w.op.on_complete(&w.op);
    return;
  }
  if (!w.tries_first) {  // the caller's own syscalls go on from where they stopped
    w.op.result = 0;
    w.op.on_complete(&w.op);
    return;
  }
  if (loop->try_op(w.op)) {
    w.op.on_complete(&w.op);
    return;
  }
  int rc = loop->start(w.op, w.expires);
  if (rc == 0) return;  // waits as usual, still armed
  if (rc < 0) w.op.result = rc;
  w.op.on_complete(&w.op);  // (rc 1: the backend finished it at once)
}

// Whether a wait_op's wait that the backend finished at once (Loop::start
// gave 1) found the socket ready: a completion backend may do that where a
// readiness backend never does (IOCP's zero-byte WSARecv succeeds at once
// when data is already there). The completion then goes on at the next turn,
// as after giving way: the caller's own syscalls see what is there. (A
// run_op's op that finished at once has its results instead.)
static bool ready_at_once(const LuaWait& w) {
  return !w.tries_first && w.op.result >= 0;
}

// Give way for one turn: the op starts (a run_op's is tried first) or the
// wait_op's completion goes on at the next turn.
static void defer_op(sock::Loop& loop, LuaWait& w) {
  w.defer = true;
  // The op's deadline timer: idle until Loop::start arms it for the op (from
  // deferred_op, once the loop has taken this timer out of its heap).
  sock::Timer& t = w.op.deadline;
  t.owner = &w;
  t.on_fire = deferred_op;
  // Due now: the next turn polls without blocking and fires it behind the
  // timers already due (the heap keeps them in order of time).
  loop.add_timer(t, sock::monotonic_now());
}

// WaitKind of socket ops: the thread has yielded, start the op in the loop
// (or, when it gives way, at the next turn).
static int op_arm(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h) {
  LuaWait& w = *sched_record<LuaWait>(h);
  sock::Loop* loop = sched_loop_here(S);
  if (loop && w.defer) {
    defer_op(*loop, w);
    w.armed = true;
    sched_armed(S, L, co, h);
    return -1;
  }
  int rc = loop ? loop->start(w.op, w.expires) : -sock::ERR_CLOSED;
  if (rc == 1 && ready_at_once(w)) {
    defer_op(*loop, w);
    rc = 0;
  }
  if (rc == 0) {
    w.armed = true;
    sched_armed(S, L, co, h);
    return -1;
  }
  if (rc < 0) w.op.result = rc;  // -ETIMEDOUT for a deadline already past, or why it cannot wait
  note_recv_length(w);           // (rc 1: the backend finished it at once)
  return w.push_results(co, w);
}

static bool op_withdraw(Scheduler* S, lua_State*, WaitHead* h) {
  LuaWait& w = *sched_record<LuaWait>(h);
  if (w.defer) {  // not started: nothing to wait for
    if (S->loop) S->loop->remove_timer(w.op.deadline);  // (the defer's, see defer_op)
    w.defer = false;
    w.armed = false;
    return false;
  }
  if (w.op.pending && S->loop) S->loop->cancel(w.op, ECANCELED);
  return w.armed;  // its callback is still to run, cancelled or not
}

static const WaitKind op_kind = {op_arm, op_withdraw};

int sock_lua_wait_again(LuaWait& w, bool give_way) {
  sock::Loop* loop = sched_loop_here(w.head.sched);
  if (!loop) return -sock::ERR_CLOSED;
  if (give_way) {
    defer_op(*loop, w);
    return 0;
  }
  int rc = loop->start(w.op, w.expires);
  if (rc == 1) {  // finished at once: ready now, or failed now
    if (!ready_at_once(w)) return (int)w.op.result;
    defer_op(*loop, w);
    return 0;
  }
  return rc;
}

void sock_lua_prepare(LuaWait& w, LuaSocket* ls, sock::OpKind kind, char* buf, size_t len, int flags,
                      double expires, PushResults push_results, sockaddr_storage* addr, socklen_t addrlen) {
  w.op.prepare(kind, &ls->s.io, buf, len, flags, addr, addrlen);
  w.op.owner = &w;
  w.op.on_complete = wait_completed;
  w.expires = expires;
  w.push_results = push_results;
  w.defer = false;
  w.tries_first = false;
  w.req = ReadRequest{};
  w.job = nullptr;
  w.fast_prepared = false;
}

// The op's syscall, once, now: true if it finished (result in w.op).
static bool try_once(sock::Loop& loop, LuaWait& w) {
  if (!loop.try_op(w.op)) return false;
  note_recv_length(w);
  return true;
}

// The try-before-wait step of a prepared op, the same for the C API path
// (sock_lua_run_op) and the FFI fast path: true when it finished now
// (result in w.op), false when it must wait (w.defer set when it gives way
// for a turn first, and is tried then).
static bool try_before_wait(Scheduler* S, sock::Loop& loop, LuaWait& w) {
  w.tries_first = true;
  if (sched_give_way(S)) {
    w.defer = true;  // tried at the next turn instead of now
    return false;
  }
  return should_try_first(S, w) && try_once(loop, w);
}

// A caller that is not its sock thread's own (L != S->current) may wait
// only if sock made its coroutine; else the call raises. It raises only if
// the op would wait, though: one whose try was skipped (should_try_first)
// is tried now. True when that try finished it (result in w.op).
static bool finished_in_caller(lua_State* L, Scheduler* S, sock::Loop& loop, LuaWait& w, const char* fname) {
  if (sched_can_wait(L, S)) return false;
  if (!w.defer && !w.op.tried && try_once(loop, w)) return true;
  sched_check_can_wait(L, S, fname);  // raises
  return false;
}

int sock_lua_run_op(lua_State* L, LuaSocket* ls, LuaWait& w, const char* fname) {
  Scheduler* S = ls->sched;
  sock::Loop& loop = sched_loop(L, S);
  if (try_before_wait(S, loop, w)) return w.push_results(L, w);
  // (recv and send check whether they may wait only now)
  if (finished_in_caller(L, S, loop, w, fname)) return w.push_results(L, w);
  return sched_wait(L, S, &w.head, &op_kind, fname);
}

int sock_lua_wait_op(lua_State* L, LuaSocket* ls, LuaWait& w, void (*on_complete)(sock::Operation*),
                     const char* fname) {
  Scheduler* S = ls->sched;
  sched_loop(L, S);  // (made here, where it may raise, rather than when arming)
  w.op.on_complete = on_complete;
  w.tries_first = false;
  return sched_wait(L, S, &w.head, &op_kind, fname);
}

// The registry key of the metatable of a socket type's objects.
static const char* object_meta_key(int socktype) {
  return socktype == SOCK_STREAM ? "sock.tcp_object" : socktype == SOCK_DGRAM ? "sock.udp_object" : "sock.raw_object";
}

// Push a new socket object of `socktype`: a table of its class holding the
// socket userdata (which closes the fd when it is collected).
static LuaSocket* new_socket(lua_State* L, Scheduler* S, int socktype) {
  lua_createtable(L, 0, 1);
  LuaSocket* ls = static_cast<LuaSocket*>(sock_newuserdata(L, sizeof(LuaSocket)));
  new (ls) LuaSocket();
  ls->sched = S;
  luaL_setmetatable(L, SOCK_SOCKET);
  lua_rawseti(L, -2, 0);
  luaL_getmetatable(L, object_meta_key(socktype));
  lua_setmetatable(L, -2);
  return ls;
}

// Close the fd, first waking every thread that waits on it with 'closed'.
static int close_socket(LuaSocket* ls) {
  if (!ls->s.is_open()) return 0;
  Scheduler* S = ls->sched;
  ls->pending.reset();  // buffered reads: unread bytes go with the fd
  if (sock::Loop* loop = sched_loop_here(S)) return loop->close_fd(ls->s.io);
  return ls->s.close();
}

// Which argument an I/O method needs: an open socket inside a sock thread.
static LuaSocket* io_socket(lua_State* L, const char* fname) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, fname);
  sched_check_thread(L, ls->sched, fname);
  return ls;
}

// The same for recv and send, which check whether L may wait only when it
// has to (see sched_check_in_thread): as the FFI fast path does.
static LuaSocket* io_socket_try_first(lua_State* L, const char* fname) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, fname);
  sched_check_in_thread(L, ls->sched, fname);
  return ls;
}

// The same, for a method that reads a count of bytes from a byte stream: on
// a datagram socket it would run the datagrams together.
LuaSocket* sock_lua_stream_socket(lua_State* L, const char* fname) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, fname);
  if (ls->s.type != SOCK_STREAM) {
    const char* type = sock::socktype_name(ls->s.type);
    sock_error(L, "bad argument #1 to '%s' (stream socket expected, got %s socket; use recv or recvnext)", fname,
               type ? type : "another");
  }
  sched_check_thread(L, ls->sched, fname);
  return ls;
}

// --- creation ----------------------------------------------------------------

static int create(lua_State* L, int socktype) {
  Scheduler* S = sched_of(L);
  const char* fname = socktype == SOCK_STREAM ? "tcp" : socktype == SOCK_DGRAM ? "udp" : "raw";
  int family = AF_INET;
  if (!lua_isnoneornil(L, 1)) {
    const char* fam = sock_checkstring(L, 1, fname);
    family = sock::family_from_name(fam);
    if (family < 0) sock_error(L, "bad argument #1 to '%s' (unknown family '%s')", fname, fam);
  }
  int protocol = 0;
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
      // Checked here rather than by luaL_checkinteger, whose message names
      // whatever the caller called this function (sock_helpers: 'c_create').
      lua_Number n = lua_tonumber(L, 2);
      if (!(n >= 0 && n <= 2147483647.0) || n != (lua_Number)(int)n)
        sock_error(L, "bad argument #2 to '%s' (protocol number out of range)", fname);
      protocol = (int)n;
    } else {
      const char* pr = sock_checkstring(L, 2, fname);
      protocol = sock::protocol_from_name(pr);
      if (protocol < 0) sock_error(L, "bad argument #2 to '%s' (unknown protocol '%s')", fname, pr);
    }
  } else if (family != AF_UNIX) {
    protocol = sock::default_protocol(socktype);
    if (socktype == SOCK_RAW && family == AF_INET6) protocol = IPPROTO_RAW;
  }
  LuaSocket* ls = new_socket(L, S, socktype);
  int rc = ls->s.open(family, socktype, protocol);
  if (rc < 0) return sock_lua_fail(L, -rc);
  return 1;
}

static int l_tcp(lua_State* L) { return create(L, SOCK_STREAM); }
static int l_udp(lua_State* L) { return create(L, SOCK_DGRAM); }
static int l_raw(lua_State* L) { return create(L, SOCK_RAW); }

// sock.socketpair([type]) -> s1, s2  (unix stream sockets by default)
static int l_socketpair(lua_State* L) {
  Scheduler* S = sched_of(L);
  int type = SOCK_STREAM;
  if (!lua_isnoneornil(L, 1)) {
    const char* t = sock_checkstring(L, 1, "socketpair");
    type = sock::socktype_from_name(t);
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
      sock_error(L, "bad argument #1 to 'socketpair' (expected 'tcp' or 'udp', got '%s')", t);
  }
  sock::socket_t fds[2];
  int rc = sock::make_socketpair(type, fds);
  if (rc < 0) return sock_lua_fail(L, -rc);
  for (int i = 0; i < 2; i++) {
    LuaSocket* ls = new_socket(L, S, type);
    ls->s.adopt(fds[i], sock::socketpair_family, type, 0);
    ls->bound = true;
  }
  return 2;
}

// --- plain methods -------------------------------------------------------

static int l_close(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "close");
  int rc = close_socket(ls);
  if (rc < 0) return sock_lua_fail(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_closed(lua_State* L) {
  lua_pushboolean(L, !sock_lua_checksocket(L, 1, "closed")->s.is_open());
  return 1;
}

// Lua code can reach the metamethods through getmetatable and call them with
// anything, or call __gc itself: they check what they get.
static LuaSocket* test_socket_udata(lua_State* L, int idx) {
  return static_cast<LuaSocket*>(sock_testudata(L, idx, SOCK_SOCKET, sock_type_cache.socket_mt.load(std::memory_order_relaxed)));
}

// `<close>` (Lua 5.4) on a socket object closes; the memory goes with the
// userdata's __gc.
static int l_close_meta(lua_State* L) {
  if (LuaSocket* ls = sock_lua_tosocket(L, 1)) close_socket(ls);
  return 0;
}

static int l_gc(lua_State* L) {
  LuaSocket* ls = test_socket_udata(L, 1);
  if (!ls) return 0;
  close_socket(ls);
  // A deferred op's timer (its deadline's, see defer_op) must not outlive
  // the record (only the state's close gets here with one armed: a waiting
  // thread keeps its socket).
  if (sock::Loop* loop = ls->sched->closed ? nullptr : ls->sched->loop.get()) {
    loop->remove_timer(ls->rd.op.deadline);
    loop->remove_timer(ls->wr.op.deadline);
  }
  ls->~LuaSocket();
  // Without its metatable the object is no socket any more: no method, and
  // no second __gc, touches what was just destroyed.
  lua_pushnil(L);
  lua_setmetatable(L, 1);
  return 0;
}

static int l_type(lua_State* L) {
  lua_pushstring(L, sock::socktype_name(sock_lua_checksocket(L, 1, "type")->s.type));
  return 1;
}

static int l_family(lua_State* L) {
  lua_pushstring(L, sock::family_name(sock_lua_checksocket(L, 1, "family")->s.family));
  return 1;
}

static int l_protocol(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "protocol");
  const char* name = sock::protocol_name(ls->s.protocol);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushinteger(L, ls->s.protocol);
  return 1;
}

static int l_fileno(lua_State* L) {
  lua_pushinteger(L, (lua_Integer)sock_lua_checksocket(L, 1, "fileno")->s.fd());
  return 1;
}

static int l_tostring(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "__tostring");
  const char* type = sock::socktype_name(ls->s.type);
  if (ls->s.is_open())
    lua_pushfstring(L, "sock.%s (fd %d): %p", type ? type : "socket", (int)ls->s.fd(), (void*)ls);
  else
    lua_pushfstring(L, "sock.%s (closed): %p", type ? type : "socket", (void*)ls);
  return 1;
}

#define CHECK_OPEN(L, ls) \
  if (!(ls)->s.is_open()) return sock_lua_fail(L, sock::ERR_CLOSED)

static int l_setopt(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "setopt");
  if (!ls->s.is_open()) {
    return sock_lua_setopt(L, -1, "setopt");  // checks the arguments, then says 'closed'
  }
  return sock_lua_setopt(L, ls->s.fd(), "setopt");
}

static int l_getopt(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "getopt");
  if (!ls->s.is_open()) {
    return sock_lua_getopt(L, -1, "getopt");
  }
  return sock_lua_getopt(L, ls->s.fd(), "getopt");
}

static int push_address(lua_State* L, LuaSocket* ls, bool peer) {
  CHECK_OPEN(L, ls);
  sockaddr_storage ss;
  socklen_t len;
  int rc = peer ? ls->s.peer_address(ss, len) : ls->s.local_address(ss, len);
  if (rc < 0) return sock_lua_fail(L, -rc);
  sock_lua_push_sa(L, (const sockaddr*)&ss, len);
  return 1;
}

static int l_getsockname(lua_State* L) { return push_address(L, sock_lua_checksocket(L, 1, "getsockname"), false); }
static int l_getpeername(lua_State* L) { return push_address(L, sock_lua_checksocket(L, 1, "getpeername"), true); }

// Bind to the first address of the list that works.
static int bind_list(LuaSocket* ls, const addrinfo* ai) {
  int rc = -EADDRNOTAVAIL;
  for (; ai; ai = ai->ai_next) {
    if (ai->ai_family != ls->s.family) continue;
    rc = ls->s.bind(ai->ai_addr, ai->ai_addrlen);
    if (rc == 0) {
      ls->bound = true;
      return 0;
    }
  }
  return rc;
}

// s:bind([host], [port], [af]) -> true | nil, err
static int l_bind(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "bind");
  CHECK_OPEN(L, ls);
  lua_settop(L, 4);
  const addrinfo* ai = sock_lua_resolve(L, 2, ls->s.type, ls->s.family, ls->s.protocol, 4, AI_PASSIVE, "bind");
  if (!ai) return 2;
  int rc = bind_list(ls, ai);
  if (rc < 0) return sock_lua_fail(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

// tcp:listen([backlog, ]host, port, [af]) -> true | nil, err
static int l_listen(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "listen");
  CHECK_OPEN(L, ls);
  int backlog = sock::max_listen_backlog();
  int host_idx = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    double b = lua_tonumber(L, 2);
    if (b != b || b < 0) sock_error(L, "bad argument #2 to 'listen' (backlog must be a non-negative number)");
    if (b < backlog) backlog = (int)b;  // 1/0 (the default) means the maximum
    host_idx = 3;
  }
  lua_settop(L, host_idx + 2);
  if (!ls->bound) {
    const addrinfo* ai = sock_lua_resolve(L, host_idx, ls->s.type, ls->s.family, ls->s.protocol,
                                          host_idx + 2, AI_PASSIVE, "listen");
    if (!ai) return 2;
    int rc = bind_list(ls, ai);
    if (rc < 0) return sock_lua_fail(L, -rc);
  }
  int rc = ls->s.listen(backlog);
  if (rc < 0) return sock_lua_fail(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int push_true_or_fail(lua_State* co, LuaWait& w) {
  if (w.op.result < 0) return sock_lua_fail(co, (int)-w.op.result);
  lua_pushboolean(co, 1);
  return 1;
}

static SocketAddresses& addresses(LuaSocket* ls);

// tcp|udp:connect(host, port, [expires], [af]) -> true | nil, err
static int l_connect(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "connect");
  // A datagram socket's connect only sets its peer address, at once: it
  // never waits, so it works outside threads too (sock.connect_udp at the
  // top level), and it never goes through the ring.
  bool never_waits = ls->s.type == SOCK_DGRAM;
  if (!never_waits) sched_check_thread(L, ls->sched, "connect");
  lua_settop(L, 5);
  double expires = sock_lua_optexpires(L, 4, "connect");
  CHECK_OPEN(L, ls);
  // UDP: connect('*', 0) goes back to receiving from anyone.
  if (ls->s.type == SOCK_DGRAM && lua_type(L, 2) == LUA_TSTRING && !strcmp(lua_tostring(L, 2), "*") &&
      lua_tonumber(L, 3) == 0) {
    sockaddr_storage local;
    socklen_t local_len;
    bool had_local = ls->s.local_address(local, local_len) == 0;
    int rc = ls->s.disconnect();
    if (rc < 0) return sock_lua_fail(L, -rc);
    // Linux drops a port the kernel picked (bind to port 0) when a UDP
    // socket disconnects; peers still send to it, so take it back.
    sockaddr_storage now;
    socklen_t now_len;
    if (had_local && ls->s.local_address(now, now_len) == 0 && sock::SockAddr((sockaddr*)&now, now_len).port() == 0 &&
        sock::SockAddr((sockaddr*)&local, local_len).port() > 0) {
      rc = ls->s.bind((sockaddr*)&local, local_len);
      if (rc < 0) return sock_lua_fail(L, -rc);
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  const addrinfo* ai = sock_lua_resolve(L, 2, ls->s.type, ls->s.family, ls->s.protocol, 5, 0, "connect");
  if (!ai) return 2;
  while (ai && ai->ai_family != ls->s.family) ai = ai->ai_next;
  if (!ai) return sock_lua_fail(L, EAFNOSUPPORT);
  if (never_waits) {
    int rc = ls->s.connect(ai->ai_addr, ai->ai_addrlen);
    if (rc < 0) return sock_lua_fail(L, -rc);
    lua_pushboolean(L, 1);
    return 1;
  }
  LuaWait& w = ls->wr;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);  // before touching the op another call waits in
  if (ai->ai_addrlen > sizeof(sockaddr_storage)) return sock_lua_fail(L, EINVAL);
  // The op connects (the loop tries it at once; a completion backend has the
  // kernel do it), so the address must stay put until then: inet ones go in
  // the peer slot, which only accepted sockets use otherwise (and while an
  // accepted socket's address fields are still pending there, in the
  // address block).
  sockaddr_storage* dest;
  if (ai->ai_addrlen <= sizeof ls->peer && !ls->fields_pending)
    dest = reinterpret_cast<sockaddr_storage*>(&ls->peer);
  else
    dest = &addresses(ls).wr;
  std::memcpy(dest, ai->ai_addr, ai->ai_addrlen);
  sock_lua_prepare(w, ls, sock::OpKind::connect, nullptr, 0, 0, expires, push_true_or_fail, dest,
                   (socklen_t)ai->ai_addrlen);
  return sock_lua_run_op(L, ls, w, "connect");
}

// tcp:shutdown('r'|'w'|'rw') -> true | nil, err
static int l_shutdown(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "shutdown");
  const char* how = sock_optstring(L, 2, "rw", "shutdown");
  int mode;
  if (!strcmp(how, "r"))
    mode = SHUT_RD;
  else if (!strcmp(how, "w"))
    mode = SHUT_WR;
  else if (!strcmp(how, "rw") || !strcmp(how, "wr"))
    mode = SHUT_RDWR;
  else
    return sock_error(L, "bad argument #2 to 'shutdown' (expected 'r', 'w' or 'rw', got '%s')", how);
  CHECK_OPEN(L, ls);
  Scheduler* S = ls->sched;
  sock::Loop* loop = sched_loop_here(S);
  int rc = loop ? loop->shutdown_fd(ls->s.io, mode) : ls->s.shutdown(mode);
  if (rc < 0) return sock_lua_fail(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

// --- accept ------------------------------------------------------------------

static void set_addr_fields(lua_State* L, const sockaddr* sa_ptr, socklen_t len, const char* addr_key,
                            const char* port_key) {
  sock::SockAddr sa(sa_ptr, len);
  char ip[INET6_ADDRSTRLEN + 1];
  if (sa.ip_string(ip, sizeof ip)) {
    lua_pushstring(L, ip);
    lua_setfield(L, -2, addr_key);
    lua_pushinteger(L, sa.port());
    lua_setfield(L, -2, port_key);
  } else if (sa.family() == AF_UNIX) {
    lua_pushstring(L, sa.unix_path().c_str());
    lua_setfield(L, -2, addr_key);
  }
}

static bool keep_compact(CompactAddr& out, const sockaddr_storage& ss, socklen_t len) {
  if (ss.ss_family == AF_INET && (size_t)len >= sizeof(sockaddr_in)) {
    std::memcpy(&out.in, &ss, sizeof(sockaddr_in));
    return true;
  }
  if (ss.ss_family == AF_INET6 && (size_t)len >= sizeof(sockaddr_in6)) {
    std::memcpy(&out.in6, &ss, sizeof(sockaddr_in6));
    return true;
  }
  return false;
}

static socklen_t compact_len(const CompactAddr& a) {
  return a.sa.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : a.sa.sa_family == AF_INET ? sizeof(sockaddr_in) : 0;
}

// Store the accepted connection's addresses, kept compactly until now, as
// fields of the socket object at idx.
static void materialize_fields(lua_State* L, int idx, LuaSocket* ls) {
  idx = lua_absindex(L, idx);
  ls->fields_pending = false;
  lua_pushvalue(L, idx);
  set_addr_fields(L, &ls->peer.sa, compact_len(ls->peer), "remote_addr", "remote_port");
  set_addr_fields(L, &ls->local.sa, compact_len(ls->local), "local_addr", "local_port");
  lua_pop(L, 1);
}

static SocketAddresses& addresses(LuaSocket* ls) {
  if (!ls->addrs) ls->addrs = std::make_unique<SocketAddresses>();
  return *ls->addrs;
}

static int push_accepted(lua_State* co, LuaWait& w) {
  if (w.op.result < 0) return sock_lua_fail(co, (int)-w.op.result);
  LuaSocket* listener = w.socket();
  sock::socket_t fd = (sock::socket_t)w.op.result;
  LuaSocket* ls = new_socket(co, listener->sched, listener->s.type);
  ls->s.adopt(fd, listener->s.family, listener->s.type, listener->s.protocol);
  ls->bound = true;
  // A multishot accept (io_uring) does not report the peer: ask for it.
  if (w.op.addrlen == 0) {
    socklen_t len;
    if (ls->s.peer_address(listener->addrs->rd, len) == 0)
      w.op.addrlen = len;
    else  // reset already: no address to report
      listener->addrs->rd.ss_family = AF_UNSPEC;
  }
  // remote_addr, remote_port, local_addr, local_port, as luapower documents.
  sockaddr_storage local;
  socklen_t local_len;
  bool have_local = ls->s.local_address(local, local_len) == 0;
  if (keep_compact(ls->peer, listener->addrs->rd, w.op.addrlen) && have_local &&
      keep_compact(ls->local, local, local_len)) {
    ls->fields_pending = true;
  } else {  // unix sockets and the like: fill the fields now
    set_addr_fields(co, (const sockaddr*)&listener->addrs->rd, w.op.addrlen, "remote_addr", "remote_port");
    if (have_local) set_addr_fields(co, (const sockaddr*)&local, local_len, "local_addr", "local_port");
  }
  return 1;
}

// tcp:accept([expires]) -> client | nil, err
static int l_accept(lua_State* L) {
  LuaSocket* ls = io_socket(L, "accept");
  double expires = sock_lua_optexpires(L, 2, "accept");
  CHECK_OPEN(L, ls);
  LuaWait& w = ls->rd;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);  // before touching the op another call waits in
  sock_lua_prepare(w, ls, sock::OpKind::accept, nullptr, 0, 0, expires, push_accepted, &addresses(ls).rd);
  return sock_lua_run_op(L, ls, w, "accept");
}

// --- send --------------------------------------------------------------------

static int push_sent_tcp(lua_State* co, LuaWait& w) {
  if (w.op.result < 0) {
    sock_lua_fail(co, (int)-w.op.result);
    sock_pushinteger(co, (long long)w.op.done);
    return 3;
  }
  lua_pushboolean(co, 1);
  return 1;
}

static int push_count(lua_State* co, LuaWait& w) {
  if (w.op.result < 0) return sock_lua_fail(co, (int)-w.op.result);
  sock_pushinteger(co, w.op.result);
  return 1;
}

// The bytes and length of a send-style call: data at `idx`, optional length after it.
static char* send_data(lua_State* L, int idx, size_t* len, const char* fname) {
  size_t cap;
  char* p = sock_lua_checkbuffer(L, idx, false, &cap, fname);
  *len = sock_lua_checklength(L, idx + 1, cap, fname, "data's");
  return p;
}

// What send answers without an op, once its arguments are checked: a closed
// socket (with a count of 0 on a stream), a busy write side, an empty send
// on a stream (a no-op that never reaches the OS). Else it prepares the op
// and returns false. Shared by l_send and the FFI fast path.
enum class SendAnswer { closed, busy, nothing_to_send, prepared };
static SendAnswer send_prepare(LuaSocket* ls, char* p, size_t len, double expires, int flags) {
  if (!ls->s.is_open()) return SendAnswer::closed;
  LuaWait& w = ls->wr;
  if (sock_lua_busy(w)) return SendAnswer::busy;  // before touching the op another call waits in
  if (ls->s.type == SOCK_STREAM) {
    if (len == 0) return SendAnswer::nothing_to_send;
    sock_lua_prepare(w, ls, sock::OpKind::send_all, p, len, flags, expires, push_sent_tcp);
  } else {
    sock_lua_prepare(w, ls, sock::OpKind::send, p, len, flags, expires, push_count);
  }
  return SendAnswer::prepared;
}

// tcp:send(s|buf, [len], [expires], [flags]) -> true | nil, err, sent
// udp:send(s|buf, [len], [expires], [flags]) -> len | nil, err
static int l_send(lua_State* L) {
  LuaSocket* ls = io_socket_try_first(L, "send");
  size_t len;
  char* p = send_data(L, 2, &len, "send");
  auto [expires, flags] = opt_expires_flags(L, 4, "send");
  switch (send_prepare(ls, p, len, expires, flags)) {
    case SendAnswer::closed:
      sock_lua_fail(L, sock::ERR_CLOSED);
      if (ls->s.type != SOCK_STREAM) return 2;
      lua_pushinteger(L, 0);
      return 3;
    case SendAnswer::busy:
      return sock_lua_fail(L, sock::ERR_BUSY);
    case SendAnswer::nothing_to_send:
      lua_pushboolean(L, 1);
      return 1;
    case SendAnswer::prepared:
      break;
  }
  return sock_lua_run_op(L, ls, ls->wr, "send");
}

// s:_send(s|buf, [len], [expires], [flags]) -> sent | nil, err: one send
// that may move only part of the data (luapower's; sock_libtls builds its
// sockets' send on it).
static int l_send_once(lua_State* L) {
  LuaSocket* ls = io_socket(L, "_send");
  size_t len;
  char* p = send_data(L, 2, &len, "_send");
  auto [expires, flags] = opt_expires_flags(L, 4, "_send");
  CHECK_OPEN(L, ls);
  LuaWait& w = ls->wr;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);
  if (len == 0 && ls->s.type == SOCK_STREAM) {  // nothing to send on a stream
    lua_pushinteger(L, 0);
    return 1;
  }
  sock_lua_prepare(w, ls, sock::OpKind::send, p, len, flags, expires, push_count);
  return sock_lua_run_op(L, ls, w, "_send");
}

// udp:sendto(host, port, s|buf, [len], [expires], [flags], [af]) -> len | nil, err
static int l_sendto(lua_State* L) {
  LuaSocket* ls = io_socket(L, "sendto");
  size_t len;
  char* p = send_data(L, 4, &len, "sendto");
  auto [expires, flags] = opt_expires_flags(L, 6, "sendto");
  lua_settop(L, 8);
  CHECK_OPEN(L, ls);
  const addrinfo* ai = sock_lua_resolve(L, 2, ls->s.type, ls->s.family, ls->s.protocol, 8, 0, "sendto");
  if (!ai) return 2;
  while (ai && ai->ai_family != ls->s.family) ai = ai->ai_next;
  if (!ai) return sock_lua_fail(L, EAFNOSUPPORT);
  if (ai->ai_addrlen > sizeof(sockaddr_storage)) return sock_lua_fail(L, EINVAL);
  LuaWait& w = ls->wr;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);
  std::memcpy(&addresses(ls).wr, ai->ai_addr, ai->ai_addrlen);
  sock_lua_prepare(w, ls, sock::OpKind::sendto, p, len, flags, expires, push_count, &ls->addrs->wr,
                   (socklen_t)ai->ai_addrlen);
  return sock_lua_run_op(L, ls, w, "sendto");
}

// --- recv --------------------------------------------------------------------

// The buffer and maximum length of a recv-style call.
static char* recv_target(lua_State* L, size_t* maxlen, const char* fname) {
  size_t cap;
  char* p = sock_lua_checkbuffer(L, 2, true, &cap, fname);
  *maxlen = sock_lua_checklength(L, 3, cap, fname, "buffer's");
  return p;
}

// Bytes already read ahead by the buffered-read methods are handed out first.
static size_t drain_pending(LuaSocket* ls, char* p, size_t maxlen) {
  size_t avail = sock_lua_read_ahead_size(ls);
  if (!avail) return 0;
  size_t n = avail < maxlen ? avail : maxlen;
  std::memcpy(p, sock_lua_read_ahead_data(ls), n);
  sock_lua_consume_read_ahead(ls, n);
  return n;
}

// What recv answers without an op, once its arguments are checked: in
// *answer a count (bytes read ahead by the buffered reads) or -code (closed,
// busy), and true. Else it prepares the op and returns false. Shared by
// l_recv and the FFI fast path.
static bool recv_prepare(LuaSocket* ls, char* p, size_t maxlen, double expires, int flags, long* answer) {
  if (!ls->s.is_open()) {
    *answer = -sock::ERR_CLOSED;
    return true;
  }
  // A second reader gets busy, before it can take bytes buffered for the first.
  if (sock_lua_busy(ls->rd)) {
    *answer = -sock::ERR_BUSY;
    return true;
  }
  if (size_t n = drain_pending(ls, p, maxlen)) {
    *answer = (long)n;
    return true;
  }
  sock_lua_prepare(ls->rd, ls, sock::OpKind::recv, p, maxlen, flags, expires, push_count);
  return false;
}

// tcp|udp:recv(buf, [maxlen], [expires], [flags]) -> len | nil, err
static int l_recv(lua_State* L) {
  LuaSocket* ls = io_socket_try_first(L, "recv");
  size_t maxlen;
  char* p = recv_target(L, &maxlen, "recv");
  auto [expires, flags] = opt_expires_flags(L, 4, "recv");
  if (maxlen == 0) sock_error(L, "bad argument #3 to 'recv' (length must be greater than 0)");
  long answer;
  if (recv_prepare(ls, p, maxlen, expires, flags, &answer)) {
    if (answer < 0) return sock_lua_fail(L, (int)-answer);
    sock_pushinteger(L, answer);
    return 1;
  }
  return sock_lua_run_op(L, ls, ls->rd, "recv");
}

static int push_recvn(lua_State* co, LuaWait& w) {
  long long got = (long long)w.op.done;  // from the read-ahead buffer, then the op
  if (w.op.result < 0 || w.op.eof) {
    sock_lua_fail(co, w.op.result < 0 ? (int)-w.op.result : sock::ERR_EOF);
    sock_pushinteger(co, got);
    return 3;
  }
  sock_pushinteger(co, got);
  return 1;
}

// tcp:_recvn(buf, len, [expires]) -> len | nil, err, read_len
// (sock.lua's recvn returns the buffer too.)
static int l_recvn(lua_State* L) {
  LuaSocket* ls = sock_lua_stream_socket(L, "recvn");
  size_t len;
  char* p = recv_target(L, &len, "recvn");
  double expires = sock_lua_optexpires(L, 4, "recvn");
  if (!ls->s.is_open()) {
    sock_lua_fail(L, sock::ERR_CLOSED);
    lua_pushinteger(L, 0);
    return 3;
  }
  if (sock_lua_busy(ls->rd)) return sock_lua_fail(L, sock::ERR_BUSY);  // before draining or touching the op
  size_t got = drain_pending(ls, p, len);
  if (got == len) {
    sock_pushinteger(L, (long long)len);
    return 1;
  }
  LuaWait& w = ls->rd;
  sock_lua_prepare(w, ls, sock::OpKind::recv_all, p, len, 0, expires, push_recvn);
  w.op.done = got;  // the bytes the read-ahead buffer gave: the op receives the rest
  return sock_lua_run_op(L, ls, w, "recvn");
}

static int push_recvnext(lua_State* co, LuaWait& w) {
  if (w.op.result < 0) return sock_lua_fail(co, (int)-w.op.result);
  sock_pushinteger(co, w.op.result);
  sock_lua_push_sa(co, (const sockaddr*)w.op.addr, w.op.addrlen);
  return 2;
}

// udp:recvnext(buf, [maxlen], [expires], [flags]) -> len, sa | nil, err
static int l_recvnext(lua_State* L) {
  LuaSocket* ls = io_socket(L, "recvnext");
  size_t maxlen;
  char* p = recv_target(L, &maxlen, "recvnext");
  auto [expires, flags] = opt_expires_flags(L, 4, "recvnext");
  CHECK_OPEN(L, ls);
  LuaWait& w = ls->rd;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);  // before touching the op another call waits in
  sock_lua_prepare(w, ls, sock::OpKind::recvfrom, p, maxlen, flags, expires, push_recvnext, &addresses(ls).rd);
  return sock_lua_run_op(L, ls, w, "recvnext");
}

// --- fields: a socket object's class, and accepted sockets' addresses ---------

// __index of socket objects: what the object does not hold itself comes
// from its class (upvalue 1), looked up each time, so that a method added to
// the class reaches every socket; an accepted socket's address fields are
// stored in the object on first access.
// The twins of methods written in Lua for any object with the class's
// methods (the class's send works for sock_libtls's sockets too): what a sock
// socket gets instead, a C function or a Lua function that skips the checks
// (sock._fast_method). l_index's upvalues 2 and 3 are the first Lua method and
// its twin, 4 and 5 the second, ...; found by identity, a compare each.
constexpr int kTwinSlots = 2;

static int l_index(lua_State* L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (lua_tocfunction(L, -1)) return 1;  // most methods: one check
  for (int i = 0; i < kTwinSlots; i++) {
    if (lua_rawequal(L, -1, lua_upvalueindex(2 + 2 * i))) {
      lua_pushvalue(L, lua_upvalueindex(3 + 2 * i));
      return 1;
    }
  }
  if (!lua_isnil(L, -1)) return 1;
  LuaSocket* ls = sock_lua_tosocket(L, 1);
  if (!ls || !ls->fields_pending) return 1;
  materialize_fields(L, 1, ls);
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  return 1;
}

static const char* object_meta_key(int socktype);

// sock._fast_method(lua_method, twin): a socket whose class method is
// lua_method gets twin instead (see l_index). Sets the pair in every class's
// __index.
static int l_fast_method(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int slot = (int)lua_tointeger(L, lua_upvalueindex(1));
  if (slot >= kTwinSlots) return luaL_error(L, "sock._fast_method: no room for another twin");
  lua_pushinteger(L, slot + 1);
  lua_replace(L, lua_upvalueindex(1));
  for (int socktype : {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW}) {
    luaL_getmetatable(L, object_meta_key(socktype));
    lua_getfield(L, -1, "__index");
    lua_pushvalue(L, 1);
    lua_setupvalue(L, -2, 2 + 2 * slot);
    lua_pushvalue(L, 2);
    lua_setupvalue(L, -2, 3 + 2 * slot);
    lua_pop(L, 2);
  }
  return 0;
}

// sock._socket_methods: what the binding's other files and the Lua half add
// methods through. A method set here goes into every class.
static int l_methods_newindex(lua_State* L) {
  for (int i = 1; i <= 3; i++) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, lua_upvalueindex(i));
  }
  return 0;
}

// --- the LuaJIT FFI fast path --------------------------------------------------
//
// LuaJIT cannot compile a call through the Lua C API: every recv and send
// would leave the trace. lua/sock_ffi.lua calls these through the FFI
// instead, after checking in Lua that every argument is one the C API path
// would take without a word (else it calls the C API function, which
// raises or answers as usual). They run the same code as the C API
// functions from the argument checks on (recv_prepare, send_prepare,
// try_before_wait), and stop where a thread would have to yield, which only
// the C API can do: they leave the op prepared and return `wait`, and the
// Lua side calls fast_wait (a C API function) to yield. TLS connections'
// recv and send have theirs in lua_tls.cpp (fast_io), in the same table.

sock::Loop* sock_lua_fast_loop(Scheduler* S) { return S->current ? sched_loop_here(S) : nullptr; }

double sock_lua_fast_expires(double t) { return t != t ? -1 : normalize_expires(t); }

static double fast_run(LuaSocket* ls, sock::Loop& loop, LuaWait& w, const char* fname) {
  if (try_before_wait(ls->sched, loop, w)) return (double)w.op.result;
  w.fast_prepared = true;
  w.head.fname = fname;
  return kSockFastWait;
}

static double fast_recv(void* sp, char* p, size_t maxlen, double expires, int flags) {
  LuaSocket* ls = static_cast<LuaSocket*>(sp);
  sock::Loop* loop = sock_lua_fast_loop(ls->sched);
  if (!loop || (flags & ~kKnownMsgFlags)) return kSockFastSlow;
  long answer;
  if (recv_prepare(ls, p, maxlen, sock_lua_fast_expires(expires), flags, &answer))
    return (double)answer;
  return fast_run(ls, *loop, ls->rd, "recv");
}

static double fast_send(void* sp, const char* p, size_t len, double expires, int flags, double* out) {
  LuaSocket* ls = static_cast<LuaSocket*>(sp);
  sock::Loop* loop = sock_lua_fast_loop(ls->sched);
  if (!loop || (flags & ~kKnownMsgFlags)) return kSockFastSlow;
  bool stream = ls->s.type == SOCK_STREAM;
  out[0] = stream ? 1 : 0;
  out[1] = -1;
  switch (send_prepare(ls, const_cast<char*>(p), len, sock_lua_fast_expires(expires), flags)) {
    case SendAnswer::closed:
      if (stream) out[1] = 0;
      return -sock::ERR_CLOSED;
    case SendAnswer::busy:
      return -sock::ERR_BUSY;
    case SendAnswer::nothing_to_send:
      return 0;
    case SendAnswer::prepared:
      break;
  }
  double r = fast_run(ls, *loop, ls->wr, "send");
  if (r < 0 && r != kSockFastWait && stream) out[1] = (double)ls->wr.op.done;  // (push_sent_tcp's count)
  return r;
}

static const char* fast_error_message(int code) { return sock::error_message(code); }

static const SockFastApi fast_api = {
    kSockFastApiVersion, sizeof(SockFastApi),
    (unsigned)offsetof(ByteBuffer, size), (unsigned)offsetof(ByteBuffer, data),
    kSockFastWait, kSockFastSlow,
    fast_recv, fast_send, fast_error_message,
#ifdef SOCK_HAVE_TLS
    sock_lua_tls_fast_recv, sock_lua_tls_fast_send,
#else
    nullptr, nullptr,
#endif
};

// fast_wait(socket_userdata, is_write, data): yield for the op the fast
// path left prepared on that side of the socket. Its arguments stay on the
// thread's stack while it waits, keeping the socket and the data alive.
// (The userdata rather than the socket object: sock_ffi.lua has it at hand,
// and it is checked with one metatable compare instead of a table read too.)
static int l_fast_wait(lua_State* L) {
  LuaSocket* ls = test_socket_udata(L, 1);
  if (!ls) return sock_error(L, "bad argument #1 to '_fast_wait' (socket userdata expected)");
  LuaWait& w = lua_toboolean(L, 2) ? ls->wr : ls->rd;
  // Only right after a fast call that returned `wait`: anything else would
  // wait for an op nobody prepared, or one whose buffer is gone.
  if (!w.fast_prepared || sock_lua_busy(w)) return sock_error(L, "_fast_wait: no operation is waiting to start");
  w.fast_prepared = false;
  const char* fname = w.head.fname;
  Scheduler* S = ls->sched;
  if (finished_in_caller(L, S, sched_loop(L, S), w, fname)) return w.push_results(L, w);
  return sched_wait(L, S, &w.head, &op_kind, fname);
}

// sock._fast_api() -> api (light userdata: a SockFastApi*), fast_wait, the
// three classes' object metatables and the socket userdata's (for
// sock_ffi.lua's __index and its checks), and the TLS finish function
// (_tls_fast_finish in lua_tls.cpp; nil without TLS).
static int l_fast_api(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<SockFastApi*>(&fast_api));
  lua_pushcfunction(L, l_fast_wait);
  for (int socktype : {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW}) luaL_getmetatable(L, object_meta_key(socktype));
  luaL_getmetatable(L, SOCK_SOCKET);
#ifdef SOCK_HAVE_TLS
  lua_pushcfunction(L, sock_lua_tls_fast_finish);
#else
  lua_pushnil(L);
#endif
  return 7;
}

// --- registration --------------------------------------------------------------

void sock_lua_open_socket(lua_State* L, int sched_idx) {
  static const luaL_Reg methods[] = {
      {"close", l_close},       {"closed", l_closed},     {"type", l_type},
      {"family", l_family},     {"protocol", l_protocol}, {"fileno", l_fileno},
      {"setopt", l_setopt},     {"getopt", l_getopt},     {"bind", l_bind},
      {"listen", l_listen},     {"connect", l_connect},   {"shutdown", l_shutdown},
      {"accept", l_accept},     {"send", l_send},         {"sendto", l_sendto},
      {"recv", l_recv},         {"_recvn", l_recvn},      {"recvnext", l_recvnext},
      {"getsockname", l_getsockname}, {"getpeername", l_getpeername},
      {"_send", l_send_once},
      {nullptr, nullptr}};
  static const luaL_Reg functions[] = {
      {"tcp", l_tcp}, {"udp", l_udp}, {"raw", l_raw}, {"socketpair", l_socketpair}, {nullptr, nullptr}};
  sched_idx = lua_absindex(L, sched_idx);
  int module = lua_gettop(L);

  // The socket userdata: what closes the fd when it is collected.
  luaL_newmetatable(L, SOCK_SOCKET);
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  sock_type_cache_fill(sock_type_cache.socket_mt, L);
  lua_pop(L, 1);

  // The classes, sock.tcp_class, udp_class and raw_class (luapower's names):
  // tables of methods, closed over the scheduler, and the metatable of each
  // class's objects.
  static const char* const class_names[] = {"tcp_class", "udp_class", "raw_class"};
  static const int class_types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW};
  lua_pushinteger(L, 0);  // twin slots used
  lua_pushcclosure(L, l_fast_method, 1);
  lua_setfield(L, module, "_fast_method");
  int classes = lua_gettop(L) + 1;
  for (int i = 0; i < 3; i++) {
    lua_newtable(L);
    lua_pushvalue(L, sched_idx);
    luaL_setfuncs(L, methods, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, module, class_names[i]);
    luaL_newmetatable(L, object_meta_key(class_types[i]));
    lua_pushvalue(L, -2);
    for (int slot = 0; slot < 2 * kTwinSlots; slot++) lua_pushnil(L);  // (sock._fast_method fills them)
    lua_pushcclosure(L, l_index, 1 + 2 * kTwinSlots);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close_meta);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
  }
  // sock._socket_methods: reads from the tcp class, writes to all three.
  lua_newtable(L);
  lua_newtable(L);
  lua_pushvalue(L, classes);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, classes);
  lua_pushvalue(L, classes + 1);
  lua_pushvalue(L, classes + 2);
  lua_pushcclosure(L, l_methods_newindex, 3);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_setfield(L, module, "_socket_methods");
  lua_settop(L, module);

  lua_pushvalue(L, sched_idx);
  luaL_setfuncs(L, functions, 1);
  lua_pushcfunction(L, l_fast_api);
  lua_setfield(L, module, "_fast_api");
}
