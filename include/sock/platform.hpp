// What the core's shared types need from the platform, in one place: the
// socket type and what a backend keeps in each operation. The system headers
// for sockaddr and friends come in here too. Error codes are errno values
// everywhere (error.hpp): a platform whose calls report errors otherwise
// (Windows' WSAGetLastError) converts them to errno values in its own files.
#pragma once

#include <cstdint>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#include <sys/types.h>
#endif

namespace sock {

#if defined(_WIN32)
using socket_t = SOCKET;
constexpr socket_t invalid_socket = INVALID_SOCKET;
#else
using socket_t = int;
constexpr socket_t invalid_socket = -1;
#endif

// Abstract unix socket names ("\0name", written '@name') are Linux's own.
#if defined(__linux__)
constexpr bool has_abstract_unix_names = true;
#else
constexpr bool has_abstract_unix_names = false;
#endif

// Per-operation memory a backend of this platform needs while the op is in
// flight and must not allocate (IOCP: the OVERLAPPED). Nothing on POSIX, where
// io_uring's per-op memory comes from its pool (Operation::backend_data).
struct PlatformOpState {};

}  // namespace sock
