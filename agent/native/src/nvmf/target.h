/*
 * target.h - what the NVMe/TCP target's files share (internal): the queue
 * connection, request slot and controller, and the calls between the
 * transport (tcp.c), the fabrics/controller layer (ctrlr.c), the admin and
 * discovery commands (admin.c), the I/O commands (io.c) and our vendor
 * admin commands (vendor.c).
 *
 * Vendor commands (wire format and statuses in proto_admin.h): C1h creates
 * and C5h destroys a snapshot of the subsystem's device, with 64 bytes of
 * data {nsid, snapshot uuid, group uuid}; the device's snapshot op runs off
 * the reactor. The nvmf:// child sends them for its snapshot_create/destroy
 * ops (host_snap.c), so a nexus snapshots remote children through the
 * protocol.
 *
 * Threading: a connection is accepted on the listener's reactor. Until its
 * Connect it speaks only ICReq and Connect there; a Connect to an NVM
 * subsystem moves it: the admin queue (and so the controller, its keep-alive
 * timer and AERs) to the reactor of the export's bdev (like NBD), I/O queue
 * n round-robin to the (n - 1)th reactor after that one, so a multi-queue
 * host spreads over the reactors. A connection is touched only on its own
 * reactor. Discovery controllers stay on the listener's reactor.
 * g_nvmf_exports.lock guards the connection and controller lists, each
 * connection's cross-thread fields (migrating, kill_pending, msg_refs) and
 * the controller's ioq[], refs, ka_inflight and dead (which I/O queues also
 * read atomically, with csts, nioq and ka_seen).
 */
#ifndef DP_NVMF_TARGET_H
#define DP_NVMF_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "nvmf/pdu.h"
#include "reactor/reactor.h"
#include "target/export.h"
#include "target/limits.h"
#include "target/listener.h"

#define NVMF_MAX_QSIZE 128 /* CAP.MQES + 1, and request slots per queue */
#define NVMF_ADMIN_QSIZE 32
/* In-capsule data accepted (IOCCSZ): a write up to a kept slot buffer needs no R2T round trip. */
#define NVMF_ICD_MAX DP_TARGET_KEPT_BUF
#define NVMF_MDTS 5 /* 2^5 pages of 4 KiB */
#define NVMF_MAX_XFER (4096u << NVMF_MDTS) /* 128 KiB; also MAXH2CDATA */
#define NVMF_MAX_IO_QUEUES 64
#define NVMF_MAX_AER 4
#define NVMF_RBUF_SIZE (16u * 1024)
#define NVMF_SEND_BATCH 16
#define NVMF_MAX_PLEN (NVME_TCP_CMD_HLEN + 8 + 128 + NVMF_MAX_XFER + 8) /* pdo may pad to 128 */

struct nvmf_conn;
struct nvmf_ctrlr;

enum nvmf_tx { TX_NONE, TX_R2T, TX_FINAL };

struct nvmf_req {
    struct dp_bdev_io io;
    struct nvmf_conn *c;
    struct nvmf_req *next; /* free list or send queue */
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    uint8_t *buf; /* data (dp_buf_alloc, charged); kept for the next request when small */
    uint32_t cap; /* bytes buf holds */
    uint32_t len; /* SGL length */
    uint32_t data_out; /* bytes of buf to send as C2HData before the response */
    uint32_t h2c_got; /* bytes received through H2CData */
    uint64_t charged;
    uint16_t ttag; /* index in the connection's slots */
    bool active, awaiting_h2c, aer;
    bool no_rsp; /* C2HData carries SUCCESS: no CapsuleResp */
    bool close_after; /* Disconnect: the queue closes once this response is out */
    enum nvmf_tx tx;
    struct iovec iov;
    uint32_t dsm_i, dsm_n; /* Dataset Management ranges done / total */
    uint8_t pdu[NVME_TCP_DATA_HLEN + 4]; /* C2HData or R2T header (+ digest) */
    uint8_t rsp[NVME_TCP_RSP_HLEN + 4]; /* CapsuleResp (+ digest) */
    uint32_t ddgst;
    int io_status; /* the bdev's status, carried back to the queue's reactor */
};

enum nvmf_rx { RX_CH, RX_HDR, RX_PAD, RX_DATA, RX_DDGST };

struct nvmf_conn {
    struct dp_export_conn link; /* in g_nvmf_exports.conns */
    int fd;
    struct dp_reactor *r;
    struct dp_peer peer;
    struct dp_target_conn tc;
    struct dp_export *exp; /* attached after Connect to an NVM subsystem */
    struct dp_export_client wc; /* the writer lease's view: host = the host NQN */
    struct nvmf_ctrlr *ctrlr;
    uint16_t qid, qsize, sqhd;
    bool hdgst, ddgst, icdone, sqflow_off, connected;
    bool closing, stalled, term_sent;
    bool migrating, kill_pending; /* under g_nvmf_exports.lock */
    int msg_refs; /* under g_nvmf_exports.lock */
    bool recv_inflight, send_inflight, recv_direct, hs_done;
    struct dp_uring_op recv_op, send_op;
    struct __kernel_timespec hs_ts;
    /* Connect waiting to run on the new reactor */
    struct nvmf_req *connect_req;
    struct dp_reactor *migrate_to; /* set by the Connect; the move happens when nothing is in flight */
    char subnqn[NVMF_NQN_FIELD], hostnqn[NVMF_NQN_FIELD];
    uint8_t hostid[16];
    uint16_t want_cntlid;
    uint32_t kato;
    /* receive */
    uint8_t *rbuf;
    uint32_t rpos, rlen;
    enum nvmf_rx rx;
    struct nvmf_pdu_layout lay;
    uint8_t hdr[NVME_TCP_MAX_HLEN + 4];
    uint32_t hdr_got;
    uint32_t skip; /* RX_PAD bytes left */
    uint8_t *dst;
    uint32_t dst_left;
    uint32_t crc;
    uint8_t dd[4];
    uint32_t dd_got;
    struct nvmf_req *rx_req; /* receiving data for it (capsule or H2CData) */
    bool rx_h2c;
    struct nvmf_req *wait_req; /* a capsule waiting for memory */
    /* send */
    struct nvmf_req *sq_head, *sq_tail;
    struct nvmf_req *sending[NVMF_SEND_BATCH];
    int nsending;
    struct iovec siov[4 * NVMF_SEND_BATCH + 1];
    int siov_n, siov_i;
    struct msghdr smsg;
    uint8_t ctl[NVME_TCP_MAX_HLEN + NVME_TCP_TERM_REQ_DATA_MAX_C2H]; /* ICResp or C2HTermReq */
    uint32_t ctl_len;
    bool ctl_pending, ctl_sending;
    /* request slots */
    struct nvmf_req *reqs; /* NVMF_MAX_QSIZE */
    struct nvmf_req *free_reqs;
    int nactive, io_inflight;
    int busy; /* inside process_input: not freed under its feet */
};

struct nvmf_ctrlr {
    struct nvmf_ctrlr *next; /* g_nvmf_ctrlrs, under g_nvmf_exports.lock */
    uint16_t cntlid;
    bool discovery, dead;
    struct dp_export *exp; /* NULL for discovery */
    struct dp_reactor *r;
    char subnqn[NVMF_NQN_FIELD], hostnqn[NVMF_NQN_FIELD];
    uint8_t hostid[16];
    uint32_t cc, csts;
    uint32_t kato, aen_cfg;
    uint16_t nioq; /* I/O queues granted (Set Features Number of Queues) */
    struct nvmf_conn *admin;
    struct nvmf_conn *ioq[NVMF_MAX_IO_QUEUES + 1];
    int refs; /* queues attached + keep-alive timer */
    bool ka_seen, ka_inflight;
    struct dp_uring_op ka_op;
    struct __kernel_timespec ka_ts;
    struct nvmf_req *aer[NVMF_MAX_AER];
    int naer;
    uint64_t ns_size; /* the namespace size the host was last told of */
    bool ns_event, ns_log; /* a size change to announce (AER) / to list in the changed-namespace log */
};

extern struct dp_export_registry g_nvmf_exports;
extern struct dp_uring_op g_nvmf_noop;
extern char g_nvmf_advertise[128];
extern int g_nvmf_nctrlrs; /* controllers alive (their keep-alive timers may outlive the queues) */

/* ---- tcp.c ---- */
void nvmf_conn_close(struct nvmf_conn *c, const char *why);
/* Finish req: status/cdw0 into its CQE, then (data_out) C2HData and CapsuleResp are queued. */
void nvmf_req_complete(struct nvmf_req *req, uint16_t status, uint32_t cdw0);
/* Allocate and charge req->buf of req->len bytes: 0, or -EAGAIN (wait for memory). */
int nvmf_req_buf(struct nvmf_req *req);
uint16_t nvmf_listen_port(void);
/* Under g_nvmf_exports.lock: make c close on its reactor. */
void nvmf_conn_kill_locked(struct nvmf_conn *c);
/* Resume a connection that stopped reading (after a migration or memory wait). */
void nvmf_conn_resume(struct nvmf_conn *c);

/* ---- ctrlr.c ---- */
/* A fabrics command (opcode 0x7f) on any queue. */
void nvmf_fabrics_cmd(struct nvmf_req *req);
/* The connection leaves its controller (on close). */
void nvmf_ctrlr_detach(struct nvmf_conn *c);
/* The Connect in c->connect_req moves c to the export's reactor (tcp.c does it when idle). */
void nvmf_connect_go(struct nvmf_conn *c);
/* A message on the export's reactor: the moved connection finishes its Connect. */
void nvmf_connect_migrated(void *arg);

/* Under g_nvmf_exports.lock: the namespace uuid of subsystem nqn. */
void nvmf_ns_uuid_locked(const char *nqn, const char *bdev_name, uint8_t out[16]);
void nvmf_subsys_forget_all(void);

/* ---- admin.c ---- */
void nvmf_admin_cmd(struct nvmf_req *req);
/* On the controller's reactor: a namespace whose size changed since the host
 * last learnt it is announced (a held AER completes with a namespace
 * attribute notice, when the host enabled those) and listed in the changed
 * namespace log. Checked at each AER, Keep Alive and keep-alive tick. */
void nvmf_ns_check(struct nvmf_ctrlr *k);
/* Complete every held Async Event Request as aborted (a controller reset). */
void nvmf_aer_drop(struct nvmf_ctrlr *ctrlr);

/* ---- vendor.c ---- */
/* Vendor snapshot create/destroy (proto_admin.h) on an admin queue. */
void nvmf_vendor_cmd(struct nvmf_req *req);

/* ---- io.c ---- */
void nvmf_io_cmd(struct nvmf_req *req);

#endif /* DP_NVMF_TARGET_H */
