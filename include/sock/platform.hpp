// What the core's shared types need from the platform, in one place: the
// socket type and what a backend keeps in each operation. The system headers
// for sockaddr and friends come in here too. Error codes are errno values
// everywhere (error.hpp): a platform whose calls report errors otherwise
// (Windows' WSAGetLastError, NTSTATUS) converts them to errno values in its
// own files (src/core/win/error_map.cpp).
#pragma once

#include <cstdint>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <afunix.h>    // sockaddr_un (Windows 10 1803 and later have AF_UNIX stream sockets)
#include <iphlpapi.h>  // if_nametoindex, if_indextoname
#include <cerrno>
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cerrno>
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

// The network stack is ready to use: nothing to do on POSIX; Winsock's
// WSAStartup, once per process, on Windows. Calls that need it make it.
#if defined(_WIN32)
int network_init();  // 0 or -errno
#else
inline int network_init() { return 0; }
#endif

// The MSG_* flags a send or receive call may pass on to the system.
#if defined(_WIN32)
constexpr long long known_msg_flags = MSG_OOB | MSG_PEEK | MSG_DONTROUTE | MSG_WAITALL;
#elif defined(__linux__)
constexpr long long known_msg_flags = MSG_OOB | MSG_PEEK | MSG_DONTROUTE | MSG_DONTWAIT | MSG_WAITALL | MSG_EOR |
                                      MSG_NOSIGNAL | MSG_MORE | MSG_TRUNC | MSG_CTRUNC | MSG_CONFIRM |
                                      MSG_ERRQUEUE | MSG_CMSG_CLOEXEC;
#else
constexpr long long known_msg_flags = MSG_OOB | MSG_PEEK | MSG_DONTROUTE | MSG_DONTWAIT | MSG_WAITALL | MSG_EOR |
                                      MSG_TRUNC | MSG_CTRUNC;
#endif

// The error of the socket call that just failed, as an errno value:
// errno on POSIX; on Windows, WSAGetLastError() mapped (wsa_errno).
#if defined(_WIN32)
int last_socket_error();
int wsa_errno(int wsa_error);
#else
inline int last_socket_error() { return errno; }
#endif

// Per-operation memory a backend of this platform needs while the op is in
// flight and must not allocate. Nothing on POSIX, where io_uring's per-op
// memory comes from its pool (Operation::backend_data). On Windows the IOCP
// backend's request: the OVERLAPPED the kernel writes, the buffer descriptor
// (WSASend's documentation wants it valid until the request completes) and
// what is written back on completion (flags, an address's length), and the
// links of the poller's list of requests in flight. Every socket holds two
// of these, so nothing else is here: the op is found from the OVERLAPPED's
// address, and AcceptEx's socket and address block are lent by the poller
// (Operation::backend_data) while an accept is in flight, since only
// listeners accept.
#if defined(_WIN32)
struct PlatformOpState {
  OVERLAPPED overlapped;           // first: a completion's OVERLAPPED* is this struct's address
  PlatformOpState* prev = nullptr; // the poller's list of requests in flight
  PlatformOpState* next = nullptr;
  WSABUF wsabuf{};
  DWORD flags = 0;                 // WSARecv/WSARecvFrom's in-out flags
  INT addrlen = 0;                 // WSARecvFrom's in-out address length
  bool in_flight = false;
};
#else
struct PlatformOpState {};
#endif

}  // namespace sock

// errno names POSIX has and Windows' C runtimes lack: values of our own,
// beyond theirs, so that error.cpp can name them everywhere.
#if defined(_WIN32)
#ifndef EHOSTDOWN
#define EHOSTDOWN 10064
#endif
#ifndef ESHUTDOWN
#define ESHUTDOWN 10058
#endif
#ifndef EAI_SYSTEM
#define EAI_SYSTEM (-11)
#endif
#ifndef EAI_ADDRFAMILY
#define EAI_ADDRFAMILY (-9)
#endif
#ifndef EAI_OVERFLOW
#define EAI_OVERFLOW (-12)
#endif
#ifndef SHUT_RD
#define SHUT_RD SD_RECEIVE
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH
#endif
#endif
