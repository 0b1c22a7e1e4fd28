/*
 * c_echo: the baseline echo server for the benchmarks.
 *
 * One thread, non-blocking sockets, edge-triggered epoll with each socket
 * registered once (EPOLLIN|EPOLLOUT|EPOLLET, never modified afterwards).
 * Reads go into one shared 64 KiB buffer and are written straight back; what
 * the kernel does not take is kept in a per-connection pending buffer, and
 * the connection is not read again until that buffer has drained
 * (backpressure). Listens on 127.0.0.1:PORT.
 *
 * usage: c_echo PORT [nodelay]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ 65536

struct conn {
    int fd;
    char *pend;      /* unsent bytes, or NULL */
    size_t poff, plen;
};

static char buf[BUFSZ];
static int ep;
static int lfd;
static int spare_fd = -1; /* reserve fd for accepting under EMFILE */
static int use_nodelay = 0;
static volatile sig_atomic_t quit = 0;
static struct conn listener_tag;

static void on_term(int sig) { (void)sig; quit = 1; }

static void conn_free(struct conn *c) {
    close(c->fd); /* removes it from the epoll set */
    free(c->pend);
    free(c);
}

/* write as much of the pending buffer as the socket takes.
 * Returns 1 when drained, 0 when the socket is full, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->poff < c->plen) {
        ssize_t n = send(c->fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
        if (n > 0) {
            c->poff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return 0;
        } else {
            return -1;
        }
    }
    free(c->pend);
    c->pend = NULL;
    c->poff = c->plen = 0;
    return 1;
}

/* echo everything readable; returns -1 when the connection must be closed */
static int handle(struct conn *c) {
    if (c->pend) {
        int r = flush_pending(c);
        if (r <= 0) return r; /* still full: wait for the next EPOLLOUT edge */
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, BUFSZ, 0);
        if (n > 0) {
            size_t off = 0;
            while (off < (size_t)n) {
                ssize_t w = send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
                if (w > 0) {
                    off += (size_t)w;
                } else if (w < 0 && errno == EINTR) {
                    continue;
                } else if (w < 0 && errno == EAGAIN) {
                    /* keep the rest and stop reading until it drains */
                    c->plen = (size_t)n - off;
                    c->poff = 0;
                    c->pend = malloc(c->plen);
                    if (!c->pend) return -1;
                    memcpy(c->pend, buf + off, c->plen);
                    return 0;
                } else {
                    return -1;
                }
            }
            /* A short read means the receive queue was empty at that point;
             * any later arrival (data or FIN) raises a new edge, so waiting
             * now is safe and saves the recv() that would return EAGAIN. */
            if ((size_t)n < BUFSZ) return 0;
        } else if (n == 0) {
            return -1; /* EOF: nothing pending (we never read while pending) */
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            return 0;
        } else {
            return -1;
        }
    }
}

static void accept_all(void) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) return;
            if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
                /* out of fds: take the connection with the spare fd and drop
                 * it, so the listener does not stay readable forever */
                close(spare_fd);
                fd = accept(lfd, NULL, NULL);
                if (fd >= 0) close(fd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fprintf(stderr, "c_echo: out of file descriptors, dropped a connection\n");
                continue;
            }
            perror("accept4");
            return;
        }
        if (use_nodelay) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl");
            close(fd);
            free(c);
            continue;
        }
        /* data may already be waiting (it arrived before registration; the
         * ADD reports it as an edge anyway, so nothing more to do here) */
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c_echo PORT [nodelay]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (argc > 2 && !strcmp(argv[2], "nodelay")) use_nodelay = 1;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bind");
        return 1;
    }
    if (listen(lfd, SOMAXCONN) < 0) {
        perror("listen");
        return 1;
    }
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = &listener_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("epoll_ctl");
        return 1;
    }

    struct epoll_event evs[256];
    while (!quit) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &listener_tag) {
                accept_all();
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            /* errors (EPOLLERR/EPOLLHUP) surface as a failing recv/send */
            if (handle(c) < 0) conn_free(c);
        }
    }
    close(lfd);
    close(ep);
    return 0;
}
