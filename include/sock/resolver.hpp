// Name resolution off the loop thread: getaddrinfo can block for seconds, so
// lookups of host names run on a small pool of worker threads, and the loop
// learns that one finished through an eventfd it can wait on like any other
// fd (an OpKind::readable op, on every backend). No Lua in here.
//
// Usage from the loop thread:
//   Resolver r;            r.open();                 // the eventfd
//   auto* job = new ResolveJob; job->host = "example.org"; ...
//   r.submit(std::unique_ptr<ResolveJob>(job));      // the resolver owns it now
//   ... wait until r.fd() is readable, then:
//   r.clear_signal();
//   while (auto done = r.take()) { use done->eai / done->result; }
//
// Every member function is meant to be called from one thread (the loop's);
// the workers only touch the queues under the resolver's lock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sock/address.hpp"

namespace sock {

struct ResolveJob {
  // What to look up: the arguments of sock::resolve. An empty `host` with
  // has_host false means "all interfaces", like a null host there.
  std::string host, service;
  bool has_host = true, has_service = false;
  int socktype = 0, family = 0, protocol = 0, flags = 0;

  // The outcome, valid once take() has handed the job back: eai is 0 or an
  // EAI_* code (EAI_SYSTEM with the cause in sys_errno).
  int eai = 0;
  int sys_errno = 0;
  AddrList result;

  void* user = nullptr;  // the caller's tag, untouched by the resolver

 private:
  friend class Resolver;
  enum class State : uint8_t { idle, queued, running, done, cancelled };
  State state = State::idle;
};

class Resolver {
 public:
  // At most `max_threads` lookups run at once (threads start on demand and
  // stay until the resolver goes). The delay of the test hook is read from
  // the environment variable SOCK_TEST_RESOLVER_DELAY (seconds) here.
  explicit Resolver(unsigned max_threads = 4);
  // Forgets queued jobs, waits for the lookups in progress (a test delay is
  // cut short), joins the workers and closes the eventfd.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Create the eventfd. 0 or -errno.
  int open();
  // The eventfd: readable when take() may have something. -1 before open().
  int fd() const { return efd_; }

  // Queue a lookup; the resolver owns the job until take() returns it or
  // cancel() drops it. Returns 0, or -errno when no worker can run it (the
  // job is handed back untouched through `job` then).
  int submit(std::unique_ptr<ResolveJob>& job);

  // Drop a job that was submitted and not yet taken: its outcome is never
  // reported, and its memory is freed now or when its lookup ends.
  void cancel(ResolveJob* job);

  // The next finished job, or null.
  std::unique_ptr<ResolveJob> take();

  // Reset the eventfd's readiness (before taking what finished), and set it
  // again (when finished jobs are left for later).
  void clear_signal();
  void signal();

  // Jobs submitted and neither taken nor cancelled.
  size_t pending() const;
  // Finished jobs waiting for take().
  size_t finished() const;
  // Worker threads started so far.
  size_t threads() const;

  // Test hook: each lookup waits this many seconds first (0: none).
  void set_delay(double seconds);
  double delay() const;

 private:
  void worker();
  bool start_worker();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // jobs queued, or stop
  std::condition_variable stop_cv_;  // stop (ends a test delay early)
  std::deque<ResolveJob*> queue_;
  std::deque<ResolveJob*> done_;
  std::vector<std::thread> threads_;
  unsigned max_threads_;
  unsigned idle_ = 0;
  size_t pending_ = 0;
  bool stop_ = false;
  double delay_ = 0;
  int efd_ = -1;
};

}  // namespace sock
