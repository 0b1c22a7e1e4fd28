/*
 * c_tls_echo: the C baseline for the TLS benchmarks: an echo server over
 * TLS with OpenSSL 3.
 *
 * One thread, non-blocking sockets, edge-triggered epoll with each socket
 * registered once (EPOLLIN|EPOLLOUT|EPOLLET), as servers/c_echo.c. OpenSSL
 * runs on memory BIOs, the way sock's TLS engine does
 * (src/core/tls_openssl.cpp): the ciphertext read from the socket is fed
 * into the SSL's read BIO, the SSL reads and writes plaintext and never
 * touches the socket, and what it wrote for the network is taken from its
 * write BIO and sent. Every byte that arrives is written back as soon as it
 * is decrypted. What the kernel does not take is kept, and the connection is
 * not read again until it has drained (backpressure).
 *
 * The context is made as sock's server context is: TLS_server_method, at
 * least TLS 1.2, partial writes and moving write buffers allowed, no client
 * certificates, OpenSSL's default cipher suites, groups and session tickets.
 * The client picks TLS 1.3 and the suite; the certificate and key are the
 * same files the sock server gets.
 *
 * When the peer's close_notify comes the server queues its own, sends it
 * once (as sock's conn:close() does) and closes. Listens on 127.0.0.1:PORT
 * with TCP_NODELAY on the listening socket (accepted sockets inherit it).
 *
 * usage: c_tls_echo PORT CERT.pem KEY.pem
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

#include <openssl/err.h>
#include <openssl/ssl.h>

#define INSZ 65536  /* ciphertext read per recv */
#define OUTSZ 65536 /* ciphertext taken from the write BIO per send */
#define PLAINSZ 16384 /* one TLS record of plaintext */

struct conn {
    int fd;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int handshaken;
    char *pend;       /* ciphertext taken from wbio and not yet sent, or NULL */
    size_t poff, plen;
};

static char inbuf[INSZ];
static char outbuf[OUTSZ];
static char plain[PLAINSZ];
static SSL_CTX *ctx;
static int ep;
static int lfd;
static int spare_fd = -1; /* reserve fd for accepting under EMFILE */
static volatile sig_atomic_t quit = 0;
static struct conn listener_tag;
static unsigned long handshake_failures;

static void on_term(int sig) { (void)sig; quit = 1; }

static void conn_free(struct conn *c) {
    close(c->fd); /* removes it from the epoll set */
    SSL_free(c->ssl); /* and its BIOs */
    free(c->pend);
    free(c);
}

/* send c->pend; 1 when drained, 0 when the socket is full, -1 on error */
static int send_pending(struct conn *c) {
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

/* send what the SSL wrote for the network: 1 when all of it went, 0 when the
 * socket is full (the rest is kept), -1 on error */
static int flush_out(struct conn *c) {
    if (c->pend) {
        int r = send_pending(c);
        if (r <= 0) return r;
    }
    while (BIO_ctrl_pending(c->wbio) > 0) {
        int len = BIO_read(c->wbio, outbuf, OUTSZ);
        if (len <= 0) break;
        size_t off = 0;
        while (off < (size_t)len) {
            ssize_t n = send(c->fd, outbuf + off, (size_t)len - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                c->plen = (size_t)len - off;
                c->poff = 0;
                c->pend = malloc(c->plen);
                if (!c->pend) return -1;
                memcpy(c->pend, outbuf + off, c->plen);
                return 0;
            } else {
                return -1;
            }
        }
    }
    return 1;
}

/* run the SSL over the ciphertext fed so far: the handshake, then decrypt
 * every complete record and write it back. Returns 0 when it needs more
 * input, 1 when the peer sent close_notify, -1 on error. */
static int process(struct conn *c) {
    ERR_clear_error();
    if (!c->handshaken) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) return 0;
            handshake_failures++;
            if (handshake_failures <= 3) {
                unsigned long code = ERR_peek_error();
                fprintf(stderr, "c_tls_echo: handshake failed: %s\n",
                        code ? ERR_reason_error_string(code) : "peer closed");
            }
            ERR_clear_error();
            return -1;
        }
        c->handshaken = 1;
    }
    for (;;) {
        size_t n = 0;
        int r = SSL_read_ex(c->ssl, plain, PLAINSZ, &n);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ) return 0;
            if (e == SSL_ERROR_ZERO_RETURN) return 1;
            return -1;
        }
        size_t off = 0;
        while (off < n) { /* a memory BIO grows: the write completes */
            size_t w = 0;
            if (SSL_write_ex(c->ssl, plain + off, n - off, &w) != 1) {
                ERR_clear_error();
                return -1;
            }
            off += w;
        }
    }
}

/* close_notify (one try, as sock's conn:close() without a deadline) */
static void say_goodbye(struct conn *c) {
    if (SSL_shutdown(c->ssl) >= 0) (void)flush_out(c);
    ERR_clear_error();
}

/* everything readable; returns -1 when the connection must be closed */
static int handle(struct conn *c) {
    int r = flush_out(c);
    if (r <= 0) return r; /* still full: wait for the next EPOLLOUT edge */
    for (;;) {
        ssize_t n = recv(c->fd, inbuf, INSZ, 0);
        if (n > 0) {
            BIO_write(c->rbio, inbuf, (int)n); /* a memory BIO grows: only OOM fails */
        } else if (n == 0) {
            return -1; /* the stream ended without close_notify */
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            return 0;
        } else {
            return -1;
        }
        int p = process(c);
        if (p < 0) {
            (void)flush_out(c); /* the alert, if there is one */
            return -1;
        }
        if (p == 1) {
            say_goodbye(c);
            return -1;
        }
        r = flush_out(c);
        if (r <= 0) return r; /* full: stop reading until it drains */
        /* a short read: the receive queue was empty; a later arrival raises
         * a new edge (as in c_echo.c) */
        if ((size_t)n < INSZ) return 0;
    }
}

static void accept_all(void) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) return;
            if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
                close(spare_fd);
                fd = accept(lfd, NULL, NULL);
                if (fd >= 0) close(fd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fprintf(stderr, "c_tls_echo: out of file descriptors, dropped a connection\n");
                continue;
            }
            perror("accept4");
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        SSL *ssl = SSL_new(ctx);
        BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
        if (!c || !ssl || !rbio || !wbio) {
            free(c);
            SSL_free(ssl);
            BIO_free(rbio);
            BIO_free(wbio);
            close(fd);
            continue;
        }
        BIO_set_mem_eof_return(rbio, -1); /* empty means "wait for more" */
        SSL_set_bio(ssl, rbio, wbio);
        SSL_set_accept_state(ssl);
        c->fd = fd;
        c->ssl = ssl;
        c->rbio = rbio;
        c->wbio = wbio;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl");
            conn_free(c);
            continue;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: c_tls_echo PORT CERT.pem KEY.pem\n");
        return 2;
    }
    int port = atoi(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "c_tls_echo: cannot use %s / %s:\n", argv[2], argv[3]);
        ERR_print_errors_fp(stderr);
        return 1;
    }

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
    if (handshake_failures)
        fprintf(stderr, "c_tls_echo: %lu failed handshakes\n", handshake_failures);
    close(lfd);
    close(ep);
    SSL_CTX_free(ctx);
    return 0;
}
