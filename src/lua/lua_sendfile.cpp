// s:sendfile(path | fd | file, [offset], [len], [expires]) -> bytes sent | nil, err, sent
//
// Zero-copy sendfile(2) from the file to the socket, waiting for writability
// (an OpKind::writable op on the socket's write side) whenever the socket's
// buffer is full. When the kernel cannot sendfile from that source or to
// that socket (EINVAL, ENOSYS, EOPNOTSUPP: a pipe, most /proc files, ...),
// it falls back to read + send through a 64 KiB buffer, still non-blocking.
//
// Like the buffered reads, the whole transfer runs in C with one yield:
// sendfile_ready (the op's completion) sends more and re-arms the op with the
// same deadline until the transfer ends, and only then resumes the thread.
// The transfer's state lives in a small userdata that stays on the waiting
// thread's stack (so it lives while the thread waits) and owns its own fd: a
// path is opened, an fd or Lua file is dup'ed, so closing the caller's handle
// meanwhile cannot make us read from a reused fd number. That fd is closed
// as soon as the call returns.
#include <atomic>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "lua/lua_sendfile.hpp"
#include "lua/lua_socket.hpp"
#include "lua/scheduler.hpp"
#include "sock/error.hpp"
#include "sock/loop.hpp"

namespace {

constexpr const char* kJobMeta = "sock.sendfile_job";
constexpr size_t kCopyChunk = 65536;
// Per call: to a reader that keeps up, one sendfile() goes on for as long
// as it is allowed to, so the budget (see sched_give_way) is checked between
// calls of at most this size (a fraction of a millisecond each).
constexpr size_t kMaxSendfile = 1u << 20;

std::atomic<bool> force_copy{false};  // test hook: sock._sendfile_force_copy(true)
// Test hook, sock._sendfile_signal_window(seconds): each sendfile(2) call
// waits this long with SIGPIPE blocked first, so that a test can send the
// process a SIGPIPE while it is blocked.
std::atomic<double> signal_window{0};

struct Job {
  LuaSocket* ls = nullptr;
  int fd = -1;               // ours: opened or dup'ed
  bool positional = false;   // read at `offset` (else at the fd's own position, advancing it)
  long long offset = 0;      // the next byte to read from the file, when positional
  long long remaining = -1;  // bytes still to send, -1: up to the end of the file
  long long sent = 0;
  bool copy = false;         // the read + send fallback
  char* buf = nullptr;       // copy: bytes read and not yet sent are [pos, len)
  size_t pos = 0, len = 0;
};

enum class St { done, error, wait, give_way };

struct Outcome {
  St st;
  int err = 0;
};

void release(Job* job) {
  if (job->fd >= 0) ::close(job->fd);
  job->fd = -1;
  std::free(job->buf);
  job->buf = nullptr;
}

bool sigpipe_pending() {
  sigset_t pending;
  return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

// Take a pending SIGPIPE if it is the one a sendfile(2) of this thread
// raised. The kernel sends that one to the calling thread, as if this
// process had sent it (SI_USER, our pid), and sigtimedwait takes a thread's
// own signals before the process's. Any other (a kill -PIPE from elsewhere,
// meant for the process) is put back as it came. (A kill(getpid(), SIGPIPE)
// by another thread of ours, arriving during the call, looks the same.)
void take_back_own_sigpipe(const sigset_t& pipe_set) {
  siginfo_t info;
  timespec zero{0, 0};
  int sig;
  while ((sig = sigtimedwait(&pipe_set, &info, &zero)) < 0 && errno == EINTR) {
  }
  if (sig != SIGPIPE) return;
  if (info.si_code == SI_USER && info.si_pid == ::getpid()) return;
  ::syscall(SYS_rt_sigqueueinfo, ::getpid(), SIGPIPE, &info);
}

// sendfile(2) has no MSG_NOSIGNAL: to a peer that has gone away it raises
// SIGPIPE, which would kill a Lua host. Block it for the call and take back
// the one the call raised, leaving the process's own SIGPIPEs alone.
ssize_t sendfile_nosignal(int out_fd, int in_fd, off_t* offset, size_t count) {
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
  ssize_t n = ::sendfile(out_fd, in_fd, offset, count);
  int e = errno;
  // The call may raise one whatever it returns: it can send part, fail on
  // the next page and return the part. A host that blocks SIGPIPE itself may
  // have had one pending in this thread already, which ours then merged
  // into: that one is the host's, and harmless while it stays blocked.
  if (sigpipe_pending() && !(host_blocks && pending_before)) take_back_own_sigpipe(pipe_set);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = e;
  return n;
}

bool no_sendfile(int e) { return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ESPIPE; }

// Move bytes until done, an error, or the socket would block.
Outcome advance(Job* job) {
  int sockfd = job->ls->s.fd();
  if (sockfd < 0) return {St::error, sock::ERR_CLOSED};
  for (;;) {
    if (job->remaining == 0) return {St::done};
    if (sched_give_way_now(job->ls->sched)) return {St::give_way};  // held the loop long enough
    if (!job->copy) {
      size_t count = job->remaining < 0 || (unsigned long long)job->remaining > kMaxSendfile
                         ? kMaxSendfile
                         : (size_t)job->remaining;
      off_t off = (off_t)job->offset;
      ssize_t n = sendfile_nosignal(sockfd, job->fd, job->positional ? &off : nullptr, count);
      if (n > 0) {
        job->sent += n;
        if (job->positional) job->offset += n;
        if (job->remaining > 0) job->remaining -= n;
        continue;
      }
      if (n == 0) {  // the file ended
        if (job->remaining < 0) return {St::done};
        return {St::error, sock::ERR_EOF};
      }
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) return {St::wait};
      if (no_sendfile(e)) {
        job->copy = true;
        continue;
      }
      return {St::error, e};
    }
    if (job->pos == job->len) {  // refill from the file
      if (!job->buf) {
        job->buf = static_cast<char*>(std::malloc(kCopyChunk));
        if (!job->buf) return {St::error, ENOMEM};
      }
      size_t want = job->remaining < 0 || (unsigned long long)job->remaining > kCopyChunk
                        ? kCopyChunk
                        : (size_t)job->remaining;
      ssize_t n = job->positional ? ::pread(job->fd, job->buf, want, (off_t)job->offset)
                                  : ::read(job->fd, job->buf, want);
      if (n < 0) {
        if (errno == EINTR) continue;
        return {St::error, errno};
      }
      if (n == 0) {
        if (job->remaining < 0) return {St::done};
        return {St::error, sock::ERR_EOF};
      }
      job->pos = 0;
      job->len = (size_t)n;
      if (job->positional) job->offset += n;
    }
    ssize_t n = ::send(sockfd, job->buf + job->pos, job->len - job->pos, MSG_NOSIGNAL);
    if (n >= 0) {
      job->pos += (size_t)n;
      job->sent += n;
      if (job->remaining > 0) job->remaining -= n;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return {St::wait};
    return {St::error, e};
  }
}

int push_outcome(lua_State* L, Job* job, const Outcome& o) {
  release(job);  // the call is over: no fd stays open until the collector runs
  if (o.st == St::done) {
    sock_pushinteger(L, job->sent);
    return 1;
  }
  sock_lua_fail(L, o.err);
  sock_pushinteger(L, job->sent);
  return 3;
}

struct Completion {
  Job* job;
  Outcome out;
};

int push_completion(lua_State* co, void* ctx) {
  Completion& c = *static_cast<Completion*>(ctx);
  return push_outcome(co, c.job, c.out);
}

void sendfile_ready(sock::Operation* op) {
  LuaWait& w = *static_cast<LuaWait*>(op->owner);
  Job* job = static_cast<Job*>(w.job);
  LuaSocket* ls = job->ls;
  Completion c{job, {St::error}};
  if (op->result < 0) {
    c.out = {St::error, (int)-op->result};
  } else {
    c.out = advance(job);
    if (c.out.st == St::wait || c.out.st == St::give_way) {
      int rc = sock_lua_wait_again(w, c.out.st == St::give_way);
      if (rc == 0) return;  // still armed
      c.out = {St::error, -rc};
    }
  }
  w.armed = false;
  sched_complete_wait(ls->sched, &w.head, push_completion, &c);
}

// A wait that could not start (the deadline has passed, say).
int push_wait_failure(lua_State* co, LuaWait& w) {
  return push_outcome(co, static_cast<Job*>(w.job), Outcome{St::error, (int)-w.op.result});
}

int l_job_gc(lua_State* L) {
  if (auto* job = static_cast<Job*>(luaL_testudata(L, 1, kJobMeta))) release(job);  // Lua code may call it
  return 0;
}

// --- arguments ---------------------------------------------------------------

// An optional whole number >= 0, or -1 when absent.
long long opt_count(lua_State* L, int idx, const char* what) {
  if (lua_isnoneornil(L, idx)) return -1;
  if (lua_type(L, idx) != LUA_TNUMBER)
    sock_error(L, "bad argument #%d to 'sendfile' (%s: number expected, got %s)", idx, what, luaL_typename(L, idx));
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= -9.2e18 && n <= 9.2e18) || (lua_Number)(long long)n != n)
    sock_error(L, "bad argument #%d to 'sendfile' (%s: number has no integer representation)", idx, what);
  if (n < 0) sock_error(L, "bad argument #%d to 'sendfile' (%s must not be negative)", idx, what);
  return (long long)n;
}

// The FILE* of an open Lua file handle at idx, nullptr if it is none, raises
// if it is closed. (5.1: FILE**; 5.2+: luaL_Stream; LuaJIT: a udata whose
// first field is the FILE*; all registered as LUA_FILEHANDLE.)
FILE* test_lua_file(lua_State* L, int idx) {
  void* p = luaL_testudata(L, idx, LUA_FILEHANDLE);
  if (!p) return nullptr;
  FILE* f = *static_cast<FILE**>(p);
#if LUA_VERSION_NUM >= 502
  if (!static_cast<luaL_Stream*>(p)->closef) f = nullptr;
#endif
  if (!f) sock_error(L, "bad argument #%d to 'sendfile' (attempt to use a closed file)", idx);
  return f;
}

// s:sendfile(path | fd | file, [offset], [len], [expires])
int l_sendfile(lua_State* L) {
  LuaSocket* ls = sock_lua_checksocket(L, 1, "sendfile");
  int src_type = lua_type(L, 2);
  const char* path = nullptr;
  long long src_fd = -1;
  FILE* file = nullptr;
  if (src_type == LUA_TSTRING) {
    size_t len;
    path = lua_tolstring(L, 2, &len);
    if (std::strlen(path) != len) sock_error(L, "bad argument #2 to 'sendfile' (path contains a zero byte)");
  } else if (src_type == LUA_TNUMBER) {
    src_fd = opt_count(L, 2, "fd");
    if (src_fd > 0x7fffffff) sock_error(L, "bad argument #2 to 'sendfile' (fd out of range)");
  } else if (!(file = test_lua_file(L, 2))) {
    sock_error(L, "bad argument #2 to 'sendfile' (path, fd or file expected, got %s)", luaL_typename(L, 2));
  }
  long long offset = opt_count(L, 3, "offset");
  long long len = opt_count(L, 4, "len");
  double expires = sock_lua_optexpires(L, 5, "sendfile");
  lua_settop(L, 5);
  sched_check_thread(L, ls->sched, "sendfile");
  if (!ls->s.is_open() || sock_lua_busy(ls->wr)) {
    sock_lua_fail(L, ls->s.is_open() ? sock::ERR_BUSY : sock::ERR_CLOSED);
    sock_pushinteger(L, 0);
    return 3;
  }

  Job* job = static_cast<Job*>(lua_newuserdata(L, sizeof(Job)));
  new (job) Job();
  luaL_setmetatable(L, kJobMeta);
  job->ls = ls;
  job->remaining = len;
  job->copy = force_copy;
  if (path) {
    job->fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);  // a FIFO must not block us
    job->positional = true;
    job->offset = offset < 0 ? 0 : offset;
  } else if (file) {
    job->fd = ::fcntl(fileno(file), F_DUPFD_CLOEXEC, 0);
    // From where the Lua program stands in the file (stdio may have read
    // ahead of the fd's position), which is left where it was.
    // A file that cannot seek (a pipe from io.popen) is read where it stands.
    long pos = offset < 0 ? std::ftell(file) : 0;
    job->positional = offset >= 0 || pos >= 0;
    job->offset = offset < 0 ? pos : offset;
  } else {
    job->fd = ::fcntl((int)src_fd, F_DUPFD_CLOEXEC, 0);
    job->positional = offset >= 0;  // else at the fd's position, which moves
    job->offset = offset;
  }
  if (job->fd < 0) {
    // EBADF would read as 'closed', which is what the socket says when it is.
    int e = errno == EBADF && !path ? EINVAL : errno;
    return push_outcome(L, job, Outcome{St::error, e});
  }

  Outcome o = advance(job);
  if (o.st != St::wait && o.st != St::give_way) return push_outcome(L, job, o);

  LuaWait& w = ls->wr;
  sock_lua_prepare(w, ls, sock::OpKind::writable, nullptr, 0, 0, expires, push_wait_failure);
  w.job = job;  // on the stack, which the wait keeps: it lives while we wait
  w.defer = o.st == St::give_way;
  return sock_lua_wait_op(L, ls, w, sendfile_ready, "sendfile");
}

int l_force_copy(lua_State* L) {
  bool prev = force_copy.exchange(lua_toboolean(L, 1));
  lua_pushboolean(L, prev);
  return 1;
}

int l_signal_window(lua_State* L) {
  double seconds = luaL_checknumber(L, 1);
  signal_window = seconds > 0 && seconds < 60 ? seconds : 0;
  return 0;
}

}  // namespace

// Adds s:sendfile to sock._socket_methods (the module table is on top).
void sock_lua_open_sendfile(lua_State* L, int sched_idx) {
  sched_idx = lua_absindex(L, sched_idx);
  luaL_newmetatable(L, kJobMeta);
  lua_pushcfunction(L, l_job_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_getfield(L, -1, "_socket_methods");
  lua_pushvalue(L, sched_idx);
  lua_pushcclosure(L, l_sendfile, 1);
  lua_setfield(L, -2, "sendfile");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_force_copy);
  lua_setfield(L, -2, "_sendfile_force_copy");
  lua_pushcfunction(L, l_signal_window);
  lua_setfield(L, -2, "_sendfile_signal_window");
}
