// process.hpp on POSIX systems: fork()s are counted by a pthread_atfork
// handler in the child.
#include "sock/process.hpp"

#include <pthread.h>

namespace sock {
namespace detail {

std::atomic<unsigned> fork_count{0};

static void count_fork() { fork_count.fetch_add(1, std::memory_order_relaxed); }
static void register_atfork() { pthread_atfork(nullptr, nullptr, count_fork); }

// (pthread_once, not std::call_once: see keep_code_loaded in resolver.cpp.)
void watch_forks() {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_atfork);
}

}  // namespace detail

long process_handle_count() { return -1; }  // (tests list /proc/self/fd instead)

}  // namespace sock
