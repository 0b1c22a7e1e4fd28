#include "sock/resolver.hpp"
#include "sock/wakeup.hpp"

#include "worker_threads.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <system_error>

namespace sock {

namespace {

double delay_from_env() {
  const char* v = std::getenv("SOCK_TEST_RESOLVER_DELAY");
  if (!v || !*v) return 0;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || !(d > 0) || !std::isfinite(d)) return 0;
  return d;
}

template <typename T>
bool erase_one(std::deque<T*>& q, T* item) {
  auto it = std::find(q.begin(), q.end(), item);
  if (it == q.end()) return false;
  q.erase(it);
  return true;
}

}  // namespace

// Everything the workers touch. The resolver and each worker hold it, so
// that a worker still inside getaddrinfo when the resolver goes can finish
// with memory and a wake-up that are still its own.
struct Resolver::Shared {
  mutable std::mutex mu;
  std::condition_variable work_cv;  // jobs queued, or stop
  std::condition_variable stop_cv;  // stop (ends a test delay early)
  std::deque<ResolveJob*> queue;
  std::deque<ResolveJob*> done;
  unsigned idle = 0;
  size_t running = 0;  // jobs being looked up now
  std::vector<char> in_lookup;  // per worker (by index): inside resolve(), the lock not held
  size_t pending = 0;
  bool stop = false;
  double delay = 0;
  double stall = 0;
  Wakeup wake;  // closed by the last holder

  ~Shared() {
    for (ResolveJob* job : queue) delete job;
    for (ResolveJob* job : done) delete job;
  }

  void signal() { wake.signal(); }
};

Resolver::Resolver(unsigned max_threads)
    : sh_(std::make_shared<Shared>()), max_threads_(max_threads ? max_threads : 1) {
  sh_->delay = delay_from_env();
}

Resolver::~Resolver() {
  std::vector<char> busy;
  {
    std::lock_guard<std::mutex> lock(sh_->mu);
    sh_->stop = true;
    for (ResolveJob* job : sh_->queue) delete job;
    sh_->queue.clear();
    busy = sh_->in_lookup;  // a worker not in a lookup now will not start one
  }
  sh_->work_cv.notify_all();
  sh_->stop_cv.notify_all();
  // The others end at once and are joined; one inside getaddrinfo ends when
  // it returns, and is not waited for: closing a Lua state must not take
  // seconds.
  for (size_t i = 0; i < threads_.size(); i++) {
    if (i < busy.size() && busy[i])
      threads_[i].detach();
    else
      threads_[i].join();
  }
}

int Resolver::open() {
  if (efd_ != invalid_socket) return 0;
  std::lock_guard<std::mutex> lock(sh_->mu);
  int rc = sh_->wake.open();
  if (rc < 0) return rc;
  efd_ = sh_->wake.wait_fd();
  return 0;
}

void Resolver::drop_after_fork() {
  // No lock: a worker of the parent may have held it when it forked.
  sh_->wake.drop_after_fork();
  efd_ = invalid_socket;
}

bool Resolver::start_worker() {
  // A worker may outlive the resolver (see ~Resolver), and with it the Lua
  // state, which then unloads the module the worker's code is in.
  detail::keep_code_loaded();
  // The workers must not take the host program's signals: the new thread
  // starts with them all blocked.
  detail::SignalsBlocked blocked;
  bool ok = true;
  try {
    sh_->in_lookup.push_back(0);
    threads_.emplace_back(worker, sh_, threads_.size());
  } catch (const std::exception&) {  // std::system_error, std::bad_alloc
    ok = false;
  }
  return ok;
}

int Resolver::submit(std::unique_ptr<ResolveJob>& job) {
  if (!job) return -EINVAL;
  if (efd_ == invalid_socket) return -EBADF;
  std::unique_lock<std::mutex> lock(sh_->mu);
  // One more thread when every one is busy, up to the maximum.
  if (sh_->idle <= sh_->queue.size() && threads_.size() < max_threads_) {
    bool started = start_worker();
    if (!started && threads_.empty()) return -EAGAIN;
  }
  try {
    sh_->queue.push_back(job.get());
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  job.release()->state = ResolveJob::State::queued;
  sh_->pending++;
  lock.unlock();
  sh_->work_cv.notify_one();
  return 0;
}

void Resolver::cancel(ResolveJob* job) {
  if (!job) return;
  std::lock_guard<std::mutex> lock(sh_->mu);
  switch (job->state) {
    case ResolveJob::State::queued:
      if (erase_one(sh_->queue, job)) {
        sh_->pending--;
        delete job;
      }
      break;
    case ResolveJob::State::running:
      job->state = ResolveJob::State::cancelled;  // its worker deletes it
      sh_->pending--;
      break;
    case ResolveJob::State::done:
      if (erase_one(sh_->done, job)) {
        sh_->pending--;
        delete job;
      }
      break;
    default:
      break;
  }
}

std::unique_ptr<ResolveJob> Resolver::take() {
  std::lock_guard<std::mutex> lock(sh_->mu);
  if (sh_->done.empty()) return nullptr;
  ResolveJob* job = sh_->done.front();
  sh_->done.pop_front();
  job->state = ResolveJob::State::idle;
  sh_->pending--;
  return std::unique_ptr<ResolveJob>(job);
}

void Resolver::clear_signal() { sh_->wake.clear(); }

void Resolver::signal() { sh_->signal(); }

size_t Resolver::pending() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return sh_->pending;
}

size_t Resolver::finished() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return sh_->done.size();
}

size_t Resolver::running() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return sh_->running;
}

size_t Resolver::threads() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return threads_.size();
}

void Resolver::set_delay(double seconds) {
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->delay = seconds > 0 && std::isfinite(seconds) ? seconds : 0;
}

double Resolver::delay() const {
  std::lock_guard<std::mutex> lock(sh_->mu);
  return sh_->delay;
}

void Resolver::set_stall(double seconds) {
  std::lock_guard<std::mutex> lock(sh_->mu);
  sh_->stall = seconds > 0 && std::isfinite(seconds) ? seconds : 0;
}

void Resolver::worker(std::shared_ptr<Shared> sh, size_t index) {
  std::unique_lock<std::mutex> lock(sh->mu);
  for (;;) {
    while (!sh->stop && sh->queue.empty()) {
      sh->idle++;
      sh->work_cv.wait(lock);
      sh->idle--;
    }
    if (sh->stop) break;
    ResolveJob* job = sh->queue.front();
    sh->queue.pop_front();
    job->state = ResolveJob::State::running;
    sh->running++;
    double delay = sh->delay;
    if (delay > 0) {  // the test hook: a slow lookup, cut short by stop
      auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay);
      while (!sh->stop && std::chrono::steady_clock::now() < until) sh->stop_cv.wait_until(lock, until);
    }
    double stall = sh->stall;
    if (job->state == ResolveJob::State::running && !sh->stop) {
      // The inputs are ours while the job runs: the loop thread only flips
      // its state (under the lock) when it cancels it.
      sh->in_lookup[index] = 1;
      lock.unlock();
      if (stall > 0)  // the other test hook: a lookup nothing can interrupt
        std::this_thread::sleep_for(std::chrono::duration<double>(stall));
      AddrList list;
      errno = 0;
      int eai = resolve(job->has_host ? job->host.c_str() : nullptr,
                        job->has_service ? job->service.c_str() : nullptr, job->socktype,
                        job->family, job->protocol, job->flags, list);
      int sys_errno = errno;
      lock.lock();
      sh->in_lookup[index] = 0;
      job->eai = eai;
      job->sys_errno = sys_errno;
      job->result = std::move(list);
    } else if (job->state == ResolveJob::State::running) {
      job->eai = EAI_SYSTEM;  // stopping: the lookup never ran
      job->sys_errno = ECANCELED;
    }
    sh->running--;
    if (job->state == ResolveJob::State::cancelled || sh->stop) {
      // Nobody will take it: cancelled, or the resolver is gone (a job the
      // resolver still counts as pending goes with it: nobody asks).
      delete job;
      continue;
    }
    job->state = ResolveJob::State::done;
    bool pushed = true;
    try {
      sh->done.push_back(job);
    } catch (const std::bad_alloc&) {
      pushed = false;
    }
    if (!pushed) {  // nowhere to report it: report nothing, but do not leak
      sh->pending--;
      delete job;
      continue;
    }
    sh->signal();
  }
  // `sh` goes with this thread; the last holder frees it and closes the wake-up.
}

}  // namespace sock
