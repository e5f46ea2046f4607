/*
 * client.c - remote child bdev nbd://host[:port]/export on libnbd's
 * asynchronous API, driven by the bdev's reactor.
 *
 * libnbd's socket is watched with IORING_OP_POLL_ADD (POLLIN always while
 * connected, POLLOUT only when nbd_aio_get_direction() asks for it); the
 * poll completions call nbd_aio_notify_read/write. Commands live in a fixed
 * table (no allocation per I/O; requests beyond it wait in a list threaded
 * through io->driver).
 *
 * Options in the URI query: io_timeout_ms (default 10000),
 * connect_timeout_ms (default 5000). A 250 ms tick runs only while I/O is
 * outstanding or a reconnect is due (idle costs nothing). An I/O older than
 * io_timeout_ms fails with -ETIMEDOUT and the connection is dropped; while
 * the peer is down new I/O fails at once with -ENOTCONN, and reconnects back
 * off from 100 ms to 5 s. Every message names the peer (nbd://host:port/export).
 * The host name is resolved once, by the first connect on the control thread;
 * reconnects run on the reactor and reuse that address (no blocking DNS there).
 *
 * Identity across reconnects (the device behind the export may have been
 * re-created, or may have forgotten whose child it is): client_ident.c.
 */
#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bdev/bdev.h"
#include "nbd/client.h"
#include "reactor/reactor.h"
#include "util/uuid.h"
#include "util/container.h"

#define TICK_MS 250
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static void nbdc_drive(struct nbdc *n);
static void nbdc_arm_tick(struct nbdc *n);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* driver[0] links an io on the wait list or the done list (never both). */
static struct dp_bdev_io **wait_next(struct dp_bdev_io *io)
{
    return (struct dp_bdev_io **)&io->driver[0];
}

static void complete(struct nbdc *n, struct dp_bdev_io *io, int status)
{
    io->driver[1] = (uint64_t)(int64_t)status;
    *wait_next(io) = NULL;
    if (n->done_tail)
        *wait_next(n->done_tail) = io;
    else
        n->done_head = io;
    n->done_tail = io;
}

static void finish_destroy(struct nbdc *n);

/*
 * Run queued completions. Called from reactor callbacks once no libnbd call
 * is on the stack. From submit (inline_ok false) they go through the
 * reactor instead: the bdev rule forbids completing inside submit.
 */
static void run_done(struct nbdc *n, bool inline_ok)
{
    n->running_done++;
    while (n->done_head) {
        struct dp_bdev_io *io = n->done_head;
        n->done_head = *wait_next(io);
        if (!n->done_head)
            n->done_tail = NULL;
        int status = (int)(int64_t)io->driver[1];
        if (inline_ok)
            io->cb(io, status);
        else
            dp_bdev_io_complete_deferred(io, status);
    }
    n->running_done--;
    if (n->destroying && !n->running_done)
        finish_destroy(n);
}

/* Fail every outstanding and waiting I/O with status. */
static void fail_all(struct nbdc *n, int status)
{
    for (int i = 0; i < NBDC_CMDS; i++) {
        struct nbdc_cmd *c = &n->cmds[i];
        if (c->active && c->io) {
            struct dp_bdev_io *io = c->io;
            c->io = NULL;
            complete(n, io, status);
        }
    }
    while (n->wait_head) {
        struct dp_bdev_io *io = n->wait_head;
        n->wait_head = *wait_next(io);
        complete(n, io, status);
    }
    n->wait_tail = NULL;
}

static void cmd_free(struct nbdc *n, struct nbdc_cmd *c)
{
    free(c->bounce);
    c->bounce = NULL;
    c->active = false;
    c->io = NULL;
    c->next_free = n->free_cmds;
    n->free_cmds = c;
    n->active--;
}

static int cmd_cb(void *user_data, int *error)
{
    struct nbdc_cmd *c = user_data;
    struct nbdc *n = c->n;
    if (!c->active)
        return 1;
    struct dp_bdev_io *io = c->io;
    if (io) {
        int st = *error ? -*error : 0;
        if (st == 0 && io->type == DP_IO_READ && c->bounce) {
            size_t off = 0;
            for (int i = 0; i < io->iovcnt; i++) {
                memcpy(io->iov[i].iov_base, (char *)c->bounce + off, io->iov[i].iov_len);
                off += io->iov[i].iov_len;
            }
        }
        if (n->ident && io->offset < IDENT_BYTES && io->type != DP_IO_READ && io->type != DP_IO_FLUSH)
            nbdc_ident_track(n, io, c->bounce, st);
        c->io = NULL;
        complete(n, io, st);
    }
    cmd_free(n, c);
    return 1;
}

/* Issue one I/O on the live handle; false if libnbd refused it. */
static bool issue(struct nbdc *n, struct dp_bdev_io *io)
{
    struct nbdc_cmd *c = n->free_cmds;
    n->free_cmds = c->next_free;
    n->active++;
    c->active = true;
    c->io = io;
    c->start_ms = now_ms();
    void *buf = NULL;
    if (io->type == DP_IO_READ || io->type == DP_IO_WRITE) {
        if (io->iovcnt == 1) {
            buf = io->iov[0].iov_base;
        } else {
            buf = c->bounce = malloc(io->length); /* rare: scattered buffers */
            if (!buf) {
                c->io = NULL;
                cmd_free(n, c);
                complete(n, io, -ENOMEM);
                return true;
            }
            if (io->type == DP_IO_WRITE) {
                size_t off = 0;
                for (int i = 0; i < io->iovcnt; i++) {
                    memcpy((char *)buf + off, io->iov[i].iov_base, io->iov[i].iov_len);
                    off += io->iov[i].iov_len;
                }
            }
        }
    }
    nbd_completion_callback cb = { .callback = cmd_cb, .user_data = c };
    uint32_t fua = (io->flags & DP_IO_FUA) ? LIBNBD_CMD_FLAG_FUA : 0;
    int64_t r = -1;
    n->in_call = true;
    switch (io->type) {
    case DP_IO_READ: r = nbd_aio_pread(n->h, buf, io->length, io->offset, cb, 0); break;
    case DP_IO_WRITE: r = nbd_aio_pwrite(n->h, buf, io->length, io->offset, cb, fua); break;
    case DP_IO_FLUSH: r = nbd_aio_flush(n->h, cb, 0); break;
    case DP_IO_UNMAP: r = nbd_aio_trim(n->h, io->length, io->offset, cb, fua); break;
    case DP_IO_WRITE_ZEROES: r = nbd_aio_zero(n->h, io->length, io->offset, cb, fua); break;
    }
    n->in_call = false;
    if (r < 0) {
        int e = nbd_get_errno();
        fprintf(stderr, "%s: request refused: %s\n", n->peer, nbd_get_error());
        /* libnbd does not call the completion of a refused command */
        if (c->active) {
            c->io = NULL;
            cmd_free(n, c);
        }
        dp_bdev_io_complete_deferred(io, e ? -e : -EIO);
        return nbd_aio_is_ready(n->h) || nbd_aio_is_processing(n->h);
    }
    return true;
}

static void nbdc_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct nbdc *n = bdev->ctx;
    if (n->state != ST_UP) {
        dp_bdev_io_complete_deferred(io, n->replaced ? -ENODEV : -ENOTCONN);
        return;
    }
    if (!n->free_cmds) {
        *wait_next(io) = NULL;
        if (n->wait_tail)
            *wait_next(n->wait_tail) = io;
        else
            n->wait_head = io;
        n->wait_tail = io;
        return;
    }
    issue(n, io);
    nbdc_drive(n);
    run_done(n, false);
}

/* ---- connection state -------------------------------------------------- */

static void tick_cb(struct dp_uring_op *op, int res, uint32_t flags);

static void arm_poll(struct nbdc *n, bool out)
{
    struct io_uring_sqe *sqe = dp_reactor_sqe(n->bdev.reactor);
    io_uring_prep_poll_add(sqe, n->fd, out ? POLLOUT : POLLIN);
    io_uring_sqe_set_data(sqe, out ? &n->pout_op : &n->pin_op);
    if (out)
        n->pout = true;
    else
        n->pin = true;
}

static void cancel_op(struct nbdc *n, struct dp_uring_op *op)
{
    struct io_uring_sqe *sqe = dp_reactor_sqe(n->bdev.reactor);
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data(sqe, NULL); /* reactor ignores a NULL op */
}

static void finish_destroy(struct nbdc *n)
{
    if (n->pin || n->pout || n->tick || n->running_done)
        return;
    fail_all(n, -ENODEV);
    if (n->h)
        nbd_close(n->h);
    n->h = NULL;
    if (n->done_head) {
        /* run_done ends by calling us again, with the lists empty. */
        run_done(n, true);
        return;
    }
    free(n->ident);
    free(n->verify_buf);
    free(n);
}

/* Drop the connection: fail its I/O, cancel polls; the handle is closed
 * once no poll references its fd. */
static void go_down(struct nbdc *n, const char *why, int status)
{
    if (n->state == ST_CLOSING || n->state == ST_DOWN)
        return;
    if (!n->logged_down)
        fprintf(stderr, "%s: %s\n", n->peer, why);
    n->logged_down = true;
    n->state = ST_CLOSING;
    fail_all(n, status);
    if (n->pin)
        cancel_op(n, &n->pin_op);
    if (n->pout)
        cancel_op(n, &n->pout_op);
    nbdc_drive(n);
}

/*
 * A libnbd handle for our export. Its bounds check is off: the export may grow
 * under us (refresh_size learns the new size on a side connection while this
 * one keeps the size it negotiated); dp_bdev_submit checks bounds against the
 * current size, and the server judges by its own.
 */
static struct nbd_handle *new_handle(void)
{
    struct nbd_handle *h = nbd_create();
    if (h)
        nbd_set_strict_mode(h, nbd_get_strict_mode(h) & ~(uint32_t)LIBNBD_STRICT_BOUNDS);
    return h;
}

static void start_connect(struct nbdc *n)
{
    n->h = new_handle();
    if (!n->h || nbd_set_export_name(n->h, n->export) < 0 ||
        (n->addrlen ? nbd_aio_connect(n->h, (struct sockaddr *)&n->addr, n->addrlen)
                    : nbd_aio_connect_tcp(n->h, n->host, n->port)) < 0) {
        if (n->h)
            nbd_close(n->h);
        n->h = NULL;
        n->state = ST_DOWN;
        n->deadline_ms = now_ms() + n->backoff_ms;
        return;
    }
    n->fd = nbd_aio_get_fd(n->h);
    n->state = ST_CONNECTING;
    n->deadline_ms = now_ms() + n->connect_timeout_ms;
}

static void go_down(struct nbdc *n, const char *why, int status);

/* Re-evaluate state and (re)arm polls and the tick. */
static void nbdc_drive(struct nbdc *n)
{
    if (n->state == ST_CLOSING) {
        if (n->pin || n->pout)
            return;
        /* In-flight commands were failed already; their callbacks, if
         * libnbd runs them from close, see orphans. */
        fail_all(n, -ENOTCONN);
        nbd_close(n->h);
        n->h = NULL;
        for (int i = 0; i < NBDC_CMDS; i++)
            if (n->cmds[i].active)
                cmd_free(n, &n->cmds[i]);
        if (n->destroying) {
            finish_destroy(n);
            return;
        }
        n->state = ST_DOWN;
        n->deadline_ms = now_ms() + n->backoff_ms;
        n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
    }
    if (n->destroying) {
        finish_destroy(n);
        return;
    }
    if (n->replaced)
        return; /* down for good: no reconnect, no timer */
    if (n->state == ST_UP || n->state == ST_CONNECTING || n->state == ST_VERIFY) {
        if (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)) {
            char why[512];
            snprintf(why, sizeof why, "connection lost: %s", nbd_get_error() ? nbd_get_error() : "closed");
            go_down(n, why, -ENOTCONN);
            return;
        }
        if (n->state == ST_CONNECTING && nbd_aio_is_ready(n->h))
            nbdc_verify_start(n);
        if (n->state == ST_VERIFY && n->verify_result == 2)
            nbdc_reassert_start(n);
        if (n->state == ST_VERIFY && n->verify_result == -2) {
            n->replaced = true;
            n->logged_down = false;
            go_down(n,
                    "reconnected, but the export refused the write-back of its label (another host holds its "
                    "writer lease): failing its I/O for good",
                    -EPERM);
            return;
        }
        if (n->state == ST_VERIFY && n->verify_result) {
            if (n->verify_result < 0) {
                n->replaced = true;
                n->logged_down = false; /* say why, even after "connection lost" */
                go_down(n,
                        "reconnected, but the device behind the export was replaced (re-created or "
                        "rewritten while we were away): failing its I/O for good; open it afresh to rebuild it",
                        -ENODEV);
                return;
            }
            n->state = ST_UP;
            n->backoff_ms = BACKOFF_MIN_MS;
            if (n->logged_down)
                fprintf(stderr, "%s: reconnected (same device)\n", n->peer);
            n->logged_down = false;
        }
        while (n->state == ST_UP && n->wait_head && n->free_cmds) {
            struct dp_bdev_io *io = n->wait_head;
            n->wait_head = *wait_next(io);
            if (!n->wait_head)
                n->wait_tail = NULL;
            issue(n, io);
        }
        unsigned dir = nbd_aio_get_direction(n->h);
        if ((dir & LIBNBD_AIO_DIRECTION_READ) && !n->pin)
            arm_poll(n, false);
        if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && !n->pout)
            arm_poll(n, true);
    }
    nbdc_arm_tick(n);
}

static void pin_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbdc *n = container_of(op, struct nbdc, pin_op);
    n->pin = false;
    if (res >= 0 && !n->destroying && (n->state == ST_UP || n->state == ST_CONNECTING || n->state == ST_VERIFY))
        nbd_aio_notify_read(n->h);
    if (!n->destroying)
        nbdc_drive(n);
    run_done(n, true);
}

static void pout_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbdc *n = container_of(op, struct nbdc, pout_op);
    n->pout = false;
    if (res >= 0 && !n->destroying && (n->state == ST_UP || n->state == ST_CONNECTING || n->state == ST_VERIFY))
        nbd_aio_notify_write(n->h);
    if (!n->destroying)
        nbdc_drive(n);
    run_done(n, true);
}

static void nbdc_arm_tick(struct nbdc *n)
{
    if (n->tick || n->destroying)
        return;
    if (n->active == 0 && !n->wait_head && (n->state == ST_UP || (n->state == ST_DOWN && n->replaced)))
        return; /* idle (or replaced for good): no timer */
    n->tick_ts.tv_sec = 0;
    n->tick_ts.tv_nsec = TICK_MS * 1000000L;
    struct io_uring_sqe *sqe = dp_reactor_sqe(n->bdev.reactor);
    io_uring_prep_timeout(sqe, &n->tick_ts, 0, 0);
    io_uring_sqe_set_data(sqe, &n->tick_op);
    n->tick = true;
}

static void tick_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbdc *n = container_of(op, struct nbdc, tick_op);
    n->tick = false;
    if (n->destroying) {
        run_done(n, true); /* ends in finish_destroy */
        return;
    }
    uint64_t now = now_ms();
    if (n->state == ST_UP) {
        for (int i = 0; i < NBDC_CMDS; i++) {
            struct nbdc_cmd *c = &n->cmds[i];
            if (c->active && c->io && now - c->start_ms > n->io_timeout_ms) {
                char why[160];
                snprintf(why, sizeof why, "I/O timed out after %u ms; dropping the connection", n->io_timeout_ms);
                go_down(n, why, -ETIMEDOUT);
                run_done(n, true);
                return;
            }
        }
    } else if ((n->state == ST_CONNECTING || n->state == ST_VERIFY) && now > n->deadline_ms) {
        go_down(n, "connect timed out", -ETIMEDOUT);
        run_done(n, true);
        return;
    } else if (n->state == ST_DOWN && now >= n->deadline_ms && !n->replaced) {
        start_connect(n);
    }
    nbdc_drive(n);
    run_done(n, true);
}

/* ---- bdev ops and creation ---------------------------------------------- */

static void nbdc_destroy(struct dp_bdev *bdev)
{
    struct nbdc *n = bdev->ctx;
    n->destroying = true;
    if (n->pin)
        cancel_op(n, &n->pin_op);
    if (n->pout)
        cancel_op(n, &n->pout_op);
    if (n->tick)
        cancel_op(n, &n->tick_op);
    finish_destroy(n);
}

static int nbdc_refresh_size(struct dp_bdev *bdev);

static const struct dp_bdev_ops nbdc_ops = {
    .submit = nbdc_submit,
    .destroy = nbdc_destroy,
    .refresh_size = nbdc_refresh_size,
};

static void start_msg(void *arg)
{
    nbdc_drive(arg);
}

/* nbd://host[:port]/export[?io_timeout_ms=N&connect_timeout_ms=N] */
static int parse_uri(const char *uri, struct nbdc *n)
{
    const char *p = uri + strlen("nbd://");
    const char *slash = strchr(p, '/');
    if (!slash || slash == p) {
        dp_set_error("'%s': expected nbd://host:port/export", uri);
        return -EINVAL;
    }
    size_t hl = (size_t)(slash - p);
    char hostport[256];
    if (hl >= sizeof hostport) {
        dp_set_error("'%s': host too long", uri);
        return -EINVAL;
    }
    memcpy(hostport, p, hl);
    hostport[hl] = 0;
    char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[') { /* [v6]:port */
        char *rb = strchr(hostport, ']');
        if (!rb) {
            dp_set_error("'%s': unterminated IPv6 address", uri);
            return -EINVAL;
        }
        colon = rb[1] == ':' ? rb + 1 : NULL;
        *rb = 0;
        snprintf(n->host, sizeof n->host, "%s", hostport + 1);
    } else {
        if (colon)
            *colon = 0;
        snprintf(n->host, sizeof n->host, "%s", hostport);
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535) {
            dp_set_error("'%s': bad port '%s'", uri, colon + 1);
            return -EINVAL;
        }
        snprintf(n->port, sizeof n->port, "%ld", port);
    } else {
        snprintf(n->port, sizeof n->port, "10809");
    }
    const char *ex = slash + 1, *q = strchr(ex, '?');
    size_t el = q ? (size_t)(q - ex) : strlen(ex);
    if (el == 0 || el >= sizeof n->export) {
        dp_set_error("'%s': export name must be 1..%zu bytes", uri, sizeof n->export - 1);
        return -EINVAL;
    }
    memcpy(n->export, ex, el);
    n->export[el] = 0;
    n->io_timeout_ms = 10000;
    n->connect_timeout_ms = 5000;
    while (q && *q) {
        q++;
        unsigned long v;
        int used = 0;
        if (sscanf(q, "io_timeout_ms=%lu%n", &v, &used) == 1 && used)
            n->io_timeout_ms = (uint32_t)(v ? v : 1);
        else if (sscanf(q, "connect_timeout_ms=%lu%n", &v, &used) == 1 && used)
            n->connect_timeout_ms = (uint32_t)(v ? v : 1);
        else {
            dp_set_error("'%s': unknown option '%.*s' (io_timeout_ms, connect_timeout_ms)", uri, (int)strcspn(q, "&"),
                         q);
            return -EINVAL;
        }
        q = strchr(q, '&');
    }
    snprintf(n->peer, sizeof n->peer, "nbd://%s:%s/%s", n->host, n->port, n->export);
    return 0;
}

/* A connection made on the calling (control) thread, bounded by the connect
 * timeout: *hp is set (to be closed by the caller) even when this fails. */
static int connect_handle(struct nbdc *n, struct nbd_handle **hp)
{
    struct nbd_handle *h = *hp = new_handle();
    if (!h) {
        dp_set_error("%s: %s", n->peer, nbd_get_error());
        return -ENOMEM;
    }
    if (nbd_set_export_name(h, n->export) < 0 || nbd_aio_connect_tcp(h, n->host, n->port) < 0) {
        dp_set_error("%s: connect: %s", n->peer, nbd_get_error());
        return -ECONNREFUSED;
    }
    uint64_t deadline = now_ms() + n->connect_timeout_ms;
    while (nbd_aio_is_connecting(h) || nbd_aio_is_created(h)) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            dp_set_error("%s: connect timed out after %u ms", n->peer, n->connect_timeout_ms);
            return -ETIMEDOUT;
        }
        unsigned dir = nbd_aio_get_direction(h);
        struct pollfd pfd = { .fd = nbd_aio_get_fd(h), .events = 0 };
        if (dir & LIBNBD_AIO_DIRECTION_READ)
            pfd.events |= POLLIN;
        if (dir & LIBNBD_AIO_DIRECTION_WRITE)
            pfd.events |= POLLOUT;
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno != EINTR) {
            dp_set_error("%s: poll: %s", n->peer, strerror(errno));
            return -EIO;
        }
        if (r > 0) {
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                nbd_aio_notify_read(h);
            else if (pfd.revents & POLLOUT)
                nbd_aio_notify_write(h);
        }
    }
    if (!nbd_aio_is_ready(h)) {
        const char *e = nbd_get_error();
        int en = nbd_get_errno();
        dp_set_error("%s: connect failed: %s", n->peer, e ? e : "server closed the connection");
        return en ? -en : -ECONNREFUSED;
    }
    return 0;
}

/*
 * refresh_size: the export behind a nexus child grows when its replica does
 * (PATCH /v1/replicas), but our size is what the server said when we
 * connected. Ask again on a short side connection (blocking is fine here: the
 * control thread); the I/O connection is left alone.
 */
static int nbdc_refresh_size(struct dp_bdev *bdev)
{
    struct nbdc *n = bdev->ctx;
    struct nbd_handle *h = NULL;
    int rc = connect_handle(n, &h);
    int64_t size = rc < 0 ? -1 : nbd_get_size(h);
    if (rc == 0 && size < 0) {
        dp_set_error("%s: cannot get the export size: %s", n->peer, nbd_get_error());
        rc = -EIO;
    }
    if (h)
        nbd_close(h);
    if (rc < 0)
        return rc;
    uint64_t cur = __atomic_load_n(&bdev->size, __ATOMIC_RELAXED);
    if ((uint64_t)size < cur) {
        dp_set_error("%s: the export shrank from %" PRIu64 " to %" PRId64 " bytes", n->peer, cur, size);
        return -EIO;
    }
    __atomic_store_n(&bdev->size, (uint64_t)size, __ATOMIC_RELAXED);
    return 0;
}

/* First connect on the calling (control) thread. */
static int connect_sync(struct nbdc *n, const char *uri)
{
    int rc = connect_handle(n, &n->h);
    if (rc < 0)
        return rc;
    int64_t size = nbd_get_size(n->h);
    if (size < 0) {
        dp_set_error("%s: cannot get the export size: %s", n->peer, nbd_get_error());
        return -EIO;
    }
    int64_t minb = nbd_get_block_size(n->h, LIBNBD_SIZE_MINIMUM);
    n->bdev.size = (uint64_t)size;
    n->bdev.block_size = minb > 512 && minb <= 65536 ? (uint32_t)minb : 512;
    /* A read-only export (a snapshot) is a read-only device here too: writes fail -EROFS at once. */
    n->bdev.read_only = nbd_is_read_only(n->h) == 1;
    if (n->bdev.size >= IDENT_BYTES) {
        n->ident = malloc(IDENT_BYTES);
        n->verify_buf = malloc(IDENT_BYTES);
        if (!n->ident || !n->verify_buf) {
            dp_set_error("%s: out of memory", n->peer);
            return -ENOMEM;
        }
        if (nbd_pread(n->h, n->ident, IDENT_BYTES, 0, 0) < 0) {
            dp_set_error("%s: reading the first %u bytes failed: %s", n->peer, IDENT_BYTES, nbd_get_error());
            return -EIO;
        }
    }
    n->fd = nbd_aio_get_fd(n->h);
    n->addrlen = sizeof n->addr;
    if (getpeername(n->fd, (struct sockaddr *)&n->addr, &n->addrlen) < 0 || n->addrlen > sizeof n->addr)
        n->addrlen = 0; /* reconnect by name, then */
    return 0;
}

static int nbdc_create(const char *uri, struct dp_bdev **out)
{
    struct nbdc *n = calloc(1, sizeof *n);
    if (!n) {
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    int rc = parse_uri(uri, n);
    if (rc == 0)
        rc = connect_sync(n, uri);
    if (rc < 0) {
        if (n->h)
            nbd_close(n->h);
        free(n->ident);
        free(n->verify_buf);
        free(n);
        return rc;
    }
    snprintf(n->bdev.name, sizeof n->bdev.name, "%s", uri);
    /* Exports of replicas and nexuses are named by their uuid: that is what the
     * child is, whichever host alias or options reached it. */
    uint8_t ub[16];
    if (dp_uuid_parse(n->export, ub) == 0)
        dp_uuid_format(ub, n->bdev.ident);
    n->bdev.ops = &nbdc_ops;
    n->bdev.ctx = n;
    n->bdev.reactor = dp_reactor_next();
    n->bdev.thin = false;
    n->pin_op.cb = pin_cb;
    n->pout_op.cb = pout_cb;
    n->tick_op.cb = tick_cb;
    n->backoff_ms = BACKOFF_MIN_MS;
    for (int i = NBDC_CMDS - 1; i >= 0; i--) {
        n->cmds[i].n = n;
        n->cmds[i].next_free = n->free_cmds;
        n->free_cmds = &n->cmds[i];
    }
    n->state = ST_UP;
    dp_reactor_call(n->bdev.reactor, start_msg, n);
    *out = &n->bdev;
    return 0;
}

static const char *const nbdc_schemes[] = { "nbd", NULL };
static struct dp_module nbdc_module = { .name = "nbd-client", .schemes = nbdc_schemes, .create = nbdc_create };
DP_MODULE_REGISTER(nbdc_module)
