// process.hpp on Windows, which has no fork(): the generation stays 0.
#include "sock/process.hpp"

#include <windows.h>

namespace sock {
namespace detail {

std::atomic<unsigned> fork_count{0};

void watch_forks() {}

}  // namespace detail

double process_cpu_seconds() {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) return -1;
  auto seconds = [](const FILETIME& t) {
    return (double)(((unsigned long long)t.dwHighDateTime << 32) | t.dwLowDateTime) * 1e-7;  // 100 ns units
  };
  return seconds(kernel) + seconds(user);
}

bool running_under_wine() {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll && GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

void keep_module_loaded() {
  HMODULE self;
  GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     reinterpret_cast<LPCWSTR>(&keep_module_loaded), &self);
}

long process_handle_count() {
  DWORD n = 0;
  return GetProcessHandleCount(GetCurrentProcess(), &n) ? (long)n : -1;
}

}  // namespace sock
