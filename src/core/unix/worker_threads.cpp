// worker_threads.hpp on POSIX: dlopen pins the library, pthread_sigmask
// blocks the signals.
#include "../worker_threads.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

namespace sock {
namespace detail {

static_assert(sizeof(sigset_t) <= 128, "SignalsBlocked::saved_ is too small for sigset_t");

static void pin_this_library() {
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&pin_this_library), &info) && info.dli_fname)
    ::dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

// (pthread_once, not std::call_once: libstdc++'s call_once keeps its state in
// thread-local storage, which LeakSanitizer cannot walk in a library loaded
// with dlopen, as a Lua module is.)
void keep_code_loaded() {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, pin_this_library);
}

SignalsBlocked::SignalsBlocked() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, reinterpret_cast<sigset_t*>(saved_));
}

SignalsBlocked::~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(saved_), nullptr); }

}  // namespace detail
}  // namespace sock
