#include "lua/scheduler.hpp"


#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sock/clock.hpp"
#include "sock/process.hpp"
#include "sock/error.hpp"

char sock_wait_marker, sock_suspend_marker, sock_transfer_marker;

// --- the waiting set -------------------------------------------------------

static void push_thread(lua_State* L, lua_State* co) {
  if (co == L) {
    lua_pushthread(L);
  } else {
    lua_pushthread(co);
    lua_xmove(co, L, 1);
  }
}

// Where a thread suspended by sched_wait has the marker and its wait head:
// what it yielded is on top of its stack (5.4 also shows the waiting
// call's own arguments below them, 5.3 does not), and 5.1/5.2 yield the
// call's arguments after the two.
#if LUA_VERSION_NUM >= 503
constexpr int marker_at = -2, head_at = -1;
static int yielded_count(lua_State*) { return 2; }
constexpr bool yielded_only_markers = true;  // (light userdata, which keep nothing alive)
static bool wait_yield_count(int nres) { return nres == 2; }  // (the marker is then at -nres)
#else
constexpr int marker_at = 1, head_at = 2;
static int yielded_count(lua_State* co) { return lua_gettop(co); }
constexpr bool yielded_only_markers = false;
static bool wait_yield_count(int nres) { return nres >= 2; }  // (all of the stack: the marker is at -nres)
#endif

bool sched_in_wait(lua_State* co, const WaitHead* h) {
  // Anything else (running, dead, suspended elsewhere after someone else
  // resumed it) is not in that wait.
  if (lua_status(co) != LUA_YIELD || lua_gettop(co) < 2) return false;
  if (lua_touserdata(co, marker_at) != &sock_wait_marker) return false;
  return !h || lua_touserdata(co, head_at) == h;
}

// A free key of the waiting table. Raises (as a table write would) when
// there is no memory for another.
static int take_wait_slot(lua_State* L, Scheduler* S) {
  if (!S->free_wait_slots.empty()) {
    int slot = S->free_wait_slots.back();
    S->free_wait_slots.pop_back();
    return slot;
  }
  try {
    S->free_wait_slots.reserve((size_t)S->wait_slots + 1);  // room for every slot to come back
    S->slot_threads.resize((size_t)S->wait_slots + 2);      // indexed by slot (0 unused)
  } catch (const std::bad_alloc&) {
    sock_error(L, "not enough memory");
  }
  return ++S->wait_slots;
}

// Empty a slot of the waiting table (at `waiting`, a negative index) and
// give it back.
static void free_wait_slot(Scheduler* S, lua_State* L, int waiting, int slot) {
  lua_pushnil(L);
  lua_rawseti(L, waiting - 1, slot);
  if (S->closed) return;  // (the vectors are gone)
  S->slot_threads[slot] = nullptr;
  S->free_wait_slots.push_back(slot);  // (reserved: never allocates)
}

// Forget h's entry in the waiting table (at `waiting`, a negative index).
static void clear_wait_slot(Scheduler* S, lua_State* L, int waiting, WaitHead* h) {
  free_wait_slot(S, L, waiting, h->slot);
  h->slot = 0;
  S->waiting--;
}

// Give back the slot a completion held for the thread it resumed, unless
// the thread took it again (see Scheduler::held).
static void release_held(Scheduler* S, lua_State* L) {
  if (!S->held.slot) return;
  lua_checkstack(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->waiting_ref);
  free_wait_slot(S, L, -1, S->held.slot);
  lua_pop(L, 1);
  S->held.slot = 0;
}

void sched_armed(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h) {
  if (S->held.slot && S->held.co == co) {  // its slot still holds it: nothing to write
    h->slot = S->held.slot;
    S->held.slot = 0;
    S->waiting++;
    return;
  }
  lua_checkstack(L, 3);
  int slot = take_wait_slot(L, S);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->waiting_ref);
  push_thread(L, co);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
  S->slot_threads[slot] = co;
  h->slot = slot;  // (only once it holds the thread)
  S->waiting++;
}

// sched_unwait with room for three values on L's stack already made.
static lua_State* unwait(Scheduler* S, lua_State* L, WaitHead* h) {
  if (!h->slot) {
    lua_pushnil(L);
    return nullptr;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->waiting_ref);
  lua_rawgeti(L, -1, h->slot);  // the thread, or a withdrawn wait's anchored arguments
  lua_State* co = lua_tothread(L, -1);
  clear_wait_slot(S, L, -2, h);
  lua_replace(L, -2);  // the table's place: the thread (or the arguments) stays on top
  return co;
}

lua_State* sched_unwait(Scheduler* S, lua_State* L, WaitHead* h) {
  lua_checkstack(L, 3);
  return unwait(S, L, h);
}

// Remove the `kept` values just below the `nresults` on top of co's stack:
// what its wait yielded (on 5.1/5.2, with the arguments that kept the
// socket, buffer or job alive), now that the results no longer need them.
static void drop_kept(lua_State* co, int kept, int nresults) {
  if (kept <= 0) return;
  // (Once per resume from a wait: in one move rather than a lua_remove,
  // which shifts the values above, per kept value.)
#if LUA_VERSION_NUM >= 503
  lua_rotate(co, -(kept + nresults), -kept);  // the kept values to the top
  lua_pop(co, kept);
#else
  int base = lua_gettop(co) - kept - nresults;
  if (nresults > kept) {
    for (int i = 0; i < kept; i++) lua_remove(co, base + 1);
    return;
  }
  // The results into the lowest kept slots, the last first; none of the
  // slots written is above a result still to move.
  for (int i = nresults; i >= 1; i--) lua_replace(co, base + i);
  lua_settop(co, base + nresults);
#endif
}

// A child of fork() shares the parent's epoll instance or ring: it must
// never use them. With nothing waiting it just gets a loop of its own;
// threads waiting in the parent's loop cannot be moved (their requests are
// the parent's), so the child is told how to fork instead.
static void leave_parent_loop(lua_State* L, Scheduler* S) {
  if (S->waiting > 0 || S->loop->has_ready() || S->loop->timers() > 0)
    sock_error(L, "sock: this process was forked while sock threads were waiting or sleeping; "
                  "fork before starting them (or from outside sock.run) and start new ones in the child");
  S->loop->poller().abandon();
  S->parent_loops.push_back(std::move(S->loop));
}

unsigned sched_fork_generation() { return sock::fork_generation(); }

sock::Loop& sched_make_loop(lua_State* L, Scheduler* S) {
  if (S->loop && !sched_loop_here(S)) leave_parent_loop(L, S);
  if (!S->loop) {
    const char* name = S->backend_request;
    if (!name) name = std::getenv("SOCK_BACKEND");
    auto poller = sock::make_poller(name, &S->fallback_reason);
    if (!poller) sock_error(L, "sock: no I/O backend could be set up");
    S->loop = std::make_unique<sock::Loop>(std::move(poller));
    S->loop_fork_gen = sched_fork_generation();  // (registers the fork counter, once)
  }
  return *S->loop;
}

void sched_check_in_thread(lua_State* L, Scheduler* S, const char* fname) {
  if (!S->current) sock_error(L, "%s: I/O and sleeping work only inside a sock thread (sock.newthread/sock.thread/sock.run)", fname);
}

void sched_check_thread(lua_State* L, Scheduler* S, const char* fname) {
  sched_check_in_thread(L, S, fname);
  sched_check_can_wait(L, S, fname);
}

bool sched_can_wait(lua_State* L, Scheduler* S) {
  if (L == S->current) return true;
  // A coroutine inside a sock thread may wait only if sock made it
  // (sock.cowrap, sock.pcall), since only those pass the wait through.
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->nested_ref);
  lua_pushthread(L);
  lua_rawget(L, -2);
  bool nested = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return nested;
}

void sched_check_can_wait(lua_State* L, Scheduler* S, const char* fname) {
  if (!sched_can_wait(L, S))
    sock_error(L, "%s: cannot wait inside a plain coroutine; use sock.cowrap or sock.newthread", fname);
}

#if LUA_VERSION_NUM >= 503
// A waiting call's continuation: it runs whenever the thread is resumed.
// The loop marks the wait it resumes; any other resume (coroutine.resume on
// a thread waiting in sock) is refused, and the wait withdrawn, rather than
// letting the call return whatever the resumer passed.
static int wait_resumed(lua_State* L, int, lua_KContext ctx) {
  WaitHead* h = reinterpret_cast<WaitHead*>(ctx);
  Scheduler* S = h->sched;
  int nargs = h->frame_args;  // the call's own arguments, below the values it was resumed with
  if (S->resumed_wait == h) {
    S->resumed_wait = nullptr;
    return lua_gettop(L) - nargs;  // the results the loop pushed
  }
  lua_settop(L, nargs);
  lua_checkstack(L, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->waiting_ref);
  bool armed = false;
  if (h->slot) {
    lua_rawgeti(L, -1, h->slot);
    armed = lua_isthread(L, -1);
    lua_pop(L, 1);
  }
  if (armed && h->kind->withdraw(S, L, h)) {
    // Its completion is still to come: until then the arguments (the
    // socket, the buffer the kernel may write into) stay anchored in the
    // thread's place.
    lua_createtable(L, nargs, 0);
    for (int i = 1; i <= nargs; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i);
    }
    lua_rawseti(L, -2, h->slot);
    if (!S->closed) S->slot_threads[h->slot] = nullptr;
  } else if (armed) {
    clear_wait_slot(S, L, -1, h);
  }
  lua_pop(L, 1);
  return sock_error(L, "%s: this thread was resumed from outside the sock loop while it waited "
                       "(coroutine.resume on a sock thread?); the wait was withdrawn", h->fname);
}
#endif

static bool can_yield(lua_State* L) {
#if LUA_VERSION_NUM >= 503 || defined(LUAJIT_VERSION)
  return lua_isyieldable(L);
#else
  (void)L;
  return true;  // 5.1/5.2 cannot tell; lua_yield raises, with nothing armed
#endif
}

int sched_wait(lua_State* L, Scheduler* S, WaitHead* h, const WaitKind* kind, const char* fname) {
  if (!can_yield(L))
    sock_error(L, "%s: cannot wait here: the call is inside a C function or a plain pcall that cannot yield "
                  "(use sock.pcall, or move the call out of the callback)", fname);
  h->sched = S;
  h->kind = kind;
  h->fname = fname;
  // Yield the marker and the head. Nothing is armed before the yield
  // succeeds. The call's arguments must stay alive until its results are
  // pushed (they hold the socket, the buffer or the sleep job): 5.3+ keeps
  // them in the C function's frame below what it yields, where its
  // continuation finds them; 5.1, 5.2 and LuaJIT do not (LuaJIT overwrites
  // a yielding C function's arguments), so there they are yielded too, and
  // the driver leaves them on the thread's stack.
  lua_checkstack(L, 2);
#if LUA_VERSION_NUM >= 503
  h->frame_args = lua_gettop(L);
  lua_pushlightuserdata(L, &sock_wait_marker);
  lua_pushlightuserdata(L, h);
  return lua_yieldk(L, 2, reinterpret_cast<lua_KContext>(h), wait_resumed);
#else
  lua_pushlightuserdata(L, &sock_wait_marker);
  lua_insert(L, 1);
  lua_pushlightuserdata(L, h);
  lua_insert(L, 2);
  return lua_yield(L, lua_gettop(L));
#endif
}

// Mark the wait the loop resumes its thread from (see wait_resumed).
static void note_resuming(Scheduler* S, const WaitHead* h) {
#if LUA_VERSION_NUM >= 503
  S->resumed_wait = h;
#else
  (void)S;
  (void)h;
#endif
}

// --- driving threads -------------------------------------------------------

static void add_traceback(lua_State* L, lua_State* co) {
  if (!lua_isstring(L, -1)) return;  // error objects pass through untouched
#ifdef SOCK_PUC51
  lua_getglobal(L, "debug");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "traceback");
    if (lua_isfunction(L, -1)) {
      lua_pushthread(co);
      lua_xmove(co, L, 1);
      lua_pushvalue(L, -4);
      if (lua_pcall(L, 2, 1, 0) == 0) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
#else
  const char* msg = lua_tostring(L, -1);
  luaL_traceback(L, co, msg, 0);
  lua_remove(L, -2);
#endif
}

// Run the sock.onthreadfinish hook of a thread that ended, if it has one.
static int run_finish_hook(Scheduler* S, lua_State* L, lua_State* co) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->hooks_ref);
  push_thread(L, co);
  lua_rawget(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  push_thread(L, co);
  lua_pushnil(L);
  lua_rawset(L, -4);  // a hook runs once
  push_thread(L, co);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc != 0) {
    lua_remove(L, -2);  // the hooks table; the error stays on top
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

// Run co; see scheduler.hpp. While a coroutine runs it must stay reachable:
// nothing else may refer to it (the loop holds only its lua_State*), so the
// driver keeps it on L's stack, in the `anchor` slot.
static int drive(Scheduler* S, lua_State* L, lua_State* co, int nargs, int anchor);

int sched_drive(Scheduler* S, lua_State* L, lua_State* co, int nargs) {
  lua_checkstack(L, 2);
  push_thread(L, co);
  int anchor = lua_gettop(L);
  int n = drive(S, L, co, nargs, anchor);
  lua_remove(L, anchor);  // below the results, or below the error
  return n;
}

bool sched_slice_over(Scheduler* S) {
  S->slice_ops = 0;
  double now = sock::monotonic_now();
  if (S->slice_start == 0) {  // the first read of this slice
    S->slice_start = now;
    return false;
  }
  if (now - S->slice_start < kSliceSeconds) return false;
  S->slice_ops = kOpsPerClockRead;  // over: every next operation gives way too, until a new slice
  return true;
}

// luapower's context hooks: save_thread_context(co) as a thread starts,
// restore_thread_context(co) each time a thread gets control back from a
// wait, suspend or transfer. False (the error on top of L) if the hook failed.
static bool call_context_hook(Scheduler* S, lua_State* L, lua_State* co, bool starting) {
  int ref = starting ? S->save_hook_ref : S->restore_hook_ref;
  if (ref == LUA_NOREF) return true;
  lua_checkstack(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  push_thread(L, co);
  return lua_pcall(L, 1, 0, 0) == 0;
}

static int drive(Scheduler* S, lua_State* L, lua_State* co, int nargs, int anchor) {
  if (!S->current) sched_new_slice(S);  // resumed by the loop or from outside any thread
  for (;;) {
    if ((S->save_hook_ref != LUA_NOREF || S->restore_hook_ref != LUA_NOREF) &&
        !call_context_hook(S, L, co, lua_status(co) == LUA_OK)) {
      lua_pop(co, nargs);
      return -1;
    }
    lua_State* prev = S->current;
    S->current = co;
    int nres = 0;
    int status = sock_resume(co, L, nargs, &nres);
    S->current = prev;
    if (status == LUA_YIELD) {
      void* marker = nres > 0 ? lua_touserdata(co, -nres) : nullptr;
      if (marker == &sock_wait_marker && wait_yield_count(nres)) {  // (sched_in_wait(co), known here)
        // Arm the wait now that the thread has yielded (see sched_wait). Its
        // values stay on the thread's stack while it waits.
        WaitHead* h = static_cast<WaitHead*>(lua_touserdata(co, head_at));
        int n = h->kind->arm(S, L, co, h);
        if (n < 0) return 0;
        drop_kept(co, nres, n);  // finished at once: resume with the results
        note_resuming(S, h);
        nargs = n;
        continue;
      }
      if (marker == &sock_transfer_marker) {
        lua_State* target = lua_tothread(co, -nres + 1);
        int nv = nres - 2;
        if (target == L) {  // transferring back to whoever drives us
          lua_checkstack(L, nv + 1);
          lua_xmove(co, L, nv);
          lua_pop(co, 2);
          return nv;
        }
        bool fresh_or_suspended = target && (lua_status(target) == LUA_YIELD || lua_gettop(target) > 0);
        if (!fresh_or_suspended || target == co || sched_in_wait(target)) {
          lua_pop(co, nres);
          lua_pushstring(L, "sock.transfer: the target thread cannot be resumed (it is running, finished, or waiting on I/O)");
          return -1;
        }
        lua_checkstack(target, nv + 1);
        lua_xmove(co, target, nv);
        lua_pop(co, 2);
        push_thread(L, target);
        lua_replace(L, anchor);
        co = target;
        nargs = nv;
        continue;
      }
      int skip = marker == &sock_suspend_marker ? 1 : 0;
      int nv = nres - skip;
      lua_checkstack(L, nv + 1);
      lua_xmove(co, L, nv);
      lua_pop(co, skip);
      return nv;
    }
    if (status == LUA_OK) {
      lua_settop(co, 0);
      return run_finish_hook(S, L, co);
    }
    // The thread failed: its error (with where it happened) goes to the driver.
    lua_xmove(co, L, 1);
    add_traceback(L, co);
    if (run_finish_hook(S, L, co) < 0) lua_pop(L, 1);  // the thread's own error wins
    return -1;
  }
}

// Hand a thread's error to sock.onerror's handler if there is one; true if handled.
static bool handle_error(Scheduler* S, lua_State* L, lua_State* co) {
  if (S->error_handler_ref == LUA_NOREF) return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->error_handler_ref);
  lua_insert(L, -2);
  push_thread(L, co);
  if (lua_pcall(L, 2, 0, 0) != 0) return false;  // a failing handler's error is raised instead
  return true;
}

void sched_complete_wait(Scheduler* S, WaitHead* h, int (*push_results)(lua_State* co, void* ctx), void* ctx,
                         void (*undo)(void* ctx)) {
  lua_State* L = S->loop_L;
  int top = lua_gettop(L);
  lua_checkstack(L, 6);
  lua_State* co = h->slot && !S->closed ? S->slot_threads[h->slot] : nullptr;
  if (!co || !sched_in_wait(co, h)) {  // resumed from outside meanwhile: nobody to give results to
    unwait(S, L, h);  // (the thread, or the withdrawn wait's arguments, stays on L until undo is done)
    if (undo) undo(ctx);
    lua_settop(L, top);
    return;
  }
  // The thread leaves the waiting set but keeps its slot while it runs
  // (Scheduler::held): nothing else may refer to it, and pushing its
  // results may run the collector. If it waits again before it gives
  // control back, as it mostly does, the new wait takes the slot over.
  Scheduler::HeldSlot outer = S->held;  // (none: completions do not nest; kept all the same)
  S->held = {co, h->slot};
  h->slot = 0;
  S->waiting--;
  lua_pushnil(L);  // the driver's anchor slot (for a thread co transfers to)
  int anchor = top + 1;
  int kept = yielded_count(co);
  if (yielded_only_markers) {  // nothing push_results reads: gone first, which moves no result
    lua_pop(co, kept);
    kept = 0;
  }
  lua_checkstack(co, 8);
  int nresults = push_results ? push_results(co, ctx) : 0;
  drop_kept(co, kept, nresults);  // only now: the kept arguments held what push_results read
  note_resuming(S, h);
  int n = drive(S, L, co, nresults, anchor);
  bool failed = n < 0 && !handle_error(S, L, co);
  release_held(S, L);
  S->held = outer;
  if (failed) {
    // Keep the error on top of loop_L and stop dispatching: sock.poll raises it.
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    S->error_pending = true;
    S->loop->interrupt();
    return;
  }
  lua_settop(L, top);
}

// --- Lua functions -----------------------------------------------------------

static lua_State* check_thread(lua_State* L, int idx, const char* fname) {
  lua_State* co = lua_tothread(L, idx);
  if (!co) sock_error(L, "bad argument #%d to '%s' (thread expected, got %s)", idx, fname, luaL_typename(L, idx));
  return co;
}

// sock.newthread(f[, name]) -> co
static int l_newthread(lua_State* L) {
  sock_checktype(L, 1, LUA_TFUNCTION, "newthread");
  lua_State* co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  return 1;
}

static int resume_common(lua_State* L, Scheduler* S, lua_State* co, int first_arg, const char* fname) {
  if (co == L) sock_error(L, "%s: a thread cannot resume itself", fname);
  if (sched_in_wait(co)) sock_error(L, "%s: the thread is waiting on I/O or a timer", fname);
  int nargs = lua_gettop(L) - first_arg + 1;
  lua_checkstack(co, nargs + 1);
  lua_xmove(L, co, nargs);
  int top = lua_gettop(L);
  int n = sched_drive(S, L, co, nargs);
  if (n < 0) {
    if (handle_error(S, L, co)) return 0;
    return lua_error(L);
  }
  // Control is back in the caller: a sock thread gets its context back.
  if (S->current == L && !call_context_hook(S, L, L, false)) return lua_error(L);
  return lua_gettop(L) - top;
}

// sock.resume(co, ...) -> values of the thread's next suspend(...)
static int l_resume(lua_State* L) {
  Scheduler* S = sched_of(L);
  lua_State* co = check_thread(L, 1, "resume");
  return resume_common(L, S, co, 2, "resume");
}

// sock.suspend(...) -> values of the resume/transfer that wakes the thread
static int l_suspend(lua_State* L) {
  Scheduler* S = sched_of(L);
  sched_check_thread(L, S, "suspend");
  int n = lua_gettop(L);
  lua_pushlightuserdata(L, &sock_suspend_marker);
  lua_insert(L, 1);
  return lua_yield(L, n + 1);
}

// sock.transfer(co, ...) -> values of whoever transfers back
static int l_transfer(lua_State* L) {
  Scheduler* S = sched_of(L);
  lua_State* co = check_thread(L, 1, "transfer");
  if (!S->current) return resume_common(L, S, co, 2, "transfer");  // from outside any thread
  if (sched_in_wait(co)) sock_error(L, "transfer: the thread is waiting on I/O or a timer");
  sched_check_thread(L, S, "transfer");
  int n = lua_gettop(L);
  lua_pushlightuserdata(L, &sock_transfer_marker);
  lua_insert(L, 1);
  return lua_yield(L, n + 1);
}

// sock.currentthread() -> co, is_main
static int l_currentthread(lua_State* L) {
  Scheduler* S = sched_of(L);
  if (S->current) {
    push_thread(L, S->current);
    lua_pushboolean(L, 0);
  } else {
    int is_main = lua_pushthread(L);
    lua_pushboolean(L, is_main);
  }
  return 2;
}

static double opt_timeout(lua_State* L, int idx, const char* fname) {
  if (lua_isnoneornil(L, idx)) return -1;
  if (!lua_isnumber(L, idx)) sock_error(L, "bad argument #%d to '%s' (number expected, got %s)", idx, fname, luaL_typename(L, idx));
  double t = lua_tonumber(L, idx);
  if (t != t) sock_error(L, "bad argument #%d to '%s' (timeout is NaN)", idx, fname);
  if (t >= 2147483647.0) return -1;  // "anything beyond 2^31-1 is infinite"
  return t < 0 ? 0 : t;
}

static int raise_pending(lua_State* L, Scheduler* S) {
  S->error_pending = false;
  return lua_error(L);
}

static bool has_work(Scheduler* S) { return S->waiting > 0 || (S->loop && S->loop->has_ready()); }

static int l_noop(lua_State*) { return 0; }

// The standalone interpreters handle Ctrl-C (SIGINT) by setting a hook that
// raises "interrupted!" at the next Lua call or instruction. While the loop
// waits, no Lua code runs, so the hook would never fire: the loop makes a
// call of its own after each turn in which a hook is set. A program that
// handles SIGINT itself sets no hook, and the loop goes on (EINTR is not an
// error); a debugger's hook sees one extra call per turn.
static void run_hook(lua_State* L, Scheduler* S) {
  bool was_running = S->running;
  S->running = false;  // (in case the hook raises out of sock.start)
  lua_pushcfunction(L, l_noop);
  lua_call(L, 0, 0);
  S->running = was_running;
}

// One turn of the loop. Returns the number of callbacks run, raising a
// thread's error.
static int poll_once(lua_State* L, Scheduler* S, double timeout) {
  sock::Loop& loop = sched_loop(L, S);
  lua_State* saved = S->loop_L;
  S->loop_L = L;
  sched_new_slice(S);
  S->polled = true;
  release_held(S, L);  // (only if an error raised out of the last turn's completion)
  S->held = {};
  int n = loop.run_once(timeout);
  S->loop_L = saved;
  if (S->error_pending) {
    S->running = false;
    raise_pending(L, S);
  }
  if (n < 0) sock_error(L, "sock.poll: %s", sock::error_message(-n));
  if (lua_gethook(L)) run_hook(L, S);
  return n;
}

// sock.poll([timeout]) -> true | false, 'timeout' | false, 'empty'
static int l_poll(lua_State* L) {
  Scheduler* S = sched_of(L);
  double timeout = opt_timeout(L, 1, "poll");
  if (S->current) sock_error(L, "poll: cannot poll from inside a sock thread");
  if (!has_work(S)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "empty");
    return 2;
  }
  if (poll_once(L, S, timeout) > 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "timeout");
  return 2;
}

// sock.start([timeout]): poll until no thread waits, stop() is called, or
// the optional timeout passes.
static int l_start(lua_State* L) {
  Scheduler* S = sched_of(L);
  double timeout = opt_timeout(L, 1, "start");
  if (S->running) return 0;
  if (S->current) sock_error(L, "start: cannot start the loop from inside a sock thread");
  double until = timeout >= 0 ? sock::monotonic_now() + timeout : -1;
  S->running = true;
  while (!S->stop_requested && has_work(S)) {
    double wait = -1;
    if (until >= 0) {
      wait = until - sock::monotonic_now();
      if (wait <= 0) break;
    }
    poll_once(L, S, wait);
  }
  S->running = false;
  S->stop_requested = false;
  lua_pushboolean(L, 1);
  return 1;
}

// sock.stop(): the running sock.start returns after the current turn. Outside
// a running loop it does nothing, so it cannot cut a later start() short.
static int l_stop(lua_State* L) {
  Scheduler* S = sched_of(L);
  if (S->running) S->stop_requested = true;
  return 0;
}

static int l_running(lua_State* L) {
  Scheduler* S = sched_of(L);
  lua_pushboolean(L, S->running || S->current != nullptr);
  return 1;
}

static int l_clock(lua_State* L) {
  lua_pushnumber(L, sock::monotonic_now());
  return 1;
}

// sock.epoll_fd() -> fd of the poller, to watch from a host's own loop.
static int l_epoll_fd(lua_State* L) {
  Scheduler* S = sched_of(L);
  if (!lua_isnoneornil(L, 1))
    sock_error(L, "epoll_fd: sharing a poller fd between Lua states is not supported; each state has its own");
  sock::Loop& loop = sched_loop(L, S);
  lua_pushinteger(L, loop.poller().fd());
  return 1;
}

// sock.backend([name]) -> name in use (or asked for), fallback reason
static int l_backend(lua_State* L) {
  Scheduler* S = sched_of(L);
  if (!lua_isnoneornil(L, 1)) {
    const char* name = sock_checkstring(L, 1, "backend");
    static const char* const known[] = {"epoll", "io_uring", "kqueue", "iocp"};
    const char* found = nullptr;
    for (const char* k : known)
      if (!strcmp(name, k)) found = k;
    if (!found)
      sock_error(L, "bad argument #1 to 'backend' (unknown backend '%s': expected 'epoll', 'io_uring', 'kqueue' or 'iocp')", name);
    if (S->loop) {
      if (strcmp(S->loop->poller().name(), name) != 0)
        sock_error(L, "backend: the %s backend is already running; choose the backend before the first I/O", S->loop->poller().name());
    } else {
      S->backend_request = found;
    }
  }
  sock::Loop& loop = sched_loop(L, S);
  lua_pushstring(L, loop.poller().name());
  if (S->fallback_reason) {
    lua_pushstring(L, S->fallback_reason);
    return 2;
  }
  return 1;
}

// sock._set_context_hooks(save | nil, restore | nil): nil for luapower's
// default no-op, which then costs nothing.
static int l_set_context_hooks(lua_State* L) {
  Scheduler* S = sched_of(L);
  int* refs[2] = {&S->save_hook_ref, &S->restore_hook_ref};
  for (int i = 0; i < 2; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, *refs[i]);
    *refs[i] = LUA_NOREF;
    if (!lua_isnoneornil(L, i + 1)) {
      lua_pushvalue(L, i + 1);
      *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  return 0;
}

// sock.onerror(handler | nil): handler(err, thread) is called for a thread's
// error instead of raising it out of sock.start/poll/resume.
static int l_onerror(lua_State* L) {
  Scheduler* S = sched_of(L);
  if (!lua_isnoneornil(L, 1)) sock_checktype(L, 1, LUA_TFUNCTION, "onerror");
  luaL_unref(L, LUA_REGISTRYINDEX, S->error_handler_ref);
  S->error_handler_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, 1);
    S->error_handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

// --- sleep jobs ------------------------------------------------------------

struct SleepJob {
  WaitHead head;  // first: a sleep is a wait record
  sock::Timer timer;
  Scheduler* sched;
  double when = 0;     // this sleep's wake-up time, set by the call
  bool armed = false;  // a thread sleeps on it (from arming until it is woken)
};

static const char* const SLEEP_JOB = "sock.sleep_job";

static void sleep_fired(sock::Timer* t) {
  SleepJob* job = static_cast<SleepJob*>(t->owner);
  job->armed = false;
  sched_complete_wait(job->sched, &job->head, nullptr, nullptr);
}

static int sleep_arm(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h) {
  SleepJob* job = sched_record<SleepJob>(h);
  sock::Loop* loop = sched_loop_here(S);
  if (!loop) return 0;  // (cannot happen: the call made the loop) wake at once
  loop->add_timer(job->timer, job->when);
  job->armed = true;
  sched_armed(S, L, co, h);
  return -1;
}

static bool sleep_withdraw(Scheduler* S, lua_State*, WaitHead* h) {
  SleepJob* job = sched_record<SleepJob>(h);
  job->armed = false;
  if (S->loop) S->loop->remove_timer(job->timer);
  return false;
}

static const WaitKind sleep_kind = {sleep_arm, sleep_withdraw};

static SleepJob* check_job(lua_State* L, const char* fname) {
  void* p = luaL_testudata(L, 1, SLEEP_JOB);
  if (!p) sock_error(L, "bad argument #1 to '%s' (sock.sleep_job expected, got %s)", fname, luaL_typename(L, 1));
  return static_cast<SleepJob*>(p);
}

static int l_sleep_job(lua_State* L) {
  Scheduler* S = sched_of(L);
  SleepJob* job = static_cast<SleepJob*>(sock_newuserdata(L, sizeof(SleepJob)));
  new (job) SleepJob{};
  job->sched = S;
  job->timer.owner = job;
  job->timer.on_fire = sleep_fired;
  luaL_setmetatable(L, SLEEP_JOB);
  return 1;
}

static double check_time(lua_State* L, int idx, const char* fname) {
  if (!lua_isnumber(L, idx)) sock_error(L, "bad argument #%d to '%s' (number expected, got %s)", idx, fname, luaL_typename(L, idx));
  double t = lua_tonumber(L, idx);
  if (t != t) sock_error(L, "bad argument #%d to '%s' (NaN)", idx, fname);
  return t;
}

static int job_sleep_until_at(lua_State* L, SleepJob* job, double when, const char* fname) {
  Scheduler* S = job->sched;
  sched_check_thread(L, S, fname);
  if (job->armed) sock_error(L, "%s: this sleep job already has a sleeping thread", fname);
  if (std::isinf(when) && when > 0) when = 1e300;  // forever: only wakeup() ends it
  sched_loop(L, S);  // (made here, where it may raise, rather than when arming)
  job->when = when;
  return sched_wait(L, S, &job->head, &sleep_kind, fname);
}

static int l_job_sleep_until(lua_State* L) {
  SleepJob* job = check_job(L, "sleep_until");
  return job_sleep_until_at(L, job, check_time(L, 2, "sleep_until"), "sleep_until");
}

static int l_job_sleep(lua_State* L) {
  SleepJob* job = check_job(L, "sleep");
  return job_sleep_until_at(L, job, sock::monotonic_now() + check_time(L, 2, "sleep"), "sleep");
}

// sj:wakeup(...) -> true if a thread was sleeping (it runs now, with ...)
static int l_job_wakeup(lua_State* L) {
  SleepJob* job = check_job(L, "wakeup");
  Scheduler* S = job->sched;
  if (!job->armed) {
    lua_pushboolean(L, 0);
    return 1;
  }
  job->armed = false;
  if (S->loop) S->loop->remove_timer(job->timer);
  lua_State* co = sched_unwait(S, L, &job->head);  // pushes the thread (or nil)
  if (!co || !sched_in_wait(co, &job->head)) {  // resumed from outside meanwhile
    lua_settop(L, 0);
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_replace(L, 1);  // the job's slot now holds the thread, keeping it alive
  lua_pop(co, yielded_count(co));  // what the sleep yielded (the job, which L's caller holds)
  int nargs = lua_gettop(L) - 1;
  lua_checkstack(co, nargs + 1);
  lua_xmove(L, co, nargs);
  note_resuming(S, &job->head);
  int n = sched_drive(S, L, co, nargs);
  if (n < 0 && !handle_error(S, L, co)) return lua_error(L);
  lua_settop(L, 0);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_job_gc(lua_State* L) {
  SleepJob* job = static_cast<SleepJob*>(luaL_testudata(L, 1, SLEEP_JOB));  // Lua code may call it
  if (!job) return 0;
  // Only reachable here when nothing sleeps on it (a sleeper keeps it alive),
  // or when the whole state closes.
  if (job->sched->loop) job->sched->loop->remove_timer(job->timer);
  return 0;
}

// sock.sleep_until(t) / sock.sleep(s): a sleep job of their own.
static int l_sleep_until(lua_State* L) {
  double when = check_time(L, 1, "sleep_until");
  l_sleep_job(L);
  lua_replace(L, 1);
  return job_sleep_until_at(L, static_cast<SleepJob*>(lua_touserdata(L, 1)), when, "sleep_until");
}

static int l_sleep(lua_State* L) {
  double when = sock::monotonic_now() + check_time(L, 1, "sleep");
  l_sleep_job(L);
  lua_replace(L, 1);
  return job_sleep_until_at(L, static_cast<SleepJob*>(lua_touserdata(L, 1)), when, "sleep");
}

// --- private helpers for the Lua half ----------------------------------------

// is_marker(v): whether a yielded value is one of the scheduler's markers,
// which sock.cowrap/sock.pcall pass through to the enclosing thread.
static int l_is_marker(lua_State* L) {
  void* p = lua_touserdata(L, 1);
  lua_pushboolean(L, lua_islightuserdata(L, 1) &&
                         (p == &sock_wait_marker || p == &sock_suspend_marker || p == &sock_transfer_marker));
  return 1;
}

// allow_nested(co): let coroutine co wait inside a sock thread.
static int l_allow_nested(lua_State* L) {
  Scheduler* S = sched_of(L);
  check_thread(L, 1, "allow_nested");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->nested_ref);
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

static int l_hooks(lua_State* L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, sched_of(L)->hooks_ref);
  return 1;
}

static int l_waiting_count(lua_State* L) {
  lua_pushinteger(L, sched_of(L)->waiting);
  return 1;
}

static int l_sched_gc(lua_State* L) {
  Scheduler* S = static_cast<Scheduler*>(lua_touserdata(L, 1));
  if (!S->closed && S->waiting > 0 && !S->polled)
    std::fprintf(stderr,
                 "sock: the program ended with %d thread(s) waiting, and the loop never ran: "
                 "call sock.start() after starting threads, or use sock.run(f)\n",
                 S->waiting);
  // Other finalizers may still run after this one while the state closes;
  // they see `closed` and a null loop and leave it alone.
  S->closed = true;
  if (S->loop && !sched_loop_here(S)) S->loop->poller().abandon();  // a fork's child
  S->loop.reset();
  std::vector<std::unique_ptr<sock::Loop>>().swap(S->parent_loops);
  std::vector<int>().swap(S->free_wait_slots);
  std::vector<lua_State*>().swap(S->slot_threads);
  S->recv_scratch.reset();
  sock_type_cache_close();
  return 0;
}

static int new_weak_table(lua_State* L, const char* mode) {
  lua_newtable(L);
  if (mode) {
    lua_newtable(L);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

Scheduler* sched_create(lua_State* L) {
  Scheduler* S = static_cast<Scheduler*>(sock_newuserdata(L, sizeof(Scheduler)));
  new (S) Scheduler{};
  lua_newtable(L);
  lua_pushcfunction(L, l_sched_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  S->waiting_ref = new_weak_table(L, nullptr);
  S->nested_ref = new_weak_table(L, "k");
  S->hooks_ref = new_weak_table(L, "k");
  return S;
}

void sched_open(lua_State* L) {
  static const luaL_Reg job_methods[] = {
      {"sleep", l_job_sleep}, {"sleep_until", l_job_sleep_until}, {"wakeup", l_job_wakeup}, {nullptr, nullptr}};
  static const luaL_Reg functions[] = {
      {"newthread", l_newthread},   {"resume", l_resume},   {"suspend", l_suspend},
      {"transfer", l_transfer},     {"currentthread", l_currentthread},
      {"_set_context_hooks", l_set_context_hooks},
      {"poll", l_poll},             {"start", l_start},     {"stop", l_stop},
      {"clock", l_clock},           {"epoll_fd", l_epoll_fd}, {"backend", l_backend},
      {"onerror", l_onerror},       {"sleep_job", l_sleep_job}, {"sleep", l_sleep},
      {"sleep_until", l_sleep_until}, {"_is_marker", l_is_marker},
      {"_allow_nested", l_allow_nested}, {"_finish_hooks", l_hooks}, {"_running", l_running},
      {"_waiting_count", l_waiting_count}, {nullptr, nullptr}};
  // module table at -2, scheduler userdata at -1
  luaL_newmetatable(L, SLEEP_JOB);
  lua_newtable(L);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, job_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, l_job_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 1);  // pops the scheduler
}
