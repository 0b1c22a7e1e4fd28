// The calls whose spelling differs between POSIX systems, each in one place.
// Linux has one-call forms (accept4 and SOCK_NONBLOCK | SOCK_CLOEXEC,
// MSG_NOSIGNAL, sendfile(2), eventfd); elsewhere, or on Linux when built with
// SOCK_PORTABLE_POSIX (which is how the portable forms are tested here), the
// same is done with the calls every POSIX system has: fcntl after socket() and
// accept(), SO_NOSIGPIPE where MSG_NOSIGNAL is missing (macOS), the BSD and
// macOS sendfile signatures, a pipe. Internal to the core.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

namespace sock {

#if defined(__linux__) && !defined(SOCK_PORTABLE_POSIX)
constexpr bool portable_paths = false;
#else
constexpr bool portable_paths = true;
#endif

// Flags every send/sendto/sendmsg adds so that a peer gone away gives EPIPE
// instead of a SIGPIPE that would kill the host. macOS has no MSG_NOSIGNAL:
// there the socket carries SO_NOSIGPIPE from its creation (set_nosigpipe).
#ifdef MSG_NOSIGNAL
constexpr int portable_send_flags = MSG_NOSIGNAL;
#else
constexpr int portable_send_flags = 0;
#endif

// A non-blocking, close-on-exec socket (with SO_NOSIGPIPE where that is how
// SIGPIPE is kept away): the fd, or -1 with errno.
int portable_socket(int family, int type, int protocol);
// The same for both ends of a socketpair: 0, or -1 with errno.
int portable_socketpair(int family, int type, int protocol, int fds[2]);
// accept() a connection as a non-blocking, close-on-exec socket: the fd, or
// -1 with errno (EAGAIN when there is none).
int portable_accept(int fd, sockaddr* addr, socklen_t* addrlen);
// Make an fd made elsewhere non-blocking and close-on-exec: 0 or -1 with errno.
int set_nonblock_cloexec(int fd);

// The zero-copy file send where the system has one that works on a
// non-blocking socket (FreeBSD, macOS): bytes sent, or -1 with errno (EAGAIN
// once the socket is full and nothing went; ENOSYS where there is none, which
// makes the caller copy). `offset` null: from the file's own position.
long portable_sendfile(int sock_fd, int file_fd, long long* offset, size_t count);

}  // namespace sock
