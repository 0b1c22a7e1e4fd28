// process.hpp on Windows, which has no fork(): the generation stays 0.
#include "sock/process.hpp"

#include <windows.h>

namespace sock {
namespace detail {

std::atomic<unsigned> fork_count{0};

void watch_forks() {}

}  // namespace detail

long process_handle_count() {
  DWORD n = 0;
  return GetProcessHandleCount(GetCurrentProcess(), &n) ? (long)n : -1;
}

}  // namespace sock
