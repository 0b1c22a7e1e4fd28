// What every backend does the same way unless it knows better (see
// poller.hpp), with Winsock's calls.
#include "sock/loop.hpp"
#include "sock/poller.hpp"
#include "win.hpp"

namespace sock {

bool Poller::try_now(Operation& op) { return Loop::try_now(op); }

int Poller::close(IoHandle& handle) {
  forget(handle);
  SOCKET s = handle.fd;
  handle.fd = INVALID_SOCKET;
  if (s != INVALID_SOCKET && closesocket(s) == SOCKET_ERROR) return -last_socket_error();
  return 0;
}

int Poller::shutdown(IoHandle& handle, int how) {
  return ::shutdown(handle.fd, how) == SOCKET_ERROR ? -last_socket_error() : 0;
}

}  // namespace sock
