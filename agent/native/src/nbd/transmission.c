/*
 * transmission.c - the NBD transmission phase of one connection: request
 * parsing, bdev I/O submission, replies. It starts (nbd_tx_start) on the
 * reactor that owns the export's bdev, once handshake.c has attached the
 * connection to its export; server.c owns the connection's lifetime and
 * calls nbd_tx_close / nbd_tx_free_slots when it ends.
 *
 * Hot path, per connection, allocation-free:
 *  - one io_uring RECV at a time into a 64 KiB staging buffer; request
 *    headers are parsed from it, small write payloads copied out of it, the
 *    rest of a large payload received directly into the request's buffer;
 *  - up to NBD_SLOTS request slots, allocated on first need and kept (each
 *    with a buffer of SLOT_BUF bytes, allocated on first use and kept; only
 *    requests above SLOT_BUF allocate, with mmap, so the memory goes back to
 *    the system when the reply has gone out);
 *  - every slot and buffer is charged to the connection's and the agent's
 *    memory budget (target/limits.h) before it is allocated. A request whose
 *    memory does not fit is not read further: the connection stops receiving
 *    until its own replies have gone out (back-pressure), or, when it holds
 *    nothing the others could wait on, retries on a short timer. A client
 *    that never reads its replies therefore pins at most its budget;
 *  - replies complete out of order and are batched: one SENDMSG carries
 *    every reply ready at the time (header + data iovecs, zero-copy from the
 *    buffer the bdev read into). One send in flight keeps the stream ordered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "nbd/proto.h"
#include "nbd/server.h"
#include "reactor/reactor.h"
#include "target/export.h"
#include "target/limits.h"
#include "util/container.h"
#include "util/iov.h"

static void process_input(struct nbd_conn *c);
static void kick_send(struct nbd_conn *c);

/* ---- request slots ------------------------------------------------------- */

static void big_free(struct nbd_conn *c, struct nbd_slot *s)
{
    if (!s->big)
        return;
    munmap(s->big, s->biglen);
    dp_target_mem_release(&c->tc, s->biglen);
    s->big = NULL;
    s->biglen = 0;
}

static void slot_put(struct nbd_conn *c, struct nbd_slot *s)
{
    big_free(c, s);
    s->next = c->free_slots;
    c->free_slots = s;
}

void nbd_tx_free_slots(struct nbd_conn *c)
{
    for (int i = 0; i < c->nslots; i++) {
        dp_buf_free(c->slots[i]->buf);
        big_free(c, c->slots[i]);
        free(c->slots[i]);
    }
}

void nbd_tx_close(struct nbd_conn *c)
{
    if (c->mem_timer_inflight) { /* its completion (-ECANCELED) frees c */
        struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
        io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&c->mem_timer_op, 0);
        io_uring_sqe_set_data(sqe, NULL);
    }
    while (c->sq_head) {
        struct nbd_slot *s = c->sq_head;
        c->sq_head = s->next;
        slot_put(c, s);
    }
    c->sq_tail = NULL;
    /* cur_write and the slots being sent may still be the target of an
     * in-flight recv/send: conn_free releases their buffers. */
}

/* ---- transmission ------------------------------------------------------- */

static void recv_cb(struct dp_uring_op *op, int res, uint32_t flags);
static void send_cb(struct dp_uring_op *op, int res, uint32_t flags);
static void io_done(struct dp_bdev_io *io, int status);

static void tx_fail(struct nbd_conn *c, const char *why)
{
    fprintf(stderr, "nbd: peer %s, export '%s': %s; closing\n", c->peer_str, c->exp->name, why);
    nbd_conn_drop(c);
}

static void mem_timer_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbd_conn *c = container_of(op, struct nbd_conn, mem_timer_op);
    c->mem_timer_inflight = false;
    if (c->closing) {
        nbd_conn_maybe_free(c);
        return;
    }
    process_input(c);
}

void nbd_tx_start(void *arg)
{
    struct nbd_conn *c = arg;
    pthread_mutex_lock(&g_nbd_exports.lock);
    c->r = dp_reactor_self();
    c->migrating = false;
    bool dead = c->kill_pending || c->exp->dead;
    pthread_mutex_unlock(&g_nbd_exports.lock);
    c->bdev = c->exp->bdev;
    c->rbuf = malloc(RBUF_SIZE);
    if (dead || !c->rbuf) {
        nbd_conn_drop(c);
        return;
    }
    dp_target_handshake_done(&c->tc);
    nbd_neg_limits(c->neg, &c->lim);
    free(c->hbuf);
    c->hbuf = NULL;
    free(c->neg);
    c->neg = NULL;
    c->recv_op.cb = recv_cb;
    c->send_op.cb = send_cb;
    c->mem_timer_op.cb = mem_timer_cb;
    c->transmission = true;
    process_input(c);
}

static void post_recv(struct nbd_conn *c)
{
    if (c->recv_inflight || c->closing || c->disc)
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    if (c->cur_write && c->rpos == c->rlen) {
        /* Rest of a write payload: straight into the request's buffer. */
        c->recv_direct = true;
        io_uring_prep_recv(sqe, c->fd, c->cur_write->data + c->cur_got, c->cur_write->req.length - c->cur_got,
                           MSG_WAITALL);
    } else {
        if (c->rpos) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        c->recv_direct = false;
        io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
    }
    io_uring_sqe_set_data(sqe, &c->recv_op);
    c->recv_inflight = true;
}

static void maybe_disc_done(struct nbd_conn *c)
{
    if (c->disc && !c->closing && !c->io_inflight && !c->send_inflight && !c->sq_head) {
        nbd_conn_drop(c);
    }
}

static void enqueue_reply(struct nbd_conn *c, struct nbd_slot *s)
{
    s->next = NULL;
    if (c->sq_tail)
        c->sq_tail->next = s;
    else
        c->sq_head = s;
    c->sq_tail = s;
}

static void reply_err(struct nbd_conn *c, struct nbd_slot *s, uint32_t err)
{
    if (c->lim.structured && (s->req.type == NBD_CMD_READ || s->req.type == NBD_CMD_BLOCK_STATUS))
        s->hdrlen = (uint32_t)nbd_enc_error_chunk(s->hdr, s->req.cookie, err);
    else
        s->hdrlen = (uint32_t)nbd_enc_simple_reply(s->hdr, err, s->req.cookie);
    s->datalen = 0;
    enqueue_reply(c, s);
}

static void reply_ok(struct nbd_conn *c, struct nbd_slot *s)
{
    s->datalen = 0;
    if (s->req.type == NBD_CMD_READ) {
        if (c->lim.structured)
            s->hdrlen = (uint32_t)nbd_enc_read_chunk(s->hdr, s->req.cookie, s->req.offset, s->req.length);
        else
            s->hdrlen = (uint32_t)nbd_enc_simple_reply(s->hdr, 0, s->req.cookie);
        s->datalen = s->req.length;
    } else {
        s->hdrlen = (uint32_t)nbd_enc_simple_reply(s->hdr, 0, s->req.cookie);
    }
    enqueue_reply(c, s);
}

/* ---- request memory (charged before it is allocated) ---- */

static size_t page_round(uint32_t len)
{
    return ((size_t)len + DP_BUF_ALIGN - 1) & ~(size_t)(DP_BUF_ALIGN - 1);
}

/* Payload bytes request q needs a buffer for (0: none). */
static uint32_t req_payload(const struct nbd_request *q, int rc)
{
    if (q->type == NBD_CMD_WRITE)
        return q->length; /* consumed even when refused */
    if (rc)
        return 0;
    if (q->type == NBD_CMD_READ)
        return q->length;
    if (q->type == NBD_CMD_BLOCK_STATUS)
        return SLOT_BUF;
    return 0;
}

/* Bytes to charge for a request of `len` payload bytes on slot s (NULL: a new slot). */
static uint64_t req_charge(const struct nbd_slot *s, uint32_t len)
{
    uint64_t n = s ? 0 : sizeof(struct nbd_slot);
    if (len == 0)
        return n;
    if (len <= SLOT_BUF)
        return n + (s && s->buf ? 0 : SLOT_BUF);
    return n + page_round(len);
}

/* Give the kept buffers of idle slots (except `keep`) back to the budget. */
static void trim_idle(struct nbd_conn *c, struct nbd_slot *keep)
{
    for (struct nbd_slot *s = c->free_slots; s; s = s->next) {
        if (s == keep || !s->buf)
            continue;
        dp_buf_free(s->buf);
        s->buf = NULL;
        dp_target_mem_release(&c->tc, SLOT_BUF);
    }
}

/* Allocate what req_charge(s, len) charged; s->data is the payload buffer. */
static int slot_fill(struct nbd_conn *c, struct nbd_slot *s, uint32_t len)
{
    s->data = NULL;
    if (len == 0)
        return 0;
    if (len <= SLOT_BUF) {
        if (!s->buf && !(s->buf = dp_buf_alloc(SLOT_BUF))) {
            dp_target_mem_release(&c->tc, SLOT_BUF);
            return -ENOMEM;
        }
        s->data = s->buf;
        return 0;
    }
    /* Requests above SLOT_BUF (up to the maximum payload): their own mapping,
     * unmapped when the reply has gone out. */
    size_t n = page_round(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        dp_target_mem_release(&c->tc, n);
        return -ENOMEM;
    }
    s->big = s->data = p;
    s->biglen = n;
    return 0;
}

/* base:allocation from the bdev's block_status; synchronous on this reactor. */
static void do_block_status(struct nbd_conn *c, struct nbd_slot *s)
{
    struct dp_bdev *b = c->bdev;
    uint8_t *p = s->data; /* SLOT_BUF bytes (slot_fill) */
    uint64_t off = s->req.offset, end = off + s->req.length;
    uint32_t n = 0, max = (s->req.flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : BS_MAX_EXTENTS;
    nbd_put32(p, NBD_META_ID_BASE_ALLOCATION);
    while (off < end && n < max) {
        uint64_t len = end - off;
        uint32_t st = DP_BS_ALLOCATED;
        if (b->ops->block_status) {
            uint64_t got = 0;
            int rc = b->ops->block_status(b, off, len, &got, &st);
            if (rc < 0) {
                if (n == 0) {
                    reply_err(c, s, nbd_errno(rc));
                    return;
                }
                break;
            }
            if (got == 0 || got > len)
                got = len; /* never trust a module to make progress */
            len = got;
        }
        uint32_t flags = (st & DP_BS_HOLE) ? (NBD_STATE_HOLE | NBD_STATE_ZERO) : 0;
        /* Merge with the previous extent when the state is the same. */
        if (n > 0 && nbd_get32(p + 4 + 8 * (n - 1) + 4) == flags) {
            uint8_t *prev = p + 4 + 8 * (n - 1);
            nbd_put32(prev, nbd_get32(prev) + (uint32_t)len);
        } else {
            nbd_put32(p + 4 + 8 * n, (uint32_t)len);
            nbd_put32(p + 4 + 8 * n + 4, flags);
            n++;
        }
        off += len;
    }
    s->datalen = 4 + 8 * n;
    s->hdrlen = (uint32_t)nbd_enc_chunk_hdr(s->hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, s->req.cookie,
                                            s->datalen);
    enqueue_reply(c, s);
}

static void exec(struct nbd_conn *c, struct nbd_slot *s)
{
    struct dp_bdev_io *io = &s->io;
    const struct nbd_request *q = &s->req;
    io->flags = (q->flags & NBD_CMD_FLAG_FUA) ? DP_IO_FUA : 0;
    io->offset = q->offset;
    io->length = q->length;
    io->iov = NULL;
    io->iovcnt = 0;
    io->cb = io_done;
    io->cb_arg = s;
    switch (q->type) {
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
        s->iov.iov_base = s->data;
        s->iov.iov_len = q->length;
        io->iov = &s->iov;
        io->iovcnt = 1;
        io->type = q->type == NBD_CMD_READ ? DP_IO_READ : DP_IO_WRITE;
        break;
    case NBD_CMD_FLUSH:
        io->type = DP_IO_FLUSH;
        io->offset = io->length = 0;
        break;
    case NBD_CMD_TRIM: io->type = DP_IO_UNMAP; break;
    case NBD_CMD_WRITE_ZEROES: io->type = DP_IO_WRITE_ZEROES; break;
    case NBD_CMD_BLOCK_STATUS: do_block_status(c, s); return;
    default: reply_err(c, s, NBD_EINVAL); return;
    }
    if (io->type != DP_IO_READ && io->type != DP_IO_FLUSH) {
        /* An export serving a nexus child is writable by the nexus's host only. */
        int rc = dp_export_writer_check(c->exp, &c->wc, q->offset, io->iov, io->iovcnt, q->length);
        if (rc < 0) {
            reply_err(c, s, nbd_errno(rc));
            return;
        }
    }
    c->io_inflight++;
    dp_bdev_submit(c->bdev, io);
}

/*
 * Runs after every completion the reactor collected in this round (they
 * were queued before it), so one send carries all of their replies.
 */
static void kick_msg(void *arg)
{
    struct nbd_conn *c = arg;
    c->kick_queued = false;
    if (c->closing) {
        nbd_conn_maybe_free(c);
        return;
    }
    kick_send(c);
    maybe_disc_done(c);
}

static void io_done(struct dp_bdev_io *io, int status)
{
    struct nbd_slot *s = io->cb_arg;
    struct nbd_conn *c = s->c;
    c->io_inflight--;
    if (c->closing) {
        slot_put(c, s);
        nbd_conn_maybe_free(c);
        return;
    }
    if (status < 0)
        reply_err(c, s, nbd_errno(status));
    else
        reply_ok(c, s);
    if (!c->kick_queued && !c->send_inflight) {
        c->kick_queued = true;
        dp_reactor_send(c->r, kick_msg, c);
    }
}

/* Parse and start requests from the staging buffer until it runs dry. */
/*
 * Copy what rbuf holds of the current write's payload into its slot. True
 * when the payload is complete (the request went on to the bdev, or its
 * refusal was queued); false when more must come (a recv is posted).
 */
static bool write_payload_take(struct nbd_conn *c)
{
    struct nbd_slot *s = c->cur_write;
    uint32_t need = s->req.length - c->cur_got, avail = c->rlen - c->rpos;
    uint32_t take = avail < need ? avail : need;
    if (take) /* a zero-length write has no buffer (s->data NULL): no pointer arithmetic on it (fuzz_nbd_tx) */
        memcpy(s->data + c->cur_got, c->rbuf + c->rpos, take);
    c->rpos += take;
    c->cur_got += take;
    if (c->cur_got < s->req.length) {
        post_recv(c);
        return false;
    }
    c->cur_write = NULL;
    if (s->err)
        reply_err(c, s, s->err); /* payload consumed, request refused */
    else
        exec(c, s);
    return true;
}

/*
 * A request does not fit in memory now: stop reading until it may. With
 * replies of our own outstanding (own), their going out resumes us
 * (back-pressure); holding nothing, the agent's budget is held by other
 * connections and we retry on a growing timer.
 */
static void mem_wait(struct nbd_conn *c, bool own)
{
    if (!c->mem_wait) {
        c->mem_wait = true;
        dp_target_mem_waited();
    }
    if (own) {
        c->stalled = true; /* back-pressure: resumes when a reply has gone out */
        return;
    }
    if (c->mem_timer_inflight)
        return;
    c->mem_retry_ms = c->mem_retry_ms ? c->mem_retry_ms * 2 : MEM_RETRY_MIN_MS;
    if (c->mem_retry_ms > MEM_RETRY_MAX_MS)
        c->mem_retry_ms = MEM_RETRY_MAX_MS;
    c->mem_ts.tv_sec = c->mem_retry_ms / 1000;
    c->mem_ts.tv_nsec = (long long)(c->mem_retry_ms % 1000) * 1000000ll;
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    io_uring_prep_timeout(sqe, &c->mem_ts, 0, 0);
    io_uring_sqe_set_data(sqe, &c->mem_timer_op);
    c->mem_timer_inflight = true;
}

enum charge_result { CHARGED, CHARGE_WAIT, CHARGE_CLOSED };

/*
 * Charge request q's memory (a slot unless s is a kept one, and *plen
 * payload bytes) before anything is allocated; the header stays unread
 * until it fits. A read that can never fit becomes an EOVERFLOW reply
 * (*rc, *plen = 0); a write that can never fit closes the connection (its
 * payload cannot be skipped safely).
 */
static enum charge_result charge_request(struct nbd_conn *c, struct nbd_slot *s, const struct nbd_request *q, int *rc,
                                         uint32_t *plen)
{
    int mrc = dp_target_mem_charge(&c->tc, req_charge(s, *plen));
    if (mrc == -EAGAIN || mrc == -ENOBUFS) {
        trim_idle(c, *plen <= SLOT_BUF ? s : NULL);
        mrc = dp_target_mem_charge(&c->tc, req_charge(s, *plen));
    }
    if (mrc == -EAGAIN || mrc == -ENOBUFS) {
        bool own = c->io_inflight || c->sq_head || c->nsending; /* replies of ours to wait for */
        if (own || mrc == -ENOBUFS) {
            mem_wait(c, own);
            return CHARGE_WAIT;
        }
        mrc = -EOVERFLOW; /* holds nothing else, and still does not fit */
    }
    if (mrc == -EOVERFLOW) {
        /* Larger than the connection's budget (lowered since the client
         * negotiated its maximum payload). */
        if (q->type == NBD_CMD_WRITE) {
            tx_fail(c, "write payload above the connection's memory budget");
            return CHARGE_CLOSED;
        }
        *rc = NBD_EOVERFLOW;
        *plen = 0;
        if (dp_target_mem_charge(&c->tc, req_charge(s, 0)) < 0) {
            c->stalled = true; /* not even a slot: wait for ours */
            return CHARGE_WAIT;
        }
    }
    c->mem_wait = false;
    c->mem_retry_ms = 0;
    return CHARGED;
}

/* The slot for a charged request: s (a free one) or a new one; NULL when
 * out of memory (the connection is then closing). */
static struct nbd_slot *slot_take(struct nbd_conn *c, struct nbd_slot *s, uint32_t plen)
{
    if (s) {
        c->free_slots = s->next;
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        dp_target_mem_release(&c->tc, req_charge(NULL, plen));
        tx_fail(c, "out of memory for a request slot");
        return NULL;
    }
    s->c = c;
    c->slots[c->nslots++] = s;
    return s;
}

/*
 * Parse and start every request rbuf holds, until it runs dry (a recv is
 * posted), memory or slots run out (stalled, or a timer), the client
 * disconnects or the connection fails. Then send what replies are ready.
 */
static void process_input(struct nbd_conn *c)
{
    while (!c->closing && !c->disc) {
        if (c->cur_write) {
            if (!write_payload_take(c))
                break;
            continue;
        }
        if (c->rlen - c->rpos < NBD_REQ_LEN) {
            post_recv(c);
            break;
        }
        if (!c->free_slots && c->nslots == NBD_SLOTS) {
            c->stalled = true; /* resumes when a reply has gone out */
            break;
        }
        struct nbd_request q;
        if (nbd_parse_request(c->rbuf + c->rpos, &q) < 0) {
            char why[64];
            snprintf(why, sizeof why, "bad request magic 0x%08x", nbd_get32(c->rbuf + c->rpos));
            tx_fail(c, why);
            return;
        }
        /* The export may have grown since this client negotiated (a nexus or
         * replica resized): a request past the old end is judged by the size
         * now. Sizes only grow, so nothing valid before becomes invalid. */
        if (q.offset + (uint64_t)q.length > c->lim.size)
            c->lim.size = __atomic_load_n(&c->bdev->size, __ATOMIC_RELAXED);
        int rc = nbd_check_request(&q, &c->lim);
        if (rc == NBD_CHECK_CLOSE) {
            char why[96];
            snprintf(why, sizeof why, "write of %u bytes above the %u-byte maximum payload", q.length,
                     c->lim.max_payload);
            tx_fail(c, why);
            return;
        }
        if (q.type == NBD_CMD_DISC) {
            c->rpos += NBD_REQ_LEN;
            c->disc = true;
            break;
        }
        struct nbd_slot *s = c->free_slots; /* NULL: a new slot is charged too */
        uint32_t plen = req_payload(&q, rc);
        enum charge_result cr = charge_request(c, s, &q, &rc, &plen);
        if (cr == CHARGE_CLOSED)
            return;
        if (cr == CHARGE_WAIT)
            break;
        s = slot_take(c, s, plen);
        if (!s)
            return;
        c->rpos += NBD_REQ_LEN;
        s->req = q;
        s->err = (uint32_t)rc;
        if (slot_fill(c, s, plen) < 0) {
            if (q.type == NBD_CMD_WRITE) {
                slot_put(c, s);
                tx_fail(c, "out of memory for a write payload");
                return;
            }
            reply_err(c, s, NBD_ENOMEM);
            continue;
        }
        if (q.type == NBD_CMD_WRITE) {
            c->cur_write = s;
            c->cur_got = 0;
            continue;
        }
        if (rc)
            reply_err(c, s, (uint32_t)rc);
        else
            exec(c, s);
    }
    kick_send(c);
    maybe_disc_done(c);
}

static void recv_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbd_conn *c = nbd_op_conn(op, true);
    if (!c)
        return;
    if (res <= 0) {
        /* EOF without NBD_CMD_DISC, or a socket error: outstanding I/O
         * still completes (nbd_conn_maybe_free waits for it). */
        if (res < 0 && res != -ECONNRESET && res != -ECANCELED)
            fprintf(stderr, "nbd: peer %s, export '%s': recv: %s; closing\n", c->peer_str, c->exp->name,
                    strerror(-res));
        nbd_conn_drop(c);
        return;
    }
    if (c->recv_direct)
        c->cur_got += (uint32_t)res;
    else
        c->rlen += (uint32_t)res;
    process_input(c);
}

/* Send the reply iovecs siov[siov_i..siov_n) in one SENDMSG. */
static void post_sendmsg(struct nbd_conn *c)
{
    c->smsg.msg_iov = c->siov + c->siov_i;
    c->smsg.msg_iovlen = (size_t)(c->siov_n - c->siov_i);
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    io_uring_prep_sendmsg(sqe, c->fd, &c->smsg, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &c->send_op);
    c->send_inflight = true;
}

static void kick_send(struct nbd_conn *c)
{
    if (c->send_inflight || c->closing || !c->sq_head)
        return;
    int n = 0, v = 0;
    while (c->sq_head && n < SEND_BATCH) {
        struct nbd_slot *s = c->sq_head;
        c->sq_head = s->next;
        c->sending[n++] = s;
        c->siov[v].iov_base = s->hdr;
        c->siov[v++].iov_len = s->hdrlen;
        if (s->datalen) {
            c->siov[v].iov_base = s->data;
            c->siov[v++].iov_len = s->datalen;
        }
    }
    if (!c->sq_head)
        c->sq_tail = NULL;
    c->nsending = n;
    c->siov_n = v;
    c->siov_i = 0;
    memset(&c->smsg, 0, sizeof c->smsg);
    post_sendmsg(c);
}

static void send_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nbd_conn *c = container_of(op, struct nbd_conn, send_op);
    c->send_inflight = false;
    if (!c->closing && res > 0 && !dp_iov_advance(c->siov, c->siov_n, &c->siov_i, (size_t)res)) {
        post_sendmsg(c); /* short send: the rest */
        return;
    }
    for (int i = 0; i < c->nsending; i++)
        slot_put(c, c->sending[i]);
    c->nsending = 0;
    if (c->closing || res <= 0) {
        nbd_conn_drop(c);
        return;
    }
    if (c->stalled) {
        c->stalled = false;
        process_input(c); /* also kicks the next send */
    } else {
        kick_send(c);
        maybe_disc_done(c);
    }
}
