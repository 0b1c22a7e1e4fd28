#include "sock/clock.hpp"

#include <windows.h>

namespace sock {

// QueryPerformanceCounter: monotonic, and finer than GetTickCount64's ticks.
double monotonic_now() {
  static const double period = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return 1.0 / (double)f.QuadPart;
  }();
  LARGE_INTEGER now;
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart * period;
}

}  // namespace sock
