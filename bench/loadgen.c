/*
 * loadgen: a small epoll load generator for echo servers (loopback only).
 *
 * Single thread, level-triggered epoll, non-blocking sockets. Every run is
 * bounded by a duration and by a hard time cap, and stops by itself.
 *
 * Modes:
 *   pingpong  C connections; each sends an S-byte message and waits for the
 *             whole echo before sending the next. Requests/s, p50/p99 latency.
 *   bulk      C connections stream S-byte chunks continuously (pipelined,
 *             at most W bytes in flight per connection) and count the bytes
 *             echoed back. MB/s (10^6 bytes/s) of echoed data.
 *   connrate  C concurrent slots; each does connect, one S-byte exchange,
 *             close, and starts over. Connections/s.
 *   idle      Opens N connections (C at a time), does one exchange on each,
 *             prints "READY ...", then holds them until SIGUSR1/SIGTERM/SIGINT
 *             or the duration passes; then checks every connection with one
 *             more exchange and reports how many were still alive.
 *
 * Every echoed byte is checked against what was sent.
 *
 * TLS (-T, in the build made with -DLOADGEN_TLS and -lssl -lcrypto, which
 * bench/run makes as out/loadgen_tls): pingpong, bulk and connrate run over
 * TLS 1.3 with OpenSSL, non-blocking on the socket (SSL_set_fd), the server's
 * certificate not verified (loopback, a certificate made for the run). No
 * session is ever resumed: every connection of connrate does a full
 * handshake (connect, handshake, one exchange, close_notify, close). The
 * plain modes do not change: the TLS code is in separate functions, left
 * out of the plain build.
 *
 * Output: one line "RESULT mode=... key=value ..." on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { M_PINGPONG, M_BULK, M_CONNRATE, M_IDLE };
static const char *mode_names[] = {"pingpong", "bulk", "connrate", "idle"};

/* connection states */
enum {
    S_FREE = 0,   /* slot unused */
    S_CONNECTING, /* non-blocking connect in progress */
    S_ACTIVE,     /* exchanging data */
    S_HELD,       /* idle mode: one exchange done, holding */
    S_DEAD        /* failed, closed */
};

struct conn {
    int fd;
    int state;
    int out_armed;  /* EPOLLOUT currently in the interest set */
    int src;        /* source address index used */
    uint32_t gen;   /* bumped on every open, so stale events are ignored */
    uint64_t sent;  /* bytes sent (of current message, or of the stream) */
    uint64_t rcvd;  /* bytes received (same) */
    uint64_t seq;   /* message number (pattern offset) */
    uint64_t t0;    /* start of current request / connect, ns */
    unsigned char *rbuf; /* S bytes, for message modes */
#ifdef LOADGEN_TLS
    SSL *ssl;       /* TLS: the session, from connect to close */
    int hs_done;    /* TLS: handshake finished */
#endif
};

/* ---- options ---- */
static int mode = -1;
static const char *host = "127.0.0.1";
static int port = 0;
static int nconns = 1;       /* connections (or concurrent slots) */
static int size = 64;        /* message / chunk size */
static double duration = 5;  /* measured seconds (idle: max hold time) */
static double warmup = 0.5;  /* seconds not counted */
static int nidle = 10000;    /* idle: number of connections to hold */
static long window = 4 << 20; /* bulk: max bytes in flight per connection */
static int nsrc = 8;         /* connrate/idle: source addresses 127.0.0.2.. */
static int nodelay = 1;
static int busy = 0;         /* poll without sleeping (epoll_wait timeout 0) */

/* ---- state ---- */
static int ep = -1;
static struct conn *conns;
static int nslots;
static unsigned char *pattern; /* 251-periodic pattern, len >= size + 251 */
static size_t pattern_len;
static unsigned char *scratch; /* bulk receive buffer */
static const size_t scratch_len = 256 * 1024;
static volatile sig_atomic_t stop_flag = 0;
static struct sockaddr_in dst;

/* stats */
static uint64_t count;          /* completed requests / bytes / connections */
static uint64_t errors;         /* connection errors */
static uint64_t mismatches;     /* echo content errors */
static uint64_t t_measure_start, t_measure_end;
static int measuring = 0;
static char first_error[128] = "";

/* latency histogram: 100 ns buckets up to 100 ms, plus overflow */
#define HIST_RES_NS 100
#define HIST_N 1000000
static uint32_t *hist;
static uint64_t hist_over, hist_count, lat_max_ns;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static void note_error(const char *what, int err) {
    errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s:%s", what,
                 err ? strerror(err) : "eof");
}

static void record_latency(uint64_t ns) {
    if (!measuring) return;
    if (ns / HIST_RES_NS < HIST_N) hist[ns / HIST_RES_NS]++;
    else hist_over++;
    hist_count++;
    if (ns > lat_max_ns) lat_max_ns = ns;
}

static double hist_pct(double p) {
    if (!hist_count) return 0;
    uint64_t want = (uint64_t)(p * (double)hist_count);
    if (want >= hist_count) want = hist_count - 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < HIST_N; i++) {
        acc += hist[i];
        if (acc > want) return (i * HIST_RES_NS + HIST_RES_NS / 2) / 1000.0;
    }
    return lat_max_ns / 1000.0;
}

/* ---- epoll helpers ---- */
static void ep_set(struct conn *c, int op, uint32_t events) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = (uint64_t)(c - conns) | ((uint64_t)c->gen << 32);
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
        perror("epoll_ctl");
        exit(2);
    }
}

static void arm_out(struct conn *c, int want) {
    if (c->out_armed == want) return;
    c->out_armed = want;
    ep_set(c, EPOLL_CTL_MOD, EPOLLIN | (want ? EPOLLOUT : 0));
}

static int inflight; /* idle mode: connections connecting or exchanging */

static void conn_close(struct conn *c, int newstate) {
    if (c->state == S_CONNECTING || c->state == S_ACTIVE) inflight--;
#ifdef LOADGEN_TLS
    if (c->ssl) {
        /* a finished exchange (connrate) ends with close_notify, sent once */
        if (newstate == S_FREE && c->hs_done) {
            (void)SSL_shutdown(c->ssl);
            ERR_clear_error();
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->hs_done = 0;
    }
#endif
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->state = newstate;
    c->out_armed = 0;
}

/* start a non-blocking connect on slot c. Returns 0 or -1. */
static int conn_open(struct conn *c) {
    static int next_src = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note_error("socket", errno);
        c->state = S_DEAD;
        return -1;
    }
    if (nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->src = -1;
    if ((mode == M_CONNRATE || mode == M_IDLE) && nsrc > 0 &&
        dst.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
        /* spread the 4-tuples over several loopback source addresses; the
         * port is chosen at connect() time so tuples to one server port can
         * share ports across source addresses */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        c->src = next_src;
        next_src = (next_src + 1) % nsrc;
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (uint32_t)c->src);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            note_error("bind", errno);
            close(fd);
            c->state = S_DEAD;
            return -1;
        }
    }
    c->fd = fd;
    c->gen++;
    inflight++;
    c->sent = c->rcvd = 0;
    c->t0 = now_ns();
    c->out_armed = 1;
    c->state = S_CONNECTING;
    int r = connect(fd, (struct sockaddr *)&dst, sizeof dst);
    if (r < 0 && errno != EINPROGRESS) {
        note_error("connect", errno);
        close(fd);
        c->fd = -1;
        c->state = S_DEAD;
        inflight--;
        return -1;
    }
    ep_set(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
    return 0;
}

/* message of request number seq: the pattern starting at seq % 251 */
static const unsigned char *msg_for(uint64_t seq) { return pattern + (seq % 251); }

static void start_next_conn(struct conn *c);

/* one completed exchange on a message-mode connection */
static void exchange_done(struct conn *c, uint64_t t) {
    if (memcmp(c->rbuf, msg_for(c->seq), (size_t)size) != 0) mismatches++;
    c->seq++;
    c->sent = c->rcvd = 0;
    if (mode == M_PINGPONG) {
        record_latency(t - c->t0);
        if (measuring) count++;
        c->t0 = t;
    } else if (mode == M_CONNRATE) {
        record_latency(t - c->t0); /* connect + exchange */
        if (measuring) count++;
        conn_close(c, S_FREE);
        if (!stop_flag) start_next_conn(c);
    } else if (mode == M_IDLE) {
        c->state = S_HELD;
        inflight--;
        count++;
        arm_out(c, 0);
    }
}

/* drive a message-mode connection (pingpong, connrate, idle). */
static void drive_msg(struct conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) {
            if (err == EINPROGRESS) return;
            note_error("connect", err);
            conn_close(c, S_DEAD);
            if (mode == M_CONNRATE && !stop_flag) start_next_conn(c);
            return;
        }
        c->state = S_ACTIVE;
        if (mode == M_PINGPONG) c->t0 = now_ns();
    }
    if (c->state == S_HELD) {
        /* nothing is expected on a held connection: data or EOF is an error */
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            char b[64];
            ssize_t n = recv(c->fd, b, sizeof b, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            note_error("held", n < 0 ? errno : 0);
            conn_close(c, S_DEAD);
        }
        return;
    }
    if (c->state != S_ACTIVE) return;
    for (;;) {
        int progressed = 0;
        if (c->sent < (uint64_t)size) {
            ssize_t n = send(c->fd, msg_for(c->seq) + c->sent, (size_t)size - c->sent,
                             MSG_NOSIGNAL);
            if (n > 0) {
                c->sent += (uint64_t)n;
                progressed = 1;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno != EAGAIN) {
                note_error("send", errno);
                conn_close(c, S_DEAD);
                if (mode == M_CONNRATE && !stop_flag) start_next_conn(c);
                return;
            }
            arm_out(c, c->sent < (uint64_t)size);
            if (c->sent == (uint64_t)size && !(ev & EPOLLIN)) return; /* wait for echo */
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rcvd, (size_t)size - c->rcvd, 0);
        if (n > 0) {
            c->rcvd += (uint64_t)n;
            if (c->rcvd > c->sent) mismatches++; /* echo of bytes never sent */
            if (c->rcvd == (uint64_t)size) {
                exchange_done(c, now_ns());
                if (c->state != S_ACTIVE || stop_flag) return;
                ev = 0; /* the next echo needs a new readiness report */
            }
            continue;
        } else if (n == 0) {
            note_error("recv", 0);
            conn_close(c, S_DEAD);
            if (mode == M_CONNRATE && !stop_flag) start_next_conn(c);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN) {
            note_error("recv", errno);
            conn_close(c, S_DEAD);
            if (mode == M_CONNRATE && !stop_flag) start_next_conn(c);
            return;
        }
        if (!progressed) return;
        ev = 0;
    }
}

/* drive a bulk connection */
static void drive_bulk(struct conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) {
            if (err == EINPROGRESS) return;
            note_error("connect", err);
            conn_close(c, S_DEAD);
            return;
        }
        c->state = S_ACTIVE;
    }
    if (c->state != S_ACTIVE) return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (int i = 0; i < 8; i++) {
            ssize_t n = recv(c->fd, scratch, scratch_len, 0);
            if (n > 0) {
                size_t off = (size_t)(c->rcvd % 251);
                if (memcmp(scratch, pattern + off, (size_t)n) != 0) mismatches++;
                c->rcvd += (uint64_t)n;
                if (c->rcvd > c->sent) mismatches++;
                if (measuring) count += (uint64_t)n;
                if ((size_t)n < scratch_len) break;
            } else if (n == 0) {
                note_error("recv", 0);
                conn_close(c, S_DEAD);
                return;
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN) {
                break;
            } else {
                note_error("recv", errno);
                conn_close(c, S_DEAD);
                return;
            }
        }
    }
    int want_out = 0;
    while (!stop_flag) {
        uint64_t infl = c->sent - c->rcvd;
        if (infl >= (uint64_t)window) break; /* wait for echoes */
        size_t len = (size_t)size;
        if ((uint64_t)len > (uint64_t)window - infl) len = (size_t)((uint64_t)window - infl);
        size_t off = (size_t)(c->sent % 251);
        ssize_t n = send(c->fd, pattern + off, len, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint64_t)n;
            if ((size_t)n < len) { want_out = 1; break; }
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            want_out = 1;
            break;
        } else {
            note_error("send", errno);
            conn_close(c, S_DEAD);
            return;
        }
    }
    arm_out(c, want_out);
}

#ifdef LOADGEN_TLS
/* ---- TLS (-T) ---- */
static int use_tls = 0;
static SSL_CTX *tls_ctx;
static uint64_t handshakes, resumed;          /* finished handshakes, resumed ones */
static char tls_version[32] = "", tls_cipher[64] = "", tls_group[32] = "";

/* a TLS failure: counted, and the first one's reason kept (without spaces,
 * for the RESULT line) */
static void tls_error(const char *what, int ssl_err) {
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (!why) why = ssl_err == SSL_ERROR_ZERO_RETURN ? "close_notify"
                    : ssl_err == SSL_ERROR_SYSCALL ? (errno ? strerror(errno) : "eof")
                    : "ssl_error";
    errors++;
    if (!first_error[0]) {
        snprintf(first_error, sizeof first_error, "tls_%s:%s", what, why);
        for (char *p = first_error; *p; p++)
            if (*p == ' ') *p = '_';
    }
    ERR_clear_error();
}

static void tls_fail(struct conn *c) {
    conn_close(c, S_DEAD);
    if (mode == M_CONNRATE && !stop_flag) start_next_conn(c);
}

/* connecting: 1 when connected (the session made), 0 to wait, -1 failed
 * (the slot closed, and reopened for connrate) */
static int tls_connected(struct conn *c, uint32_t ev) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == EINPROGRESS) return 0;
    if (err) {
        note_error("connect", err);
        tls_fail(c);
        return -1;
    }
    c->ssl = SSL_new(tls_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        tls_error("new", 0);
        tls_fail(c);
        return -1;
    }
    SSL_set_connect_state(c->ssl);
    c->hs_done = 0;
    c->state = S_ACTIVE;
    return 1;
}

/* the handshake, one step: 1 done, 0 wait (EPOLLOUT armed if it must
 * write), -1 failed (the slot closed, and reopened for connrate) */
static int tls_handshake(struct conn *c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->hs_done = 1;
        if (measuring) handshakes++;
        if (SSL_session_reused(c->ssl)) resumed++;
        if (!tls_version[0]) {
            snprintf(tls_version, sizeof tls_version, "%s", SSL_get_version(c->ssl));
            snprintf(tls_cipher, sizeof tls_cipher, "%s", SSL_get_cipher_name(c->ssl));
            int g = SSL_get_negotiated_group(c->ssl);
            const char *gn = g > 0 ? OBJ_nid2sn(g) : NULL;
            snprintf(tls_group, sizeof tls_group, "%s", gn ? gn : "?");
        }
        arm_out(c, 0);
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        arm_out(c, e == SSL_ERROR_WANT_WRITE);
        return 0;
    }
    tls_error("handshake", e);
    tls_fail(c);
    return -1;
}

/* pingpong and connrate over TLS: drive_msg's logic with SSL_read/SSL_write */
static void tls_drive_msg(struct conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING && tls_connected(c, ev) <= 0) return;
    if (c->state != S_ACTIVE) return;
    if (!c->hs_done) {
        if (tls_handshake(c) <= 0) return;
        if (mode == M_PINGPONG) c->t0 = now_ns();
        ev |= EPOLLIN; /* the server's tickets may have come with the handshake */
    }
    for (;;) {
        if (c->sent < (uint64_t)size) {
            size_t w = 0;
            ERR_clear_error();
            int r = SSL_write_ex(c->ssl, msg_for(c->seq) + c->sent, (size_t)size - c->sent, &w);
            if (r == 1) {
                c->sent += (uint64_t)w;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    arm_out(c, 1);
                    return;
                }
                if (e != SSL_ERROR_WANT_READ) {
                    tls_error("send", e);
                    tls_fail(c);
                    return;
                }
            }
            arm_out(c, c->sent < (uint64_t)size);
            if (c->sent == (uint64_t)size && !(ev & EPOLLIN) && !SSL_has_pending(c->ssl))
                return; /* wait for the echo */
        }
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(c->ssl, c->rbuf + c->rcvd, (size_t)size - c->rcvd, &n);
        if (r == 1) {
            c->rcvd += (uint64_t)n;
            if (c->rcvd > c->sent) mismatches++; /* echo of bytes never sent */
            if (c->rcvd == (uint64_t)size) {
                exchange_done(c, now_ns());
                if (c->state != S_ACTIVE || stop_flag) return;
                ev = 0; /* the next echo needs a new readiness report */
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return; /* level-triggered: EPOLLIN comes */
        if (e == SSL_ERROR_WANT_WRITE) {
            arm_out(c, 1);
            return;
        }
        tls_error("recv", e);
        tls_fail(c);
        return;
    }
}

/* bulk over TLS: drive_bulk's logic with SSL_read/SSL_write */
static void tls_drive_bulk(struct conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING && tls_connected(c, ev) <= 0) return;
    if (c->state != S_ACTIVE) return;
    if (!c->hs_done) {
        if (tls_handshake(c) <= 0) return;
        ev |= EPOLLIN;
    }
    int want_out = 0;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || SSL_has_pending(c->ssl)) {
        /* every record there is: the server echoes no more than was sent */
        for (;;) {
            size_t n = 0;
            ERR_clear_error();
            int r = SSL_read_ex(c->ssl, scratch, scratch_len, &n);
            if (r == 1) {
                size_t off = (size_t)(c->rcvd % 251);
                if (memcmp(scratch, pattern + off, n) != 0) mismatches++;
                c->rcvd += (uint64_t)n;
                if (c->rcvd > c->sent) mismatches++;
                if (measuring) count += (uint64_t)n;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) {
                want_out = 1;
                break;
            }
            tls_error("recv", e);
            tls_fail(c);
            return;
        }
    }
    while (!stop_flag && !want_out) {
        uint64_t infl = c->sent - c->rcvd;
        if (infl >= (uint64_t)window) break; /* wait for echoes */
        size_t len = (size_t)size;
        if ((uint64_t)len > (uint64_t)window - infl) len = (size_t)((uint64_t)window - infl);
        size_t off = (size_t)(c->sent % 251);
        size_t w = 0;
        ERR_clear_error();
        /* partial writes: each call writes a record or a few and says how
         * much; a retry after WANT_WRITE gives the same bytes again (the
         * same stream offset) and at least as many */
        int r = SSL_write_ex(c->ssl, pattern + off, len, &w);
        if (r == 1) {
            c->sent += (uint64_t)w;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            want_out = 1;
            break;
        }
        if (e == SSL_ERROR_WANT_READ) break;
        tls_error("send", e);
        tls_fail(c);
        return;
    }
    arm_out(c, want_out);
}

static int tls_init(void) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) return -1;
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(tls_ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF); /* full handshakes */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* read what the socket has in one go rather than a record header and
     * then its body: fewer recv calls on the load side */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(tls_ctx, 65536);
    return 0;
}
#endif

static int idle_opened = 0; /* idle: connections started so far */

static void start_next_conn(struct conn *c) {
    (void)conn_open(c);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen MODE -p PORT [options]\n"
            "  MODE: pingpong | bulk | connrate | idle\n"
            "  -h HOST   server IPv4 address (default 127.0.0.1; loopback only)\n"
            "  -p PORT   server port\n"
            "  -c N      connections (pingpong/bulk), concurrent slots (connrate/idle)\n"
            "  -s BYTES  message size (pingpong/connrate/idle) or chunk size (bulk)\n"
            "  -d SECS   measured duration (idle: longest hold)\n"
            "  -w SECS   warm-up before measuring (default 0.5)\n"
            "  -n N      idle: connections to open and hold (default 10000)\n"
            "  -W BYTES  bulk: max bytes in flight per connection (default 4 MiB)\n"
            "  -a N      connrate/idle: source addresses 127.0.0.2..(1+N) (default 8, 0 = none)\n"
            "  -N        do not set TCP_NODELAY\n"
            "  -b        busy-poll (never sleep in epoll_wait; the load core spins)\n"
#ifdef LOADGEN_TLS
            "  -T        TLS 1.3 (pingpong, bulk, connrate): full handshakes, no verification\n"
#endif
            );
    exit(2);
}

static void raise_nofile(long need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    if ((long)rl.rlim_cur >= need) return;
    rl.rlim_cur = rl.rlim_max;
    if ((long)rl.rlim_max < need) {
        struct rlimit r2 = {(rlim_t)need, (rlim_t)need};
        if (setrlimit(RLIMIT_NOFILE, &r2) == 0) return;
    }
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void print_result(uint64_t t_end_ns) {
    double secs = 0;
    if (t_measure_start && t_end_ns > t_measure_start)
        secs = (double)(t_end_ns - t_measure_start) / 1e9;
    int alive = 0;
    for (int i = 0; i < nslots; i++)
        if (conns[i].state != S_DEAD && conns[i].state != S_FREE) alive++;
    printf("RESULT mode=%s conns=%d size=%d secs=%.3f", mode_names[mode],
           mode == M_IDLE ? nidle : nconns, size, secs);
    if (mode == M_PINGPONG || mode == M_CONNRATE) {
        double rate = secs > 0 ? (double)count / secs : 0;
        printf(" count=%llu %s=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f",
               (unsigned long long)count, mode == M_PINGPONG ? "rps" : "cps", rate,
               hist_pct(0.50), hist_pct(0.99), lat_max_ns / 1000.0);
    } else if (mode == M_BULK) {
        double mbps = secs > 0 ? (double)count / secs / 1e6 : 0;
        printf(" bytes=%llu mbps=%.1f", (unsigned long long)count, mbps);
    }
    if (mode != M_IDLE) printf(" alive=%d", alive);
    printf(" errors=%llu mismatches=%llu", (unsigned long long)errors,
           (unsigned long long)mismatches);
#ifdef LOADGEN_TLS
    if (use_tls)
        printf(" tls=%s cipher=%s group=%s handshakes=%llu resumed=%llu",
               tls_version[0] ? tls_version : "none", tls_cipher[0] ? tls_cipher : "none",
               tls_group[0] ? tls_group : "none", (unsigned long long)handshakes,
               (unsigned long long)resumed);
#endif
    if (first_error[0]) printf(" first_error=%s", first_error);
    printf("\n");
    fflush(stdout);
}

/* run the event loop until deadline_ns, stop_flag, or done() says so */
static void loop_until(uint64_t deadline_ns, int (*done)(void)) {
    struct epoll_event evs[512];
    for (;;) {
        if (done && done()) return;
        uint64_t t = now_ns();
        if (t >= deadline_ns) return;
        if (!measuring && t_measure_start && t >= t_measure_start) measuring = 1;
        uint64_t wait_ns = deadline_ns - t;
        if (!measuring && t_measure_start && t_measure_start - t < wait_ns)
            wait_ns = t_measure_start - t;
        int tmo = (int)((wait_ns + 999999) / 1000000);
        if (tmo > 100) tmo = 100;
        int n = epoll_wait(ep, evs, 512, busy ? 0 : tmo);
        if (n < 0) {
            if (errno == EINTR) {
                if (stop_flag) return;
                continue;
            }
            perror("epoll_wait");
            return;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[(uint32_t)evs[i].data.u64];
            if (c->fd < 0 || c->gen != (uint32_t)(evs[i].data.u64 >> 32)) continue;
#ifdef LOADGEN_TLS
            if (use_tls) {
                if (mode == M_BULK) tls_drive_bulk(c, evs[i].events);
                else tls_drive_msg(c, evs[i].events);
                continue;
            }
#endif
            if (mode == M_BULK) drive_bulk(c, evs[i].events);
            else drive_msg(c, evs[i].events);
        }
        if (stop_flag) return;
    }
}

/* idle mode: keep at most nconns connections being set up at once */
static int idle_setup_done(void) {
    /* open more while under the concurrency limit */
    while (idle_opened < nidle && inflight < nconns) {
        conn_open(&conns[idle_opened]);
        idle_opened++;
    }
    return idle_opened >= nidle && inflight == 0;
}
static int idle_verify_done(void) { return inflight == 0; }
static int all_dead(void) {
    if (mode == M_CONNRATE) return 0; /* slots are reopened */
    for (int i = 0; i < nslots; i++)
        if (conns[i].state != S_DEAD) return 0;
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    for (int m = 0; m < 4; m++)
        if (!strcmp(argv[1], mode_names[m])) mode = m;
    if (mode < 0) usage();
    int opt;
    optind = 2;
#ifdef LOADGEN_TLS
    const char *optstring = "h:p:c:s:d:w:n:W:a:NbT";
#else
    const char *optstring = "h:p:c:s:d:w:n:W:a:Nb";
#endif
    while ((opt = getopt(argc, argv, optstring)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'n': nidle = atoi(optarg); break;
        case 'W': window = atol(optarg); break;
        case 'a': nsrc = atoi(optarg); break;
        case 'N': nodelay = 0; break;
        case 'b': busy = 1; break;
#ifdef LOADGEN_TLS
        case 'T': use_tls = 1; break;
#endif
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || nconns < 1 || size < 1 || size > (16 << 20) ||
        duration <= 0 || duration > 3600 || warmup < 0 || nidle < 1 || window < 1 ||
        nsrc < 0 || nsrc > 200)
        usage();
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad IPv4 address %s\n", host);
        return 2;
    }
    if ((ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: refusing non-loopback target %s\n", host);
        return 2;
    }
#ifdef LOADGEN_TLS
    if (use_tls && mode == M_IDLE) {
        fprintf(stderr, "loadgen: -T is for pingpong, bulk and connrate\n");
        return 2;
    }
    if (use_tls && tls_init() < 0) {
        fprintf(stderr, "loadgen: cannot make the TLS context\n");
        return 2;
    }
#endif

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    nslots = mode == M_IDLE ? nidle : nconns;
    raise_nofile((long)nslots + 64);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < (long)nslots + 16) {
        fprintf(stderr, "loadgen: RLIMIT_NOFILE %ld too low for %d connections\n",
                (long)rl.rlim_cur, nslots);
        printf("RESULT mode=%s conns=%d error=nofile_limit_%ld\n", mode_names[mode], nslots,
               (long)rl.rlim_cur);
        return 1;
    }

    pattern_len = ((size_t)size > scratch_len ? (size_t)size : scratch_len) + 256;
    pattern = malloc(pattern_len);
    for (size_t i = 0; i < pattern_len; i++) pattern[i] = (unsigned char)(i % 251);
    scratch = malloc(scratch_len);
    hist = calloc(HIST_N, sizeof *hist);
    conns = calloc((size_t)nslots, sizeof *conns);
    if (!pattern || !scratch || !hist || !conns) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 2;
    }
    for (int i = 0; i < nslots; i++) {
        conns[i].fd = -1;
        if (mode != M_BULK) {
            conns[i].rbuf = malloc((size_t)size);
            if (!conns[i].rbuf) {
                fprintf(stderr, "loadgen: out of memory\n");
                return 2;
            }
        }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 2;
    }

    uint64_t t_start = now_ns();
    if (mode == M_IDLE) {
        /* phase 1: open and exchange once on every connection (cap 60 s) */
        warmup = 0;
        loop_until(t_start + 60ull * 1000000000ull, idle_setup_done);
        int held = 0;
        for (int i = 0; i < nslots; i++) held += conns[i].state == S_HELD;
        double setup_s = (double)(now_ns() - t_start) / 1e9;
        if (!stop_flag) {
            printf("READY conns=%d held=%d setup_s=%.3f errors=%llu\n", nidle, held, setup_s,
                   (unsigned long long)errors);
            fflush(stdout);
            /* phase 2: hold until told to stop or the duration passes */
            loop_until(now_ns() + (uint64_t)(duration * 1e9), NULL);
        }
        /* phase 3: one more exchange on every held connection (cap 20 s) */
        stop_flag = 0;
        for (int i = 0; i < nslots; i++) {
            struct conn *c = &conns[i];
            if (c->state != S_HELD) continue;
            c->state = S_ACTIVE;
            inflight++;
            c->sent = c->rcvd = 0;
            drive_msg(c, EPOLLOUT);
        }
        loop_until(now_ns() + 20ull * 1000000000ull, idle_verify_done);
        int alive = 0;
        for (int i = 0; i < nslots; i++) alive += conns[i].state == S_HELD;
        printf("RESULT mode=idle conns=%d held=%d alive=%d setup_s=%.3f errors=%llu "
               "mismatches=%llu%s%s\n",
               nidle, held, alive, setup_s, (unsigned long long)errors,
               (unsigned long long)mismatches, first_error[0] ? " first_error=" : "",
               first_error);
        fflush(stdout);
    } else {
        for (int i = 0; i < nslots; i++) conn_open(&conns[i]);
        t_measure_start = t_start + (uint64_t)(warmup * 1e9);
        if (t_measure_start == t_start) {
            measuring = 1;
        }
        t_measure_end = t_measure_start + (uint64_t)(duration * 1e9);
        loop_until(t_measure_end, all_dead);
        uint64_t t_end = now_ns();
        if (t_end > t_measure_end) t_end = t_measure_end;
        if (!measuring) t_measure_start = 0;
        measuring = 0;
        print_result(t_end);
    }
    for (int i = 0; i < nslots; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    close(ep);
    return 0;
}
