/*
 * server.h - what the NBD target's files share (internal): the connection
 * and request slot, the export registry, and the calls between the
 * handshake (handshake.c), the connections (server.c) and the
 * transmission phase (transmission.c). Nothing here is part of the public API (datapath.h).
 */
#ifndef DP_NBD_SERVER_H
#define DP_NBD_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "nbd/proto.h"
#include "reactor/reactor.h"
#include "target/export.h"
#include "target/limits.h"
#include "util/container.h"

#define NBD_SLOTS 64
#define SLOT_BUF (128u * 1024)
#define RBUF_SIZE (64u * 1024)
#define SEND_BATCH 32
#define BS_MAX_EXTENTS 1024
/* A connection waiting on the agent's budget while holding nothing of its own
 * retries after 10 ms, doubling to 1 s while it keeps waiting. */
#define MEM_RETRY_MIN_MS 10u
#define MEM_RETRY_MAX_MS 1000u

struct nbd_conn;

struct nbd_slot {
    struct dp_bdev_io io;
    struct nbd_conn *c;
    struct nbd_slot *next;
    struct nbd_request req;
    uint8_t *buf; /* SLOT_BUF, lazily allocated, kept (charged while kept) */
    uint8_t *big; /* this request only, when above SLOT_BUF (mmap, charged) */
    size_t biglen;
    uint8_t *data;
    struct iovec iov;
    uint32_t err;
    uint32_t hdrlen, datalen;
    uint8_t hdr[NBD_READ_CHUNK_HDR_LEN + 8];
};

enum hs_state { HS_GREETING, HS_FLAGS, HS_OPTHDR, HS_OPTDATA, HS_REPLY, HS_DONE };

struct nbd_conn {
    struct dp_export_conn link; /* in g_nbd_exports.conns */
    int fd;
    struct dp_reactor *r;
    struct in6_addr peer; /* IPv4 as v4-mapped */
    char peer_str[64];
    struct dp_export *exp;
    struct dp_bdev *bdev;
    struct dp_target_conn tc; /* admission, handshake deadline, memory charged */
    struct dp_export_client wc; /* the writer lease's view: host = the peer's IP address */

    bool closing, disc, transmission;
    bool migrating, kill_pending; /* under g_nbd_exports.lock */
    int msg_refs; /* under g_nbd_exports.lock */

    struct dp_uring_op recv_op, send_op;
    bool recv_inflight, send_inflight;
    bool kick_queued; /* a kick_msg is on the reactor's queue */

    /* handshake (freed when transmission starts) */
    enum hs_state hs;
    enum nbd_neg_result hs_result;
    struct nbd_neg *neg;
    uint8_t *hbuf; /* option data, then reply */
    uint8_t *hs_ptr;
    uint32_t hs_left;
    struct nbd_opt_hdr opt;
    struct __kernel_timespec hs_ts; /* time left to the handshake deadline */

    /* transmission */
    struct nbd_limits lim;
    uint8_t *rbuf;
    uint32_t rpos, rlen;
    struct nbd_slot *cur_write;
    uint32_t cur_got;
    bool recv_direct, stalled;
    bool mem_wait; /* stalled for memory (counted once per wait) */
    bool mem_timer_inflight;
    uint32_t mem_retry_ms;
    struct dp_uring_op mem_timer_op;
    struct __kernel_timespec mem_ts;
    int io_inflight;
    int nslots;
    struct nbd_slot *free_slots;
    struct nbd_slot *sq_head, *sq_tail;
    struct nbd_slot *sending[SEND_BATCH];
    int nsending;
    struct iovec siov[2 * SEND_BATCH];
    int siov_n, siov_i;
    struct msghdr smsg;
    struct nbd_slot *slots[NBD_SLOTS]; /* [0, nslots) allocated */
};

/*
 * The NBD exports. Its lock also guards the connection list (server.c) and
 * each connection's cross-thread fields (migrating, kill_pending, msg_refs);
 * its cond wakes whoever waits on any of their counts.
 */
extern struct dp_export_registry g_nbd_exports;
/* user_data for link timeouts and cancels: their CQEs never touch a conn */
extern struct dp_uring_op g_nbd_noop;

/* ---- server.c ---- */
/* Close c and free it as soon as nothing refers to it any more. */
void nbd_conn_drop(struct nbd_conn *c);
/* Free c if it is closing and nothing (I/O, message, timer) refers to it. */
void nbd_conn_maybe_free(struct nbd_conn *c);
/*
 * The recv (or send) op of c completed: c, or NULL when c is closing (it is
 * then freed if that was the last thing it waited for). Inline, so the
 * transmission fuzz harness runs this very logic.
 */
static inline struct nbd_conn *nbd_op_conn(struct dp_uring_op *op, bool recv)
{
    struct nbd_conn *c = recv ? container_of(op, struct nbd_conn, recv_op) : container_of(op, struct nbd_conn, send_op);
    if (recv)
        c->recv_inflight = false;
    else
        c->send_inflight = false;
    if (c->closing) {
        nbd_conn_maybe_free(c);
        return NULL;
    }
    return c;
}

/* ---- transmission.c ---- */
/* On the export's bdev reactor: the handshake is done, transmission starts (a dp_msg_fn). */
void nbd_tx_start(void *arg);
/* c is closing: cancel its memory retry timer, drop the requests not yet
 * executed. Slots being received into or sent stay until nbd_tx_free_slots. */
void nbd_tx_close(struct nbd_conn *c);
/* Free every request slot and its buffers (the connection's last step). */
void nbd_tx_free_slots(struct nbd_conn *c);

/* ---- handshake.c ---- */
/* On the listener's reactor: send the greeting and run the negotiation; on
 * GO/EXPORT_NAME the connection is attached to its export and migrates to
 * nbd_tx_start, on failure it is dropped. */
void nbd_hs_start(struct nbd_conn *c);

#endif /* DP_NBD_SERVER_H */
