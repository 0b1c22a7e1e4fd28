// What the Windows files of the core share. Internal to the core.
#pragma once

#include "sock/platform.hpp"

namespace sock {

// A Win32 error (GetLastError, a completion's status) as an errno value.
int win32_errno(DWORD error);

// Winsock's extension functions, looked up once (WSAIoctl on a socket of the
// process's own: a plain import of GetAcceptExSockaddrs misbehaves under
// Wine). Null members when the lookup failed.
struct WinsockExtensions {
  LPFN_ACCEPTEX accept_ex = nullptr;
  LPFN_CONNECTEX connect_ex = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs = nullptr;
  LPFN_TRANSMITFILE transmit_file = nullptr;
};
const WinsockExtensions& winsock_extensions();

// A non-blocking, non-inheritable socket made for overlapped I/O, or
// INVALID_SOCKET with the error in WSAGetLastError.
SOCKET open_socket(int family, int type, int protocol);

struct FileSend;
// A send_file step's bookkeeping (file_send.cpp), for the poller's requests:
// n bytes of the copy buffer went out; n bytes went by TransmitFile.
void file_send_copied(FileSend& f, size_t n);
void file_send_transmitted(FileSend& f, size_t n);

}  // namespace sock
