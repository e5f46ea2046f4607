/*
 * tcp.c - the NVMe/TCP transport of the target: accepting, ICReq/ICResp,
 * the PDU receive state machine (capsules with in-capsule data, H2CData
 * after R2T, digests), the send queue (R2T, C2HData, CapsuleResp,
 * C2HTermReq) and connection lifetime. Commands go to ctrlr.c (fabrics),
 * admin.c and io.c. Event-driven: one recv and one sendmsg in flight at
 * most, nothing runs while a connection is idle.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/export.h"
#include "nvmf/target.h"
#include "util/error.h"
#include "util/crc32c.h"
#include "util/container.h"
#include "util/iov.h"

static void kill_export_conns_locked(struct dp_export_registry *reg, struct dp_export *e);
struct dp_export_registry g_nvmf_exports = DP_EXPORT_REGISTRY_INIT("nvmf", kill_export_conns_locked);
static struct dp_listener g_lis = DP_LISTENER_INIT;

static void noop_cb(struct dp_uring_op *op, int res, uint32_t flags) {}
struct dp_uring_op g_nvmf_noop = { noop_cb };

static void process_input(struct nvmf_conn *c);
static void kick_send(struct nvmf_conn *c);
static void post_recv(struct nvmf_conn *c);

/* ---- lifetime ------------------------------------------------------------ */

static void req_buf_drop(struct nvmf_conn *c, struct nvmf_req *q)
{
    if (q->buf) {
        dp_buf_free(q->buf);
        dp_target_mem_release(&c->tc, q->charged);
    }
    q->buf = NULL;
    q->cap = 0;
    q->charged = 0;
}

static void req_release(struct nvmf_conn *c, struct nvmf_req *q)
{
    if (q->cap > DP_TARGET_KEPT_BUF)
        req_buf_drop(c, q); /* a large one goes back at once; a small one stays for the next request */
    q->active = q->awaiting_h2c = q->aer = false;
    q->tx = TX_NONE;
    q->next = c->free_reqs;
    c->free_reqs = q;
    c->nactive--;
}

static void conn_free(struct nvmf_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    for (int i = 0; c->reqs && i < NVMF_MAX_QSIZE; i++)
        if (c->reqs[i].buf) {
            dp_buf_free(c->reqs[i].buf);
            dp_target_mem_release(&c->tc, c->reqs[i].charged);
        }
    dp_target_conn_release(&c->tc);
    free(c->reqs);
    free(c->rbuf);
    free(c);
}

static void maybe_free(struct nvmf_conn *c)
{
    if (!c->closing || c->recv_inflight || c->send_inflight || c->io_inflight || c->busy)
        return;
    nvmf_ctrlr_detach(c); /* on c's reactor, nothing in flight */
    pthread_mutex_lock(&g_nvmf_exports.lock);
    if (c->msg_refs > 0 || c->migrating) {
        pthread_mutex_unlock(&g_nvmf_exports.lock);
        return;
    }
    if (c->exp) /* before the export may go (unshare waits for conn_remove); w.lock nests inside */
        dp_export_client_detach(c->exp, &c->wc);
    dp_export_conn_remove_locked(&g_nvmf_exports, &c->link, c->exp);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    conn_free(c);
}

void nvmf_conn_close(struct nvmf_conn *c, const char *why)
{
    if (!c->closing) {
        if (why)
            fprintf(stderr, "nvmf: peer %s%s%s: %s; closing\n", c->peer.str, c->subnqn[0] ? ", subsystem " : "",
                    c->subnqn, why);
        c->closing = true;
        shutdown(c->fd, SHUT_RDWR); /* wakes the recv, fails a blocked send */
    }
    maybe_free(c);
}

static void kill_msg(void *arg)
{
    struct nvmf_conn *c = arg;
    pthread_mutex_lock(&g_nvmf_exports.lock);
    c->msg_refs--;
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    nvmf_conn_close(c, NULL);
}

void nvmf_conn_kill_locked(struct nvmf_conn *c)
{
    if (c->migrating) {
        c->kill_pending = true;
        return;
    }
    c->msg_refs++;
    dp_reactor_send(c->r, kill_msg, c);
}

static void kill_export_conns_locked(struct dp_export_registry *reg, struct dp_export *e)
{
    struct nvmf_conn *c;
    dp_export_conn_each(reg, c, struct nvmf_conn, link) if (c->exp == e) nvmf_conn_kill_locked(c);
}

/* A fatal transport error: C2HTermReq carrying the offending header, then close. */
static void fatal(struct nvmf_conn *c, const struct nvmf_pdu_err *err)
{
    fprintf(stderr, "nvmf: peer %s: %s; sending C2HTermReq (fes %u)\n", c->peer.str, err->msg, err->fes);
    struct nvme_tcp_term_req_hdr t;
    uint32_t have = c->hdr_got < NVME_TCP_TERM_REQ_DATA_MAX_C2H ? c->hdr_got : NVME_TCP_TERM_REQ_DATA_MAX_C2H;
    nvmf_term_req_init(&t, NVMF_SIDE_CTRL, err->fes, err->fei, have);
    memcpy(c->ctl, &t, sizeof t);
    memcpy(c->ctl + sizeof t, c->hdr, t.ch.plen - sizeof t);
    c->ctl_len = t.ch.plen;
    c->ctl_pending = true;
    c->term_sent = true;
    kick_send(c);
}

/* ---- requests ------------------------------------------------------------ */

/* The request's data buffer: the slot's kept one when it is large enough (its
 * bytes are stale: every user overwrites them or zeroes them, as admin replies do). */
int nvmf_req_buf(struct nvmf_req *q)
{
    if (!q->len || (q->buf && q->cap >= q->len))
        return 0;
    struct nvmf_conn *c = q->c;
    req_buf_drop(c, q);
    uint32_t cap = q->len <= DP_TARGET_KEPT_BUF ? DP_TARGET_KEPT_BUF : (q->len + 4095u) & ~4095u;
    int rc = dp_target_mem_charge(&c->tc, cap);
    if (rc < 0) { /* the kept buffers of idle slots go back to the budget first (as NBD's do) */
        for (struct nvmf_req *f = c->free_reqs; f; f = f->next)
            req_buf_drop(c, f);
        rc = dp_target_mem_charge(&c->tc, cap);
    }
    if (rc < 0)
        return -EAGAIN;
    q->buf = dp_buf_alloc(cap);
    if (!q->buf) {
        dp_target_mem_release(&c->tc, cap);
        return -EAGAIN;
    }
    q->cap = cap;
    q->charged = cap;
    return 0;
}

static void enqueue(struct nvmf_conn *c, struct nvmf_req *q)
{
    q->next = NULL;
    if (c->sq_tail)
        c->sq_tail->next = q;
    else
        c->sq_head = q;
    c->sq_tail = q;
    kick_send(c);
}

void nvmf_req_complete(struct nvmf_req *q, uint16_t status, uint32_t cdw0)
{
    struct nvmf_conn *c = q->c;
    struct nvme_tcp_rsp *rsp = (struct nvme_tcp_rsp *)q->rsp;
    memset(rsp, 0, sizeof *rsp);
    if (status)
        q->data_out = 0;
    nvmf_ch_init(&rsp->ch, NVME_TCP_PDU_CAPSULE_RESP, c->hdgst, false, NVME_TCP_RSP_HLEN, 0);
    rsp->cqe.cdw0 = cdw0;
    rsp->cqe.cdw1 = q->cqe.cdw1;
    rsp->cqe.sqhd = c->sqflow_off ? 0xffff : c->sqhd;
    rsp->cqe.sqid = c->qid;
    rsp->cqe.cid = q->sqe.cid;
    rsp->cqe.status = status;
    if (c->hdgst) {
        uint32_t d = nvmf_digest(rsp, NVME_TCP_RSP_HLEN);
        memcpy(q->rsp + NVME_TCP_RSP_HLEN, &d, 4);
    }
    if (q->data_out) {
        struct nvme_tcp_c2h_data_hdr *h = (struct nvme_tcp_c2h_data_hdr *)q->pdu;
        memset(h, 0, sizeof *h);
        nvmf_ch_init(&h->ch, NVME_TCP_PDU_C2H_DATA, c->hdgst, c->ddgst, NVME_TCP_DATA_HLEN, q->data_out);
        h->ch.flags |= NVME_TCP_F_DATA_LAST;
        /* With SQ flow control off the host needs no SQHD: the data PDU can end the command. */
        q->no_rsp = c->sqflow_off && status == 0 && cdw0 == 0 && q->cqe.cdw1 == 0;
        if (q->no_rsp)
            h->ch.flags |= NVME_TCP_F_DATA_SUCCESS;
        h->cccid = q->sqe.cid;
        h->datal = q->data_out;
        if (c->hdgst) {
            uint32_t d = nvmf_digest(h, NVME_TCP_DATA_HLEN);
            memcpy(q->pdu + NVME_TCP_DATA_HLEN, &d, 4);
        }
        if (c->ddgst)
            q->ddgst = nvmf_digest(q->buf, q->data_out);
    }
    q->tx = TX_FINAL;
    enqueue(c, q);
}

static void send_r2t(struct nvmf_conn *c, struct nvmf_req *q)
{
    struct nvme_tcp_r2t_hdr *h = (struct nvme_tcp_r2t_hdr *)q->pdu;
    memset(h, 0, sizeof *h);
    nvmf_ch_init(&h->ch, NVME_TCP_PDU_R2T, c->hdgst, false, NVME_TCP_R2T_HLEN, 0);
    h->cccid = q->sqe.cid;
    h->ttag = q->ttag;
    h->r2to = 0;
    h->r2tl = q->len;
    if (c->hdgst) {
        uint32_t d = nvmf_digest(h, NVME_TCP_R2T_HLEN);
        memcpy(q->pdu + NVME_TCP_R2T_HLEN, &d, 4);
    }
    q->awaiting_h2c = true;
    q->tx = TX_R2T;
    enqueue(c, q);
}

/* The command's data is all here: run it. */
static void dispatch(struct nvmf_conn *c, struct nvmf_req *q)
{
    if (q->sqe.opc == NVME_ADM_FABRICS)
        nvmf_fabrics_cmd(q);
    else if (!c->ctrlr || !c->connected)
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR) | NVME_STATUS_DNR, 0);
    else if (c->qid == 0)
        nvmf_admin_cmd(q);
    else
        nvmf_io_cmd(q);
}

/* A capsule's header arrived: take a slot, check the SGL, get its buffer. */
static int capsule_start(struct nvmf_conn *c, struct nvmf_req *q)
{
    uint32_t len;
    bool icd;
    uint16_t st = nvmf_sgl_check(&q->sqe, c->lay.datalen, NVMF_MAX_XFER, &len, &icd);
    q->len = st ? 0 : len;
    if (!st && !icd && len && (q->sqe.opc & 3) == 1 && c->lay.datalen == 0)
        q->awaiting_h2c = true; /* host-to-controller data through R2T */
    if (st) {
        q->len = 0;
        q->cqe.status = st;
    }
    return 0;
}

/* ---- receive ------------------------------------------------------------- */

static bool icreq(struct nvmf_conn *c)
{
    struct nvme_tcp_icreq req;
    struct nvmf_pdu_err err;
    memcpy(&req, c->hdr, sizeof req);
    if (nvmf_icreq_check(&req, &c->hdgst, &c->ddgst, &err) < 0) {
        fatal(c, &err);
        return false;
    }
    struct nvme_tcp_icresp rsp;
    nvmf_icresp_init(&rsp, c->hdgst, c->ddgst, NVMF_MAX_XFER);
    memcpy(c->ctl, &rsp, sizeof rsp);
    c->ctl_len = sizeof rsp;
    c->ctl_pending = true;
    c->icdone = true;
    kick_send(c);
    return true;
}

static struct nvmf_req *req_take(struct nvmf_conn *c)
{
    struct nvmf_req *q = c->free_reqs;
    if (!q)
        return NULL;
    c->free_reqs = q->next;
    c->nactive++;
    uint16_t ttag = q->ttag;
    uint8_t *buf = q->buf; /* the kept buffer stays with the slot */
    uint32_t cap = q->cap;
    uint64_t charged = q->charged;
    memset(q, 0, sizeof *q);
    q->ttag = ttag;
    q->buf = buf;
    q->cap = cap;
    q->charged = charged;
    q->c = c;
    q->active = true;
    return q;
}

/* The fixed header (and its digest) of a PDU is in c->hdr. false: stop reading. */
static bool header_done(struct nvmf_conn *c)
{
    struct nvmf_pdu_err err = { 0 };
    uint8_t type = c->hdr[0];
    if (c->lay.hdgst && !nvmf_hdgst_ok(c->hdr, c->lay.hlen)) {
        err.fes = NVME_TCP_FES_HDGST_ERROR;
        snprintf(err.msg, sizeof err.msg, "header digest mismatch (PDU type 0x%02x)", type);
        fatal(c, &err);
        return false;
    }
    c->rx_req = NULL;
    c->skip = c->lay.pdo ? c->lay.pdo - c->lay.hlen - c->lay.hdgst : 0;
    c->dst_left = c->lay.datalen;
    c->crc = 0;
    c->dd_got = 0;
    if (type == NVME_TCP_PDU_ICREQ)
        return icreq(c);
    if (type == NVME_TCP_PDU_H2C_TERM_REQ) {
        nvmf_conn_close(c, "host sent H2CTermReq");
        return false;
    }
    if (type == NVME_TCP_PDU_CAPSULE_CMD) {
        if (c->lay.datalen > NVMF_ICD_MAX) {
            err.fes = NVME_TCP_FES_DATA_OUT_OF_RANGE;
            snprintf(err.msg, sizeof err.msg, "in-capsule data %u above %u", c->lay.datalen, NVMF_ICD_MAX);
            fatal(c, &err);
            return false;
        }
        struct nvmf_req *q = req_take(c);
        if (!q) {
            err.fes = NVME_TCP_FES_PDU_SEQUENCE_ERROR;
            snprintf(err.msg, sizeof err.msg, "more commands outstanding than the queue size %u", c->qsize);
            fatal(c, &err);
            return false;
        }
        memcpy(&q->sqe, c->hdr + NVME_TCP_CH_SIZE, sizeof q->sqe);
        c->sqhd = (uint16_t)((c->sqhd + 1) % (c->qsize ? c->qsize : NVMF_ADMIN_QSIZE));
        capsule_start(c, q);
        c->rx_req = q;
        c->rx_h2c = false;
        if (c->lay.datalen && !q->cqe.status && nvmf_req_buf(q) < 0) {
            dp_target_mem_waited();
            c->wait_req = q; /* no memory now: resume when some comes back */
            return false;
        }
        c->dst = q->buf;
        return true;
    }
    /* H2CData */
    const struct nvme_tcp_h2c_data_hdr *h = (const struct nvme_tcp_h2c_data_hdr *)c->hdr;
    struct nvmf_req *q = h->ttag < NVMF_MAX_QSIZE && c->reqs ? &c->reqs[h->ttag] : NULL;
    if (!q || !q->active || !q->awaiting_h2c || q->sqe.cid != h->cccid) {
        err.fes = NVME_TCP_FES_INVALID_HEADER_FIELD;
        err.fei = 10;
        snprintf(err.msg, sizeof err.msg, "H2CData for unknown ttag %u / cccid %u", h->ttag, h->cccid);
        fatal(c, &err);
        return false;
    }
    if (h->datal != c->lay.datalen || h->datao != q->h2c_got || h->datal > q->len - q->h2c_got) {
        err.fes = NVME_TCP_FES_DATA_OUT_OF_RANGE;
        snprintf(err.msg, sizeof err.msg, "H2CData datao %u datal %u outside the command's %u bytes", h->datao,
                 h->datal, q->len);
        fatal(c, &err);
        return false;
    }
    c->rx_req = q;
    c->rx_h2c = true;
    c->dst = q->buf + h->datao;
    return true;
}

/* All of a PDU is in: act on it. */
static void pdu_done(struct nvmf_conn *c)
{
    struct nvmf_req *q = c->rx_req;
    c->rx = RX_CH;
    c->hdr_got = 0;
    c->rx_req = NULL;
    if (!q)
        return;
    if (c->rx_h2c) {
        q->h2c_got += c->lay.datalen;
        if (q->h2c_got < q->len)
            return;
        q->awaiting_h2c = false;
        dispatch(c, q);
        return;
    }
    if (q->cqe.status) {
        nvmf_req_complete(q, q->cqe.status | NVME_STATUS_DNR, 0);
        return;
    }
    /* Data buffers (R2T target, or what the controller returns) are charged before the
     * command runs; without memory the connection stops reading until some comes back. */
    if (nvmf_req_buf(q) < 0) {
        dp_target_mem_waited();
        c->wait_req = q;
        return;
    }
    if (q->awaiting_h2c)
        send_r2t(c, q);
    else
        dispatch(c, q);
}

/* Consume n bytes at p for the current state; returns bytes used, or -1 to stop. */
static int rx_bytes(struct nvmf_conn *c, const uint8_t *p, uint32_t n)
{
    struct nvmf_pdu_err err;
    uint32_t take;
    switch (c->rx) {
    case RX_CH:
    case RX_HDR: {
        uint32_t need = c->rx == RX_CH ? NVME_TCP_CH_SIZE : c->lay.hlen + c->lay.hdgst;
        take = need - c->hdr_got < n ? need - c->hdr_got : n;
        memcpy(c->hdr + c->hdr_got, p, take);
        c->hdr_got += take;
        if (c->hdr_got < need)
            return (int)take;
        if (c->rx == RX_CH) {
            if (nvmf_pdu_check_ch((const struct nvme_tcp_common_hdr *)c->hdr, NVMF_SIDE_CTRL, c->icdone, c->hdgst,
                                  c->ddgst, NVMF_MAX_PLEN, &c->lay, &err) < 0) {
                fatal(c, &err);
                return -1;
            }
            c->rx = RX_HDR;
            return (int)take;
        }
        if (!header_done(c)) /* a capsule waiting for memory has its header consumed: count it */
            return c->wait_req ? (int)take : -1;
        c->rx = c->skip ? RX_PAD : c->dst_left ? RX_DATA : RX_CH;
        if (c->rx == RX_CH)
            pdu_done(c);
        return (int)take;
    }
    case RX_PAD:
        take = c->skip < n ? c->skip : n;
        c->skip -= take;
        if (!c->skip)
            c->rx = c->dst_left ? RX_DATA : RX_CH;
        if (c->rx == RX_CH)
            pdu_done(c);
        return (int)take;
    case RX_DATA:
        take = c->dst_left < n ? c->dst_left : n;
        if (c->dst) {
            memcpy(c->dst, p, take);
            c->dst += take;
        }
        if (c->lay.ddgst)
            c->crc = dp_crc32c(c->crc, p, take);
        c->dst_left -= take;
        if (!c->dst_left) {
            c->rx = c->lay.ddgst ? RX_DDGST : RX_CH;
            if (c->rx == RX_CH)
                pdu_done(c);
        }
        return (int)take;
    case RX_DDGST:
        take = 4 - c->dd_got < n ? 4 - c->dd_got : n;
        memcpy(c->dd + c->dd_got, p, take);
        c->dd_got += take;
        if (c->dd_got == 4) {
            uint32_t got;
            memcpy(&got, c->dd, 4);
            if (got != c->crc) {
                nvmf_conn_close(c, "data digest mismatch");
                return -1;
            }
            pdu_done(c);
        }
        return (int)take;
    }
    return -1;
}

/* Hand c to its export's reactor: the last thing this reactor does with it. */
static bool migrate_now(struct nvmf_conn *c)
{
    if (!c->migrate_to || c->send_inflight || c->recv_inflight)
        return false;
    struct dp_reactor *to = c->migrate_to;
    c->migrate_to = NULL;
    dp_reactor_send(to, nvmf_connect_migrated, c);
    return true;
}

static void process_input(struct nvmf_conn *c)
{
    c->busy++; /* a close in here frees c only on the way out */
    while (!c->closing && !c->term_sent && !c->wait_req && !c->migrating && c->rpos < c->rlen) {
        int used = rx_bytes(c, c->rbuf + c->rpos, c->rlen - c->rpos);
        if (used < 0)
            break;
        c->rpos += (uint32_t)used;
    }
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    c->busy--;
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (migrate_now(c))
        return;
    post_recv(c);
}

void nvmf_conn_resume(struct nvmf_conn *c)
{
    if (c->wait_req) {
        struct nvmf_req *q = c->wait_req;
        if (nvmf_req_buf(q) < 0)
            return;
        c->wait_req = NULL;
        if (c->rx == RX_HDR) { /* in-capsule data goes to the new buffer */
            c->dst = q->buf;
            c->rx = c->skip ? RX_PAD : c->dst_left ? RX_DATA : RX_CH;
            if (c->rx == RX_CH)
                pdu_done(c);
        } else if (q->awaiting_h2c) {
            send_r2t(c, q);
        } else {
            dispatch(c, q);
        }
    }
    process_input(c);
}

static void recv_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nvmf_conn *c = container_of(op, struct nvmf_conn, recv_op);
    c->recv_inflight = false;
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (res <= 0) {
        if (res == -ECANCELED && !c->hs_done) {
            dp_target_handshake_expired(&c->tc, "nvmf", c->peer.str);
            nvmf_conn_close(c, NULL);
            return;
        }
        nvmf_conn_close(c, res < 0 && res != -ECONNRESET ? strerror(-res) : NULL);
        return;
    }
    if (c->recv_direct) {
        c->recv_direct = false;
        if (c->lay.ddgst)
            c->crc = dp_crc32c(c->crc, c->dst, (uint32_t)res);
        c->dst += res;
        c->dst_left -= (uint32_t)res;
        if (!c->dst_left) {
            c->rx = c->lay.ddgst ? RX_DDGST : RX_CH;
            if (c->rx == RX_CH)
                pdu_done(c);
        }
    } else {
        c->rlen += (uint32_t)res;
    }
    process_input(c);
}

static void post_recv(struct nvmf_conn *c)
{
    if (c->recv_inflight || c->closing || c->term_sent || c->wait_req || c->migrating || c->rpos < c->rlen)
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    if (c->rx == RX_DATA && c->dst && c->dst_left >= 4096) {
        c->recv_direct = true; /* large payloads straight into the request's buffer */
        io_uring_prep_recv(sqe, c->fd, c->dst, c->dst_left, 0);
    } else {
        io_uring_prep_recv(sqe, c->fd, c->rbuf, NVMF_RBUF_SIZE, 0);
    }
    io_uring_sqe_set_data(sqe, &c->recv_op);
    c->recv_inflight = true;
    if (!c->hs_done) { /* accept to Connect within the handshake deadline */
        if (!dp_target_handshake_left(&c->tc, &c->hs_ts)) {
            c->hs_ts.tv_sec = 0;
            c->hs_ts.tv_nsec = 1;
        }
        sqe->flags |= IOSQE_IO_LINK;
        struct io_uring_sqe *t = dp_reactor_sqe(c->r);
        io_uring_prep_link_timeout(t, &c->hs_ts, 0);
        io_uring_sqe_set_data(t, &g_nvmf_noop);
    }
}

/* ---- send ---------------------------------------------------------------- */

static void add_iov(struct nvmf_conn *c, void *p, size_t n)
{
    c->siov[c->siov_n].iov_base = p;
    c->siov[c->siov_n++].iov_len = n;
}

static void post_sendmsg(struct nvmf_conn *c)
{
    memset(&c->smsg, 0, sizeof c->smsg);
    c->smsg.msg_iov = c->siov + c->siov_i;
    c->smsg.msg_iovlen = (size_t)(c->siov_n - c->siov_i);
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    io_uring_prep_sendmsg(sqe, c->fd, &c->smsg, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &c->send_op);
    c->send_inflight = true;
}

static void kick_send(struct nvmf_conn *c)
{
    if (c->send_inflight || c->closing || c->migrating)
        return;
    c->siov_n = c->siov_i = c->nsending = 0;
    if (c->ctl_pending) {
        add_iov(c, c->ctl, c->ctl_len);
        c->ctl_pending = false;
        c->ctl_sending = true;
    }
    while (c->sq_head && c->nsending < NVMF_SEND_BATCH && !c->term_sent) {
        struct nvmf_req *q = c->sq_head;
        c->sq_head = q->next;
        c->sending[c->nsending++] = q;
        uint32_t hd = c->hdgst ? 4 : 0;
        if (q->tx == TX_R2T) {
            add_iov(c, q->pdu, NVME_TCP_R2T_HLEN + hd);
            continue;
        }
        if (q->data_out) {
            add_iov(c, q->pdu, NVME_TCP_DATA_HLEN + hd);
            add_iov(c, q->buf, q->data_out);
            if (c->ddgst)
                add_iov(c, &q->ddgst, 4);
        }
        if (!q->no_rsp)
            add_iov(c, q->rsp, NVME_TCP_RSP_HLEN + hd);
    }
    if (!c->sq_head)
        c->sq_tail = NULL;
    if (c->siov_n)
        post_sendmsg(c);
}

static void send_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nvmf_conn *c = container_of(op, struct nvmf_conn, send_op);
    c->send_inflight = false;
    if (!c->closing && res > 0 && !dp_iov_advance(c->siov, c->siov_n, &c->siov_i, (size_t)res)) {
        post_sendmsg(c); /* short send: the rest */
        return;
    }
    bool freed = false, disconnect = false;
    for (int i = 0; i < c->nsending; i++)
        if (c->sending[i]->tx == TX_FINAL) {
            disconnect |= c->sending[i]->close_after;
            req_release(c, c->sending[i]);
            freed = true;
        }
    c->nsending = 0;
    c->ctl_sending = false;
    if (c->closing || res <= 0 || (c->term_sent && !c->ctl_pending) || disconnect) {
        nvmf_conn_close(c, NULL);
        return;
    }
    if (migrate_now(c)) /* a Connect waited for the ICResp to be out before moving */
        return;
    if (freed && c->wait_req)
        nvmf_conn_resume(c);
    kick_send(c);
    post_recv(c);
}

/* ---- accepting ----------------------------------------------------------- */

static void new_conn(struct dp_listener *l, int fd, const struct dp_peer *peer, const struct dp_target_conn *tc)
{
    struct nvmf_conn *c = calloc(1, sizeof *c);
    uint8_t *rbuf = calloc(1, NVMF_RBUF_SIZE); /* zeroed: valgrind does not see io_uring fill it */
    struct nvmf_req *reqs = calloc(NVMF_MAX_QSIZE, sizeof *reqs);
    if (!c || !rbuf || !reqs) {
        free(c);
        free(rbuf);
        free(reqs);
        dp_listener_refuse(fd, tc);
        return;
    }
    c->fd = fd;
    c->r = l->r;
    c->tc = *tc;
    c->peer = *peer;
    c->rbuf = rbuf;
    c->reqs = reqs;
    for (int i = NVMF_MAX_QSIZE - 1; i >= 0; i--) {
        reqs[i].ttag = (uint16_t)i;
        reqs[i].next = c->free_reqs;
        c->free_reqs = &reqs[i];
    }
    c->recv_op.cb = recv_cb;
    c->send_op.cb = send_cb;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&g_nvmf_exports.lock);
    dp_export_conn_add_locked(&g_nvmf_exports, &c->link);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    post_recv(c);
}

char g_nvmf_advertise[128];

DP_EXPORT int dp_nvmf_listen(const char *host, uint16_t port, const char *advertise_host)
{
    dp_clear_error();
    pthread_mutex_lock(&g_nvmf_exports.lock);
    snprintf(g_nvmf_advertise, sizeof g_nvmf_advertise, "%s",
             advertise_host && *advertise_host ? advertise_host
             : host && *host                   ? host
                                               : "127.0.0.1");
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    return dp_listener_start(&g_lis, "nvmf", host, port, new_conn);
}

DP_EXPORT int dp_nvmf_port(void)
{
    return dp_listener_port(&g_lis);
}

uint16_t nvmf_listen_port(void)
{
    int p = dp_listener_port(&g_lis);
    return p > 0 ? (uint16_t)p : 0;
}

DP_EXPORT void dp_nvmf_shutdown(void)
{
    dp_listener_stop(&g_lis);
    dp_export_unshare_all(&g_nvmf_exports);
    nvmf_subsys_forget_all();
    pthread_mutex_lock(&g_nvmf_exports.lock);
    struct nvmf_conn *c;
    dp_export_conn_each(&g_nvmf_exports, c, struct nvmf_conn, link) nvmf_conn_kill_locked(c);
    while (g_nvmf_exports.nconns > 0 || g_nvmf_nctrlrs > 0)
        pthread_cond_wait(&g_nvmf_exports.cond, &g_nvmf_exports.lock);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
}
