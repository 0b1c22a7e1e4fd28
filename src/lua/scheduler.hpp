// Coroutine scheduling: how sock threads wait for the loop and how the loop
// resumes them. One Scheduler per lua_State, passed to every module function
// as upvalue 1.
//
// A thread that must wait yields with the WAIT marker and is recorded as
// waiting (which also keeps it from being collected). When the loop finishes
// its operation it pushes the final results onto the thread's stack and
// resumes it, so the I/O function appears to return them directly. Yields
// with the SUSPEND or TRANSFER markers give control to the resumer or to
// another thread; the driver (drive()) acts on them.
#pragma once

#include <memory>
#include <vector>

#include "lua/compat.hpp"
#include "sock/loop.hpp"

struct Scheduler {
  std::unique_ptr<sock::Loop> loop;  // made on first use, so sock.backend() can pick first
  unsigned loop_fork_gen = 0;        // sched_fork_generation() when it was made (a fork's child makes its own)
  // A fork's child: the parent's loops, abandoned. Kept until the state
  // closes, since a frame of their run_once may still be on the C stack.
  std::vector<std::unique_ptr<sock::Loop>> parent_loops;
  const char* backend_request = nullptr;  // sock.backend(name) before the loop exists
  const char* fallback_reason = nullptr;
  lua_State* current = nullptr;  // the sock thread being run by the innermost driver
  lua_State* loop_L = nullptr;   // the state running sock.poll/start
  int waiting = 0;               // threads blocked on I/O or a timer
  bool running = false;          // inside sock.start
  bool stop_requested = false;
  bool error_pending = false;    // a thread failed inside the loop; its error is on loop_L
  bool closed = false;           // the state is being closed
  int waiting_ref = LUA_NOREF;   // {thread = true}: waiting threads, anchored
  int nested_ref = LUA_NOREF;    // weak {coroutine = true}: cowrap/pcall coroutines that may do I/O
  int hooks_ref = LUA_NOREF;     // weak {thread = function}: sock.onthreadfinish
  int error_handler_ref = LUA_NOREF;
  // Where buffered reads receive before appending (made on first use; per
  // state, since thread_local storage in a dlopen'ed module breaks
  // LeakSanitizer under LuaJIT).
  std::unique_ptr<char[]> recv_scratch;
};

// Markers a thread yields as its first value.
extern char sock_wait_marker, sock_suspend_marker, sock_transfer_marker;

inline Scheduler* sched_of(lua_State* L) {
  return static_cast<Scheduler*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// The loop, made on first use. Raises if no backend can be set up. In a
// child of fork() it replaces the parent's loop with one of its own, or
// raises if threads were waiting in the parent's.
sock::Loop& sched_loop(lua_State* L, Scheduler* S);

// How many fork()s separate this process from the one that loaded sock. A
// pthread_atfork child handler counts them, so noticing that we are a fork's
// child costs a load per operation rather than a getpid() syscall.
unsigned sched_fork_generation();

// The loop if there is one this process may use, else null (callers fall
// back to plain syscalls). Never raises: for close, shutdown and finalizers.
sock::Loop* sched_loop_here(Scheduler* S);

// Raise unless L runs inside a sock thread (or a coroutine sock made inside one).
void sched_check_thread(lua_State* L, Scheduler* S, const char* fname);

// Record the current thread as waiting and yield it. Use as
// `return sched_wait(L, S);` from a C function; the loop later resumes the
// thread with the results of whatever it waits for. Everything on the C
// function's stack stays alive until then.
int sched_wait(lua_State* L, Scheduler* S);

// The loop's side of a finished wait: forget that `co` waits, push its
// results with push_results(co, ctx) (none if null), and resume it. Errors
// are kept for sock.poll/start to raise.
void sched_complete_wait(Scheduler* S, lua_State* co, int (*push_results)(lua_State* co, void* ctx), void* ctx);

// Leave the waiting set without resuming (the thread is resumed directly).
void sched_unwait(Scheduler* S, lua_State* co);
bool sched_is_waiting(Scheduler* S, lua_State* L, lua_State* co);

// Run `co` with the `nargs` values on top of its stack until it blocks,
// suspends or ends. Returns the number of values it handed back (left on
// L's stack), or -1 with the error (traceback added) on top of L's stack.
int sched_drive(Scheduler* S, lua_State* L, lua_State* co, int nargs);

// With the module table at -2 and the scheduler at -1: adds the scheduling
// functions to the module and pops the scheduler.
void sched_open(lua_State* L);
Scheduler* sched_create(lua_State* L);  // pushes the scheduler userdata
