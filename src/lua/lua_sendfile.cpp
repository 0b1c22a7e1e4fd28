// s:sendfile(path | fd | file, [offset], [len], [expires]) -> bytes sent | nil, err, sent
//
// The core's FileSend does the sending (zero-copy where the system can, a
// read + send copy where it cannot), in steps: OpKind::send_file ops, tried
// at once and, whenever the socket's buffer is full, waited for on the
// socket's write side.
//
// Like the buffered reads, the whole transfer runs in C with one yield:
// sendfile_ready (the op's completion) sends more and re-arms the op with the
// same deadline until the transfer ends, and only then resumes the thread.
// The transfer's state lives in a small userdata that stays on the waiting
// thread's stack (so it lives while the thread waits) and owns its own fd: a
// path is opened, an fd or Lua file is dup'ed, so closing the caller's handle
// meanwhile cannot make us read from a reused fd number. That fd is closed
// as soon as the call returns.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "lua/lua_sendfile.hpp"
#include "lua/lua_socket.hpp"
#include "lua/scheduler.hpp"
#include "sock/error.hpp"
#include "sock/file_send.hpp"
#include "sock/loop.hpp"

namespace {

constexpr const char* kJobMeta = "sock.sendfile_job";

struct Job {
  LuaSocket* ls = nullptr;
  sock::FileSend file;  // the source and the progress
};

enum class St { done, error, wait, give_way };

struct Outcome {
  St st;
  int err = 0;
};

void release(Job* job) { job->file.release(); }

// Interpret one step's result: true when the transfer is over (outcome set).
// (A result of 0 without `ended` is a wait that gave way: no step was made.)
bool step_ended(Job* job, long result, Outcome& out) {
  if (result > 0 || (result == 0 && !job->file.ended)) return false;
  if (result == 0)  // the file ended: early if a length was asked for
    out = job->file.remaining > 0 ? Outcome{St::error, sock::ERR_EOF} : Outcome{St::done};
  else
    out = {St::error, (int)-result};
  return true;
}

// Move bytes until done, an error, or the socket would block; one step at a
// time, each a send_file op tried now, so that the budget is checked between
// steps of at most a MiB.
Outcome advance(Job* job) {
  if (!job->ls->s.is_open()) return {St::error, sock::ERR_CLOSED};
  for (;;) {
    if (job->file.remaining == 0) return {St::done};
    if (sched_give_way_now(job->ls->sched)) return {St::give_way};  // held the loop long enough
    sock::Operation step;
    step.prepare(sock::OpKind::send_file, &job->ls->s.io);
    step.file = &job->file;
    if (!sock::Loop::try_now(step)) return {St::wait};
    Outcome out{St::done};
    if (step_ended(job, step.result, out)) return out;
  }
}

int push_outcome(lua_State* L, Job* job, const Outcome& o) {
  release(job);  // the call is over: no fd stays open until the collector runs
  if (o.st == St::done) {
    sock_pushinteger(L, job->file.sent);
    return 1;
  }
  sock_lua_fail(L, o.err);
  sock_pushinteger(L, job->file.sent);
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
  if (!step_ended(job, op->result, c.out)) {
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

  Job* job = static_cast<Job*>(sock_newuserdata(L, sizeof(Job)));
  new (job) Job();
  luaL_setmetatable(L, kJobMeta);
  job->ls = ls;
  int rc = path ? job->file.open_path(path, offset)
           : file ? job->file.open_file(file, offset)
                  : job->file.open_fd((int)src_fd, offset);
  job->file.remaining = len;
  if (rc < 0) return push_outcome(L, job, Outcome{St::error, -rc});

  Outcome o = advance(job);
  if (o.st != St::wait && o.st != St::give_way) return push_outcome(L, job, o);

  LuaWait& w = ls->wr;
  sock_lua_prepare(w, ls, sock::OpKind::send_file, nullptr, 0, 0, expires, push_wait_failure);
  w.op.file = &job->file;
  w.job = job;  // on the stack, which the wait keeps: it lives while we wait
  w.defer = o.st == St::give_way;
  return sock_lua_wait_op(L, ls, w, sendfile_ready, "sendfile");
}

int l_force_copy(lua_State* L) {
  bool prev = sock::file_send_forcing_copy();
  sock::file_send_force_copy(lua_toboolean(L, 1));
  lua_pushboolean(L, prev);
  return 1;
}

int l_signal_window(lua_State* L) {
  lua_pushboolean(L, sock::file_send_signal_window(luaL_checknumber(L, 1)));
  return 1;
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
