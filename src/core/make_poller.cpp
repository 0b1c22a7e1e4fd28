// Picks the backend at start-up: the one asked for (SOCK_BACKEND, or
// sock.backend() from Lua) if it can run here, else the platform default.
#include <cerrno>
#include <cstring>

#include "sock/poller.hpp"

namespace sock {

#ifndef SOCK_HAVE_URING
std::unique_ptr<Poller> make_uring_poller(int* err) {
  if (err) *err = ENOSYS;
  return nullptr;
}
#endif

std::unique_ptr<Poller> make_poller(const char* name, const char** fallback_reason) {
  if (fallback_reason) *fallback_reason = nullptr;
  if (name && (!std::strcmp(name, "io_uring") || !std::strcmp(name, "uring"))) {
    int err = 0;
    if (auto p = make_uring_poller(&err)) return p;
    if (fallback_reason)
      *fallback_reason = err == ENOSYS ? "io_uring support not built in" : "io_uring could not be set up";
  }
  return make_epoll_poller(nullptr);
}

}  // namespace sock
