// The poller interface: the one seam between the loop and the OS's event
// mechanism. A backend is a page of code; which ones exist is decided at
// build time, which one runs at start-up (see make_poller).
#pragma once

#include <cstdint>
#include <memory>

#include "sock/operation.hpp"

namespace sock {

class Poller {
 public:
  // A completion backend destroyed with requests in flight withdraws them
  // and waits for the kernel to let go, without completing or touching any
  // op: ops and their buffers must outlive the Loop, not the other way round.
  virtual ~Poller() = default;

  virtual const char* name() const = 0;

  // Completion backends: true. A stream recv that just came back short will
  // most likely find nothing if tried again at once, and such a backend
  // waits for data without that extra syscall; readiness backends must try.
  virtual bool completes_ops() const { return false; }
  // Readiness backends that can tell: true when a recv on this stream op's
  // handle would surely block now (epoll: the last recv found the receive
  // queue empty, and no readable edge has come since; the next arrival
  // raises one, which wakes a waiting reader). The caller may then wait
  // without trying, saving the recv that returns EAGAIN.
  virtual bool known_empty(const Operation&) const { return false; }
  // Completion backends that batch submissions: true when this stream send
  // is best handed to the kernel untried. It then goes in with the turn's
  // one submission instead of making a syscall of its own, and the kernel's
  // first try of it, made right then, finds room as the caller's would have
  // (io_uring: one syscall per request saved on a ping-pong).
  virtual bool sends_untried(const Operation&) const { return false; }

  // An fd that becomes readable when the poller has something to report, so
  // a host program can watch it in its own event loop; -1 if there is none.
  // (A completion backend that batches submissions stops batching once this
  // is called: a host only calls us back when the fd is readable, so work
  // must not sit unsubmitted between turns.)
  virtual int fd() const = 0;

  // Try the op's syscall once, now; true if it finished (result in op).
  // connect/readable/writable ops only wait, so they are never tried. A
  // backend may serve an op from what it already has (io_uring: accepts
  // from its multishot's queue).
  virtual bool try_now(Operation& op);

  // Start waiting for `op`, which has already been tried once and would have
  // blocked (readiness backends), or hand it to the kernel (completion
  // backends). The loop has already put it in its handle's reader/writer
  // slot. Returns 0; 1 if the op finished at once (its result is set, e.g.
  // an accept served from connections a multishot accept already took); or
  // -errno if it cannot be started at all.
  virtual int submit(Operation& op) = 0;

  // Withdraw a pending op. Returns true if it is withdrawn now (the loop then
  // completes it with its cancel code); false if withdrawal is in flight and
  // the op will still be passed to Loop::complete later.
  virtual bool cancel(Operation& op) = 0;

  // The handle's fd is about to be closed. Its ops have all been cancelled;
  // with a completion backend they may still be in flight (handle.inflight),
  // and the backend must make sure none of them reaches the kernel after the
  // fd is closed, since the fd number may be reused at once.
  virtual void forget(IoHandle& handle) = 0;

  // Forget the handle, then close its fd, before returning: a completion
  // backend closes it with a request behind the fd's cancels. Returns 0 or
  // -errno; the fd is gone either way.
  virtual int close(IoHandle& handle);

  // shutdown(2) the handle's fd; 0 or -errno. Synchronous with every backend.
  virtual int shutdown(IoHandle& handle, int how);

  // Wait up to timeout_ms (-1: forever, 0: just look) and hand every finished
  // op to Loop::complete. Returns the number of OS events seen, or -errno.
  virtual int wait(int timeout_ms) = 0;

  // This process is the child of a fork() made after the poller was: its
  // kernel objects (the epoll instance, the ring and its memory) are shared
  // with the parent, which still uses them. Let go of them without touching
  // them (no cancel, no submit, no epoll_ctl); the poller is destroyed next.
  // (A kqueue is not inherited at all: its fd number may be another file's.)
  virtual void abandon() = 0;

  // Counters for tests and benchmarks: what the backend asked of the kernel.
  struct Stats {
    uint64_t enters = 0;           // syscalls into the poller (epoll_wait, io_uring_enter, kevent)
    uint64_t requests = 0;         // completion backends: requests queued
    uint64_t multishot_arms = 0;   // multishot accepts armed
    uint64_t multishot_served = 0; // accepts served from a multishot's queue
  };
  const Stats& stats() const { return stats_; }

  // Set by the loop that owns this poller.
  Loop* loop = nullptr;

 protected:
  mutable Stats stats_;
};

// An id no other poller of this process has had, never 0: readiness
// backends keep it in a handle's backend_state to tell "registered with me"
// from "registered with another poller" (one abandoned after fork, say).
uint32_t new_poller_id();

// Backends. Each returns nullptr (and sets *err to a reason) when it cannot
// run on this machine.
std::unique_ptr<Poller> make_epoll_poller(int* err);
std::unique_ptr<Poller> make_uring_poller(int* err);
std::unique_ptr<Poller> make_kqueue_poller(int* err);
std::unique_ptr<Poller> make_iocp_poller(int* err);

// The backend named `name` ("epoll", "io_uring", "kqueue", "iocp"), or the default for this
// platform when name is null or empty. Falls back to the default when the one
// asked for cannot be set up, and then says why in *fallback_reason.
std::unique_ptr<Poller> make_poller(const char* name, const char** fallback_reason);

}  // namespace sock
