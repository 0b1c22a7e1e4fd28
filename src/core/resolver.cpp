#include "sock/resolver.hpp"

#include <sys/eventfd.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

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

Resolver::Resolver(unsigned max_threads)
    : max_threads_(max_threads ? max_threads : 1), delay_(delay_from_env()) {}

Resolver::~Resolver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    for (ResolveJob* job : queue_) delete job;
    queue_.clear();
  }
  work_cv_.notify_all();
  stop_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  // The workers are gone: whatever finished (or was cancelled while it ran
  // and got deleted by its worker) is ours alone now.
  for (ResolveJob* job : done_) delete job;
  done_.clear();
  if (efd_ >= 0) ::close(efd_);
}

int Resolver::open() {
  if (efd_ >= 0) return 0;
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return -errno;
  efd_ = fd;
  return 0;
}

bool Resolver::start_worker() {
  // The workers must not take the host program's signals: block them all in
  // the new thread (it inherits the mask of the thread that creates it).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  bool ok = true;
  try {
    threads_.emplace_back([this] { worker(); });
  } catch (const std::exception&) {  // std::system_error, std::bad_alloc
    ok = false;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

int Resolver::submit(std::unique_ptr<ResolveJob>& job) {
  if (efd_ < 0) return -EBADF;
  if (!job) return -EINVAL;
  std::unique_lock<std::mutex> lock(mu_);
  // One more thread when every one is busy, up to the maximum.
  if (idle_ <= queue_.size() && threads_.size() < max_threads_) {
    bool started = start_worker();
    if (!started && threads_.empty()) return -EAGAIN;
  }
  try {
    queue_.push_back(job.get());
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  job.release()->state = ResolveJob::State::queued;
  pending_++;
  lock.unlock();
  work_cv_.notify_one();
  return 0;
}

void Resolver::cancel(ResolveJob* job) {
  if (!job) return;
  std::lock_guard<std::mutex> lock(mu_);
  switch (job->state) {
    case ResolveJob::State::queued:
      if (erase_one(queue_, job)) {
        pending_--;
        delete job;
      }
      break;
    case ResolveJob::State::running:
      job->state = ResolveJob::State::cancelled;  // its worker deletes it
      pending_--;
      break;
    case ResolveJob::State::done:
      if (erase_one(done_, job)) {
        pending_--;
        delete job;
      }
      break;
    default:
      break;
  }
}

std::unique_ptr<ResolveJob> Resolver::take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (done_.empty()) return nullptr;
  ResolveJob* job = done_.front();
  done_.pop_front();
  job->state = ResolveJob::State::idle;
  pending_--;
  return std::unique_ptr<ResolveJob>(job);
}

void Resolver::clear_signal() {
  if (efd_ < 0) return;
  eventfd_t value;
  while (::eventfd_read(efd_, &value) < 0 && errno == EINTR) {
  }
}

void Resolver::signal() {
  if (efd_ < 0) return;
  while (::eventfd_write(efd_, 1) < 0 && errno == EINTR) {
  }
}

size_t Resolver::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

size_t Resolver::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_.size();
}

size_t Resolver::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

void Resolver::set_delay(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_ = seconds > 0 && std::isfinite(seconds) ? seconds : 0;
}

double Resolver::delay() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delay_;
}

void Resolver::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!stop_ && queue_.empty()) {
      idle_++;
      work_cv_.wait(lock);
      idle_--;
    }
    if (stop_) return;
    ResolveJob* job = queue_.front();
    queue_.pop_front();
    job->state = ResolveJob::State::running;
    double delay = delay_;
    if (delay > 0) {  // the test hook: a slow lookup, cut short by stop
      auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay);
      while (!stop_ && std::chrono::steady_clock::now() < until) stop_cv_.wait_until(lock, until);
    }
    if (job->state == ResolveJob::State::running && !stop_) {
      // The inputs are ours while the job runs: the loop thread only flips
      // its state (under the lock) when it cancels it.
      lock.unlock();
      AddrList list;
      errno = 0;
      int eai = resolve(job->has_host ? job->host.c_str() : nullptr,
                        job->has_service ? job->service.c_str() : nullptr, job->socktype,
                        job->family, job->protocol, job->flags, list);
      int sys_errno = errno;
      lock.lock();
      job->eai = eai;
      job->sys_errno = sys_errno;
      job->result = std::move(list);
    } else if (job->state == ResolveJob::State::running) {
      job->eai = EAI_SYSTEM;  // stopping: the lookup never ran
      job->sys_errno = ECANCELED;
    }
    if (job->state == ResolveJob::State::cancelled) {
      delete job;
      continue;
    }
    job->state = ResolveJob::State::done;
    bool pushed = true;
    try {
      done_.push_back(job);
    } catch (const std::bad_alloc&) {
      pushed = false;
    }
    if (!pushed) {  // nowhere to report it: report nothing, but do not leak
      pending_--;
      delete job;
      continue;
    }
    signal();
  }
}

}  // namespace sock
