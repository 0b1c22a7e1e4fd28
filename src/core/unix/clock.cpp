#include "sock/clock.hpp"

#include <ctime>

namespace sock {

double monotonic_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

}  // namespace sock
