/*
 * fuzz_nbd_tx.c - libFuzzer harness for the NBD server's transmission phase
 * (src/nbd/transmission.c: process_input, write payloads from the staging
 * buffer and straight into the request's buffer, the memory charge and its
 * waits, block status, the reply batches), fed a hostile client's request
 * stream in pieces of any size, as recv completions would bring it.
 *
 * No sockets and no reactor: transmission.c is #included; the device is
 * 1 MiB in memory whose completions come later in either order, reactor messages and
 * the memory timer run from the driving loop, and sends complete whole.
 * Oracles: ASan (every payload and reply buffer access in bounds), every
 * device request lies inside the device (and changes nothing when the export
 * is read-only), the connection is freed once it closes with nothing in
 * flight, and what is charged to it then is exactly what it holds.
 *
 * Input: byte 0 = piece size - 1 (1..256 bytes per recv), byte 1 flags:
 * bit 0 budget of 3 slot buffers (else 64 MiB), bit 1 complete I/O oldest first,
 * bit 2 structured replies, bit 3 read-only export, bit 4 the agent's budget
 * is short (ENOBUFS: the retry timer), bit 5 the device has holes; the rest
 * is the stream (transmission requests).
 * Seeds: fuzz/seeds/fuzz_nbd_tx: every command (plus a read above the slot buffer),
 * whole and in 5-byte pieces, read-only; reads under the tight budget with
 * ENOBUFS; zero-length-write-ro (a write with no buffer, refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#define fprintf fz_fprintf
#include "nbd/transmission.c"
#undef fprintf

#define FZ_DEV (1u << 20)

/* ---- the environment ---------------------------------------------------- */

static struct dp_reactor *const g_r = (struct dp_reactor *)&g_r;
static struct io_uring_sqe g_sqe;
static uint64_t g_budget, g_charged, g_sum;
static bool g_nobufs, g_freed, g_fifo, g_ro;
static uint8_t g_dev[FZ_DEV];
static struct dp_bdev_io *g_pending[NBD_SLOTS];
static int g_npending;
static dp_msg_fn g_msg_fn[4 * NBD_SLOTS];
static void *g_msg_arg[4 * NBD_SLOTS];
static int g_nmsg;
struct dp_export_registry g_nbd_exports = DP_EXPORT_REGISTRY_INIT("nbd", NULL);

struct io_uring_sqe *dp_reactor_sqe(struct dp_reactor *r)
{
    memset(&g_sqe, 0, sizeof g_sqe);
    return &g_sqe;
}
struct dp_reactor *dp_reactor_self(void)
{
    return g_r;
}
void dp_reactor_send(struct dp_reactor *r, dp_msg_fn fn, void *arg)
{
    REQUIRE(g_nmsg < 4 * NBD_SLOTS);
    g_msg_fn[g_nmsg] = fn;
    g_msg_arg[g_nmsg++] = arg;
}
void *dp_buf_alloc(size_t len)
{
    return calloc(1, len); /* exact: ASan sees any overrun */
}
void dp_buf_free(void *buf)
{
    free(buf);
}
int dp_target_mem_charge(struct dp_target_conn *tc, uint64_t n)
{
    if (n > g_budget)
        return -EOVERFLOW;
    if (g_charged + n > g_budget)
        return -EAGAIN;
    if (g_nobufs && n)
        return -ENOBUFS;
    g_charged += n;
    return 0;
}
void dp_target_mem_release(struct dp_target_conn *tc, uint64_t n)
{
    REQUIRE(n <= g_charged);
    g_charged -= n;
}
void dp_target_mem_waited(void) {}
void dp_target_handshake_done(struct dp_target_conn *tc) {}
int dp_export_writer_check(struct dp_export *e, struct dp_export_client *cl, uint64_t off, const struct iovec *iov,
                           int iovcnt, uint64_t len)
{
    return off == 4096 ? -EPERM : 0; /* one block another host's nexus owns */
}

/* server.c's side of the connection's life */
void nbd_conn_maybe_free(struct nbd_conn *c)
{
    if (!c->closing || c->recv_inflight || c->send_inflight || c->io_inflight || c->kick_queued ||
        c->mem_timer_inflight)
        return;
    REQUIRE(!g_freed);
    /* What is still charged is exactly what the connection holds (conn_free releases it all). */
    uint64_t held = (uint64_t)c->nslots * sizeof(struct nbd_slot);
    for (int i = 0; i < c->nslots; i++)
        held += (c->slots[i]->buf ? SLOT_BUF : 0) + c->slots[i]->biglen;
    REQUIRE(g_charged == held);
    nbd_tx_free_slots(c);
    g_charged = 0;
    free(c->rbuf);
    free(c);
    g_freed = true;
}
void nbd_conn_drop(struct nbd_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        nbd_tx_close(c);
    }
    nbd_conn_maybe_free(c);
}
/* ---- the device ---------------------------------------------------------- */

static int fz_block_status(struct dp_bdev *b, uint64_t off, uint64_t len, uint64_t *got, uint32_t *st)
{
    REQUIRE(off < b->size && len <= b->size - off);
    *got = 4096 - off % 4096 < len ? 4096 - off % 4096 : len; /* alternating 4 KiB extents */
    *st = (off / 4096) & 1 ? DP_BS_HOLE : DP_BS_ALLOCATED;
    return off == 8192 ? -EIO : 0;
}
static struct dp_bdev_ops g_ops;
static struct dp_bdev g_bdev = { .name = "fuzz", .size = FZ_DEV, .block_size = 512, .ops = &g_ops };
static struct dp_export *g_exp;

static void dev_complete(struct dp_bdev_io *io)
{
    if (io->type == DP_IO_READ)
        memcpy(io->iov[0].iov_base, g_dev + io->offset, io->length);
    else if (io->type == DP_IO_WRITE)
        memcpy(g_dev + io->offset, io->iov[0].iov_base, io->length);
    else if (io->type != DP_IO_FLUSH)
        memset(g_dev + io->offset, 0, io->length);
    io->cb(io, io->offset == 12288 ? -EIO : 0);
}

void dp_bdev_submit(struct dp_bdev *b, struct dp_bdev_io *io)
{
    REQUIRE(io->offset <= b->size && io->length <= b->size - io->offset);
    REQUIRE(io->type == DP_IO_FLUSH || io->length > 0);
    REQUIRE(!g_ro || io->type == DP_IO_READ || io->type == DP_IO_FLUSH); /* a read-only export changes nothing */
    if (io->type == DP_IO_READ || io->type == DP_IO_WRITE)
        REQUIRE(io->iovcnt == 1 && io->iov[0].iov_len == io->length && io->iov[0].iov_base);
    REQUIRE(g_npending < NBD_SLOTS);
    g_pending[g_npending++] = io;
}

/* ---- driving ------------------------------------------------------------ */

static struct nbd_conn *conn_new(uint8_t flags)
{
    struct nbd_conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    c->r = g_r;
    c->exp = g_exp;
    c->bdev = &g_bdev;
    snprintf(c->peer_str, sizeof c->peer_str, "fuzz");
    c->rbuf = malloc(RBUF_SIZE);
    c->lim = (struct nbd_limits){ .size = FZ_DEV,
                                  .min_block = 1,
                                  .max_payload = NBD_MAX_PAYLOAD,
                                  .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                                            NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF,
                                  .structured = flags & 4,
                                  .meta_alloc = flags & 4 };
    if (g_ro)
        c->lim.tflags = (c->lim.tflags | NBD_FLAG_READ_ONLY) & ~(NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES);
    c->recv_op.cb = recv_cb;
    c->send_op.cb = send_cb;
    c->mem_timer_op.cb = mem_timer_cb;
    c->transmission = true;
    process_input(c);
    return c;
}

/* One event: a message, a device completion, a send, the memory timer or a recv. false: none left. */
static bool step(struct nbd_conn *c, const uint8_t *data, size_t size, size_t *pos, size_t piece)
{
    if (g_nmsg) {
        dp_msg_fn fn = g_msg_fn[0];
        void *arg = g_msg_arg[0];
        memmove(g_msg_fn, g_msg_fn + 1, --g_nmsg * sizeof *g_msg_fn);
        memmove(g_msg_arg, g_msg_arg + 1, g_nmsg * sizeof *g_msg_arg);
        fn(arg);
        return true;
    }
    if (g_npending) { /* newest first, or oldest first */
        struct dp_bdev_io *io = g_pending[g_fifo ? 0 : g_npending - 1];
        if (g_fifo)
            memmove(g_pending, g_pending + 1, (g_npending - 1) * sizeof *g_pending);
        g_npending--;
        dev_complete(io);
        return true;
    }
    if (c->send_inflight) {
        uint64_t n = 0;
        for (int i = c->siov_i; i < c->siov_n; i++)
            for (size_t k = 0; k < c->siov[i].iov_len; k++, n++) /* defined and in bounds */
                g_sum += ((const uint8_t *)c->siov[i].iov_base)[k];
        send_cb(&c->send_op, (int)n, 0);
        return true;
    }
    if (c->mem_timer_inflight) {
        g_nobufs = false; /* the other connections gave memory back */
        mem_timer_cb(&c->mem_timer_op, -ETIME, 0);
        return true;
    }
    if (!c->recv_inflight)
        return false;
    if (*pos == size) {
        recv_cb(&c->recv_op, 0, 0); /* the client hangs up */
        return true;
    }
    size_t n = size - *pos < piece ? size - *pos : piece;
    if (c->recv_direct) {
        uint32_t left = c->cur_write->req.length - c->cur_got;
        if (n > left)
            n = left;
        memcpy(c->cur_write->data + c->cur_got, data + *pos, n);
    } else {
        REQUIRE(c->rlen < RBUF_SIZE);
        if (n > RBUF_SIZE - c->rlen)
            n = RBUF_SIZE - c->rlen;
        memcpy(c->rbuf + c->rlen, data + *pos, n);
    }
    *pos += n;
    recv_cb(&c->recv_op, (int)n, 0);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!g_exp) {
        g_exp = calloc(1, sizeof *g_exp + 8);
        strcpy(g_exp->name, "fuzz");
        g_exp->bdev = &g_bdev;
    }
    size_t piece = (size_t)data[0] + 1;
    uint8_t flags = data[1];
    g_budget = flags & 1 ? 3 * SLOT_BUF + 4096 : 64u << 20;
    g_fifo = flags & 2;
    g_ro = flags & 8;
    g_nobufs = flags & 16;
    g_ops.block_status = flags & 32 ? fz_block_status : NULL;
    g_charged = 0;
    g_freed = false;
    g_npending = g_nmsg = 0;
    data += 2;
    size -= 2;
    struct nbd_conn *c = conn_new(flags);
    size_t pos = 0;
    for (int guard = 0; !g_freed; guard++) {
        REQUIRE(guard < 1000000); /* every step consumes input or ends something */
        if (!step(c, data, size, &pos, piece)) {
            /* stalled with nothing to wait for, or disconnected: the client goes */
            nbd_conn_drop(c);
            REQUIRE(g_freed || c->recv_inflight || c->send_inflight || g_npending || g_nmsg || c->mem_timer_inflight);
            if (!g_freed && c->recv_inflight)
                recv_cb(&c->recv_op, -ECANCELED, 0);
        }
    }
    REQUIRE(g_charged == 0);
    return 0;
}
