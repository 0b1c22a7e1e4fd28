// Sockets on Windows: Winsock calls behind the same Socket as on POSIX. Every
// socket is made for overlapped I/O (the IOCP poller's requests) and
// non-blocking (the loop's first try of an op must never block), and is not
// inherited by child processes.
#include "sock/socket.hpp"

#include "win.hpp"

#include <cerrno>
#include <cstring>

namespace sock {

static int check(int rc) { return rc == SOCKET_ERROR ? -last_socket_error() : rc; }

SOCKET open_socket(int family, int type, int protocol) {
  if (network_init() < 0) {
    WSASetLastError(WSASYSNOTREADY);
    return INVALID_SOCKET;
  }
  SOCKET s = WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return s;
  u_long on = 1;
  if (ioctlsocket(s, FIONBIO, &on) == SOCKET_ERROR) {
    int e = WSAGetLastError();
    closesocket(s);
    WSASetLastError(e);
    return INVALID_SOCKET;
  }
  return s;
}

const WinsockExtensions& winsock_extensions() {
  static const WinsockExtensions ext = [] {
    WinsockExtensions x;
    SOCKET s = open_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET) return x;
    auto get = [s](GUID guid, void* out, size_t size) {
      DWORD bytes = 0;
      if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, out, (DWORD)size, &bytes, nullptr,
                   nullptr) == SOCKET_ERROR)
        std::memset(out, 0, size);
    };
    get(WSAID_ACCEPTEX, &x.accept_ex, sizeof x.accept_ex);
    get(WSAID_CONNECTEX, &x.connect_ex, sizeof x.connect_ex);
    get(WSAID_GETACCEPTEXSOCKADDRS, &x.get_accept_ex_sockaddrs, sizeof x.get_accept_ex_sockaddrs);
    get(WSAID_TRANSMITFILE, &x.transmit_file, sizeof x.transmit_file);
    closesocket(s);
    return x;
  }();
  return ext;
}

int Socket::open(int family_, int type_, int protocol_) {
  close();
  SOCKET s = open_socket(family_, type_, protocol_);
  if (s == INVALID_SOCKET) return -last_socket_error();
  adopt(s, family_, type_, protocol_);
  return 0;
}

int Socket::connect(const sockaddr* addr, socklen_t len) {
  if (::connect(io.fd, addr, len) == 0) return 0;
  int e = last_socket_error();
  return e == EAGAIN ? -EINPROGRESS : -e;  // WSAEWOULDBLOCK: connecting in the background
}

int Socket::disconnect() {
  sockaddr_storage zero{};
  zero.ss_family = (ADDRESS_FAMILY)family;
  int len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  return check(::connect(io.fd, (const sockaddr*)&zero, len));
}

int Socket::close() {
  if (io.fd == INVALID_SOCKET) return 0;
  SOCKET s = io.fd;
  io.fd = INVALID_SOCKET;
  return check(closesocket(s));
}

int close_descriptor(socket_t fd) {
  if (fd == INVALID_SOCKET) return 0;
  return check(closesocket(fd));
}

// Windows has no socketpair(): the pair is two loopback sockets connected to
// each other. For a stream, through a listener on an ephemeral port that
// lives only meanwhile; the accepted end must be the one we connected, not
// some other local process racing us to the port.
const int socketpair_family = AF_INET;

static int stream_pair(SOCKET fds[2]) {
  SOCKET listener = open_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (listener == INVALID_SOCKET) return -last_socket_error();
  SOCKET a = INVALID_SOCKET, b = INVALID_SOCKET;
  int rc = 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int len = sizeof addr;
  // The listener is blocking meanwhile: accept() waits for our own connect.
  u_long off = 0, on = 1;
  if (::bind(listener, (sockaddr*)&addr, sizeof addr) == SOCKET_ERROR ||
      getsockname(listener, (sockaddr*)&addr, &len) == SOCKET_ERROR || ::listen(listener, 1) == SOCKET_ERROR ||
      ioctlsocket(listener, FIONBIO, &off) == SOCKET_ERROR) {
    rc = -last_socket_error();
  } else if ((a = open_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)) == INVALID_SOCKET) {
    rc = -last_socket_error();
  } else if (::connect(a, (sockaddr*)&addr, sizeof addr) == SOCKET_ERROR && WSAGetLastError() != WSAEWOULDBLOCK) {
    rc = -last_socket_error();
  } else {
    sockaddr_in mine{}, peer{};
    int mine_len = sizeof mine;
    getsockname(a, (sockaddr*)&mine, &mine_len);
    for (int tries = 0; tries < 8 && rc == 0; tries++) {
      // Our own connect arrives at once on loopback; never wait forever.
      fd_set ready;
      FD_ZERO(&ready);
      FD_SET(listener, &ready);
      timeval limit{5, 0};
      if (select(0, &ready, nullptr, nullptr, &limit) != 1) {
        rc = -ETIMEDOUT;
        break;
      }
      int peer_len = sizeof peer;
      b = ::accept(listener, (sockaddr*)&peer, &peer_len);
      if (b == INVALID_SOCKET) {
        rc = -last_socket_error();
      } else if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr) {
        break;
      } else {
        closesocket(b);  // someone else's
        b = INVALID_SOCKET;
      }
    }
    if (rc == 0 && b == INVALID_SOCKET) rc = -ECONNREFUSED;
    // The connect has completed once its peer was accepted.
    if (rc == 0 && ioctlsocket(b, FIONBIO, &on) == SOCKET_ERROR) rc = -last_socket_error();
  }
  closesocket(listener);
  if (rc < 0) {
    if (a != INVALID_SOCKET) closesocket(a);
    if (b != INVALID_SOCKET) closesocket(b);
    return rc;
  }
  // accept() gives a socket like its listener's: overlapped, and (made
  // by WSASocket with WSA_FLAG_NO_HANDLE_INHERIT) not inherited.
  fds[0] = a;
  fds[1] = b;
  return 0;
}

static int datagram_pair(SOCKET fds[2]) {
  SOCKET s[2] = {INVALID_SOCKET, INVALID_SOCKET};
  sockaddr_in addr[2]{};
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    s[i] = open_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    addr[i].sin_family = AF_INET;
    addr[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof addr[i];
    if (s[i] == INVALID_SOCKET || ::bind(s[i], (sockaddr*)&addr[i], sizeof addr[i]) == SOCKET_ERROR ||
        getsockname(s[i], (sockaddr*)&addr[i], &len) == SOCKET_ERROR)
      rc = -last_socket_error();
  }
  for (int i = 0; i < 2 && rc == 0; i++)
    if (::connect(s[i], (sockaddr*)&addr[1 - i], sizeof addr[1 - i]) == SOCKET_ERROR) rc = -last_socket_error();
  if (rc < 0) {
    for (SOCKET x : s)
      if (x != INVALID_SOCKET) closesocket(x);
    return rc;
  }
  fds[0] = s[0];
  fds[1] = s[1];
  return 0;
}

int make_socketpair(int type, socket_t fds[2]) {
  if (type == SOCK_STREAM) return stream_pair(fds);
  if (type == SOCK_DGRAM) return datagram_pair(fds);
  return -EPROTONOSUPPORT;
}

int max_listen_backlog() { return SOMAXCONN; }

}  // namespace sock
