/*
 * host_io.c - the I/O path of the nvmf:// child (see host.c for the whole):
 * its two sockets on the reactor (POLL_ADD, non-blocking send of a send
 * buffer, recv into the receive machine of host_rx.c), the command table,
 * bdev I/O mapped to NVMe commands (split by MDTS and NLB; in-capsule
 * writes, R2T answered with H2CData), completions, and failing what is in
 * flight when the connection goes.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nvmf/host.h"

uint64_t nvmfh_now_ms(void)
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

static void sock_arm_out(struct hsock *s);

int nvmfh_tx_reserve(struct hsock *s, size_t len)
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

void nvmfh_tx_flush(struct hsock *s)
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

void nvmfh_out_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct hsock *s = (struct hsock *)((char *)op - offsetof(struct hsock, out_op));
    s->pout = false;
    if (s->n->state == ST_UP && s->fd >= 0)
        nvmfh_tx_flush(s);
    nvmfh_maybe_free(s->n);
}

/*
 * Large read payloads are received in place: when the receive machine is in
 * the middle of a C2HData payload of at least DIRECT_MIN bytes, recv() goes
 * straight into the reading io's buffer (the iovec segment holding the
 * offset reached), saving a copy. The range was checked at the header.
 * After a large C2HData the next receive at a PDU boundary takes only a
 * header's worth (HDR_RECV), so that the next large payload also lands in
 * place instead of in rxbuf (a copy that cost a quarter of the initiator's
 * time on 128 KiB reads); small PDUs are still read many per receive.
 */
#define DIRECT_MIN 4096u
#define LARGE_C2H 32768u
#define HDR_RECV NVME_TCP_DATA_HLEN /* C2HData, CapsuleResp and R2T headers alike, no digest */
static void *direct_dst(struct hsock *s, uint32_t *len)
{
    uint16_t cid;
    uint32_t off, left = nvmfh_rx_data_pending(&s->rx, &cid, &off);
    struct hqueue *q = s->q;
    if (!q || left < DIRECT_MIN || cid >= QMAX || !q->cmds[cid].active || !q->cmds[cid].io)
        return NULL;
    struct dp_bdev_io *io = q->cmds[cid].io;
    uint64_t at = q->cmds[cid].io_off + off;
    for (int i = 0; i < io->iovcnt; i++) {
        if (at < io->iov[i].iov_len) {
            uint64_t seg = io->iov[i].iov_len - at;
            *len = (uint32_t)(seg < left ? seg : left);
            return (char *)io->iov[i].iov_base + at;
        }
        at -= io->iov[i].iov_len;
    }
    return NULL;
}

void nvmfh_in_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct hsock *s = (struct hsock *)((char *)op - offsetof(struct hsock, in_op));
    struct nvmfh *n = s->n;
    s->pin = false;
    if (n->state != ST_UP || n->destroying || s->fd < 0) {
        nvmfh_maybe_free(n);
        return;
    }
    for (;;) {
        uint32_t direct = 0;
        void *dst = direct_dst(s, &direct);
        size_t want = dst ? direct : s->last_c2h >= LARGE_C2H ? HDR_RECV : RXBUF;
        ssize_t k = recv(s->fd, dst ? dst : n->rxbuf, want, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k <= 0) {
            nvmfh_conn_lost(n, NULL, -EIO, k == 0 ? "connection closed by the controller" : strerror(errno));
            return;
        }
        char err[256];
        if (dst ? nvmfh_rx_data_direct(&s->rx, (uint32_t)k, err, sizeof err) < 0
                : nvmfh_rx_feed(&s->rx, n->rxbuf, (size_t)k, NULL, err, sizeof err) < 0) {
            nvmfh_conn_lost(n, NULL, -EIO, err);
            return;
        }
        if (n->state != ST_UP)
            return;
    }
    if (s->q) /* H2CData queued for R2Ts */
        nvmfh_tx_flush(s);
    nvmfh_sock_arm_in(s);
}

void nvmfh_sock_arm_in(struct hsock *s)
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
void nvmfh_sock_kill(struct hsock *s)
{
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
    s->tx_off = s->tx_len = 0;
}

void nvmfh_sock_reap(struct hsock *s)
{
    if (s->fd >= 0 && !s->pin && !s->pout) {
        close(s->fd);
        s->fd = -1;
    }
}

/* ---- commands ---- */

static void io_finish_cmd(struct hqueue *q, struct hcmd *c, int status);
static void pump(struct nvmfh *n);

static int status_errno(uint16_t st)
{
    if (!NVME_STATUS_SC(st) && !NVME_STATUS_SCT(st))
        return 0;
    if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_NS_WRITE_PROTECTED)
        return -EROFS;
    if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_LBA_OUT_OF_RANGE)
        return -EINVAL;
    if (NVME_STATUS_SCT(st) == NVME_SCT_GENERIC && NVME_STATUS_SC(st) == NVME_SC_RESERVATION_CONFLICT)
        return -EPERM; /* the export serves another host's nexus (the writer lease) */
    return -EIO;
}

/* The receive machine's ctx on an I/O queue is its struct hqueue. */
static struct hcmd *cmd_get(struct hqueue *q, uint16_t cid, char *err, size_t errlen)
{
    if (cid >= QMAX || !q->cmds[cid].active) {
        snprintf(err, errlen, "response for cid %u on I/O queue %u, which is not in flight", cid, q->qid);
        return NULL;
    }
    return &q->cmds[cid];
}

/*
 * A read may succeed only with all its bytes received: a controller that
 * answers success after less (or no) C2HData would hand the caller whatever
 * its buffer held before. A protocol error: the connection drops, the I/O
 * fails.
 */
static int read_short(const struct hcmd *c, uint16_t cid, char *err, size_t errlen)
{
    if (c->kind != K_READ || c->c2h_got == c->len)
        return 0;
    snprintf(err, errlen, "read cid %u answered success after %u of its %u bytes", cid, c->c2h_got, c->len);
    return -1;
}

static int r_resp(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct hqueue *q = ctx;
    struct hcmd *c = cmd_get(q, cqe->cid, err, errlen);
    if (!c)
        return -1;
    int st = status_errno(cqe->status);
    if (!st && read_short(c, cqe->cid, err, errlen) < 0)
        return -1;
    io_finish_cmd(q, c, st);
    return 0;
}

static int r_c2h_begin(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct hqueue *q = ctx;
    q->io.last_c2h = len;
    struct hcmd *c = cmd_get(q, cid, err, errlen);
    if (!c)
        return -1;
    if (c->kind != K_READ || off > c->len || len > c->len - off) {
        snprintf(err, errlen, "C2HData for cid %u: offset %u length %u outside its %u-byte read", cid, off, len,
                 c->len);
        return -1;
    }
    if (off != c->c2h_got) { /* in order, as SPDK's host also requires: no gap is ever counted as received */
        snprintf(err, errlen, "C2HData for cid %u at offset %u, expected %u (data out of order)", cid, off, c->c2h_got);
        return -1;
    }
    c->c2h_got += len;
    return 0;
}

static void r_c2h_data(void *ctx, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct hqueue *q = ctx;
    struct hcmd *c = &q->cmds[cid];
    if (c->io)
        iov_copy(c->io, c->io_off + off, (void *)buf, len, true);
}

static int r_c2h_end(void *ctx, uint16_t cid, bool last, bool success, char *err, size_t errlen)
{
    struct hqueue *q = ctx;
    if (success) {
        if (read_short(&q->cmds[cid], cid, err, errlen) < 0)
            return -1;
        io_finish_cmd(q, &q->cmds[cid], 0);
    }
    return 0;
}

/* Answer an R2T with H2CData PDUs of at most MAXH2CDATA bytes. */
static int r_r2t(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct hqueue *q = ctx;
    struct nvmfh *n = q->io.n;
    struct hcmd *c = cmd_get(q, cid, err, errlen);
    if (!c)
        return -1;
    if (c->kind != K_WRITE) {
        snprintf(err, errlen, "R2T for cid %u, which is not a write", cid);
        return -1;
    }
    if (c->len <= n->c.icd_max || off != c->r2t_done || len > c->len - off) {
        snprintf(err, errlen, "R2T for cid %u: offset %u length %u does not fit its %u-byte write (sent %u)", cid, off,
                 len, c->len, c->r2t_done);
        return -1;
    }
    struct hsock *s = &q->io;
    while (len) {
        uint32_t chunk = len < n->c.maxh2cdata ? len : n->c.maxh2cdata;
        if (nvmfh_tx_reserve(s, NVME_TCP_DATA_HLEN + chunk) < 0) {
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

const struct nvmfh_rx_ops nvmfh_io_ops = { r_resp, r_c2h_begin, r_c2h_data, r_c2h_end, r_r2t };

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

const struct nvmfh_rx_ops nvmfh_admin_ops = { a_resp, a_c2h_begin, NULL, NULL, a_r2t };

static void io_done(struct dp_bdev_io *io)
{
    io->cb(io, (int)(int64_t)io->driver[3]);
}

static bool issued_all(const struct dp_bdev_io *io)
{
    return io->type == DP_IO_FLUSH ? io->driver[1] != 0 : io->driver[1] >= io->length;
}

/* A write, zeroing or unmap that reached the identity bytes: keep the copy equal to the device. */
static void ident_track(struct nvmfh *n, const struct hcmd *c, int status)
{
    struct dp_bdev_io *io = c->io;
    uint64_t dev = io->offset + c->io_off;
    if (!n->ident || c->kind == K_READ || io->type == DP_IO_FLUSH || dev >= IDENT_BYTES)
        return;
    if (status < 0) {
        n->ident_lost = true;
        return;
    }
    uint64_t len = c->span < IDENT_BYTES - dev ? c->span : IDENT_BYTES - dev;
    if (c->kind == K_WRITE)
        iov_copy(io, c->io_off, n->ident + dev, len, false);
    else
        memset(n->ident + dev, 0, len);
}

static void io_finish_cmd(struct hqueue *q, struct hcmd *c, int status)
{
    struct nvmfh *n = q->io.n;
    struct dp_bdev_io *io = c->io;
    if (io)
        ident_track(n, c, status);
    c->active = false;
    c->io = NULL;
    q->outstanding--;
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

/*
 * A large in-capsule write goes out from the caller's own buffer when
 * nothing is queued before it on the socket: one sendmsg of the header and
 * the io's iovecs; only what the socket does not take now is copied into
 * the send buffer (copying every write there cost a third of the
 * initiator's time on 128 KiB writes). false: not possible, nothing sent.
 */
#define LARGE_ICD 32768u
static bool send_direct(struct hsock *s, const struct nvme_tcp_cmd *h, struct dp_bdev_io *io, uint64_t off,
                        uint32_t len)
{
    if (s->fd < 0 || s->pout || s->tx_off != s->tx_len)
        return false;
    struct iovec v[DP_IO_MAX_IOV + 1];
    int n = 1;
    v[0] = (struct iovec){ (void *)h, NVME_TCP_CMD_HLEN };
    uint64_t o = off, left = len;
    for (int i = 0; i < io->iovcnt && left; i++) {
        if (o >= io->iov[i].iov_len) {
            o -= io->iov[i].iov_len;
            continue;
        }
        uint64_t take = io->iov[i].iov_len - o < left ? io->iov[i].iov_len - o : left;
        if (n == DP_IO_MAX_IOV + 1)
            return false;
        v[n++] = (struct iovec){ (char *)io->iov[i].iov_base + o, take };
        left -= take;
        o = 0;
    }
    struct msghdr m = { .msg_iov = v, .msg_iovlen = (size_t)n };
    ssize_t k = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0) /* EAGAIN, or an error the queued path meets and reports */
        return false;
    size_t total = NVME_TCP_CMD_HLEN + len, rest = total - (size_t)k;
    if (!rest)
        return true;
    if (nvmfh_tx_reserve(s, rest) < 0) { /* half a PDU is out: the stream is lost, the poll reports it */
        shutdown(s->fd, SHUT_RDWR);
        return true;
    }
    uint8_t *p = s->tx + s->tx_len;
    if ((size_t)k < NVME_TCP_CMD_HLEN) {
        memcpy(p, (const uint8_t *)h + k, NVME_TCP_CMD_HLEN - (size_t)k);
        iov_copy(io, off, p + NVME_TCP_CMD_HLEN - k, len, false);
    } else {
        iov_copy(io, off + ((size_t)k - NVME_TCP_CMD_HLEN), p, rest, false);
    }
    s->tx_len += rest;
    sock_arm_out(s);
    return true;
}

/* The next I/O queue with a free slot, round-robin; NULL when all are full. */
static struct hqueue *queue_pick(struct nvmfh *n)
{
    for (int i = 0; i < n->nq; i++) {
        struct hqueue *q = &n->q[(n->rr + (uint32_t)i) % (uint32_t)n->nq];
        if (q->outstanding < q->qlimit) {
            n->rr = (uint32_t)(q - n->q + 1);
            return q;
        }
    }
    return NULL;
}

/* Build one command of io into an I/O queue's send buffer; false when out of slots. */
static bool issue_one(struct nvmfh *n, struct dp_bdev_io *io)
{
    struct hqueue *q = queue_pick(n);
    if (!q)
        return false;
    uint16_t cid = q->next_cid;
    while (q->cmds[cid].active)
        cid = (uint16_t)((cid + 1) % q->qlimit);
    q->next_cid = (uint16_t)((cid + 1) % q->qlimit);
    struct hcmd *c = &q->cmds[cid];
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
    struct hsock *s = &q->io;
    struct nvme_tcp_cmd h;
    memset(&h.ch, 0, sizeof h.ch);
    h.ch.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
    h.ch.hlen = NVME_TCP_CMD_HLEN;
    h.ch.pdo = icd ? NVME_TCP_CMD_HLEN : 0;
    h.ch.plen = NVME_TCP_CMD_HLEN + icd;
    h.sqe = sqe;
    if (io->type != DP_IO_WRITE || icd < LARGE_ICD || !send_direct(s, &h, io, off, icd)) {
        if (nvmfh_tx_reserve(s, NVME_TCP_CMD_HLEN + icd) < 0)
            return false;
        memcpy(s->tx + s->tx_len, &h, NVME_TCP_CMD_HLEN);
        if (io->type == DP_IO_UNMAP)
            memcpy(s->tx + s->tx_len + NVME_TCP_CMD_HLEN, &r, sizeof r);
        else if (icd)
            iov_copy(io, off, s->tx + s->tx_len + NVME_TCP_CMD_HLEN, icd, false);
        s->tx_len += NVME_TCP_CMD_HLEN + icd;
    }
    *c = (struct hcmd){ .io = io,
                        .io_off = off,
                        .len = io->type == DP_IO_UNMAP ? 0 : len,
                        .span = len,
                        .start_ms = nvmfh_now_ms(),
                        .kind = io->type == DP_IO_READ    ? K_READ
                                : io->type == DP_IO_WRITE ? K_WRITE
                                                          : K_OTHER,
                        .active = true };
    q->outstanding++;
    n->outstanding++;
    io->driver[1] = off + len;
    io->driver[2]++;
    if (io->type == DP_IO_FLUSH)
        io->driver[1] = io->length + 1; /* issued */
    return true;
}

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
        nvmfh_arm_tick(n);
}

static void flush_msg(void *arg)
{
    struct nvmfh *n = arg;
    n->flush_pending = false;
    if (n->destroying)
        nvmfh_maybe_free(n);
    else if (n->state == ST_UP)
        for (int i = 0; i < n->nq; i++)
            nvmfh_tx_flush(&n->q[i].io);
}

void nvmfh_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
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
    /* One send for every submit of this reactor pass: the flush runs after the
     * messages that brought them (messages to self run after the batch). */
    if (!n->flush_pending) {
        n->flush_pending = true;
        dp_reactor_send(n->bdev.reactor, flush_msg, n);
    }
}

/* ---- failure, reconnect, identity ---- */

void nvmfh_fail_all(struct nvmfh *n, const struct hcmd *failed, int status)
{
    /* the parents of commands: fail each io once, when its last command goes */
    for (int k = 0; k < NVMFH_MAX_QUEUES * QMAX; k++) {
        struct hqueue *q = &n->q[k / QMAX];
        struct hcmd *c = &q->cmds[k % QMAX];
        if (!c->active)
            continue;
        struct dp_bdev_io *io = c->io;
        if (io)
            ident_track(n, c, -EIO); /* it may or may not have landed */
        c->active = false;
        c->io = NULL;
        q->outstanding--;
        n->outstanding--;
        if (!io)
            continue;
        int st = c == failed ? -ETIMEDOUT : status;
        if (!io->driver[3] || c == failed)
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
