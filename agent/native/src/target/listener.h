/*
 * listener.h - a TCP listener on a reactor, shared by every target protocol
 * (NBD today; NVMe/TCP and iSCSI each get one for their own port).
 *
 * dp_listener_start binds host:port and keeps one io_uring accept in flight
 * on the listener's reactor. Every accepted socket is admitted against the
 * per-agent limits (target/limits.h: connection cap, fd headroom) before the
 * protocol sees it; a refused one is closed at once. Accept errors for lack
 * of fds or memory back off on a timer (dp_target_accept_failed) instead of
 * spinning. dp_listener_stop cancels the accept (or the backoff timer),
 * waits until the reactor no longer touches the listener, then closes it.
 */
#ifndef DP_TARGET_LISTENER_H
#define DP_TARGET_LISTENER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "reactor/reactor.h"
#include "target/limits.h"

/* Who connected: what allowlists match (IPv4 as v4-mapped) and what logs name. */
struct dp_peer {
    struct in6_addr addr;
    char str[64]; /* "host:port" */
};

struct dp_listener;

/*
 * On the listener's reactor, for each admitted connection: the protocol now
 * owns fd and the admission in *tc (it must dp_target_conn_release it and
 * close fd when it cannot take the connection).
 */
typedef void (*dp_listener_accept_fn)(struct dp_listener *l, int fd, const struct dp_peer *peer,
                                      const struct dp_target_conn *tc);

struct dp_listener {
    pthread_mutex_t lock; /* fd, port, host, stopped (read from any thread) */
    pthread_cond_t cond; /* stopped became true */
    int fd; /* -1: not listening */
    uint16_t port; /* bound port (the one chosen when asked for 0) */
    char host[128];
    const char *proto;
    dp_listener_accept_fn on_accept;
    struct dp_reactor *r;
    /* reactor-owned */
    struct dp_uring_op op; /* the accept's completion */
    struct dp_uring_op cancel_op; /* the cancel's completion (nothing to do) */
    struct dp_target_listener tl; /* accept backoff */
    bool inflight; /* an accept or the backoff timer */
    bool stopping;
    bool stopped; /* under lock: the reactor is done with the listener */
};

#define DP_LISTENER_INIT \
    { \
        .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1 \
    }

/*
 * Listen on host:port ("" or NULL host: 127.0.0.1; port 0: any free port)
 * on reactor 0, handing connections to on_accept. 0, or a negative errno
 * with dp_last_error() naming proto, host and port: -ENODEV before dp_init,
 * -EALREADY when l already listens, -EINVAL when host does not resolve, or
 * the socket/bind/listen error.
 */
int dp_listener_start(struct dp_listener *l, const char *proto, const char *host, uint16_t port,
                      dp_listener_accept_fn on_accept);
/* The bound port, or -ENOTCONN when not listening. */
int dp_listener_port(struct dp_listener *l);
/* In on_accept, when the protocol cannot take the connection (out of memory): its admission goes back, fd is closed. */
void dp_listener_refuse(int fd, const struct dp_target_conn *tc);
/* Stop accepting and close the socket (no-op when not listening). Not on l's reactor. */
void dp_listener_stop(struct dp_listener *l);

#endif /* DP_TARGET_LISTENER_H */
