// Buffered reads: s:read([max]), s:readn(n), s:readline(), s:readuntil(delim
// [, max]), each with `expires` last, and s:setmaxline([n]).
//
// All of them work on the socket's read-ahead buffer (LuaSocket::pending, a
// ReadAhead), which recv/recvn drain first, so mixing the two
// families never loses or reorders a byte. What a call does not consume stays
// in the buffer for the next one; a line longer than the limit ('too_long')
// and a timeout leave the buffer as it was.
//
// Waiting. A call first looks at the buffer, then receives (recv until it has
// what it needs or the socket would block). Only then does it wait, with an
// OpKind::readable op on the socket's read side: when the loop completes it,
// bufread_ready receives again and either re-arms the op (same deadline) or
// resumes the thread with the final results. So the whole read runs in C,
// with one yield, on every Lua version. While the op waits, the buffer holds
// only received bytes (nothing is received into it behind Lua's back), so a
// recv from another thread sees consistent data.
//
// The request lives in the read side's wait record (LuaWait::req and
// ::expires, set up by sock_lua_prepare for this call like every other
// input); the delimiter is a Lua string kept alive on the waiting thread's
// stack.
//
// Memory: the buffer holds at most the request's limit plus one receive
// (64 KiB) beyond what the caller asked for; when it empties, a large buffer
// is freed. close() frees it (see close_socket in lua_socket.cpp).
#include "lua/lua_bufread.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <string>

#include "lua/lua_buffer.hpp"
#include "lua/lua_socket.hpp"
#include "lua/scheduler.hpp"
#include "sock/address.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"

namespace {

enum Mode : int { kRead = 1, kReadN, kLine, kUntil };

constexpr size_t kDefaultMaxLine = 65536;  // readline/readuntil without a max
constexpr size_t kRecvChunk = kRecvScratchSize;  // bytes asked of one recv (the scratch's size)
constexpr size_t kKeepCapacity = 16384;    // an empty buffer larger than this is freed

// Hidden key of the per-socket line limit in the socket object.
char maxline_key;

using Req = ReadRequest;

enum class St { done, need_more, too_long, eof, error, wait, give_way };

struct Outcome {
  St st;
  size_t take = 0;     // done: bytes of the result
  size_t consume = 0;  // done: bytes to drop from the buffer (take + terminator)
  int err = 0;         // error: the code
};

size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }


Outcome check(const LuaSocket* ls, const Req& r) {
  size_t a = sock_lua_read_ahead_size(ls);
  const char* p = sock_lua_read_ahead_data(ls);
  switch (r.mode) {
    case kRead:
      if (!a) return {St::need_more};
      return {St::done, std::min(a, r.limit), std::min(a, r.limit)};
    case kReadN:
      if (a < r.limit) return {St::need_more};
      return {St::done, r.limit, r.limit};
    case kLine: {
      // The terminator may sit just past `limit` characters: "\n" or "\r\n".
      size_t window = std::min(a, sat_add(r.limit, 2));
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', window));
      if (nl) {
        size_t i = (size_t)(nl - p);
        size_t len = (i > 0 && p[i - 1] == '\r') ? i - 1 : i;
        if (len > r.limit) return {St::too_long};
        return {St::done, len, i + 1};
      }
      size_t full = sat_add(r.limit, 1);
      if (a > full || (a == full && p[a - 1] != '\r')) return {St::too_long};
      return {St::need_more};
    }
    case kUntil: {
      size_t window = std::min(a, sat_add(r.limit, r.dlen));
      // (std::string_view::find: memmem is not on every system.)
      size_t i = window >= r.dlen ? std::string_view(p, window).find(std::string_view(r.delim, r.dlen))
                                  : std::string_view::npos;
      if (i != std::string_view::npos) {
        return {St::done, i, i + r.dlen};
      }
      if (a >= sat_add(r.limit, r.dlen)) return {St::too_long};
      return {St::need_more};
    }
  }
  return {St::error, 0, 0, EINVAL};
}

// One recv into the buffer: > 0 bytes, 0 at end of stream, -errno. It goes
// through a recv op of its own, tried now, into the scheduler's scratch
// buffer: received bytes are copied into the read-ahead buffer before
// anything else runs, so one scratch serves every socket, and no buffer is
// handed to the kernel while a thread waits (the wait is a readable op).
long fill(LuaSocket* ls) {
  if (!ls->s.is_open()) return -sock::ERR_CLOSED;
  auto& scratch = ls->sched->recv_scratch;
  if (!scratch) scratch.reset(new (std::nothrow) char[kRecvChunk]);
  if (!scratch) return -ENOMEM;
  sock::Operation rd;
  rd.prepare(sock::OpKind::recv, &ls->s.io, scratch.get(), kRecvChunk);
  if (!sock::Loop::try_now(rd)) return -EAGAIN;
  long n = rd.result;
  if (n <= 0) return n;
  try {
    ReadAhead& ra = sock_lua_make_read_ahead(ls);
    if (ra.pos > 0) {  // drop what was consumed before growing
      ra.bytes.erase(0, ra.pos);
      ra.pos = 0;
    }
    ra.bytes.append(rd.buf, (size_t)n);
  } catch (const std::exception&) {
    return -ENOMEM;
  }
  return n;
}

// Receive until the request is met or the socket would block (or the
// thread has held the loop long enough: give_way).
Outcome advance(LuaSocket* ls, const Req& r) {
  for (;;) {
    Outcome o = check(ls, r);
    if (o.st != St::need_more) return o;
    if (sched_give_way(ls->sched)) return {St::give_way};
    long n = fill(ls);
    if (n > 0) continue;
    if (n == 0) return {St::eof};
    if (n == -EAGAIN || n == -EWOULDBLOCK) return {St::wait};
    return {St::error, 0, 0, (int)-n};
  }
}

int push_outcome(lua_State* L, LuaSocket* ls, const Req& r, const Outcome& o) {
  switch (o.st) {
    case St::done:
      lua_pushlstring(L, sock_lua_read_ahead_data(ls), o.take);
      sock_lua_consume_read_ahead(ls, o.consume);
      return 1;
    case St::too_long:
      return sock_lua_fail(L, sock::ERR_TOO_LONG);
    case St::eof:
      sock_lua_fail(L, sock::ERR_EOF);
      if (r.mode == kRead) return 2;
      // What arrived before the end (maybe nothing) is the third value.
      lua_pushlstring(L, sock_lua_read_ahead_data(ls), sock_lua_read_ahead_size(ls));
      sock_lua_consume_read_ahead(ls, sock_lua_read_ahead_size(ls));
      return 3;
    default:
      return sock_lua_fail(L, o.err ? o.err : EINVAL);
  }
}

struct Completion {
  LuaSocket* ls;
  Req req;
  Outcome out;
};

int push_completion(lua_State* co, void* ctx) {
  Completion& c = *static_cast<Completion*>(ctx);
  return push_outcome(co, c.ls, c.req, c.out);
}

void bufread_ready(sock::Operation* op) {
  LuaWait& w = *static_cast<LuaWait*>(op->owner);
  LuaSocket* ls = w.socket();
  Completion c{ls, w.req, Outcome{St::error}};
  if (op->result < 0) {
    c.out = {St::error, 0, 0, (int)-op->result};
  } else {
    c.out = advance(ls, c.req);
    if (c.out.st == St::wait || c.out.st == St::give_way) {
      int rc = sock_lua_wait_again(w, c.out.st == St::give_way);
      if (rc == 0) return;  // still armed; nothing was consumed
      c.out = {St::error, 0, 0, -rc};
    }
  }
  w.armed = false;
  sched_complete_wait(ls->sched, &w.head, push_completion, &c);
}

// A wait that could not start (the deadline has passed, say).
int push_wait_failure(lua_State* co, LuaWait& w) {
  return push_outcome(co, w.socket(), w.req, Outcome{St::error, 0, 0, (int)-w.op.result});
}

// The common body: serve from the buffer and the socket, wait if need be.
int run(lua_State* L, LuaSocket* ls, const Req& r, double expires, const char* fname) {
  if (!ls->s.is_open()) return sock_lua_fail(L, sock::ERR_CLOSED);
  LuaWait& w = ls->rd;
  if (sock_lua_busy(w)) return sock_lua_fail(L, sock::ERR_BUSY);
  Outcome o = advance(ls, r);
  if (o.st != St::wait && o.st != St::give_way) return push_outcome(L, ls, r, o);
  sock_lua_prepare(w, ls, sock::OpKind::readable, nullptr, 0, 0, expires, push_wait_failure);
  w.req = r;
  w.defer = o.st == St::give_way;
  return sock_lua_wait_op(L, ls, w, bufread_ready, fname);
}

// --- arguments ---------------------------------------------------------------

// (A read-ahead buffer would run datagrams together and lose their edges.)
LuaSocket* io_socket(lua_State* L, const char* fname) { return sock_lua_stream_socket(L, fname); }

// A whole number >= min at idx, or `def` when absent.
size_t opt_size(lua_State* L, int idx, const char* fname, const char* what, size_t min, size_t def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to '%s' (%s: number expected, got %s)", idx, fname, what, luaL_typename(L, idx));
  lua_Number n = lua_tonumber(L, idx);
  if (std::isinf(n) && n > 0) return SIZE_MAX;  // math.huge: no limit
  if (!(n >= -9.2e18 && n <= 9.2e18) || (lua_Number)(long long)n != n)
    sock_error(L, "bad argument #%d to '%s' (%s: number has no integer representation)", idx, fname, what);
  long long v = (long long)n;
  if (v < (long long)min)
    sock_error(L, "bad argument #%d to '%s' (%s must be at least %d)", idx, fname, what, (int)min);
  return (size_t)v;
}

// The socket's line limit (s:setmaxline), or the default: read raw from
// the socket object at index 1.
size_t maxline(lua_State* L, LuaSocket*) {
  lua_pushlightuserdata(L, &maxline_key);
  lua_rawget(L, 1);
  size_t v = kDefaultMaxLine;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, -1);
    v = n >= 1.8e19 ? SIZE_MAX : (size_t)n;
  }
  lua_pop(L, 1);
  return v;
}

// s:read([max], [expires]) -> s | nil, err
int l_read(lua_State* L) {
  LuaSocket* ls = io_socket(L, "read");
  Req r{kRead, opt_size(L, 2, "read", "max", 1, SIZE_MAX), nullptr, 0};
  double expires = sock_lua_optexpires(L, 3, "read");
  return run(L, ls, r, expires, "read");
}

// s:readn(n, [expires]) -> s | nil, err[, partial]
int l_readn(lua_State* L) {
  LuaSocket* ls = io_socket(L, "readn");
  if (lua_isnoneornil(L, 2))
    sock_error(L, "bad argument #2 to 'readn' (n: number expected, got %s)", luaL_typename(L, 2));
  Req r{kReadN, opt_size(L, 2, "readn", "n", 0, 0), nullptr, 0};
  if (r.limit == SIZE_MAX) sock_error(L, "bad argument #2 to 'readn' (n must be finite)");
  double expires = sock_lua_optexpires(L, 3, "readn");
  return run(L, ls, r, expires, "readn");
}

// s:readline([expires]) -> line | nil, err[, partial]
int l_readline(lua_State* L) {
  LuaSocket* ls = io_socket(L, "readline");
  double expires = sock_lua_optexpires(L, 2, "readline");
  Req r{kLine, maxline(L, ls), nullptr, 0};
  return run(L, ls, r, expires, "readline");
}

// s:readuntil(delim, [max], [expires]) -> s | nil, err[, partial]
int l_readuntil(lua_State* L) {
  LuaSocket* ls = io_socket(L, "readuntil");
  if (lua_type(L, 2) != LUA_TSTRING)
    sock_error(L, "bad argument #2 to 'readuntil' (delimiter: string expected, got %s)", luaL_typename(L, 2));
  size_t dlen;
  const char* delim = lua_tolstring(L, 2, &dlen);
  if (dlen == 0) sock_error(L, "bad argument #2 to 'readuntil' (delimiter must not be empty)");
  size_t max = lua_isnoneornil(L, 3) ? maxline(L, ls) : opt_size(L, 3, "readuntil", "max", 0, 0);
  double expires = sock_lua_optexpires(L, 4, "readuntil");
  Req r{kUntil, max, delim, dlen};
  return run(L, ls, r, expires, "readuntil");
}

// s:setmaxline([n]) -> previous: the longest line readline returns, and the
// max readuntil uses when it is given none (nil: back to the default).
int l_setmaxline(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "setmaxline");
  size_t n = opt_size(L, 2, "setmaxline", "n", 0, kDefaultMaxLine);
  size_t prev = maxline(L, ls);
  // In the socket object, under a key private to this file.
  lua_pushlightuserdata(L, &maxline_key);
  if (n == SIZE_MAX)
    lua_pushnumber(L, HUGE_VAL);
  else
    lua_pushnumber(L, (lua_Number)n);
  lua_rawset(L, 1);
  if (prev == SIZE_MAX)
    lua_pushnumber(L, HUGE_VAL);
  else
    sock_pushinteger(L, (long long)prev);
  return 1;
}

// s:buffered() -> bytes read ahead and not consumed yet
int l_buffered(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "buffered");
  sock_pushinteger(L, (long long)sock_lua_read_ahead_size(ls));
  return 1;
}

// Push a limit as Lua sees it: SIZE_MAX (no limit) as math.huge.
void push_limit(lua_State* L, size_t n) {
  if (n == SIZE_MAX)
    lua_pushnumber(L, HUGE_VAL);
  else
    sock_pushinteger(L, (long long)n);
}

// sock._check_stream_args(method, self, ...) -> the checked size: a stream
// method written in Lua over another transport (lua/sock_tls.lua's TLS
// connections) checks its caller's arguments here, with the messages, the
// argument numbers and the defaults of the tcp socket's own method. Returns
// recv's/recvn's/send's/_send's length (nil: all of the buffer or data),
// read's max (math.huge for none), readn's n, readuntil's max (nil when
// absent: the connection's line limit), setmaxline's n (nil: the default).
int l_check_stream_args(lua_State* L) {
  const char* m = luaL_checkstring(L, 1);
  lua_remove(L, 1);  // the caller's arguments from 1 on, self first
  std::string_view name(m);
  if (name == "recv" || name == "recvn" || name == "send" || name == "_send") {
    bool writable = name[0] == 'r';
    size_t cap;
    sock_lua_checkbuffer(L, 2, writable, &cap, m);
    size_t len = sock_lua_checklength(L, 3, cap, m, writable ? "buffer's" : "data's");
    sock_lua_optexpires(L, 4, m);
    sock_pushinteger(L, (long long)len);
  } else if (name == "read") {
    size_t max = opt_size(L, 2, "read", "max", 1, SIZE_MAX);
    sock_lua_optexpires(L, 3, "read");
    push_limit(L, max);
  } else if (name == "readn") {
    if (lua_isnoneornil(L, 2))
      sock_error(L, "bad argument #2 to 'readn' (n: number expected, got %s)", luaL_typename(L, 2));
    size_t n = opt_size(L, 2, "readn", "n", 0, 0);
    if (n == SIZE_MAX) sock_error(L, "bad argument #2 to 'readn' (n must be finite)");
    sock_lua_optexpires(L, 3, "readn");
    sock_pushinteger(L, (long long)n);
  } else if (name == "readuntil") {
    if (lua_type(L, 2) != LUA_TSTRING)
      sock_error(L, "bad argument #2 to 'readuntil' (delimiter: string expected, got %s)", luaL_typename(L, 2));
    if (lua_rawlen(L, 2) == 0) sock_error(L, "bad argument #2 to 'readuntil' (delimiter must not be empty)");
    bool given = !lua_isnoneornil(L, 3);
    size_t max = given ? opt_size(L, 3, "readuntil", "max", 0, 0) : 0;
    sock_lua_optexpires(L, 4, "readuntil");
    if (given)
      push_limit(L, max);
    else
      lua_pushnil(L);
  } else if (name == "readline") {
    sock_lua_optexpires(L, 2, "readline");
    lua_pushnil(L);
  } else if (name == "setmaxline") {
    if (lua_isnoneornil(L, 2))
      lua_pushnil(L);
    else
      push_limit(L, opt_size(L, 2, "setmaxline", "n", 0, kDefaultMaxLine));
  } else {
    return luaL_error(L, "_check_stream_args: no method '%s'", m);
  }
  return 1;
}

}  // namespace

void sock_lua_consume_read_ahead(LuaSocket* ls, size_t n) {
  if (!ls->pending) return;  // (nothing to drop)
  ReadAhead& ra = *ls->pending;
  ra.pos += n;
  if (ra.pos < ra.bytes.size()) return;
  if (ra.bytes.capacity() > kKeepCapacity)
    ls->pending.reset();  // an idle connection keeps no big buffer
  else {
    ra.bytes.clear();
    ra.pos = 0;
  }
}

void sock_lua_open_bufread(lua_State* L, int sched_idx) {
  static const luaL_Reg methods[] = {{"read", l_read},           {"readn", l_readn},
                                     {"readline", l_readline},   {"readuntil", l_readuntil},
                                     {"setmaxline", l_setmaxline}, {"buffered", l_buffered},
                                     {nullptr, nullptr}};
  sched_idx = lua_absindex(L, sched_idx);
  lua_getfield(L, -1, "_socket_methods");
  lua_pushvalue(L, sched_idx);
  luaL_setfuncs(L, methods, 1);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_check_stream_args);
  lua_setfield(L, -2, "_check_stream_args");
}
