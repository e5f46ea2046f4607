/*
 * listener.c - TCP listener on a reactor (listener.h).
 *
 * Threads: start and stop run on the control thread; the accept loop runs on
 * l->r only, so op/inflight/stopping need no lock. The control thread learns
 * that the reactor is done with the listener through `stopped` (under lock),
 * and only then closes the socket: an accept still in flight on a closed (and
 * possibly reused) fd number would accept on someone else's socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "datapath.h"
#include "target/allowlist.h"
#include "target/listener.h"
#include "util/container.h"
#include "util/error.h"

static void post_accept(struct dp_listener *l)
{
    struct io_uring_sqe *sqe = dp_reactor_sqe(l->r);
    io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, &l->op);
    l->inflight = true;
}

/* The reactor will not touch l again: dp_listener_stop may close it. */
static void mark_stopped(struct dp_listener *l)
{
    pthread_mutex_lock(&l->lock);
    l->stopped = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void peer_of(int fd, struct dp_peer *p)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    memset(&p->addr, 0, sizeof p->addr);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            dp_in6_from_v4(&p->addr, &s4->sin_addr);
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
            port = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            p->addr = s6->sin6_addr;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(p->str, sizeof p->str, "%s:%d", host, port);
}

static void accepted(struct dp_listener *l, int fd)
{
    struct dp_peer peer;
    peer_of(fd, &peer);
    /* Connection cap and fd headroom: a refused client is closed at once,
     * before the protocol allocates anything for it. */
    struct dp_target_conn tc;
    if (dp_target_conn_admit(&tc, fd, l->proto, peer.str) != 0) {
        close(fd);
        return;
    }
    l->on_accept(l, fd, &peer, &tc);
}

static void accept_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct dp_listener *l = container_of(op, struct dp_listener, op);
    l->inflight = false;
    if (res >= 0) {
        dp_target_accept_ok(&l->tl);
        if (l->stopping)
            close(res);
        else
            accepted(l, res);
    }
    /* Cancelled, or the socket is gone: the loop ends here. */
    if (l->stopping || res == -ECANCELED || res == -EBADF || res == -EINVAL) {
        if (l->stopping)
            mark_stopped(l);
        return;
    }
    /* Out of fds or memory: stop accepting for a while (never a spin). */
    if (res < 0 && dp_target_accept_failed(&l->tl, res)) {
        l->inflight = true; /* the backoff timer: accept_resume runs */
        return;
    }
    post_accept(l);
}

/* The backoff timer fired (or was cancelled at stop). */
static void accept_resume(struct dp_target_listener *tl)
{
    struct dp_listener *l = container_of(tl, struct dp_listener, tl);
    l->inflight = false;
    if (l->stopping) {
        mark_stopped(l);
        return;
    }
    post_accept(l);
}

static void accept_start_msg(void *arg)
{
    post_accept(arg);
}

/* On l->r: end the loop; mark_stopped runs now or when the last completion comes. */
static void accept_cancel_msg(void *arg)
{
    struct dp_listener *l = arg;
    l->stopping = true;
    if (!l->inflight) {
        mark_stopped(l);
        return;
    }
    if (l->tl.timer_inflight) {
        dp_target_listener_cancel(&l->tl);
        return;
    }
    struct io_uring_sqe *sqe = dp_reactor_sqe(l->r);
    io_uring_prep_cancel(sqe, &l->op, 0);
    io_uring_sqe_set_data(sqe, &l->cancel_op);
}

static void cancel_done(struct dp_uring_op *op, int res, uint32_t flags) {}

/* A listening socket on host:port, its bound port in *bound: the fd or -errno. */
static int bind_listen(const char *proto, const char *host, uint16_t port, uint16_t *bound)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc) {
        dp_set_error("%s listen %s:%u: cannot resolve host: %s", proto, host, port, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        freeaddrinfo(ai);
        dp_set_error("%s listen %s:%u: socket: %s", proto, host, port, strerror(-rc));
        return rc;
    }
    /* A restarted agent must get its port back while old connections sit in TIME_WAIT. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        freeaddrinfo(ai);
        close(fd);
        dp_set_error("%s listen %s:%u: %s", proto, host, port, strerror(-rc));
        return rc;
    }
    freeaddrinfo(ai);
    /* Port 0 asked the kernel for one: report the one it chose. */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int dp_listener_start(struct dp_listener *l, const char *proto, const char *host, uint16_t port,
                      dp_listener_accept_fn on_accept)
{
    if (!host || !*host)
        host = "127.0.0.1";
    if (dp_reactor_count() == 0) {
        dp_set_error("%s listen %s:%u: the data path is not initialised (dp_init)", proto, host, port);
        return -ENODEV;
    }
    pthread_mutex_lock(&l->lock);
    bool busy = l->fd >= 0;
    pthread_mutex_unlock(&l->lock);
    if (busy) {
        dp_set_error("%s listen %s:%u: already listening on %s:%u", proto, host, port, l->host, l->port);
        return -EALREADY;
    }
    uint16_t bound = 0;
    int fd = bind_listen(proto, host, port, &bound);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&l->lock);
    l->fd = fd;
    l->port = bound;
    l->proto = proto;
    l->on_accept = on_accept;
    l->r = dp_reactor_get(0);
    l->op.cb = accept_cb;
    l->cancel_op.cb = cancel_done;
    l->stopping = false;
    l->stopped = false;
    dp_target_listener_init(&l->tl, l->r, proto, accept_resume);
    snprintf(l->host, sizeof l->host, "%s", host);
    pthread_mutex_unlock(&l->lock);
    dp_reactor_call(l->r, accept_start_msg, l);
    return 0;
}

int dp_listener_port(struct dp_listener *l)
{
    pthread_mutex_lock(&l->lock);
    int p = l->fd >= 0 ? l->port : -ENOTCONN;
    pthread_mutex_unlock(&l->lock);
    return p;
}

void dp_listener_stop(struct dp_listener *l)
{
    pthread_mutex_lock(&l->lock);
    int fd = l->fd;
    pthread_mutex_unlock(&l->lock);
    /* Without reactors (dp_fini ran first) nothing is in flight to wait for. */
    if (fd < 0 || dp_reactor_count() == 0)
        return;
    dp_reactor_call(l->r, accept_cancel_msg, l);
    pthread_mutex_lock(&l->lock);
    while (!l->stopped)
        pthread_cond_wait(&l->cond, &l->lock);
    close(l->fd);
    l->fd = -1;
    pthread_mutex_unlock(&l->lock);
}

void dp_listener_refuse(int fd, const struct dp_target_conn *tc)
{
    struct dp_target_conn t = *tc;
    dp_target_conn_release(&t);
    close(fd);
}
