// Windows errors as the errno values the rest of the core speaks (see
// error.hpp): Winsock's WSAE* codes, and the Win32 errors a completion
// reports. Also Winsock's start-up, which every socket call needs first.
#include <cerrno>

#include "sock/platform.hpp"
#include "win.hpp"

namespace sock {

int network_init() {
  // Once per process, the first time anything needs the network. Winsock
  // counts its users; ours is never given back (a process that loaded sock
  // keeps Winsock until it exits, which is when it would be cleaned up).
  static const int rc = [] {
    WSADATA data;
    int e = WSAStartup(MAKEWORD(2, 2), &data);
    return e ? -wsa_errno(e) : 0;
  }();
  return rc;
}

int wsa_errno(int e) {
  switch (e) {
    case 0: return 0;
    case WSAEINTR: return EINTR;
    case WSAEBADF:
    case WSAENOTSOCK: return ENOTSOCK;
    case WSAEACCES: return EACCES;
    case WSAEFAULT:
    case WSAEINVAL: return EINVAL;
    case WSAEMFILE: return EMFILE;
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINPROGRESS: return EINPROGRESS;
    case WSAEALREADY: return EALREADY;
    case WSAEDESTADDRREQ: return EDESTADDRREQ;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAEPROTOTYPE: return EPROTOTYPE;
    case WSAENOPROTOOPT: return ENOPROTOOPT;
    case WSAEPROTONOSUPPORT:
    case WSAESOCKTNOSUPPORT: return EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSAEPFNOSUPPORT:
    case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAENETDOWN: return ENETDOWN;
    case WSAENETUNREACH: return ENETUNREACH;
    case WSAENETRESET: return ECONNRESET;  // (a keep-alive failure ends the connection)
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNRESET: return ECONNRESET;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEISCONN: return EISCONN;
    case WSAENOTCONN: return ENOTCONN;
    case WSAESHUTDOWN: return EPIPE;  // sending after shutdown('w'): POSIX says EPIPE
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAENAMETOOLONG: return ENAMETOOLONG;
    case WSAEHOSTDOWN: return EHOSTDOWN;
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case WSA_OPERATION_ABORTED:
    case WSAECANCELLED:
    case WSA_E_CANCELLED: return ECANCELED;
    case WSA_NOT_ENOUGH_MEMORY: return ENOMEM;
    case WSANOTINITIALISED:
    case WSASYSNOTREADY: return ENETDOWN;
    default: return win32_errno((DWORD)e);
  }
}

int win32_errno(DWORD e) {
  switch (e) {
    case ERROR_SUCCESS: return 0;
    case ERROR_OPERATION_ABORTED:
    case 676:  // ERROR_HANDLES_CLOSED (Wine: a pending op whose socket was closed; not in every SDK)
    case ERROR_CANCELLED: return ECANCELED;
    case ERROR_CONNECTION_REFUSED: return ECONNREFUSED;
    case ERROR_CONNECTION_ABORTED: return ECONNABORTED;
    case ERROR_NETNAME_DELETED: return ECONNRESET;
    case ERROR_NETWORK_UNREACHABLE: return ENETUNREACH;
    case ERROR_HOST_UNREACHABLE: return EHOSTUNREACH;
    case ERROR_PORT_UNREACHABLE: return ECONNREFUSED;
    case ERROR_SEM_TIMEOUT: return ETIMEDOUT;
    case ERROR_BROKEN_PIPE: return EPIPE;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_INVALID_HANDLE: return EBADF;
    case ERROR_INVALID_PARAMETER: return EINVAL;
    case ERROR_ACCESS_DENIED: return EACCES;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: return ENOENT;
    case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
    case ERROR_MORE_DATA: return EMSGSIZE;  // a datagram larger than the buffer
    case ERROR_NOT_SUPPORTED: return EOPNOTSUPP;
    case ERROR_IO_PENDING: return EINPROGRESS;
    default:
      if (e >= WSABASEERR && e < WSABASEERR + 2000) return wsa_errno((int)e);
      return EIO;
  }
}

int last_socket_error() { return wsa_errno(WSAGetLastError()); }

}  // namespace sock
