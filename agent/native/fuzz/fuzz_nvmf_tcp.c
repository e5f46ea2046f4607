/*
 * fuzz_nvmf_tcp.c - libFuzzer harness for the NVMe/TCP target's receive
 * state machine (src/nvmf/tcp.c: rx_bytes, header_done, pdu_done, the
 * memory wait and resume, the send queue): one connection fed a hostile
 * byte stream in pieces of any size, as recv completions would bring it
 * (large payloads straight into the request's buffer, as post_recv asks).
 *
 * No sockets and no reactor: tcp.c is #included, the command handlers are a
 * small model controller (reads return data, writes are consumed, some
 * commands complete later), send completions are reported whole at once,
 * and the memory budget is small so the "wait for memory" path runs too.
 * Oracles: ASan (every buffer access in bounds), no request completes twice,
 * C2HData never exceeds the command's buffer, the connection is freed once
 * closed with nothing in flight, and the charged memory returns to zero.
 *
 * Input: byte 0 = piece size - 1 (1..256 bytes per recv), byte 1 bit 0:
 * a budget of two kept request buffers (else 64 MiB), bit 1: complete commands at once
 * (else after the next recv); the rest is the stream.
 * Seeds: fuzz/seeds/fuzz_nvmf_tcp: ICReq, Connect, an R2T write, a read and an
 * in-capsule write, in 256- and 7-byte pieces; reads under the tight budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#define fprintf fz_fprintf
#include "nvmf/tcp.c"
#undef fprintf

/* ---- the environment ---------------------------------------------------- */

static struct dp_reactor *const g_r = (struct dp_reactor *)&g_r;
static struct io_uring_sqe g_sqe;
static uint64_t g_budget, g_charged;
static bool g_freed;

struct io_uring_sqe *dp_reactor_sqe(struct dp_reactor *r)
{
    memset(&g_sqe, 0, sizeof g_sqe);
    return &g_sqe;
}
void dp_reactor_send(struct dp_reactor *r, dp_msg_fn fn, void *arg)
{
    abort(); /* no migration and no kill in this model */
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
    if (g_charged + n > g_budget)
        return -ENOMEM;
    g_charged += n;
    return 0;
}
void dp_target_mem_release(struct dp_target_conn *tc, uint64_t n)
{
    REQUIRE(n <= g_charged);
    g_charged -= n;
}
void dp_target_mem_waited(void) {}
bool dp_target_handshake_left(const struct dp_target_conn *tc, struct __kernel_timespec *ts)
{
    return true;
}
void dp_target_handshake_expired(struct dp_target_conn *tc, const char *proto, const char *peer) {}
void dp_target_conn_release(struct dp_target_conn *tc)
{
    g_freed = true;
}
void dp_export_client_detach(struct dp_export *e, struct dp_export_client *cl) {}
void dp_export_conn_add_locked(struct dp_export_registry *reg, struct dp_export_conn *ec) {}
void dp_export_conn_remove_locked(struct dp_export_registry *reg, struct dp_export_conn *ec, struct dp_export *e) {}
void dp_export_unshare_all(struct dp_export_registry *reg) {}
int dp_listener_start(struct dp_listener *l, const char *proto, const char *host, uint16_t port,
                      dp_listener_accept_fn fn)
{
    return -ENOTSUP;
}
int dp_listener_port(struct dp_listener *l)
{
    return 0;
}
void dp_listener_stop(struct dp_listener *l) {}
void dp_listener_refuse(int fd, const struct dp_target_conn *tc) {}
int g_nvmf_nctrlrs;
void nvmf_subsys_forget_all(void) {}
void nvmf_connect_migrated(void *arg) {}

/* ---- the model controller ----------------------------------------------- */

static struct nvmf_ctrlr g_ctrlr; /* never looked into: the handlers are modelled */
static bool g_at_once;
static struct nvmf_req *g_later[NVMF_MAX_QSIZE];
static int g_nlater;
static uint8_t g_done[NVMF_MAX_QSIZE]; /* per slot: completions since its last (re)use */

static void finish(struct nvmf_req *q)
{
    uint8_t op = q->sqe.opc;
    if ((op & 3) == 2 && q->len) { /* controller to host: data */
        REQUIRE(q->buf && q->cap >= q->len);
        memset(q->buf, op, q->len);
        q->data_out = q->len;
    } else if ((op & 3) == 1 && q->len) { /* host to controller: every byte arrived */
        REQUIRE(q->buf && q->cap >= q->len && q->h2c_got <= q->len);
        uint32_t sum = 0;
        for (uint32_t i = 0; i < q->len; i++)
            sum += q->buf[i];
        g_sqe.user_data += sum;
    }
    REQUIRE(g_done[q->ttag]++ == 0);
    q->io_status = 0;
    q->c->io_inflight--;
    nvmf_req_complete(q, op == 0x7e ? NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE) | NVME_STATUS_DNR : 0, 0);
}

static void start(struct nvmf_req *q)
{
    g_done[q->ttag] = 0;
    q->c->io_inflight++;
    if (g_at_once || g_nlater == NVMF_MAX_QSIZE)
        finish(q);
    else
        g_later[g_nlater++] = q;
}

static void run_later(void)
{
    while (g_nlater)
        finish(g_later[--g_nlater]);
}

void nvmf_fabrics_cmd(struct nvmf_req *q)
{
    const struct nvmf_fabric_cmd *f = (const struct nvmf_fabric_cmd *)&q->sqe;
    if (f->fctype == NVMF_FCTYPE_CONNECT) {
        q->c->connected = true;
        q->c->ctrlr = &g_ctrlr;
        q->c->qid = ((const struct nvmf_connect_cmd *)f)->qid;
        q->c->hs_done = true;
        q->c->qsize = 32;
    }
    start(q);
}
void nvmf_admin_cmd(struct nvmf_req *q)
{
    start(q);
}
void nvmf_io_cmd(struct nvmf_req *q)
{
    start(q);
}
void nvmf_ctrlr_detach(struct nvmf_conn *c) {}

/* ---- driving ------------------------------------------------------------ */

static uint64_t iov_left(const struct nvmf_conn *c)
{
    uint64_t n = 0;
    for (int i = c->siov_i; i < c->siov_n; i++)
        n += c->siov[i].iov_len;
    return n;
}

static struct nvmf_conn *conn_new(void)
{
    struct nvmf_conn *c = calloc(1, sizeof *c);
    c->rbuf = calloc(1, NVMF_RBUF_SIZE);
    c->reqs = calloc(NVMF_MAX_QSIZE, sizeof *c->reqs);
    c->fd = -1;
    c->r = g_r;
    snprintf(c->peer.str, sizeof c->peer.str, "fuzz");
    for (int i = NVMF_MAX_QSIZE - 1; i >= 0; i--) {
        c->reqs[i].ttag = (uint16_t)i;
        c->reqs[i].next = c->free_reqs;
        c->free_reqs = &c->reqs[i];
    }
    c->recv_op.cb = recv_cb;
    c->send_op.cb = send_cb;
    post_recv(c);
    return c;
}

/* One step: a send or recv completes, or deferred commands finish. false: nothing moved. */
static bool step(struct nvmf_conn *c, const uint8_t *data, size_t size, size_t *pos, size_t piece)
{
    if (c->send_inflight) {
        for (int i = c->siov_i; i < c->siov_n; i++) /* what goes out must be defined and in bounds */
            for (size_t k = 0; k < c->siov[i].iov_len; k++)
                g_sqe.user_data += ((const uint8_t *)c->siov[i].iov_base)[k];
        send_cb(&c->send_op, (int)iov_left(c), 0);
        return true;
    }
    if (g_nlater) {
        run_later();
        return true;
    }
    if (!c->recv_inflight)
        return false;
    if (*pos == size) {
        recv_cb(&c->recv_op, 0, 0); /* the host hangs up */
        return true;
    }
    size_t n = size - *pos < piece ? size - *pos : piece;
    if (c->recv_direct) {
        if (n > c->dst_left)
            n = c->dst_left;
        memcpy(c->dst, data + *pos, n);
    } else {
        memcpy(c->rbuf, data + *pos, n);
    }
    *pos += n;
    recv_cb(&c->recv_op, (int)n, 0);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = (size_t)data[0] + 1;
    g_budget = data[1] & 1 ? 2 * DP_TARGET_KEPT_BUF : 64u << 20; /* two kept buffers, or plenty */
    g_at_once = data[1] & 2;
    g_charged = 0;
    g_freed = false;
    g_nlater = 0;
    data += 2;
    size -= 2;
    struct nvmf_conn *c = conn_new();
    size_t pos = 0;
    for (int guard = 0; !g_freed; guard++) {
        REQUIRE(guard < 1000000); /* every step consumes input or ends something */
        if (!step(c, data, size, &pos, piece)) {
            /* stuck waiting for memory the model holds nowhere: the host gives up */
            REQUIRE(c->wait_req || c->closing);
            nvmf_conn_close(c, NULL);
            if (!g_freed && c->recv_inflight)
                recv_cb(&c->recv_op, -ECANCELED, 0);
            if (!g_freed && !c->send_inflight && !g_nlater && !c->recv_inflight)
                abort(); /* closed, nothing in flight, yet not freed */
        }
    }
    REQUIRE(g_charged == 0);
    return 0;
}
