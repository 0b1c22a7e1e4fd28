// Facts about the process the core must notice. Today one: fork(). A child
// shares the parent's kernel objects (an epoll instance, a ring), so whoever
// holds one compares the generation it was made in with the current one.
#pragma once

#include <atomic>

namespace sock {

namespace detail {
extern std::atomic<unsigned> fork_count;
void watch_forks();
}  // namespace detail

// How many fork()s made this process (0 in the original). The first call
// starts counting (the POSIX side registers a pthread_atfork handler; Windows
// has no fork and it stays 0); later calls are one atomic load.
inline unsigned fork_generation() {
  detail::watch_forks();
  return detail::fork_count.load(std::memory_order_relaxed);
}

// The same without starting to count: for hot paths of code that has
// called fork_generation() once already.
// The process's open handles, where the system counts them (Windows:
// GetProcessHandleCount); -1 elsewhere. For tests' leak checks.
long process_handle_count();

// CPU time this process has used, user + system, in seconds. (Lua's
// os.clock is wall time on Windows, where its C runtime's clock() is.)
double process_cpu_seconds();

// Whether this is a Windows build running under Wine (which the tests must
// know: a few of its socket calls differ from Windows'); false elsewhere.
bool running_under_wine();

// Keeps the module that holds the core (sock.dll) loaded until the process
// exits, once something in it has registered code to run at exit: OpenSSL
// does (atexit(OPENSSL_cleanup)) when it is linked in statically, and Lua's
// lua_close unloads C modules before the C runtime runs its exit handlers,
// which would then call into an unloaded DLL. Windows pins the DLL
// (GetModuleHandleEx ..._PIN); elsewhere it does nothing (a shared object's
// atexit handlers run when it is unloaded).
void keep_module_loaded();

inline unsigned fork_generation_seen() { return detail::fork_count.load(std::memory_order_relaxed); }

}  // namespace sock
