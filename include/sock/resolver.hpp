// Name resolution off the loop thread: getaddrinfo can block for seconds, so
// lookups of host names run on a small pool of worker threads, and the loop
// learns that one finished through a Wakeup (wakeup.hpp): an OpKind::wakeup
// op on r.fd(), on every backend. No Lua in here.
//
// Usage from the loop thread:
//   Resolver r;            r.open();                 // the wake-up
//   auto* job = new ResolveJob; job->host = "example.org"; ...
//   r.submit(std::unique_ptr<ResolveJob>(job));      // the resolver owns it now
//   ... wait with an OpKind::wakeup op on r.fd() (which resets it), then:
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
  // Forgets queued jobs, joins the idle workers and returns. A lookup in
  // progress cannot be interrupted (getaddrinfo may take seconds): its
  // worker is not waited for; it finishes on its own, drops the result, and
  // the last worker to go frees what the workers share and closes the
  // wake-up. (The code stays loaded meanwhile: see start_worker.)
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Create the wake-up. 0 or -errno.
  int open();
  // What an OpKind::wakeup op waits on: it completes when take() may have
  // something. -1 before open().
  socket_t fd() const { return efd_; }
  // A fork's child: close this process's copies of the wake-up's
  // descriptors, touching nothing else (the parent's workers may have held
  // the lock when it forked). The resolver must not be used afterwards.
  void drop_after_fork();

  // Queue a lookup; the resolver owns the job until take() returns it or
  // cancel() drops it. Returns 0, or -errno when no worker can run it (the
  // job is handed back untouched through `job` then).
  int submit(std::unique_ptr<ResolveJob>& job);

  // Drop a job that was submitted and not yet taken: its outcome is never
  // reported, and its memory is freed now or when its lookup ends.
  void cancel(ResolveJob* job);

  // The next finished job, or null.
  std::unique_ptr<ResolveJob> take();

  // Reset the wake-up (the wakeup op does it too), and set it again (when
  // finished jobs are left for later).
  void clear_signal();
  void signal();

  // Jobs submitted and neither taken nor cancelled.
  size_t pending() const;
  // Finished jobs waiting for take().
  size_t finished() const;
  // Worker threads started so far.
  size_t threads() const;
  // Lookups a worker is running now.
  size_t running() const;

  // Test hook: each lookup waits this many seconds first (0: none).
  void set_delay(double seconds);
  // Test hook: each lookup then stalls this long, like a getaddrinfo that
  // waits for a slow DNS server: not cut short by the resolver's end.
  void set_stall(double seconds);
  double delay() const;

 private:
  struct Shared;  // what the workers use; each holds it until it ends
  static void worker(std::shared_ptr<Shared> sh, size_t index);
  bool start_worker();

  std::shared_ptr<Shared> sh_;
  std::vector<std::thread> threads_;  // started so far (joined when the resolver goes, or detached if in a lookup)
  unsigned max_threads_;
  socket_t efd_ = invalid_socket;  // the wake-up's fd, read without the lock (also in a fork's child)
};

}  // namespace sock
