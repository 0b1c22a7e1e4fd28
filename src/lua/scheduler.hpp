// Coroutine scheduling: how sock threads wait for the loop and how the loop
// resumes them. One Scheduler per lua_State, passed to every module function
// as upvalue 1.
//
// A waiting call is made in two steps. The C function checks its arguments,
// tries its operation, and when it has to wait it yields the WAIT marker and
// its wait record (sched_wait); nothing is registered yet, so a yield that
// Lua refuses ("attempt to yield across a C-call boundary") leaves nothing
// behind. The driver that receives the marker then arms the wait (the
// record's WaitKind::arm): it starts the op or the timer and anchors the
// thread under the record. When the loop finishes it, the record's callback
// calls sched_complete_wait, which pushes the final results onto the
// thread's stack and resumes it, so the I/O function appears to return them
// directly. Yields with the SUSPEND or TRANSFER markers give control to the
// resumer or to another thread; the driver (drive()) acts on them.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "lua/compat.hpp"
#include "sock/loop.hpp"
#include "sock/process.hpp"

struct WaitHead;

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
  int waiting = 0;               // armed waits (threads blocked on I/O or a timer)
  const WaitHead* resumed_wait = nullptr;  // 5.3+: the wait the loop is resuming (see wait_resumed)
  // The cooperative budget (see sched_give_way): since when the thread the
  // loop last resumed (with the threads it resumes in turn) has held the
  // loop, and how many operations it has completed since the clock was last read.
  double slice_start = 0;  // 0: not read yet in this slice
  unsigned slice_ops = 0;
  bool running = false;          // inside sock.start
  bool stop_requested = false;
  bool error_pending = false;    // a thread failed inside the loop; its error is on loop_L
  bool closed = false;           // the state is being closed
  bool polled = false;           // the loop has run at least once (else threads left waiting are worth a warning)
  int waiting_ref = LUA_NOREF;   // {slot = thread}: armed waits (WaitHead::slot), their threads anchored
  // The waiting table's keys: 1..wait_slots, the free ones listed here for
  // reuse. Integer keys keep the table an array, which Lua reads and writes
  // far faster than a hash keyed by each record's address. (Its capacity
  // is kept at wait_slots, so giving a slot back never allocates.)
  std::vector<int> free_wait_slots;
  int wait_slots = 0;
  // The thread each slot holds (null: none, or a withdrawn wait's
  // arguments), so that a completion finds its thread without reading the
  // table.
  std::vector<lua_State*> slot_threads;
  // The slot of the thread a completion is resuming: it keeps the thread
  // anchored while it runs, and the thread takes it again, with no table
  // write, if it waits once more before it gives control back (the usual
  // case: a thread goes from one I/O wait to the next). Freed when the
  // resume returns otherwise. See sched_complete_wait.
  struct HeldSlot {
    lua_State* co = nullptr;
    int slot = 0;  // 0: none held
  } held;
  int nested_ref = LUA_NOREF;    // weak {coroutine = true}: cowrap/pcall coroutines that may do I/O
  int hooks_ref = LUA_NOREF;     // weak {thread = function}: sock.onthreadfinish
  int error_handler_ref = LUA_NOREF;
  // sock.save_thread_context / restore_thread_context when set to something
  // other than the default no-op (luapower's hooks; see sock.lua).
  int save_hook_ref = LUA_NOREF;
  int restore_hook_ref = LUA_NOREF;
  // Where buffered reads receive before appending, and TLS connections
  // receive and take their ciphertext before it goes on (kRecvScratchSize
  // bytes, made on first use; per state, since thread_local storage in a
  // dlopen'ed module breaks LeakSanitizer under LuaJIT). Only used between
  // two waits: nothing is left in it across one.
  std::unique_ptr<char[]> recv_scratch;
};

constexpr size_t kRecvScratchSize = 65536;

struct WaitHead;

// What differs between the kinds of wait (a socket op, a sleep, a lookup).
struct WaitKind {
  // Arm the wait for the sock thread `co`, which has just yielded it (L is
  // the driver's state). Returns -1 when it is armed: the loop will complete
  // it through sched_complete_wait, and arm has called sched_armed. Else it
  // finished at once or could not wait: the number of results it pushed
  // onto co, which is resumed with them straight away.
  int (*arm)(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h);
  // Withdraw an armed wait whose thread was resumed from outside the loop.
  // Returns true when its completion will still come (the kernel may hold
  // the buffer until then): the call's arguments stay anchored until it
  // does, and its callback finds no thread waiting for it.
  bool (*withdraw)(Scheduler* S, lua_State* L, WaitHead* h);
};

// The first member of every wait record: what sched_wait yields and what
// the waiting set is keyed by. Filled by sched_wait.
struct WaitHead {
  Scheduler* sched = nullptr;
  const WaitKind* kind = nullptr;
  const char* fname = nullptr;   // the waiting function, for messages
  int frame_args = 0;            // 5.3+: the call's arguments, left in its frame below what it yields
  int slot = 0;                  // while armed: its key in the waiting table (0: not in it)
};

// The wait record whose first member is the head `h` (see sched_wait).
// (offsetof on a record that is not standard-layout, one holding a
// unique_ptr say, is conditionally supported: GCC, Clang and MSVC give the
// member's offset for a class without virtual bases, as here.)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
#endif
template <class Record>
Record* sched_record(WaitHead* h) {
  static_assert(!std::is_polymorphic_v<Record> && offsetof(Record, head) == 0, "a wait record starts with its WaitHead");
  return reinterpret_cast<Record*>(h);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// Markers a thread yields as its first value.
extern char sock_wait_marker, sock_suspend_marker, sock_transfer_marker;

inline Scheduler* sched_of(lua_State* L) {
  return static_cast<Scheduler*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// How many fork()s separate this process from the one that loaded sock. A
// pthread_atfork child handler counts them, so noticing that we are a fork's
// child costs a load per operation rather than a getpid() syscall.
unsigned sched_fork_generation();

// The loop if there is one this process may use, else null (callers fall
// back to plain syscalls). Never raises: for close, shutdown and finalizers.
// (Inline, as sched_loop's first step: every operation asks.)
inline sock::Loop* sched_loop_here(Scheduler* S) {
  return S->loop && S->loop_fork_gen == sock::fork_generation_seen() ? S->loop.get() : nullptr;
}

// The loop, made on first use. Raises if no backend can be set up. In a
// child of fork() it replaces the parent's loop with one of its own, or
// raises if threads were waiting in the parent's.
sock::Loop& sched_make_loop(lua_State* L, Scheduler* S);
inline sock::Loop& sched_loop(lua_State* L, Scheduler* S) {
  if (sock::Loop* loop = sched_loop_here(S)) return *loop;
  return sched_make_loop(L, S);
}

// The cooperative budget. A thread whose operations keep completing at
// once never waits, so without a budget it would hold the loop: no timer
// would fire and no other thread would run. Each time the loop resumes a
// thread (or runs completions) a slice starts; once the thread has held the
// loop for kSliceSeconds, its next operation gives way: it waits for one
// turn of the loop (which polls without blocking, fires due timers and runs
// the threads whose I/O is ready) and then goes on with the same results it
// would have had. The clock is read once per kOpsPerClockRead operations.
// Threads a thread resumes itself (sock.thread in an accept loop) share its
// slice, so spawning work does not escape the budget either.
constexpr double kSliceSeconds = 0.002;
constexpr unsigned kOpsPerClockRead = 16;

bool sched_slice_over(Scheduler* S);  // reads the clock

// Called before an operation that may complete at once: true when the
// running thread must give way first.
inline bool sched_give_way(Scheduler* S) {
  return ++S->slice_ops >= kOpsPerClockRead && sched_slice_over(S);
}

// The same for an operation that is long in itself (a sendfile call):
// reads the clock every time.
inline bool sched_give_way_now(Scheduler* S) {
  S->slice_ops = kOpsPerClockRead;
  return sched_slice_over(S);
}

// A new slice: the loop resumes a thread, or starts a turn.
inline void sched_new_slice(Scheduler* S) {
  S->slice_start = 0;
  S->slice_ops = 0;
}

// Raise unless L runs inside a sock thread (or a coroutine sock made inside one).
void sched_check_thread(lua_State* L, Scheduler* S, const char* fname);

// Its two halves. recv and send check only the first before they start: a
// call that does not have to wait works in a plain coroutine inside a sock
// thread too, as it does inside a C callback (what the LuaJIT fast path can
// tell without the running coroutine, which its compiled code cannot get);
// the second, before a wait, raises "cannot wait inside a plain coroutine".
void sched_check_in_thread(lua_State* L, Scheduler* S, const char* fname);  // S->current is set
bool sched_can_wait(lua_State* L, Scheduler* S);  // L is the running sock thread, or sock made L
void sched_check_can_wait(lua_State* L, Scheduler* S, const char* fname);   // L is it, or sock made L

// Yield the current thread to wait on the record whose head is `h` (of
// kind `kind`; the head is the record's first member, see sched_record).
// Use as `return sched_wait(L, S, h, kind, fname);` from a C function
// whose own arguments are all that the wait needs kept alive: they stay on
// the thread's stack until the results are pushed. Raises, with nothing
// armed, when L cannot yield here.
int sched_wait(lua_State* L, Scheduler* S, WaitHead* h, const WaitKind* kind, const char* fname);

// Called by WaitKind::arm once the wait is armed: anchors `co` under `h`
// until the wait completes.
void sched_armed(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h);

// The loop's side of a finished wait: forget the wait, push the thread's
// results with push_results(co, ctx) (none if null), and resume it. Errors
// are kept for sock.poll/start to raise. A thread that is no longer
// suspended in this wait (it was resumed from outside the loop) is left
// alone; undo(ctx), if given, then gives back what the op took (bytes,
// an accepted fd) while what the wait kept is still alive.
void sched_complete_wait(Scheduler* S, WaitHead* h, int (*push_results)(lua_State* co, void* ctx), void* ctx,
                         void (*undo)(void* ctx) = nullptr);

// Forget an armed wait without resuming its thread; returns the thread (on
// top of L's stack, which keeps it alive) or null if none was anchored.
lua_State* sched_unwait(Scheduler* S, lua_State* L, WaitHead* h);

// Whether co is suspended in a sock wait (any wait, or the one of `h`).
bool sched_in_wait(lua_State* co, const WaitHead* h = nullptr);

// Run `co` with the `nargs` values on top of its stack until it blocks,
// suspends or ends. Returns the number of values it handed back (left on
// L's stack), or -1 with the error (traceback added) on top of L's stack.
int sched_drive(Scheduler* S, lua_State* L, lua_State* co, int nargs);

// With the module table at -2 and the scheduler at -1: adds the scheduling
// functions to the module and pops the scheduler.
void sched_open(lua_State* L);
Scheduler* sched_create(lua_State* L);  // pushes the scheduler userdata
