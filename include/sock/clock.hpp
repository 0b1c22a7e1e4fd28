// A monotonic clock in seconds: deadlines (`expires`) are values of this clock.
#pragma once

namespace sock {

// Seconds since an arbitrary fixed point; never jumps with wall-clock changes.
double monotonic_now();

}  // namespace sock
