// What the threads the core starts (the resolver's workers) need from the
// platform. Internal to the core; src/core/unix/worker_threads.cpp and
// src/core/win/worker_threads.cpp.
#pragma once

namespace sock {
namespace detail {

// Keep the code of the library this is in loaded for the rest of the
// process, whoever unloads it (a Lua state closing unloads its modules), so
// that a thread still running it cannot lose it. Idempotent and cheap after
// the first call.
void keep_code_loaded();

// While alive, the calling thread has every signal blocked, and threads it
// starts inherit that (POSIX); nothing on Windows, which has no signals to
// steer.
class SignalsBlocked {
 public:
  SignalsBlocked();
  ~SignalsBlocked();
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  alignas(8) unsigned char saved_[128];  // the old mask (sigset_t, 128 bytes on glibc)
};

}  // namespace detail
}  // namespace sock
