/*
 * host.c - the nvmf://host:port/<nqn> child bdev: our NVMe/TCP initiator on
 * the bdev's reactor (see host.h for the split into files).
 *
 * One admin queue and one I/O queue, each its own TCP connection, watched
 * with IORING_OP_POLL_ADD (POLLIN always, POLLOUT only while the send buffer
 * is backed up). Commands live in a fixed table indexed by cid; a bdev I/O
 * larger than MDTS (or than 65536 blocks) becomes several commands, counted
 * in io->driver. Writes up to the I/O queue's in-capsule size go in the
 * capsule; larger ones wait for the controller's R2Ts and answer with
 * H2CData PDUs of at most MAXH2CDATA bytes.
 *
 * Timers: a tick every 250 ms while commands are outstanding (I/O timeout),
 * else every KATO/2, which is when Keep Alive goes out on the admin queue;
 * a Keep Alive still unanswered at the next one means the controller is gone.
 *
 * Connection loss (socket error, protocol error, I/O or keep-alive timeout):
 * every command in flight fails with -EIO (the one that timed out with
 * -ETIMEDOUT) and is never replayed: a write in flight may or may not have
 * reached the media, and replaying it after later writes could reorder them;
 * the owner (the nexus) decides. New I/O fails with -ENOTCONN while a
 * reconnect thread sets the controller up again (blocking, off the reactor)
 * with backoff 100 ms .. 5 s. The namespace it finds must be the same one
 * (NGUID, UUID and EUI64 unchanged, same block size, not smaller): otherwise
 * the child is "replaced", every I/O fails with -ENODEV and it never
 * reconnects. Messages name the peer (nvmf://host:port/nqn).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "nvmf/host.h"
#include "reactor/reactor.h"
#include "util/uuid.h"

#define QMAX 128
#define TICK_MS 250
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define RXBUF 131072
#define KA_CID 0x7fff
#define OPENEBS_NQN_PREFIX "nqn.2019-05.io.openebs:"

enum hstate { ST_UP, ST_DOWN, ST_REPLACED };
enum ckind { K_READ, K_WRITE, K_OTHER };

struct hcmd {
    struct dp_bdev_io *io;
    uint64_t io_off; /* where this command's data starts inside the io */
    uint32_t len;
    uint32_t r2t_done; /* bytes already sent for R2Ts */
    uint64_t start_ms;
    uint8_t kind;
    bool active;
};

struct hsock {
    struct nvmfh *n;
    int fd;
    bool pin, pout;
    struct dp_uring_op in_op, out_op;
    struct nvmfh_rx rx;
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
};

struct nvmfh {
    struct dp_bdev bdev;
    struct nvmfh_uri u;
    char peer[600];
    struct sockaddr_storage addr;
    uint32_t addrlen;
    struct nvmfh_conn c;
    enum hstate state;
    struct hsock io, adm;
    uint8_t *rxbuf;
    struct hcmd cmds[QMAX];
    int outstanding, qlimit;
    uint16_t next_cid;
    struct dp_bdev_io *wait_head, *wait_tail;
    struct dp_uring_op tick_op;
    struct __kernel_timespec tick_ts;
    bool tick, ka_outstanding, destroying, logged_down;
    uint64_t next_ka_ms;
    struct rc_job *job; /* the reconnect in progress */
    uint32_t backoff_ms;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* io->driver: [0] wait-list link, [1] bytes issued, [2] commands pending, [3] status */
static struct dp_bdev_io **wnext(struct dp_bdev_io *io)
{
    return (struct dp_bdev_io **)&io->driver[0];
}

static void iov_copy(struct dp_bdev_io *io, uint64_t off, void *buf, uint64_t len, bool to_io)
{
    for (int i = 0; i < io->iovcnt && len; i++) {
        if (off >= io->iov[i].iov_len) {
            off -= io->iov[i].iov_len;
            continue;
        }
        uint64_t take = io->iov[i].iov_len - off < len ? io->iov[i].iov_len - off : len;
        char *p = (char *)io->iov[i].iov_base + off;
        if (to_io)
            memcpy(p, buf, take);
        else
            memcpy(buf, p, take);
        buf = (char *)buf + take;
        len -= take;
        off = 0;
    }
}

/* ---- sockets ---- */

static void sock_arm_in(struct hsock *s);
static void sock_arm_out(struct hsock *s);
static void conn_lost(struct nvmfh *n, int failed_cid, int status, const char *why);
static void maybe_free(struct nvmfh *n);

static int tx_reserve(struct hsock *s, size_t len)
{
    if (s->tx_off == s->tx_len)
        s->tx_off = s->tx_len = 0;
    if (s->tx_len + len <= s->tx_cap)
        return 0;
    size_t cap = s->tx_cap ? s->tx_cap : 65536;
    while (cap < s->tx_len + len)
        cap *= 2;
    uint8_t *p = realloc(s->tx, cap);
    if (!p)
        return -ENOMEM;
    s->tx = p;
    s->tx_cap = cap;
    return 0;
}

static void tx_flush(struct hsock *s)
{
    struct nvmfh *n = s->n;
    while (s->fd >= 0 && s->tx_off < s->tx_len && !s->pout) {
        ssize_t k = send(s->fd, s->tx + s->tx_off, s->tx_len - s->tx_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            sock_arm_out(s);
            return;
        }
        if (k < 0) {
            /* never fail I/O from here (submit calls it): the poll on the
             * shut-down socket reports the loss */
            fprintf(stderr, "datapath: %s: send: %s\n", n->peer, strerror(errno));
            shutdown(s->fd, SHUT_RDWR);
            s->tx_off = s->tx_len = 0;
            return;
        }
        s->tx_off += (size_t)k;
    }
}

static void out_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct hsock *s = (struct hsock *)((char *)op - offsetof(struct hsock, out_op));
    s->pout = false;
    if (s->n->state == ST_UP && s->fd >= 0)
        tx_flush(s);
    maybe_free(s->n);
}

static void in_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct hsock *s = (struct hsock *)((char *)op - offsetof(struct hsock, in_op));
    struct nvmfh *n = s->n;
    s->pin = false;
    if (n->state != ST_UP || n->destroying || s->fd < 0) {
        maybe_free(n);
        return;
    }
    for (;;) {
        ssize_t k = recv(s->fd, n->rxbuf, RXBUF, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k <= 0) {
            conn_lost(n, -1, -EIO, k == 0 ? "connection closed by the controller" : strerror(errno));
            return;
        }
        char err[256];
        if (nvmfh_rx_feed(&s->rx, n->rxbuf, (size_t)k, NULL, err, sizeof err) < 0) {
            conn_lost(n, -1, -EIO, err);
            return;
        }
        if (n->state != ST_UP)
            return;
    }
    tx_flush(&n->io);
    sock_arm_in(s);
}

static void sock_arm_in(struct hsock *s)
{
    if (s->pin || s->fd < 0)
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(s->n->bdev.reactor);
    io_uring_prep_poll_add(sqe, s->fd, POLLIN);
    io_uring_sqe_set_data(sqe, &s->in_op);
    s->pin = true;
}

static void sock_arm_out(struct hsock *s)
{
    if (s->pout || s->fd < 0)
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(s->n->bdev.reactor);
    io_uring_prep_poll_add(sqe, s->fd, POLLOUT);
    io_uring_sqe_set_data(sqe, &s->out_op);
    s->pout = true;
}

/* Shut the socket down; it is closed once no poll of ours still holds it. */
static void sock_kill(struct hsock *s)
{
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
    s->tx_off = s->tx_len = 0;
}

static void sock_reap(struct hsock *s)
{
    if (s->fd >= 0 && !s->pin && !s->pout) {
        close(s->fd);
        s->fd = -1;
    }
}

/* ---- commands ---- */

static void io_finish_cmd(struct nvmfh *n, struct hcmd *c, int status);
static void pump(struct nvmfh *n);

static int status_errno(uint16_t st)
{
    if (!NVME_STATUS_SC(st) && !NVME_STATUS_SCT(st))
        return 0;
    if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_NS_WRITE_PROTECTED)
        return -EROFS;
    if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_LBA_OUT_OF_RANGE)
        return -EINVAL;
    return -EIO;
}

static struct hcmd *cmd_get(struct nvmfh *n, uint16_t cid, char *err, size_t errlen)
{
    if (cid >= QMAX || !n->cmds[cid].active) {
        snprintf(err, errlen, "response for cid %u, which is not in flight", cid);
        return NULL;
    }
    return &n->cmds[cid];
}

static int r_resp(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct nvmfh *n = ctx;
    struct hcmd *c = cmd_get(n, cqe->cid, err, errlen);
    if (!c)
        return -1;
    io_finish_cmd(n, c, status_errno(cqe->status));
    return 0;
}

static int r_c2h_begin(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct nvmfh *n = ctx;
    struct hcmd *c = cmd_get(n, cid, err, errlen);
    if (!c)
        return -1;
    if (c->kind != K_READ || off > c->len || len > c->len - off) {
        snprintf(err, errlen, "C2HData for cid %u: offset %u length %u outside its %u-byte read", cid, off, len,
                 c->len);
        return -1;
    }
    return 0;
}

static void r_c2h_data(void *ctx, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct nvmfh *n = ctx;
    struct hcmd *c = &n->cmds[cid];
    if (c->io)
        iov_copy(c->io, c->io_off + off, (void *)buf, len, true);
}

static int r_c2h_end(void *ctx, uint16_t cid, bool last, bool success, char *err, size_t errlen)
{
    struct nvmfh *n = ctx;
    if (success)
        io_finish_cmd(n, &n->cmds[cid], 0);
    return 0;
}

/* Answer an R2T with H2CData PDUs of at most MAXH2CDATA bytes. */
static int r_r2t(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct nvmfh *n = ctx;
    struct hcmd *c = cmd_get(n, cid, err, errlen);
    if (!c)
        return -1;
    if (c->kind != K_WRITE || c->len <= n->c.icd_max || off != c->r2t_done || len > c->len - off) {
        snprintf(err, errlen, "R2T for cid %u: offset %u length %u does not fit its %u-byte write (sent %u)", cid, off,
                 len, c->len, c->r2t_done);
        return -1;
    }
    struct hsock *s = &n->io;
    while (len) {
        uint32_t chunk = len < n->c.maxh2cdata ? len : n->c.maxh2cdata;
        if (tx_reserve(s, NVME_TCP_DATA_HLEN + chunk) < 0) {
            snprintf(err, errlen, "out of memory for H2CData");
            return -1;
        }
        struct nvme_tcp_h2c_data_hdr *h = (void *)(s->tx + s->tx_len);
        memset(h, 0, sizeof *h);
        h->ch.pdu_type = NVME_TCP_PDU_H2C_DATA;
        h->ch.flags = chunk == len ? NVME_TCP_F_DATA_LAST : 0;
        h->ch.hlen = NVME_TCP_DATA_HLEN;
        h->ch.pdo = NVME_TCP_DATA_HLEN;
        h->ch.plen = NVME_TCP_DATA_HLEN + chunk;
        h->cccid = cid;
        h->ttag = ttag;
        h->datao = off;
        h->datal = chunk;
        iov_copy(c->io, c->io_off + off, s->tx + s->tx_len + NVME_TCP_DATA_HLEN, chunk, false);
        s->tx_len += NVME_TCP_DATA_HLEN + chunk;
        off += chunk;
        len -= chunk;
        c->r2t_done += chunk;
    }
    return 0;
}

static const struct nvmfh_rx_ops io_ops = { r_resp, r_c2h_begin, r_c2h_data, r_c2h_end, r_r2t };

/* The admin queue carries only Keep Alive once up. */
static int a_resp(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct nvmfh *n = ctx;
    if (cqe->cid != KA_CID || !n->ka_outstanding) {
        snprintf(err, errlen, "admin response for cid %u, which is not in flight", cqe->cid);
        return -1;
    }
    n->ka_outstanding = false;
    return 0;
}

static int a_c2h_begin(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    snprintf(err, errlen, "admin C2HData for cid %u, which reads nothing", cid);
    return -1;
}

static int a_r2t(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    snprintf(err, errlen, "admin R2T for cid %u, which writes nothing", cid);
    return -1;
}

static const struct nvmfh_rx_ops admin_ops = { a_resp, a_c2h_begin, NULL, NULL, a_r2t };

static void io_done(struct dp_bdev_io *io)
{
    io->cb(io, (int)(int64_t)io->driver[3]);
}

static bool issued_all(const struct dp_bdev_io *io)
{
    return io->type == DP_IO_FLUSH ? io->driver[1] != 0 : io->driver[1] >= io->length;
}

static void io_finish_cmd(struct nvmfh *n, struct hcmd *c, int status)
{
    struct dp_bdev_io *io = c->io;
    c->active = false;
    c->io = NULL;
    n->outstanding--;
    if (!io)
        return;
    if (status && !io->driver[3])
        io->driver[3] = (uint64_t)(int64_t)status;
    io->driver[2]--;
    /* the io is done when nothing of it is pending and it is not waiting to issue more */
    if (!io->driver[2] && issued_all(io))
        io_done(io);
    pump(n);
}

static bool nlb_split(enum dp_bdev_io_type t)
{
    return t == DP_IO_READ || t == DP_IO_WRITE || t == DP_IO_WRITE_ZEROES;
}

/* Build one command of io into the I/O queue's send buffer; false when out of slots. */
static bool issue_one(struct nvmfh *n, struct dp_bdev_io *io)
{
    if (n->outstanding >= n->qlimit)
        return false;
    uint16_t cid = n->next_cid;
    while (n->cmds[cid].active)
        cid = (uint16_t)((cid + 1) % n->qlimit);
    n->next_cid = (uint16_t)((cid + 1) % n->qlimit);
    struct hcmd *c = &n->cmds[cid];
    uint32_t bs = n->bdev.block_size;
    uint64_t off = io->driver[1], left = io->length - off;
    uint64_t max = nlb_split(io->type) ? 65536ull * bs : 0x80000000ull;
    if ((io->type == DP_IO_READ || io->type == DP_IO_WRITE) && max > n->c.max_xfer)
        max = n->c.max_xfer;
    uint32_t len = (uint32_t)(left < max ? left : max);
    struct nvme_sqe sqe = { .cid = cid, .nsid = n->c.nsid, .flags = NVME_CMD_PSDT_SGL };
    uint64_t slba = (io->offset + off) / bs;
    uint32_t icd = 0;
    struct nvme_dsm_range r = { 0 };
    sqe.cdw10 = (uint32_t)slba;
    sqe.cdw11 = (uint32_t)(slba >> 32);
    sqe.cdw12 = len / bs - 1;
    sqe.sgl1.id = NVME_TCP_SGL_TRANSPORT;
    switch (io->type) {
    case DP_IO_READ:
        sqe.opc = NVME_IO_READ;
        sqe.sgl1.length = len;
        break;
    case DP_IO_WRITE:
        sqe.opc = NVME_IO_WRITE;
        sqe.sgl1.length = len;
        if (io->flags & DP_IO_FUA)
            sqe.cdw12 |= NVME_RW_FUA;
        if (len <= n->c.icd_max) {
            icd = len;
            sqe.sgl1.id = NVME_TCP_SGL_INCAPSULE;
        }
        break;
    case DP_IO_WRITE_ZEROES: sqe.opc = NVME_IO_WRITE_ZEROES; break;
    case DP_IO_FLUSH:
        sqe = (struct nvme_sqe){ .opc = NVME_IO_FLUSH, .cid = cid, .nsid = n->c.nsid, .flags = NVME_CMD_PSDT_SGL };
        sqe.sgl1.id = NVME_TCP_SGL_TRANSPORT;
        len = 0;
        break;
    case DP_IO_UNMAP:
        sqe.opc = NVME_IO_DATASET_MANAGEMENT;
        sqe.cdw10 = 0; /* one range */
        sqe.cdw11 = NVME_DSM_ATTR_DEALLOCATE;
        sqe.cdw12 = 0;
        r.nlb = len / bs;
        r.slba = slba;
        icd = sizeof r;
        sqe.sgl1.id = NVME_TCP_SGL_INCAPSULE;
        sqe.sgl1.length = sizeof r;
        break;
    }
    struct hsock *s = &n->io;
    if (tx_reserve(s, NVME_TCP_CMD_HLEN + icd) < 0)
        return false;
    struct nvme_tcp_cmd *p = (void *)(s->tx + s->tx_len);
    memset(&p->ch, 0, sizeof p->ch);
    p->ch.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
    p->ch.hlen = NVME_TCP_CMD_HLEN;
    p->ch.pdo = icd ? NVME_TCP_CMD_HLEN : 0;
    p->ch.plen = NVME_TCP_CMD_HLEN + icd;
    p->sqe = sqe;
    if (io->type == DP_IO_UNMAP)
        memcpy(s->tx + s->tx_len + NVME_TCP_CMD_HLEN, &r, sizeof r);
    else if (icd)
        iov_copy(io, off, s->tx + s->tx_len + NVME_TCP_CMD_HLEN, icd, false);
    s->tx_len += NVME_TCP_CMD_HLEN + icd;
    *c = (struct hcmd){ .io = io,
                        .io_off = off,
                        .len = io->type == DP_IO_UNMAP ? 0 : len,
                        .start_ms = now_ms(),
                        .kind = io->type == DP_IO_READ    ? K_READ
                                : io->type == DP_IO_WRITE ? K_WRITE
                                                          : K_OTHER,
                        .active = true };
    n->outstanding++;
    io->driver[1] = off + len;
    io->driver[2]++;
    if (io->type == DP_IO_FLUSH)
        io->driver[1] = io->length + 1; /* issued */
    return true;
}

static void arm_tick(struct nvmfh *n);

/* Issue waiting I/O while there are free command slots. */
static void pump(struct nvmfh *n)
{
    while (n->wait_head && n->state == ST_UP) {
        struct dp_bdev_io *io = n->wait_head;
        while (!issued_all(io) && issue_one(n, io))
            ;
        if (!issued_all(io))
            break;
        n->wait_head = *wnext(io);
        if (!n->wait_head)
            n->wait_tail = NULL;
    }
    if (n->outstanding)
        arm_tick(n);
}

static void nvmfh_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct nvmfh *n = bdev->ctx;
    if (n->state != ST_UP) {
        dp_bdev_io_complete_deferred(io, n->state == ST_REPLACED ? -ENODEV : -ENOTCONN);
        return;
    }
    if (io->type == DP_IO_FLUSH && !(n->c.vwc & NVME_VWC_PRESENT)) {
        dp_bdev_io_complete_deferred(io, 0); /* no volatile cache: nothing to flush */
        return;
    }
    if ((io->type == DP_IO_UNMAP && !(n->c.oncs & NVME_ONCS_DSM)) ||
        (io->type == DP_IO_WRITE_ZEROES && !(n->c.oncs & NVME_ONCS_WRITE_ZEROES))) {
        dp_bdev_io_complete_deferred(io, -EOPNOTSUPP);
        return;
    }
    io->driver[1] = io->driver[2] = io->driver[3] = 0;
    *wnext(io) = NULL;
    if (n->wait_tail)
        *wnext(n->wait_tail) = io;
    else
        n->wait_head = io;
    n->wait_tail = io;
    pump(n);
    tx_flush(&n->io);
}

/* ---- failure, reconnect, identity ---- */

static void fail_all(struct nvmfh *n, int failed_cid, int status)
{
    /* the parents of commands: fail each io once, when its last command goes */
    for (int i = 0; i < QMAX; i++) {
        struct hcmd *c = &n->cmds[i];
        if (!c->active)
            continue;
        struct dp_bdev_io *io = c->io;
        c->active = false;
        c->io = NULL;
        n->outstanding--;
        if (!io)
            continue;
        int st = i == failed_cid ? -ETIMEDOUT : status;
        if (!io->driver[3] || i == failed_cid)
            io->driver[3] = (uint64_t)(int64_t)st;
        io->driver[1] = io->length + 1; /* nothing more of it is issued */
        if (--io->driver[2] == 0 && io != n->wait_head)
            io_done(io);
    }
    while (n->wait_head) {
        struct dp_bdev_io *io = n->wait_head;
        n->wait_head = *wnext(io);
        if (io->driver[2] == 0) {
            if (!io->driver[3])
                io->driver[3] = (uint64_t)(int64_t)status;
            io_done(io);
        }
    }
    n->wait_tail = NULL;
}

/*
 * One reconnect attempt runs on its own thread (set-up blocks) with its own
 * job: the bdev may be destroyed meanwhile. Under job_lock, destroy detaches
 * the job (j->n = NULL) and the thread sends its result only to a bdev still
 * attached; whoever sees the job last frees it (the thread when it was
 * detached before sending, else the message).
 */
struct rc_job {
    struct nvmfh *n; /* NULL: detached by destroy */
    struct dp_reactor *reactor;
    struct nvmfh_uri u;
    struct sockaddr_storage addr;
    uint32_t addrlen, backoff_ms;
    bool sent;
    int rc;
    struct nvmfh_conn c;
    char err[512];
};

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static void job_close(struct rc_job *j)
{
    if (j->rc == 0) {
        close(j->c.afd);
        close(j->c.iofd);
    }
}

static void reconnected_msg(void *arg);

static void *reconnect_thread(void *arg)
{
    struct rc_job *j = arg;
    bool stop = false;
    for (uint32_t waited = 0; waited < j->backoff_ms && !stop; waited += 20) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&job_lock);
        stop = !j->n;
        pthread_mutex_unlock(&job_lock);
    }
    j->rc = stop ? -ECANCELED : nvmfh_setup(&j->u, &j->addr, j->addrlen, &j->c, j->err, sizeof j->err);
    pthread_mutex_lock(&job_lock);
    bool attached = j->n != NULL;
    if (attached) {
        j->sent = true;
        dp_reactor_send(j->reactor, reconnected_msg, j);
    }
    pthread_mutex_unlock(&job_lock);
    if (!attached) {
        job_close(j);
        free(j);
    }
    return NULL;
}

static void start_reconnect(struct nvmfh *n)
{
    if (n->job || n->destroying || n->state == ST_REPLACED)
        return;
    struct rc_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    *j = (struct rc_job){ .n = n,
                          .reactor = n->bdev.reactor,
                          .u = n->u,
                          .addr = n->addr,
                          .addrlen = n->addrlen,
                          .backoff_ms = n->backoff_ms };
    n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    n->job = j;
    if (pthread_create(&t, &a, reconnect_thread, j) != 0) {
        n->job = NULL;
        free(j);
    }
    pthread_attr_destroy(&a);
}

static void conn_lost(struct nvmfh *n, int failed_cid, int status, const char *why)
{
    if (n->state != ST_UP)
        return;
    fprintf(stderr, "datapath: %s: connection lost: %s; failing in-flight I/O, reconnecting\n", n->peer, why);
    n->state = ST_DOWN;
    sock_kill(&n->io);
    sock_kill(&n->adm);
    sock_reap(&n->io);
    sock_reap(&n->adm);
    fail_all(n, failed_cid, status);
    start_reconnect(n);
}

/* The connection a job brought is the same namespace: take it. */
static void adopt(struct nvmfh *n, const struct nvmfh_conn *c)
{
    fprintf(stderr, "datapath: %s: reconnected (cntlid %u)\n", n->peer, c->cntlid);
    n->c = *c;
    n->io.fd = c->iofd;
    n->adm.fd = c->afd;
    nvmfh_rx_init(&n->io.rx, &io_ops, n, true);
    nvmfh_rx_init(&n->adm.rx, &admin_ops, n, true);
    n->qlimit = c->qsize - 1 < QMAX ? c->qsize - 1 : QMAX;
    n->ka_outstanding = false;
    n->next_ka_ms = now_ms() + n->c.kato_ms / 2;
    n->backoff_ms = BACKOFF_MIN_MS;
    n->logged_down = false;
    n->state = ST_UP;
    sock_arm_in(&n->io);
    sock_arm_in(&n->adm);
    arm_tick(n);
}

static void reconnected_msg(void *arg)
{
    struct rc_job *j = arg;
    pthread_mutex_lock(&job_lock);
    struct nvmfh *n = j->n;
    pthread_mutex_unlock(&job_lock);
    if (!n) { /* destroyed after the thread sent this */
        job_close(j);
        free(j);
        return;
    }
    n->job = NULL;
    const struct nvmfh_conn *c = &j->c;
    if (j->rc < 0) {
        if (!n->logged_down)
            fprintf(stderr, "datapath: %s: reconnect failed: %s\n", n->peer, j->err);
        n->logged_down = true;
        start_reconnect(n);
    } else if (memcmp(c->nsid_bytes, n->c.nsid_bytes, sizeof c->nsid_bytes) || c->block_size != n->c.block_size ||
               c->size < n->c.size) {
        fprintf(stderr, "datapath: %s: replaced: the namespace is not the one we had (identity or size changed)\n",
                n->peer);
        job_close(j);
        n->state = ST_REPLACED;
    } else if (n->io.fd >= 0 || n->adm.fd >= 0) { /* the old sockets' polls have not come back yet */
        job_close(j);
        start_reconnect(n);
    } else {
        adopt(n, c);
    }
    free(j);
}

/* ---- tick: I/O timeout and keep-alive ---- */

static void send_keep_alive(struct nvmfh *n)
{
    struct hsock *s = &n->adm;
    if (tx_reserve(s, NVME_TCP_CMD_HLEN) < 0)
        return;
    struct nvme_tcp_cmd *p = (void *)(s->tx + s->tx_len);
    memset(p, 0, sizeof *p);
    p->ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_CMD,
                                          .hlen = NVME_TCP_CMD_HLEN,
                                          .plen = NVME_TCP_CMD_HLEN };
    p->sqe.opc = NVME_ADM_KEEP_ALIVE;
    p->sqe.cid = KA_CID;
    p->sqe.flags = NVME_CMD_PSDT_SGL;
    p->sqe.sgl1.id = NVME_TCP_SGL_TRANSPORT;
    s->tx_len += NVME_TCP_CMD_HLEN;
    n->ka_outstanding = true;
    tx_flush(s);
}

static void tick_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nvmfh *n = (struct nvmfh *)((char *)op - offsetof(struct nvmfh, tick_op));
    n->tick = false;
    if (n->destroying || n->state != ST_UP) {
        maybe_free(n);
        return;
    }
    uint64_t now = now_ms();
    for (int i = 0; i < QMAX; i++) {
        if (n->cmds[i].active && now - n->cmds[i].start_ms > n->u.io_timeout_ms) {
            char m[96];
            snprintf(m, sizeof m, "command %d not answered within io_timeout_ms=%u", i, n->u.io_timeout_ms);
            conn_lost(n, i, -EIO, m);
            return;
        }
    }
    if (now >= n->next_ka_ms) {
        if (n->ka_outstanding) {
            conn_lost(n, -1, -EIO, "Keep Alive not answered");
            return;
        }
        send_keep_alive(n);
        n->next_ka_ms = now + n->c.kato_ms / 2;
    }
    arm_tick(n);
}

static void arm_tick(struct nvmfh *n)
{
    if (n->tick || n->state != ST_UP || n->destroying)
        return;
    uint64_t ms = n->c.kato_ms / 2;
    if (n->outstanding)
        ms = TICK_MS;
    n->tick_ts.tv_sec = (long long)(ms / 1000);
    n->tick_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    n->tick = true;
    dp_reactor_timer(n->bdev.reactor, &n->tick_op, &n->tick_ts);
}

/* ---- life cycle ---- */

static void maybe_free(struct nvmfh *n)
{
    sock_reap(&n->io);
    sock_reap(&n->adm);
    if (!n->destroying || n->tick || n->io.fd >= 0 || n->adm.fd >= 0)
        return;
    free(n->io.tx);
    free(n->adm.tx);
    free(n->rxbuf);
    free(n);
}

static void nvmfh_destroy(struct dp_bdev *bdev)
{
    struct nvmfh *n = bdev->ctx;
    n->destroying = true;
    if (n->job) { /* detach: the thread or its message frees the job */
        pthread_mutex_lock(&job_lock);
        n->job->n = NULL;
        pthread_mutex_unlock(&job_lock);
        n->job = NULL;
    }
    bool up = n->state == ST_UP;
    n->state = ST_DOWN;
    if (up)
        fail_all(n, -1, -ENODEV);
    if (n->tick) {
        struct io_uring_sqe *sqe = dp_reactor_sqe(n->bdev.reactor);
        io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&n->tick_op, 0);
        io_uring_sqe_set_data(sqe, NULL); /* reactor ignores a NULL op */
    }
    sock_kill(&n->io);
    sock_kill(&n->adm);
    maybe_free(n);
}

static const struct dp_bdev_ops nvmfh_ops = { .submit = nvmfh_submit, .destroy = nvmfh_destroy };

static void start_msg(void *arg)
{
    struct nvmfh *n = arg;
    sock_arm_in(&n->io);
    sock_arm_in(&n->adm);
    arm_tick(n);
}

static void sock_init(struct nvmfh *n, struct hsock *s, int fd, const struct nvmfh_rx_ops *ops)
{
    s->n = n;
    s->fd = fd;
    s->in_op.cb = in_cb;
    s->out_op.cb = out_cb;
    nvmfh_rx_init(&s->rx, ops, n, true);
}

static int nvmfh_create(const char *uri, struct dp_bdev **out)
{
    struct nvmfh *n = calloc(1, sizeof *n);
    char err[512];
    if (!n || !(n->rxbuf = malloc(RXBUF))) {
        free(n);
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    int rc = nvmfh_uri_parse(uri, &n->u, err, sizeof err);
    if (rc < 0)
        dp_set_error("'%s': %s", uri, err);
    if (rc == 0 && (rc = nvmfh_resolve(&n->u, &n->addr, &n->addrlen, err, sizeof err)) < 0)
        dp_set_error("%s", err);
    if (rc == 0 && (rc = nvmfh_setup(&n->u, &n->addr, n->addrlen, &n->c, err, sizeof err)) < 0)
        dp_set_error("%s", err);
    if (rc < 0) {
        free(n->rxbuf);
        free(n);
        return rc;
    }
    snprintf(n->peer, sizeof n->peer, "nvmf://%s:%s/%s", n->u.host, n->u.port, n->u.nqn);
    snprintf(n->bdev.name, sizeof n->bdev.name, "%s", uri);
    /* A replica or nexus subsystem is named by its uuid: that is what the child is,
     * whichever transport or alias reached it (bdev:///U, nbd://h:p/U). */
    uint8_t ub[16];
    if (!strncmp(n->u.nqn, OPENEBS_NQN_PREFIX, strlen(OPENEBS_NQN_PREFIX)) &&
        dp_uuid_parse(n->u.nqn + strlen(OPENEBS_NQN_PREFIX), ub) == 0)
        dp_uuid_format(ub, n->bdev.ident);
    n->bdev.size = n->c.size;
    n->bdev.block_size = n->c.block_size;
    n->bdev.ops = &nvmfh_ops;
    n->bdev.ctx = n;
    n->bdev.reactor = dp_reactor_next();
    n->tick_op.cb = tick_cb;
    n->backoff_ms = BACKOFF_MIN_MS;
    n->qlimit = n->c.qsize - 1 < QMAX ? n->c.qsize - 1 : QMAX;
    n->next_ka_ms = now_ms() + n->c.kato_ms / 2;
    sock_init(n, &n->io, n->c.iofd, &io_ops);
    sock_init(n, &n->adm, n->c.afd, &admin_ops);
    n->state = ST_UP;
    fprintf(stderr,
            "datapath: %s: connected as %s (cntlid %u, nsid %u, %llu bytes of %u, queue %u, in-capsule %u, "
            "maxh2cdata %u, max transfer %u)\n",
            n->peer, nvmfh_host_nqn(NULL), n->c.cntlid, n->c.nsid, (unsigned long long)n->c.size, n->c.block_size,
            n->c.qsize, n->c.icd_max, n->c.maxh2cdata, n->c.max_xfer);
    dp_reactor_call(n->bdev.reactor, start_msg, n);
    *out = &n->bdev;
    return 0;
}

static const char *const nvmfh_schemes[] = { "nvmf", NULL };
static struct dp_module nvmfh_module = { .name = "nvmf-host", .schemes = nvmfh_schemes, .create = nvmfh_create };
DP_MODULE_REGISTER(nvmfh_module)
