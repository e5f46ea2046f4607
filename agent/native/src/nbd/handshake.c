/*
 * handshake.c - the NBD fixed-newstyle handshake, on the listener's reactor.
 *
 * Drives nbd/proto.c's negotiation (nbd_neg, a pure state machine that
 * fuzz/fuzz_nbd.c exercises) over the socket: greeting, client flags, then
 * options until GO or EXPORT_NAME. Option data and replies go through one
 * buffer per connection (hbuf), freed when transmission starts. Every
 * transfer is linked to a timeout for what is left of the whole-handshake
 * deadline (target/limits.h), so a client that trickles bytes cannot hold a
 * connection open past it.
 *
 * Exports are looked up in the registry (target/export.h) and shown only to
 * peers their allowlist admits; a client attaches to its export (within the
 * per-export cap) before it is told yes, then migrates to the reactor that
 * owns the export's bdev (nbd_tx_start in transmission.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "nbd/proto.h"
#include "nbd/server.h"
#include "reactor/reactor.h"
#include "target/allowlist.h"
#include "target/export.h"
#include "target/limits.h"

static void hs_step(struct nbd_conn *c);

/* ---- exports ------------------------------------------------------------ */

/* What a client asking for `name` gets. */
static struct dp_export *export_find_locked(const char *name)
{
    /* "" is the default export: the only one, if there is exactly one. */
    if (!*name)
        return g_nbd_exports.head && !g_nbd_exports.head->next ? g_nbd_exports.head : NULL;
    return dp_export_named_locked(&g_nbd_exports, name);
}

/*
 * The advertised maximum payload: 32 MiB, or half the per-connection memory
 * budget when that is smaller (a power of two, >= 512 KiB as the budget is
 * >= 1 MiB), so one request always fits in the budget with its slots.
 * Reads above it are refused with EOVERFLOW; writes above it close the
 * connection (their payload cannot be skipped safely).
 */
static uint32_t nbd_max_payload(void)
{
    uint64_t half = dp_target_conn_budget() / 2;
    uint32_t p = NBD_MAX_PAYLOAD;
    while (p > NBD_PREF_BLOCK && p > half)
        p >>= 1;
    return p;
}

static void export_view(const struct dp_export *e, struct nbd_export_view *v)
{
    struct dp_bdev *b = e->bdev;
    v->size = __atomic_load_n(&b->size, __ATOMIC_RELAXED);
    /* Every connection of an export goes to the same bdev and FLUSH reaches
     * its backing store, so a flush on one covers writes done on all:
     * multi-conn is safe. */
    v->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
                NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN;
    /* A read-only device (a snapshot): said so, and writes answer EPERM. */
    if (b->read_only)
        v->tflags = (v->tflags | NBD_FLAG_READ_ONLY) & ~(NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES);
    v->min_block = b->block_size ? b->block_size : 512;
    v->pref_block = v->min_block > NBD_PREF_BLOCK ? v->min_block : NBD_PREF_BLOCK;
    v->max_payload = nbd_max_payload();
}

static int neg_lookup(void *ctx, const char *name, struct nbd_export_view *v)
{
    struct nbd_conn *c = ctx;
    int rc = 0;
    pthread_mutex_lock(&g_nbd_exports.lock);
    struct dp_export *e = export_find_locked(name);
    if (!e || e->dead)
        rc = -ENOENT;
    else if (!dp_allowlist_allows_addr(&e->allowed, &c->peer))
        rc = -EACCES;
    else
        export_view(e, v);
    pthread_mutex_unlock(&g_nbd_exports.lock);
    return rc;
}

static int neg_list(void *ctx, uint32_t index, char *name, size_t cap)
{
    struct nbd_conn *c = ctx;
    int rc = -ENOENT;
    uint32_t i = 0;
    pthread_mutex_lock(&g_nbd_exports.lock);
    for (struct dp_export *e = g_nbd_exports.head; e; e = e->next) {
        if (e->dead || !dp_allowlist_allows_addr(&e->allowed, &c->peer))
            continue;
        if (i++ == index) {
            size_t n = strlen(e->name);
            if (n < cap) {
                memcpy(name, e->name, n + 1);
                rc = (int)n;
            }
            break;
        }
    }
    pthread_mutex_unlock(&g_nbd_exports.lock);
    return rc;
}

static const struct nbd_neg_ops neg_ops = { neg_lookup, neg_list };

/* ---- handshake ---------------------------------------------------------- */

static void hs_expired(struct nbd_conn *c)
{
    dp_target_handshake_expired(&c->tc, "nbd", c->peer_str);
    nbd_conn_drop(c);
}

/*
 * Receive or send the rest of c->hs_ptr/hs_left (MSG_WAITALL), linked to a
 * timeout of the time left to the handshake deadline: the deadline holds for
 * the whole handshake, however the client spreads its bytes.
 */
static void hs_post(struct nbd_conn *c, bool recv)
{
    if (!dp_target_handshake_left(&c->tc, &c->hs_ts)) {
        hs_expired(c);
        return;
    }
    struct io_uring_sqe *sqe = dp_reactor_sqe(c->r);
    if (recv) {
        io_uring_prep_recv(sqe, c->fd, c->hs_ptr, c->hs_left, MSG_WAITALL);
        io_uring_sqe_set_data(sqe, &c->recv_op);
        c->recv_inflight = true;
    } else {
        io_uring_prep_send(sqe, c->fd, c->hs_ptr, c->hs_left, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data(sqe, &c->send_op);
        c->send_inflight = true;
    }
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *t = dp_reactor_sqe(c->r);
    io_uring_prep_link_timeout(t, &c->hs_ts, 0);
    io_uring_sqe_set_data(t, &g_nbd_noop);
}

/* Handshake transfer of len bytes; hs_step runs when all of them are done. */
static void hs_xfer(struct nbd_conn *c, void *buf, uint32_t len, bool recv)
{
    c->hs_ptr = buf;
    c->hs_left = len;
    hs_post(c, recv);
}

static void hs_fail(struct nbd_conn *c, const char *why)
{
    fprintf(stderr, "nbd: peer %s: %s; closing\n", c->peer_str, why);
    nbd_conn_drop(c);
}

static void hs_io_done(struct dp_uring_op *op, int res, bool recv)
{
    struct nbd_conn *c = nbd_op_conn(op, recv);
    if (!c)
        return;
    if (res <= 0) {
        if (res == -ECANCELED) /* the linked timeout: the deadline passed */
            hs_expired(c);
        else if (!recv)
            hs_fail(c, "handshake send failed");
        else if (res == 0)
            hs_fail(c, "disconnected during the handshake");
        else
            hs_fail(c, strerror(-res));
        return;
    }
    c->hs_ptr += res;
    c->hs_left -= (uint32_t)res;
    if (c->hs_left)
        hs_post(c, recv);
    else
        hs_step(c);
}

static void hs_recv_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    hs_io_done(op, res, true);
}

static void hs_send_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    hs_io_done(op, res, false);
}

/* Advance the handshake after the previous recv/send finished. */
static void hs_step(struct nbd_conn *c)
{
    uint8_t *data = c->hbuf, *out = c->hbuf + NBD_MAX_OPT_LEN;
    switch (c->hs) {
    case HS_GREETING: /* greeting sent: read client flags */
        c->hs = HS_FLAGS;
        hs_xfer(c, data, 4, true);
        return;
    case HS_FLAGS: {
        uint32_t fl;
        if (nbd_parse_client_flags(data, &fl) < 0) {
            hs_fail(c, "unsupported client flags");
            return;
        }
        nbd_neg_init(c->neg, fl);
        c->hs = HS_OPTHDR;
        hs_xfer(c, data, NBD_OPT_HDR_LEN, true);
        return;
    }
    case HS_OPTHDR: {
        int rc = nbd_parse_opt_hdr(data, &c->opt);
        if (rc == -EPROTO) {
            hs_fail(c, "bad option magic");
            return;
        }
        if (rc == -E2BIG) {
            char why[96];
            snprintf(why, sizeof why, "option %u length %u above the %u-byte limit", c->opt.opt, c->opt.len,
                     NBD_MAX_OPT_LEN);
            hs_fail(c, why);
            return;
        }
        c->hs = HS_OPTDATA;
        if (c->opt.len) {
            hs_xfer(c, data, c->opt.len, true);
            return;
        }
    }
    /* fall through */
    case HS_OPTDATA: {
        size_t outlen = 0;
        c->hs_result = nbd_neg_option(c->neg, c->opt.opt, data, c->opt.len, &neg_ops, c, out, NBD_NEG_OUT_MAX, &outlen);
        if (c->hs_result == NBD_NEG_GO) {
            /* Attach to the export before saying yes, within its connection cap. */
            bool full = false;
            pthread_mutex_lock(&g_nbd_exports.lock);
            struct dp_export *e = export_find_locked(c->neg->export_name);
            if (e && !e->dead) {
                full = !dp_export_attach_locked(&g_nbd_exports, e, c->peer_str);
                if (!full)
                    c->exp = e;
            }
            pthread_mutex_unlock(&g_nbd_exports.lock);
            if (c->exp)
                dp_export_client_attach(c->exp, &c->wc); /* counted for the writer lease */
            if (full) {
                /* GO can say why; EXPORT_NAME can only close. */
                c->hs_result = NBD_NEG_CLOSE;
                outlen = 0;
                if (c->opt.opt == NBD_OPT_GO) {
                    dp_target_limits l;
                    dp_target_limits_now(&l);
                    char *msg = (char *)out + NBD_OPT_REPLY_HDR_LEN;
                    int n = snprintf(msg, 256,
                                     "export has reached its limit of %u connections "
                                     "(--max-connections-per-export)",
                                     l.max_connections_per_export);
                    nbd_enc_opt_reply(out, c->opt.opt, NBD_REP_ERR_POLICY, (uint32_t)n);
                    outlen = NBD_OPT_REPLY_HDR_LEN + (size_t)n;
                }
            } else if (!c->exp) {
                hs_fail(c, "export went away during the handshake");
                return;
            }
        }
        c->hs = HS_REPLY;
        if (outlen) {
            hs_xfer(c, out, (uint32_t)outlen, false);
            return;
        }
    }
    /* fall through */
    case HS_REPLY:
        if (c->hs_result == NBD_NEG_CONTINUE) {
            c->hs = HS_OPTHDR;
            hs_xfer(c, data, NBD_OPT_HDR_LEN, true);
            return;
        }
        if (c->hs_result == NBD_NEG_CLOSE) {
            nbd_conn_drop(c);
            return;
        }
        /* GO: move to the bdev's reactor unless a kill came meanwhile. */
        pthread_mutex_lock(&g_nbd_exports.lock);
        bool dead = c->exp->dead || c->msg_refs > 0;
        if (!dead)
            c->migrating = true;
        pthread_mutex_unlock(&g_nbd_exports.lock);
        if (dead) {
            nbd_conn_drop(c);
            return;
        }
        c->hs = HS_DONE;
        dp_reactor_send(c->exp->bdev->reactor, nbd_tx_start, c);
        return;
    case HS_DONE: return;
    }
}

void nbd_hs_start(struct nbd_conn *c)
{
    c->recv_op.cb = hs_recv_cb;
    c->send_op.cb = hs_send_cb;
    c->hs = HS_GREETING;
    nbd_enc_greeting(c->hbuf + NBD_MAX_OPT_LEN);
    hs_xfer(c, c->hbuf + NBD_MAX_OPT_LEN, NBD_GREETING_LEN, false);
}
