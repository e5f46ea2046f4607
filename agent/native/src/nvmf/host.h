/*
 * host.h - our NVMe/TCP initiator (the nvmf://host:port/<nqn> child bdev).
 *
 * host_rx.c holds what is pure (no I/O): the URI parser, the ICResp check
 * and the receive state machine that cuts the controller's byte stream into
 * PDUs (CapsuleResp, C2HData, R2T, C2HTermReq); the fuzz harness drives it.
 * host_setup.c brings a controller up over blocking sockets (control thread
 * or the reconnect thread); host.c is the bdev on its reactor.
 */
#ifndef DP_NVMF_HOST_H
#define DP_NVMF_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmf/proto.h"

#define NVMFH_DEFAULT_IO_TIMEOUT_MS 10000u
#define NVMFH_DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define NVMFH_MAX_HLEN 128 /* largest fixed header we receive (C2HTermReq: 24) plus room */

struct nvmfh_uri {
    char host[256];
    char port[16];
    char nqn[NVMF_NQN_FIELD];
    uint32_t io_timeout_ms, connect_timeout_ms;
    uint32_t queues; /* I/O queues wanted (?queues=N); 0: one per reactor */
};

/* Parse nvmf://host[:port]/<nqn>[?io_timeout_ms=N&connect_timeout_ms=N&queues=N]; host may be
 * [IPv6]. -EINVAL with err naming the field. */
int nvmfh_uri_parse(const char *uri, struct nvmfh_uri *u, char *err, size_t errlen);

/* Check an ICResp against what we asked for (no digests). Sets *maxh2cdata. */
int nvmfh_icresp_check(const struct nvme_tcp_icresp *rsp, uint32_t *maxh2cdata, char *err, size_t errlen);

/* Receive side: what the host does with each PDU, chosen by its owner. */
struct nvmfh_rx_ops {
    /* A CapsuleResp. 0, or -1 with err set (unknown cid: fatal). */
    int (*resp)(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen);
    /* A C2HData header: the data that follows belongs to command cid at offset off;
     * -1 (err set) if cid is not a read in flight or the range is outside it. */
    int (*c2h_begin)(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen);
    /* Bytes of that C2HData, in order (at off + already delivered). */
    void (*c2h_data)(void *ctx, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len);
    /* After the last byte: `success` = DATA_SUCCESS (no CapsuleResp will follow). */
    int (*c2h_end)(void *ctx, uint16_t cid, bool last, bool success, char *err, size_t errlen);
    /* An R2T: send len bytes at off of command cid, tagged ttag. */
    int (*r2t)(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen);
};

enum nvmfh_rx_state { RX_CH, RX_HDR, RX_PAD, RX_DATA, RX_DDGST, RX_DEAD };

struct nvmfh_rx {
    const struct nvmfh_rx_ops *ops;
    void *ctx;
    bool icdone; /* false: the first PDU must be an ICResp */
    uint32_t max_c2h; /* largest C2HData payload we accept */
    enum nvmfh_rx_state state;
    uint8_t hdr[NVMFH_MAX_HLEN];
    uint32_t got, need; /* header bytes held / wanted */
    uint32_t skip; /* RX_PAD bytes left */
    uint16_t cid;
    uint32_t data_off, data_left;
    uint8_t flags;
    struct nvme_tcp_icresp icresp; /* the ICResp, when icdone turned true */
};

void nvmfh_rx_init(struct nvmfh_rx *rx, const struct nvmfh_rx_ops *ops, void *ctx, bool icdone);
/*
 * Feed received bytes. 0: all consumed. -1: a protocol error (err names it; a
 * C2HTermReq is reported the same way): the connection must be dropped.
 * After the ICResp arrives (icdone false) feeding stops there and returns 1 with
 * *used bytes consumed, so the caller can check it before going on.
 */
int nvmfh_rx_feed(struct nvmfh_rx *rx, const uint8_t *buf, size_t len, size_t *used, char *err, size_t errlen);

/* In the middle of a C2HData payload: its command, the offset reached and the
 * bytes left (0 otherwise), so that the caller can receive them in place;
 * nvmfh_rx_data_direct then accounts for n bytes it placed itself. */
uint32_t nvmfh_rx_data_pending(const struct nvmfh_rx *rx, uint16_t *cid, uint32_t *off);
int nvmfh_rx_data_direct(struct nvmfh_rx *rx, uint32_t n, char *err, size_t errlen);

/* The host NQN of this process: $MAYASTOR_NVMF_HOSTNQN, else
 * nqn.2014-08.org.nvmexpress:uuid:<uuid from /etc/machine-id>, else a random uuid
 * kept for the process. hostid is the same uuid (16 bytes). */
const char *nvmfh_host_nqn(uint8_t hostid[16]);

/* ---- host_setup.c: bring a controller up (blocking, bounded by a deadline) ---- */

#define NVMFH_MAX_QUEUES 16

struct nvmfh_conn {
    int afd; /* admin queue socket (non-blocking once set up) */
    int iofd[NVMFH_MAX_QUEUES]; /* I/O queue sockets, qid i + 1 */
    uint16_t nioq; /* I/O queues connected: min(wanted, granted by Set Features) */
    uint16_t cntlid;
    uint32_t kato_ms;
    uint32_t maxh2cdata;
    uint32_t icd_max; /* in-capsule data bytes on the I/O queue */
    uint32_t max_xfer; /* bytes per command (MDTS), 0: no limit */
    uint16_t qsize; /* I/O queue entries */
    uint64_t size; /* namespace bytes */
    uint32_t block_size;
    uint32_t nsid;
    uint16_t oncs;
    uint8_t vwc;
    uint8_t nsattr; /* Identify Namespace NSATTR: bit 0 write protected */
    uint8_t nsid_bytes[16 + 16 + 8]; /* namespace NGUID, UUID, EUI64: the identity */
};

/* Connect, ICReq, admin Connect, enable, Identify, Set Features, the I/O queues.
 * 0, or -errno with err naming the peer and what failed (fds closed). */
int nvmfh_setup(const struct nvmfh_uri *u, const void *addr, uint32_t addrlen, struct nvmfh_conn *c, char *err,
                size_t errlen);
/* Close every socket of c (those >= 0). */
void nvmfh_conn_close(struct nvmfh_conn *c);
/* Read len bytes at off on the first I/O queue of a connection set up but not yet
 * handed to a reactor (blocking, bounded by timeout_ms). */
int nvmfh_sync_read(const struct nvmfh_conn *c, uint64_t off, void *buf, uint32_t len, uint32_t timeout_ms, char *err,
                    size_t errlen);
/* One admin command with in-capsule data (out) or data to receive (in) on
 * the admin queue of such a connection (blocking, bounded by timeout_ms);
 * *cqe holds the completion (-EIO with err naming the status when it is an
 * error). */
int nvmfh_sync_admin(const struct nvmfh_conn *c, struct nvme_sqe *sqe, const void *out, uint32_t out_len, void *in,
                     uint32_t in_len, struct nvme_cqe *cqe, uint32_t timeout_ms, char *err, size_t errlen);
/* Resolve host:port once (blocking getaddrinfo). */
int nvmfh_resolve(const struct nvmfh_uri *u, void *addr, uint32_t *addrlen, char *err, size_t errlen);

/* ---- host.c (life cycle) and host_io.c (the I/O path): the bdev, internal ---- */

#include "bdev/bdev.h"
#include "reactor/reactor.h"

#define QMAX 128
#define IDENT_BYTES 8192u
#define RXBUF 131072
#define KA_CID 0x7fff

enum hstate { ST_UP, ST_DOWN, ST_REPLACED };
enum ckind { K_READ, K_WRITE, K_OTHER };

struct hcmd {
    struct dp_bdev_io *io;
    uint64_t io_off; /* where this command's data starts inside the io */
    uint32_t len;
    uint32_t r2t_done; /* bytes already sent for R2Ts */
    uint32_t c2h_got; /* read: bytes announced by C2HData so far (in order); success needs all of them */
    uint32_t span; /* bytes of the device it covers (unmap: no data, still a span) */
    uint64_t start_ms;
    uint8_t kind;
    bool active;
};

struct hsock {
    struct nvmfh *n;
    struct hqueue *q; /* the I/O queue it carries; NULL: the admin queue */
    uint32_t last_c2h; /* payload bytes of the last C2HData header (sizes the next receive) */
    int fd;
    bool pin, pout;
    struct dp_uring_op in_op, out_op;
    struct nvmfh_rx rx;
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
};

/* One I/O queue: its socket and its command slots (cid = slot). All queues
 * of a device run on its reactor; commands go round-robin to queues with a
 * free slot, so the target spreads them over its reactors. */
struct hqueue {
    struct hsock io;
    struct hcmd cmds[QMAX];
    int outstanding, qlimit;
    uint16_t next_cid, qid;
};

struct nvmfh {
    struct dp_bdev bdev;
    struct nvmfh_uri u;
    char peer[600];
    struct sockaddr_storage addr;
    uint32_t addrlen;
    struct nvmfh_conn c;
    enum hstate state;
    struct hsock adm;
    struct hqueue q[NVMFH_MAX_QUEUES];
    int nq; /* queues in use (n->c.nioq) */
    uint32_t rr; /* next queue to try */
    uint8_t *rxbuf;
    /* The first IDENT_BYTES of the device (nexus and pool labels), kept equal to
     * it by our writes: after a reconnect they must read back the same (see host.c).
     * NULL when the device is smaller. */
    uint8_t *ident;
    bool ident_lost; /* a write there failed or was cut: the bytes cannot be vouched for */
    int outstanding; /* over every queue */
    struct dp_bdev_io *wait_head, *wait_tail;
    struct dp_uring_op tick_op;
    struct __kernel_timespec tick_ts;
    bool tick, ka_outstanding, destroying, logged_down;
    bool flush_pending; /* a flush_msg is queued (host_io.c): the bdev must outlive it */
    bool tick_long, tick_cut; /* the armed tick is the idle one / its removal is asked */
    uint64_t next_ka_ms;
    struct rc_job *job; /* the reconnect in progress */
    uint32_t backoff_ms;
};

uint64_t nvmfh_now_ms(void);
/* host_io.c: sockets */
int nvmfh_tx_reserve(struct hsock *s, size_t len);
void nvmfh_tx_flush(struct hsock *s);
void nvmfh_in_cb(struct dp_uring_op *op, int res, uint32_t flags);
void nvmfh_out_cb(struct dp_uring_op *op, int res, uint32_t flags);
void nvmfh_sock_arm_in(struct hsock *s);
void nvmfh_sock_kill(struct hsock *s);
void nvmfh_sock_reap(struct hsock *s);
/* host_io.c: commands */
extern const struct nvmfh_rx_ops nvmfh_io_ops, nvmfh_admin_ops;
void nvmfh_submit(struct dp_bdev *bdev, struct dp_bdev_io *io);
/* Fail every command in flight and waiting I/O (failed, if not NULL, with -ETIMEDOUT). */
void nvmfh_fail_all(struct nvmfh *n, const struct hcmd *failed, int status);
/* host_snap.c: the bdev's snapshot ops (control thread): our vendor admin
 * command (proto_admin.h) on a controller of their own */
int nvmfh_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group);
int nvmfh_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid);
/* host.c */
void nvmfh_conn_lost(struct nvmfh *n, const struct hcmd *failed, int status, const char *why);
void nvmfh_maybe_free(struct nvmfh *n);
void nvmfh_arm_tick(struct nvmfh *n);

#endif /* DP_NVMF_HOST_H */
