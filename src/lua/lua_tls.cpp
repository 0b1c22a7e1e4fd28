// The TLS engine (sock/tls.hpp) for the Lua half: contexts and sessions as
// userdata. A session is attached to its tcp socket, and its I/O calls
// (s:io_read, s:io_write, ...) run an engine step to its end in C: the
// ciphertext is received into the scheduler's scratch buffer and fed to the
// engine, and what the engine has to send is sent, with the socket's own
// wait records and the same try-then-wait, deadlines, give-way budget and
// close rules as the socket's calls; a call yields its thread only while
// the socket is not ready. lua/sock_tls.lua keeps the API (the handshake
// shared by threads, the buffered reads, close). Without OpenSSL only
// sock._tls_available = false is registered.
#include "lua/lua_tls.hpp"

#ifdef SOCK_HAVE_TLS
#include "lua/lua_buffer.hpp"
#include "lua/lua_socket.hpp"
#include "lua/scheduler.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"
#include "sock/tls.hpp"

#include <cerrno>
#include <cstdint>

#include <cstring>
#include <memory>
#include <new>
#include <string>

using sock::tls::Context;
using sock::tls::ContextOptions;
using sock::tls::Result;
using sock::tls::Session;
using sock::tls::Status;

static const char* const CONTEXT_MT = "sock.tls_context";
static const char* const SESSION_MT = "sock.tls_session";

struct LuaContext {
  std::shared_ptr<Context> ctx;
};

struct LuaSession;

// The engine steps a connection's I/O calls run.
enum class Step : uint8_t { handshake, read, write, read_ahead, shutdown };

// One I/O call on a connection: the engine step it runs and where it is
// between steps (see advance). While the call waits it lives in the job slot
// of the socket's wait record it waits in (LuaSession::jobs, index 0 for
// LuaSocket::rd, 1 for ::wr), which the completion finds through LuaWait::job.
struct TlsJob {
  enum class Phase : uint8_t { step, flush, fill };
  // What the call returns: the step's (see push_job), or a tcp socket's
  // recv or send results (conn:recv and conn:send, which call the binding
  // directly once the handshake is done).
  enum class Shape : uint8_t { step, recv, send };
  LuaSession* s = nullptr;
  Step step = Step::read;
  Phase phase = Phase::step;
  Shape shape = Shape::step;
  bool flusher = false;    // this call is the one sending the session's output
  bool give_way = false;   // the wait asked for is one turn of the loop (sched_give_way)
  // In a completion: the first syscall after the loop said the socket is
  // ready is that readiness's (the loop's own op would make it), so it does
  // not count against the thread's budget; any further one does.
  bool fresh = false;
  bool took_all = false;   // flush: the engine had no more output after the last take
  lua_State* L = nullptr;  // while the call runs in its own frame (not in a completion)
  bool checked = false;    // the call's thread was checked for I/O (sched_check_thread)
  const char* fname = "recv";
  char* buf = nullptr;     // read: where the plaintext goes; write: the plaintext
  size_t len = 0;          // (send: this step's part of it)
  size_t total = 0;        // send: all of the plaintext
  size_t sent = 0;         // send: how much of it the steps before this one took
  Result r;                // the step's result, kept while its output is sent
  int flush_err = 0;       // sending the output failed (a code)
  int err = 0;             // the call fails with this code (after the step's result is known)
  double expires = -1;     // the call's deadline (< 0: none), set by run_job
};

struct LuaSession {
  std::unique_ptr<Session> session;
  // The tcp socket the ciphertext goes over (set by s:attach; the socket
  // object is the session's user value, so it lives as long as this).
  LuaSocket* ls = nullptr;
  // Plaintext read ahead for the buffered reads (readline...); read() and
  // the buffered reads take from it first.
  std::string ahead;
  size_t ahead_pos = 0;
  size_t ahead_len() const { return ahead.size() - ahead_pos; }
  // An error met by read() after it already had plaintext to return: given
  // by the next read() or read_ahead(), as it would have been.
  bool has_deferred = false;
  Result deferred;
  // Ciphertext taken from the engine that the socket has not taken yet
  // (from out_pos on): sent first by the next flush.
  std::string out;
  size_t out_pos = 0;
  // One call at a time sends the output; another that finds it at it
  // leaves its output to that call's loop. flusher_wait: the record the
  // sending call waits in (null while it runs in its own frame).
  bool flushing = false;
  LuaWait* flusher_wait = nullptr;
  // The last recv found the socket empty (would block, or less than asked):
  // on a completion backend the next one waits first (see fill).
  bool recv_short = false;
  TlsJob jobs[2];
  // The FFI fast path (LuaJIT; see fast_io): a conn:recv or conn:send whose
  // results are not a plain number is left here for _tls_fast_finish, which
  // the Lua side calls straight after: finished (the results in fast_done),
  // or parked in jobs[k] and waiting to start in that record (wait_rd, wait_wr).
  enum class FastLeft : uint8_t { none, done, wait_rd, wait_wr };
  FastLeft fast_left = FastLeft::none;
  TlsJob fast_done;

  // Everything of the connection but the jobs (a completion may still come
  // for one) and the socket (the jobs' records are in it).
  void free_connection() {
    session.reset();
    std::string().swap(ahead);
    ahead_pos = 0;
    has_deferred = false;
    deferred = Result{};
    std::string().swap(out);
    out_pos = 0;
  }
  // Whether a call is sending the output now (a sending call whose wait was
  // withdrawn without its completion stops counting).
  bool flushing_now() const { return flushing && (!flusher_wait || sock_lua_busy(*flusher_wait)); }
};

template <class T>
static void destroy(lua_State* L, const char* mt) {
  T* p = static_cast<T*>(luaL_checkudata(L, 1, mt));
  p->~T();
  new (p) T();  // stays valid (and empty) until collected
}

static int l_context_gc(lua_State* L) {
  destroy<LuaContext>(L, CONTEXT_MT);
  return 0;
}

static std::string field_string(lua_State* L, int t, const char* key) {
  lua_getfield(L, t, key);
  std::string s;
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char* p = lua_tolstring(L, -1, &len);
    s.assign(p, len);
  }
  lua_pop(L, 1);
  return s;
}

// _tls_context(opts) -> context | nil, err. opts was checked by the Lua
// half: string fields, verify/server booleans, alpn a list of strings.
static int l_context(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  ContextOptions o;
  lua_getfield(L, 1, "server");
  o.server = lua_toboolean(L, -1);
  lua_getfield(L, 1, "verify");
  o.verify = lua_toboolean(L, -1);
  lua_getfield(L, 1, "session_reuse");
  o.session_reuse = lua_toboolean(L, -1);
  lua_pop(L, 3);
  o.ca_file = field_string(L, 1, "ca_file");
  o.ca_dir = field_string(L, 1, "ca_dir");
  o.ca_pem = field_string(L, 1, "ca");
  o.cert_file = field_string(L, 1, "cert_file");
  o.cert_pem = field_string(L, 1, "cert");
  o.key_file = field_string(L, 1, "key_file");
  o.key_pem = field_string(L, 1, "key");
  o.min_version = field_string(L, 1, "min_version");
  o.max_version = field_string(L, 1, "max_version");
  o.ciphers = field_string(L, 1, "ciphers");
  o.ciphersuites = field_string(L, 1, "ciphersuites");
  lua_getfield(L, 1, "alpn");
  if (lua_istable(L, -1)) {
    for (int i = 1;; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        break;
      }
      o.alpn.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);

  std::string err;
  std::shared_ptr<Context> ctx = Context::create(o, &err);
  if (!ctx) {
    lua_pushnil(L);
    lua_pushstring(L, err.c_str());
    return 2;
  }
  LuaContext* lc = new (sock_newuserdata(L, sizeof(LuaContext))) LuaContext();
  lc->ctx = std::move(ctx);
  luaL_setmetatable(L, CONTEXT_MT);
  return 1;
}

// The session methods have the sessions' metatable as upvalue 1: comparing
// with it is cheaper than luaL_checkudata's lookup of the name in the
// registry, on a path taken on every call. Anything else goes to
// luaL_checkudata, for its error.
static LuaSession* check_session(lua_State* L) {
  LuaSession* s = static_cast<LuaSession*>(lua_touserdata(L, 1));
  if (s && lua_getmetatable(L, 1)) {
    bool same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (!same) s = nullptr;
  } else {
    s = nullptr;
  }
  if (!s) s = static_cast<LuaSession*>(luaL_checkudata(L, 1, SESSION_MT));
  if (!s->session) sock_error(L, "TLS session used after it was freed");
  return s;
}

// _tls_session(context, servername) -> session | nil, err
static int l_session(lua_State* L) {
  LuaContext* lc = static_cast<LuaContext*>(luaL_checkudata(L, 1, CONTEXT_MT));
  const char* name = luaL_optstring(L, 2, "");
  if (!lc->ctx) return luaL_error(L, "TLS context used after it was freed");
  std::string err;
  std::unique_ptr<Session> session = Session::create(lc->ctx, name, &err);
  if (!session) {
    lua_pushnil(L);
    lua_pushstring(L, err.c_str());
    return 2;
  }
  LuaSession* ls = new (lua_newuserdata(L, sizeof(LuaSession))) LuaSession();
  ls->session = std::move(session);
  luaL_setmetatable(L, SESSION_MT);
  return 1;
}

// __gc: everything goes (no call waits: a waiting call keeps its session).
static int l_session_gc(lua_State* L) {
  destroy<LuaSession>(L, SESSION_MT);
  return 0;
}

// s:free(): the connection's state goes now (conn:close()); a call still
// waiting on the socket finds it gone and says 'closed'.
static int l_session_free(lua_State* L) {
  static_cast<LuaSession*>(luaL_checkudata(L, 1, SESSION_MT))->free_connection();
  return 0;
}

// s:attach(tcp) -> true | nil: the sock tcp socket the connection runs
// over (nil for anything else). Kept as the session's user value.
static int l_attach(lua_State* L) {
  LuaSession* s = check_session(L);
  LuaSocket* ls = sock_lua_tosocket(L, 2);
  if (!ls || ls->s.type != SOCK_STREAM) {
    lua_pushnil(L);
    return 1;
  }
  s->ls = ls;
  lua_pushvalue(L, 2);
  sock_setuservalue(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

// --- engine steps --------------------------------------------------------------

// read: plaintext into j.buf, from the read-ahead first. When more records
// are in hand (a bulk sender's come several to a tcp recv) it decrypts them
// too, up to len, so that one call returns what is there, as a tcp recv
// does; what stops it is left for the next call (an error is kept for it).
static Result step_read(LuaSession* s, char* p, size_t len) {
  if (size_t have = s->ahead_len()) {
    size_t n = have < len ? have : len;
    std::memcpy(p, s->ahead.data() + s->ahead_pos, n);
    s->ahead_pos += n;
    Result r;
    r.bytes = n;
    return r;
  }
  if (s->has_deferred) {
    s->has_deferred = false;
    Result r = std::move(s->deferred);
    s->deferred = Result{};
    return r;
  }
  if (s->session->read_would_block()) {  // (the usual case when a reader comes back for more)
    Result r;
    r.status = Status::want_read;
    return r;
  }
  Result r = s->session->read(p, len);
  if (r.status == Status::done && r.bytes > 0) {
    while (r.bytes < len && s->session->has_pending_input()) {
      Result more = s->session->read(p + r.bytes, len - r.bytes);
      if (more.status != Status::done) {
        // want_read: nothing whole is left; closed and closed_abruptly come
        // again by themselves; an error would not (OpenSSL's next verdict
        // on a failed session is a different one), so it is kept.
        if (more.status == Status::error) {
          s->deferred = std::move(more);
          s->has_deferred = true;
        }
        break;
      }
      if (more.bytes == 0) break;
      r.bytes += more.bytes;
    }
  }
  return r;
}

// write: with partial writes on, SSL_write stops after each record; a
// memory BIO takes every record, so all of it is written now and sent in one
// go rather than record by record. (A failure after the first record comes
// again on the next call.)
static Result step_write(LuaSession* s, const char* p, size_t len) {
  Result r = s->session->write(p, len);
  while (r.status == Status::done && r.bytes > 0 && r.bytes < len) {
    Result more = s->session->write(p + r.bytes, len - r.bytes);
    if (more.status != Status::done || more.bytes == 0) break;
    r.bytes += more.bytes;
  }
  return r;
}

// read_ahead: one read appended to the read-ahead (or the error kept).
static Result step_read_ahead(LuaSession* s) {
  if (s->has_deferred) {
    s->has_deferred = false;
    Result r = std::move(s->deferred);
    s->deferred = Result{};
    return r;
  }
  if (s->session->read_would_block()) {
    Result r;
    r.status = Status::want_read;
    return r;
  }
  if (s->ahead_pos > 0 && s->ahead_pos == s->ahead.size()) {
    s->ahead.clear();
    s->ahead_pos = 0;
  }
  size_t old = s->ahead.size();
  const size_t chunk = 16384;  // one TLS record at most
  s->ahead.resize(old + chunk);
  Result r = s->session->read(&s->ahead[old], chunk);
  s->ahead.resize(old + (r.status == Status::done ? r.bytes : 0));
  return r;
}

static Result run_step(TlsJob& j) {
  LuaSession* s = j.s;
  switch (j.step) {
    case Step::handshake: return s->session->handshake();
    case Step::read: return step_read(s, j.buf, j.len);
    case Step::write: return step_write(s, j.buf, j.len);
    case Step::read_ahead: return step_read_ahead(s);
    case Step::shutdown: return s->session->shutdown();
  }
  return Result{};
}

// --- moving the ciphertext --------------------------------------------------------

// What advance() asks for when it cannot go on now.
enum Need : int { kFinished = 0, kReadable, kWritable };

static char* scratch(Scheduler* S) {
  if (!S->recv_scratch) S->recv_scratch.reset(new (std::nothrow) char[kRecvScratchSize]);
  return S->recv_scratch.get();
}

// Whether the call must give way before its next syscall (see TlsJob::fresh).
static bool give_way(TlsJob& j, Scheduler* S) {
  if (j.fresh) {
    j.fresh = false;
    return false;
  }
  return sched_give_way(S);
}

// Before the first syscall of a call made in its own frame: only sock
// threads do I/O (a call served from what is in hand needs none). conn:recv
// and conn:send check here only that one runs (whether this coroutine may
// wait is checked when it has to: wait_job), as a tcp recv and send do; the
// FFI fast path can tell no more (its calls have no L: fast_io checks that a
// sock thread runs before it starts).
static void check_io_thread(TlsJob& j) {
  if (j.L && !j.checked) {
    j.checked = true;
    if (j.shape == TlsJob::Shape::step)
      sched_check_thread(j.L, j.s->ls->sched, j.fname);
    else
      sched_check_in_thread(j.L, j.s->ls->sched, j.fname);
  }
}

// Send the session's output: what an earlier flush left, then what the
// engine has. kFinished when it is all sent, when another call is sending
// it, or when sending failed (j.flush_err); else what to wait for.
static Need flush(TlsJob& j) {
  LuaSession* s = j.s;
  LuaSocket* ls = s->ls;
  if (!j.flusher) {
    if (s->out_pos == s->out.size() && s->session->pending_output() == 0) return kFinished;
    if (s->flushing_now()) return kFinished;  // that call's loop sends ours too
    check_io_thread(j);
    s->flushing = true;
    s->flusher_wait = nullptr;
    j.flusher = true;
  }
  j.took_all = false;
  Scheduler* S = ls->sched;
  for (;;) {
    const char* p;
    size_t n;
    bool kept = s->out_pos < s->out.size();
    if (kept) {
      p = s->out.data() + s->out_pos;
      n = s->out.size() - s->out_pos;
    } else {
      if (!s->out.empty()) {
        if (s->out.capacity() > 65536) std::string().swap(s->out);
        else s->out.clear();
        s->out_pos = 0;
      }
      char* buf = scratch(S);
      if (!buf) {
        j.flush_err = ENOMEM;
        break;
      }
      if (j.took_all) break;  // (the last take left nothing behind)
      n = s->session->take(buf, kRecvScratchSize);
      if (n == 0) break;
      j.took_all = n < kRecvScratchSize;  // a memory BIO gives all it has, up to the size
      p = buf;
    }
    if (!ls->s.is_open()) {
      j.flush_err = sock::ERR_CLOSED;
      break;
    }
    // (giving way: this call waits one turn of the loop, as a tcp send would)
    bool gw = give_way(j, S);
    size_t sent = 0;
    if (!gw) {
      sock::Operation op;
      op.prepare(sock::OpKind::send, &ls->s.io, const_cast<char*>(p), n);
      // (Through the poller, as fill's recv: a backend may track the
      // socket's state from what its syscalls return.)
      sock::Loop* loop = S->loop.get();
      if (loop ? loop->try_op(op) : sock::Loop::try_now(op)) {
        if (op.result < 0) {
          j.flush_err = (int)-op.result;
          break;
        }
        sent = (size_t)op.result;
      }  // (else it would block: nothing sent)
    }
    bool would_block = sent == 0;
    if (kept) {
      s->out_pos += sent;
    } else if (sent < n) {
      s->out.assign(p + sent, n - sent);  // the socket is full: kept for later
      s->out_pos = 0;
    }
    if (would_block) {
      j.give_way = gw;
      return kWritable;
    }
  }
  s->flushing = false;
  s->flusher_wait = nullptr;
  j.flusher = false;
  return kFinished;
}

// Give the engine what the network has: one recv (what the socket's own
// buffered reads hold first). kFinished when something (or the end) was fed,
// or the call failed (j.err); else what to wait for.
static Need fill(TlsJob& j) {
  LuaSession* s = j.s;
  LuaSocket* ls = s->ls;
  if (!ls->s.is_open()) {
    j.err = sock::ERR_CLOSED;
    return kFinished;
  }
  check_io_thread(j);
  if (size_t avail = sock_lua_read_ahead_size(ls)) {
    s->session->feed(sock_lua_read_ahead_data(ls), avail);
    ls->pending.reset();
    return kFinished;
  }
  Scheduler* S = ls->sched;
  if (give_way(j, S)) {
    j.give_way = true;
    return kReadable;
  }
  char* buf = scratch(S);
  if (!buf) {
    j.err = ENOMEM;
    return kFinished;
  }
  sock::Operation op;
  op.prepare(sock::OpKind::recv, &ls->s.io, buf, kRecvScratchSize);
  // (A recv that would surely find nothing waits without trying, as a tcp
  // recv does; one past its deadline tries once.)
  sock::Loop* loop = S->loop.get();
  if (loop && sock_lua_recv_waits_first(loop->poller(), op, s->recv_short, j.expires)) return kReadable;
  bool done = loop ? loop->try_op(op) : sock::Loop::try_now(op);
  s->recv_short = !done || (op.result > 0 && (size_t)op.result < kRecvScratchSize);
  if (!done) return kReadable;
  if (op.result < 0) {
    j.err = (int)-op.result;
    return kFinished;
  }
  if (op.result == 0)
    s->session->feed_eof();
  else
    s->session->feed(buf, (size_t)op.result);
  return kFinished;
}

// Plaintext encrypted per step of a send, so that a huge send is not all
// held as ciphertext at once.
constexpr size_t kWriteChunk = 262144;
static size_t next_part(size_t left) { return left < kWriteChunk ? left : kWriteChunk; }

// A write step whose plaintext the engine took, whose ciphertext was not all
// sent when the call failed (j.err set; called once, by push_job):
// the plaintext is in the stream, its ciphertext waits in the session and
// goes first on the next call. So it counts as sent (resending it would
// repeat it): a send's count says so; _send gives its count and the
// failure, if it lasts, comes with the next call. True if so.
static bool count_taken_plaintext(TlsJob& j) {
  if (j.step != Step::write || j.phase != TlsJob::Phase::flush || j.r.status != Status::done || j.r.bytes == 0)
    return false;
  if (j.shape == TlsJob::Shape::send)
    j.sent += j.r.bytes;
  else
    j.err = 0;
  return true;
}

// Run the call on until it has its result (kFinished) or must wait: the
// engine step; its output sent (unless another call is sending); then, if
// the step wants input, one recv and the step again. The same loop as a
// blocking TLS client's, cut where it would block.
static Need advance(TlsJob& j) {
  LuaSession* s = j.s;
  for (;;) {
    if (!s->session) {  // closed meanwhile
      j.err = sock::ERR_CLOSED;
      return kFinished;
    }
    switch (j.phase) {
      case TlsJob::Phase::step:
        j.r = run_step(j);
        j.flush_err = 0;
        j.phase = TlsJob::Phase::flush;
        [[fallthrough]];
      case TlsJob::Phase::flush: {
        if (Need n = flush(j)) return n;
        switch (j.r.status) {
          case Status::done:
            j.err = j.flush_err;  // (push_job counts the step's plaintext if so)
            if (j.err) return kFinished;
            if (!j.err && j.shape == TlsJob::Shape::send) {  // the next part, if any
              j.sent += j.r.bytes;
              if (j.sent < j.total) {
                j.buf += j.r.bytes;
                j.len = next_part(j.total - j.sent);
                j.phase = TlsJob::Phase::step;
                continue;
              }
            }
            return kFinished;
          case Status::error:  // (the alert to the peer was sent if it could be)
          case Status::closed:
          case Status::closed_abruptly:
            return kFinished;
          default:
            break;
        }
        if (j.flush_err) {
          j.err = j.flush_err;
          return kFinished;
        }
        if (j.r.status != Status::want_read) {  // want_write: the output went, go on
          j.phase = TlsJob::Phase::step;
          continue;
        }
        j.phase = TlsJob::Phase::fill;
      }
        [[fallthrough]];
      case TlsJob::Phase::fill:
        if (Need n = fill(j)) return n;
        if (j.err) return kFinished;
        j.phase = TlsJob::Phase::step;
        continue;
    }
  }
}

// The call no longer sends the session's output (a failed wait ends the
// sending too).
static void end_flushing(TlsJob& j) {
  if (j.flusher) {
    j.s->flushing = false;
    j.s->flusher_wait = nullptr;
    j.flusher = false;
  }
}

// Whether a finished conn:recv or conn:send has a single plain result:
// recv's count (0 at the end with close_notify), send's true. The FFI fast
// path returns these as a number (fast_io) and leaves the others to
// push_job.
static bool plain_result(const TlsJob& j) {
  if (j.err) return false;
  if (j.shape == TlsJob::Shape::send) return j.r.status == Status::done;
  return j.shape == TlsJob::Shape::recv && (j.r.status == Status::done || j.r.status == Status::closed);
}

// The call's results. Shape::step: the step's count | false, 'eof'
// (close_notify came) | false, 'eof_without_close_notify' | nil, err.
// Shape::recv: a tcp recv's: n | 0 at the end (0, 'eof_without_close_notify'
// without close_notify) | nil, err. Shape::send: a tcp send's: true | nil,
// err, sent (the end of the stream is 'closed').
static int push_job(lua_State* L, TlsJob& j) {
  // Every way a call ends goes through here: a send error, a deadline that
  // passed while waiting or before a wait could start, a close.
  if (j.err) count_taken_plaintext(j);
  end_flushing(j);
  if (plain_result(j)) {
    if (j.shape == TlsJob::Shape::send)
      lua_pushboolean(L, 1);
    else
      sock_pushinteger(L, (long long)(j.r.status == Status::done ? j.r.bytes : 0));
    return 1;
  }
  if (j.shape == TlsJob::Shape::send) {
    if (j.err) {
      sock_lua_fail(L, j.err);
    } else {
      lua_pushnil(L);
      if (j.r.status == Status::closed)
        lua_pushliteral(L, "closed");
      else if (j.r.status == Status::closed_abruptly)
        lua_pushliteral(L, "eof_without_close_notify");
      else
        lua_pushstring(L, j.r.message.c_str());
    }
    sock_pushinteger(L, (long long)j.sent);
    return 3;
  }
  if (j.err) return sock_lua_fail(L, j.err);
  bool recv = j.shape == TlsJob::Shape::recv;
  switch (j.r.status) {
    case Status::done:
      sock_pushinteger(L, (long long)j.r.bytes);
      return 1;
    case Status::closed:
      if (recv) {
        lua_pushinteger(L, 0);
        return 1;
      }
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "eof");
      return 2;
    case Status::closed_abruptly:
      if (recv)
        lua_pushinteger(L, 0);
      else
        lua_pushboolean(L, 0);
      lua_pushliteral(L, "eof_without_close_notify");
      return 2;
    default:
      lua_pushnil(L);
      lua_pushstring(L, j.r.message.c_str());
      return 2;
  }
}

static int push_job_ctx(lua_State* co, void* ctx) { return push_job(co, *static_cast<TlsJob*>(ctx)); }

// A wait that could not start (its deadline had passed, say).
static int push_wait_failure(lua_State* co, LuaWait& w) {
  TlsJob& j = *static_cast<TlsJob*>(w.job);
  j.err = w.op.result < 0 ? (int)-w.op.result : EINVAL;
  return push_job(co, j);
}

// A read's waiting thread was resumed from outside the loop before its
// completion came: the plaintext it got goes back in front of the
// read-ahead, so that nothing is lost.
static void undo_job(void* ctx) {
  TlsJob& j = *static_cast<TlsJob*>(ctx);
  end_flushing(j);
  if (j.step != Step::read || j.err || j.r.status != Status::done || !j.r.bytes || !j.s->session) return;
  try {
    j.s->ahead.insert(j.s->ahead_pos, j.buf, j.r.bytes);
  } catch (const std::exception&) {
  }
}

static void arm_kind(LuaWait& w, Need n) {
  w.op.kind = n == kReadable ? sock::OpKind::readable : sock::OpKind::writable;
  w.op.result = 0;
}

// The loop says the socket is ready (or the wait ended): go on.
static void tls_ready(sock::Operation* op) {
  LuaWait& w = *static_cast<LuaWait*>(op->owner);
  TlsJob& j = *static_cast<TlsJob*>(w.job);
  j.fresh = true;
  j.s->recv_short = false;  // (the socket may be readable now: the next fill tries)
  Need n = kFinished;
  if (op->result < 0) {  // (its deadline, or a close)
    j.err = (int)-op->result;
  } else if ((n = advance(j)) != kFinished) {
    arm_kind(w, n);
    if (j.flusher) j.s->flusher_wait = &w;
    int rc = sock_lua_wait_again(w, j.give_way);
    j.give_way = false;
    if (rc == 0) return;  // still armed
    j.err = -rc;
  }
  w.armed = false;
  sched_complete_wait(w.head.sched, &w.head, push_job_ctx, &j, undo_job);
}

// A size lua/sock_tls.lua passes to a session method (an offset, a count it
// computed from checked arguments): nil is 0. Anything else raises rather
// than reach a conversion to size_t, which is undefined for a NaN or a
// negative number.
static size_t internal_size(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  long long n = sock_checkinteger(L, idx, "TLS session");
  if (n < 0) luaL_error(L, "TLS session: negative size");
  return (size_t)n;
}

// The buffer and length of a recv or send: buf at idx, the optional
// length after it (nil: all of buf), checked as a tcp recv's and send's.
static char* io_buffer(lua_State* L, int idx, bool writable, size_t* len, const char* fname) {
  size_t cap;
  char* p = sock_lua_checkbuffer(L, idx, writable, &cap, fname);
  *len = sock_lua_checklength(L, idx + 1, cap, fname, writable ? "buffer's" : "data's");
  return p;
}

// The part of every call after its arguments are read, shared by the C API
// functions (io_call) and the FFI fast path (fast_io): run the job until it
// has its results (then null: push_job gives them from j) or must wait.
// Then it is parked in one of the socket's records, which is prepared for
// the wait and returned (wait_job waits in it).
static LuaWait* run_job(TlsJob& j, double expires) {
  j.expires = expires;
  Need n = advance(j);
  if (!n) return nullptr;
  // Wait in one of the socket's records: the one of the side it waits
  // for if free, else the other (a TLS call may wait for either side).
  // A side another call waits on gives 'busy', as the tcp socket's own
  // calls do.
  LuaSession* s = j.s;
  LuaSocket* ls = s->ls;
  int k = n == kReadable ? 0 : 1;
  if (sock_lua_busy(k == 0 ? ls->rd : ls->wr)) k = 1 - k;
  LuaWait& w = k == 0 ? ls->rd : ls->wr;
  if (sock_lua_busy(w)) {
    j.err = sock::ERR_BUSY;
    return nullptr;
  }
  TlsJob& parked = s->jobs[k];
  parked = std::move(j);
  parked.L = nullptr;
  sock_lua_prepare(w, ls, n == kReadable ? sock::OpKind::readable : sock::OpKind::writable, nullptr, 0, 0,
                   expires, push_wait_failure);
  w.job = &parked;
  w.defer = parked.give_way;
  parked.give_way = false;
  if (parked.flusher) s->flusher_wait = &w;
  return &w;
}

// Wait in the record run_job prepared, yielding the thread; push_job gives
// the results when the job is done. conn:recv and conn:send check only now
// whether this coroutine may wait (see check_io_thread): a raise here
// leaves the record prepared but not armed, which the next call prepares
// afresh.
static int wait_job(lua_State* L, LuaWait& w) {
  TlsJob& j = *static_cast<TlsJob*>(w.job);
  LuaSocket* ls = w.socket();
  if (j.shape != TlsJob::Shape::step && L != ls->sched->current) sched_check_can_wait(L, ls->sched, j.fname);
  return sock_lua_wait_op(L, ls, w, tls_ready, j.fname);
}

// The step run to its end over the socket, waiting (yielding the thread)
// while the socket is not ready; the results of push_job. The arguments
// from 2 on:
//   Shape::step: (expires, ...): read (buf, len, [offset]); write (buf,
//     offset, len); the others nothing more
//   Shape::recv: (buf, [len], [expires]) (conn:recv once handshaken)
//   Shape::send: (buf, [len], [expires]) (conn:send: all of it)
static int io_call(lua_State* L, LuaSession* s, Step step, TlsJob::Shape shape) {
  bool reads = step == Step::read || step == Step::read_ahead || step == Step::handshake;
  const char* fname = reads ? "recv" : "send";
  if (!s->ls) return sock_error(L, "TLS session has no socket");
  TlsJob j;
  j.s = s;
  j.step = step;
  j.shape = shape;
  j.L = L;
  j.fname = fname;
  double expires;
  if (shape == TlsJob::Shape::recv) {
    j.buf = io_buffer(L, 2, true, &j.len, "recv");
    expires = sock_lua_optexpires(L, 4, "recv");
    if (j.len == 0) {
      lua_pushinteger(L, 0);
      return 1;
    }
  } else if (shape == TlsJob::Shape::send) {
    j.buf = io_buffer(L, 2, false, &j.total, "send");
    expires = sock_lua_optexpires(L, 4, "send");
    if (j.total == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    j.len = next_part(j.total);
  } else {
    expires = sock_lua_optexpires(L, 2, fname);
    if (step == Step::read) {
      size_t cap;
      char* p = sock_lua_checkbuffer(L, 3, true, &cap, "recv");
      size_t len = internal_size(L, 4);
      size_t offset = internal_size(L, 5);
      if (cap != (size_t)-1) {
        if (offset > cap) return luaL_error(L, "recv: offset beyond the buffer");
        if (len > cap - offset) len = cap - offset;
      }
      j.buf = p + offset;
      j.len = len;
    } else if (step == Step::write) {
      size_t cap;
      const char* p = sock_lua_checkbuffer(L, 3, false, &cap, "send");
      size_t offset = internal_size(L, 4);
      size_t len = internal_size(L, 5);
      if (cap != (size_t)-1 && (offset > cap || len > cap - offset))
        return luaL_error(L, "send: length beyond the buffer");
      j.buf = const_cast<char*>(p) + offset;
      j.len = len;
    }
  }
  LuaWait* w = run_job(j, expires);
  if (!w) return push_job(L, j);
  return wait_job(L, *w);
}

// s:io_handshake(expires), s:io_read(expires, buf, len, [offset]),
// s:io_write(expires, buf, offset, len), s:io_read_ahead(expires),
// s:io_shutdown(expires): the step's results (see push_job).
template <Step step>
static int l_io(lua_State* L) {
  return io_call(L, check_session(L), step, TlsJob::Shape::step);
}

// s:io_recv(buf, [len], [expires]), s:io_send(s|buf, [len], [expires]):
// conn:recv and conn:send, with a tcp socket's results.
template <TlsJob::Shape shape>
static int l_io_shaped(lua_State* L) {
  return io_call(L, check_session(L), shape == TlsJob::Shape::recv ? Step::read : Step::write, shape);
}

// The methods s:fast_methods() makes: conn:recv(buf, [len], [expires]) and
// conn:send(s|buf, [len], [expires]) of one connection once its handshake
// is done, with a tcp socket's results. Upvalue 1 is the session (so no
// lookup and no check is needed).
template <TlsJob::Shape shape>
static int l_bound_io(lua_State* L) {
  LuaSession* s = static_cast<LuaSession*>(lua_touserdata(L, lua_upvalueindex(1)));
  if (!s->session) {  // closed
    sock_lua_fail(L, sock::ERR_CLOSED);
    if (shape == TlsJob::Shape::recv) return 2;
    lua_pushinteger(L, 0);
    return 3;
  }
  return io_call(L, s, shape == TlsJob::Shape::recv ? Step::read : Step::write, shape);
}

// s:fast_methods() -> recv, send: the connection's own recv and send (see
// l_bound_io), for sock_tls.lua to store in the connection.
static int l_fast_methods(lua_State* L) {
  check_session(L);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, l_bound_io<TlsJob::Shape::recv>, 1);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, l_bound_io<TlsJob::Shape::send>, 1);
  return 2;
}

// --- the LuaJIT FFI fast path ---------------------------------------------------
//
// conn:recv and conn:send of a handshaken connection through the FFI (see
// lua/sock_ffi.lua, and the socket's fast path in lua_socket.cpp): the
// Lua side has checked the arguments (a buffer it may write for recv,
// a length >= 1 within it, `expires` a number or NaN for none), so the job
// is l_bound_io's from run_job on. Returns recv's count (0 at the end) or 0
// for send's true; kSockFastSlow when nothing was done (no sock thread
// runs, the connection is closed: the C closure says what then); else
// kSockFastWait, and the Lua side calls _tls_fast_finish next, which
// pushes the results (push_job) or waits for them.
static double fast_io(void* sp, char* buf, size_t len, double expires, TlsJob::Shape shape) {
  LuaSession* s = static_cast<LuaSession*>(sp);
  if (!s->session || !s->ls || !sock_lua_fast_loop(s->ls->sched)) return kSockFastSlow;
  TlsJob j;
  j.s = s;
  j.shape = shape;
  if (shape == TlsJob::Shape::recv) {
    j.step = Step::read;
    j.fname = "recv";
    j.len = len;
  } else {
    j.step = Step::write;
    j.fname = "send";
    j.total = len;
    j.len = next_part(len);
  }
  j.buf = buf;
  s->fast_left = LuaSession::FastLeft::none;
  LuaWait* w = run_job(j, sock_lua_fast_expires(expires));
  if (w) {
    w->fast_prepared = true;
    w->head.fname = static_cast<TlsJob*>(w->job)->fname;  // (the parked job's)
    s->fast_left = w == &s->ls->rd ? LuaSession::FastLeft::wait_rd : LuaSession::FastLeft::wait_wr;
    return kSockFastWait;
  }
  if (plain_result(j)) {
    end_flushing(j);
    return j.r.status == Status::done && shape == TlsJob::Shape::recv ? (double)j.r.bytes : 0;
  }
  s->fast_done = std::move(j);
  s->fast_left = LuaSession::FastLeft::done;
  return kSockFastWait;
}

double sock_lua_tls_fast_recv(void* session, char* buf, size_t len, double expires) {
  return fast_io(session, buf, len, expires, TlsJob::Shape::recv);
}

double sock_lua_tls_fast_send(void* session, const char* buf, size_t len, double expires) {
  return fast_io(session, const_cast<char*>(buf), len, expires, TlsJob::Shape::send);
}

// _tls_fast_finish(session, buf): the rest of a fast conn:recv or conn:send
// that returned `wait`: its results, or the wait for them. Its arguments
// stay on the thread's stack while it waits, keeping the session and the
// caller's buffer (or string) alive.
int sock_lua_tls_fast_finish(lua_State* L) {
  LuaSession* s = static_cast<LuaSession*>(luaL_checkudata(L, 1, SESSION_MT));
  LuaSession::FastLeft left = s->fast_left;
  s->fast_left = LuaSession::FastLeft::none;
  if (left == LuaSession::FastLeft::done) return push_job(L, s->fast_done);
  if (left != LuaSession::FastLeft::none && s->ls) {
    int k = left == LuaSession::FastLeft::wait_rd ? 0 : 1;
    LuaWait& w = k == 0 ? s->ls->rd : s->ls->wr;
    // Only the record the fast call prepared, still as it left it.
    if (w.fast_prepared && !sock_lua_busy(w) && w.job == &s->jobs[k]) {
      w.fast_prepared = false;
      return wait_job(L, w);
    }
  }
  return sock_error(L, "_tls_fast_finish: no call is left to finish");
}

// s:flushing() -> whether a call is sending the connection's output
static int l_flushing(lua_State* L) {
  LuaSession* s = static_cast<LuaSession*>(luaL_checkudata(L, 1, SESSION_MT));
  lua_pushboolean(L, s->session && s->flushing_now());
  return 1;
}

// s:buffered() -> bytes read ahead and not consumed
static int l_buffered(lua_State* L) {
  lua_pushnumber(L, (lua_Number)check_session(L)->ahead_len());
  return 1;
}

// s:find(delim) -> offset of delim in the read-ahead (0-based) | nil
static int l_find(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t dlen;
  const char* d = luaL_checklstring(L, 2, &dlen);
  size_t at = s->ahead.find(d, s->ahead_pos, dlen);
  if (at == std::string::npos) {
    lua_pushnil(L);
  } else {
    lua_pushnumber(L, (lua_Number)(at - s->ahead_pos));
  }
  return 1;
}

// s:consume(n, [skip]) -> the next n bytes of the read-ahead, then skip more.
static int l_consume(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t n = internal_size(L, 2);
  size_t skip = internal_size(L, 3);
  size_t have = s->ahead_len();
  if (n > have) n = have;
  lua_pushlstring(L, s->ahead.data() + s->ahead_pos, n);
  s->ahead_pos += n + (skip < have - n ? skip : have - n);
  if (s->ahead_pos == s->ahead.size()) {
    s->ahead.clear();
    s->ahead_pos = 0;
  }
  return 1;
}

static int l_handshake_done(lua_State* L) {
  lua_pushboolean(L, check_session(L)->session->handshake_done());
  return 1;
}

static int l_session_reused(lua_State* L) {
  lua_pushboolean(L, check_session(L)->session->session_reused());
  return 1;
}

// s:peer_certificate() -> {subject=, issuer=, names={...}, not_after=} | nil
static int l_peer_certificate(lua_State* L) {
  sock::tls::PeerCertificate pc = check_session(L)->session->peer_certificate();
  if (!pc.present) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, pc.subject.c_str());
  lua_setfield(L, -2, "subject");
  lua_pushstring(L, pc.issuer.c_str());
  lua_setfield(L, -2, "issuer");
  lua_createtable(L, (int)pc.names.size(), 0);
  for (size_t i = 0; i < pc.names.size(); i++) {
    lua_pushlstring(L, pc.names[i].data(), pc.names[i].size());
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "names");
  lua_pushnumber(L, (lua_Number)pc.not_after);
  lua_setfield(L, -2, "not_after");
  return 1;
}

static int l_alpn(lua_State* L) {
  std::string a = check_session(L)->session->alpn();
  if (a.empty())
    lua_pushnil(L);
  else
    lua_pushlstring(L, a.data(), a.size());
  return 1;
}

static int l_version(lua_State* L) {
  lua_pushstring(L, check_session(L)->session->version().c_str());
  return 1;
}

void sock_lua_open_tls(lua_State* L) {
  luaL_newmetatable(L, CONTEXT_MT);
  lua_pushcfunction(L, l_context_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  static const luaL_Reg session_methods[] = {
      {"attach", l_attach},
      {"fast_methods", l_fast_methods},
      {"io_handshake", l_io<Step::handshake>},
      {"io_read", l_io<Step::read>},
      {"io_write", l_io<Step::write>},
      {"io_read_ahead", l_io<Step::read_ahead>},
      {"io_shutdown", l_io<Step::shutdown>},
      {"io_recv", l_io_shaped<TlsJob::Shape::recv>},
      {"io_send", l_io_shaped<TlsJob::Shape::send>},
      {"flushing", l_flushing},
      {"buffered", l_buffered},
      {"find", l_find},
      {"consume", l_consume},
      {"handshake_done", l_handshake_done},
      {"session_reused", l_session_reused},
      {"peer_certificate", l_peer_certificate},
      {"alpn", l_alpn},
      {"version", l_version},
      {"free", l_session_free},
      {nullptr, nullptr}};
  luaL_newmetatable(L, SESSION_MT);
  lua_pushcfunction(L, l_session_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushvalue(L, -2);  // the metatable, check_session's upvalue
  luaL_setfuncs(L, session_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "_tls_available");
  lua_pushcfunction(L, l_context);
  lua_setfield(L, -2, "_tls_context");
  lua_pushcfunction(L, l_session);
  lua_setfield(L, -2, "_tls_session");
}

#else  // no OpenSSL

void sock_lua_open_tls(lua_State* L) {
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "_tls_available");
}

#endif
