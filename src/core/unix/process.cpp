// process.hpp on POSIX systems: fork()s are counted by a pthread_atfork
// handler in the child.
#include "sock/process.hpp"

#include <pthread.h>
#include <sys/resource.h>

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

long process_handle_count() { return -1; }

double process_cpu_seconds() {
  rusage u;
  if (getrusage(RUSAGE_SELF, &u) < 0) return -1;
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
         (double)u.ru_stime.tv_usec * 1e-6;
}

bool running_under_wine() { return false; }  // (tests list /proc/self/fd instead)

void keep_module_loaded() {}

}  // namespace sock
