/*
 * fuzz_nvmf_cmd.c - libFuzzer harness for the NVMe/TCP target's command
 * handlers: the real ctrlr.c (Connect, Property Get/Set, Disconnect),
 * admin.c (Identify, Get Log Page, Set/Get Features, AER, Abort, Keep
 * Alive), io.c (Read, Write, Flush, Write Zeroes, Dataset Management) and
 * vendor.c (snapshot commands), against an in-memory 1 MiB device and
 * without sockets: the transport (tcp.c) is replaced by the few calls the
 * handlers make into it, and the reactor by a queue of deferred completions.
 *
 * Input: a flag byte (bit 0: start with an admin queue already connected
 * and enabled, bit 1: and two I/O queues), then records of
 *   [queue: 1 byte][SQE: 64 bytes][data length: 2 bytes LE][data]
 * where queue % 4 picks the admin queue, I/O queue 1 or 2, or a fresh
 * unconnected queue, and bit 7 changes the device's size first. Each command's data comes in-capsule (so the SGL
 * checks of the transport run too). Invariants checked on every completion:
 * C2H data never exceeds the command's length and has a buffer; no command
 * completes twice; every buffer access stays in bounds (ASan).
 * Seeds: fuzz/seeds/fuzz_nvmf_cmd (one per command family).
 */
#include <stdlib.h>
#include <string.h>

/* The sources under test, and the pure helpers they use. */
#include "nvmf/admin.c"
#include "nvmf/ctrlr.c"
#include "nvmf/io.c"
#include "nvmf/pdu.c"
#include "nvmf/vendor.c"
#include "target/allowlist.c"
#include "util/crc32c.c"
#include "util/error.c"
#include "util/uuid.c"

#define FZ_SUBNQN "nqn.2019-05.io.openebs:6f1e9a3c-1d2b-4c5e-8f70-0123456789ab"
#define FZ_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define FZ_DEV_SIZE (1u << 20)
#define FZ_MAX_REQS 512

/* ---- the environment: device, export, reactor, transport ---------------- */

static struct dp_reactor *const g_r = (struct dp_reactor *)&g_r; /* one reactor: never dereferenced */
static uint8_t g_dev[FZ_DEV_SIZE];
static struct dp_bdev g_bdev = { .name = "fuzz-dev", .size = FZ_DEV_SIZE, .block_size = 512 };
static struct dp_export *g_exp;
struct dp_export_registry g_nvmf_exports = DP_EXPORT_REGISTRY_INIT("nvmf", NULL);
struct dp_uring_op g_nvmf_noop;
char g_nvmf_advertise[128] = "127.0.0.1";
static struct io_uring_sqe g_sqe;
static struct dp_bdev_io *g_pending[FZ_MAX_REQS];
static int g_npending;

struct dp_reactor *dp_reactor_self(void)
{
    return g_r;
}
uint32_t dp_reactor_count(void)
{
    return 1;
}
struct dp_reactor *dp_reactor_get(uint32_t i)
{
    return i ? NULL : g_r;
}
struct io_uring_sqe *dp_reactor_sqe(struct dp_reactor *r)
{
    return &g_sqe;
}
void dp_reactor_timer(struct dp_reactor *r, struct dp_uring_op *op, struct __kernel_timespec *ts) {}
void dp_reactor_send(struct dp_reactor *r, dp_msg_fn fn, void *arg)
{
    abort(); /* one reactor: no hop */
}

/* The device: completions are deferred, as the bdev contract says. */
void dp_bdev_submit(struct dp_bdev *b, struct dp_bdev_io *io)
{
    if (io->offset + io->length > b->size || (io->type <= DP_IO_WRITE && io->iov[0].iov_len != io->length))
        abort(); /* io.c must have checked the range */
    if (g_npending == FZ_MAX_REQS)
        abort();
    g_pending[g_npending++] = io;
}

static void run_pending(void)
{
    while (g_npending) {
        struct dp_bdev_io *io = g_pending[--g_npending];
        uint8_t *p = g_dev + io->offset;
        if (io->type == DP_IO_READ)
            memcpy(io->iov[0].iov_base, p, io->length);
        else if (io->type == DP_IO_WRITE)
            memcpy(p, io->iov[0].iov_base, io->length);
        else if (io->type != DP_IO_FLUSH)
            memset(p, 0, io->length);
        io->cb(io, io->offset & 0x200000 ? -EIO : 0);
    }
}

struct dp_bdev *dp_bdev_get(const char *name)
{
    return NULL; /* the snapshot thread is not fuzzed */
}
void dp_bdev_put(struct dp_bdev *b) {}
int dp_bdev_snapshot_create(struct dp_bdev *b, const char *s, const char *g)
{
    return -ENOTSUP;
}
int dp_bdev_snapshot_destroy(struct dp_bdev *b, const char *s)
{
    return -ENOTSUP;
}

struct dp_export *dp_export_named_locked(struct dp_export_registry *reg, const char *name)
{
    return strcmp(name, g_exp->name) ? NULL : g_exp;
}
bool dp_export_attach_locked(struct dp_export_registry *reg, struct dp_export *e, const char *peer)
{
    return true;
}
void dp_export_client_attach(struct dp_export *e, struct dp_export_client *cl) {}
int dp_export_writer_check(struct dp_export *e, struct dp_export_client *cl, uint64_t off, const struct iovec *iov,
                           int iovcnt, uint64_t len)
{
    return off == 4096 ? -EPERM : 0; /* one refused block: the Reservation Conflict path */
}
int dp_export_share(struct dp_export_registry *reg, const char *b, const char *n, const char *a)
{
    return -ENOTSUP;
}
int dp_export_unshare(struct dp_export_registry *reg, const char *n)
{
    return -ENOTSUP;
}
int dp_export_connections(struct dp_export_registry *reg, const char *n)
{
    return 0;
}
void dp_target_handshake_done(struct dp_target_conn *tc) {}
uint16_t nvmf_listen_port(void)
{
    return 4420;
}

/* ---- the transport's side of a request --------------------------------- */

struct fz_req {
    struct nvmf_req q;
    bool done;
};

static struct fz_req *g_reqs[FZ_MAX_REQS];
static int g_nreqs;

int nvmf_req_buf(struct nvmf_req *q)
{
    if (!q->len || (q->buf && q->cap >= q->len))
        return 0;
    free(q->buf);
    q->buf = malloc(q->len); /* exactly len: ASan sees any overrun */
    q->cap = q->len;
    return q->buf ? 0 : -EAGAIN;
}

void nvmf_req_complete(struct nvmf_req *q, uint16_t status, uint32_t cdw0)
{
    struct fz_req *f = (struct fz_req *)q;
    if (f->done || (status && !(status & 0x7ff) && !(status & NVME_STATUS_DNR)))
        abort(); /* twice, or a "status" that says success */
    if (status)
        q->data_out = 0;
    if (q->data_out > q->len || (q->data_out && !q->buf))
        abort();
    for (uint32_t i = 0; i < q->data_out; i++) /* the bytes sent must be defined (MSan/ASan) */
        g_sqe.user_data += q->buf[i];
    f->done = true;
    if (q->close_after)
        nvmf_conn_close(q->c, NULL);
}

void nvmf_conn_close(struct nvmf_conn *c, const char *why)
{
    if (c->closing || c->io_inflight)
        return;
    c->closing = true;
    nvmf_ctrlr_detach(c);
}
void nvmf_conn_kill_locked(struct nvmf_conn *c)
{
    c->kill_pending = true;
}
void nvmf_conn_resume(struct nvmf_conn *c) {}

/* ---- driving ------------------------------------------------------------ */

static struct nvmf_conn g_conns[4]; /* admin, I/O 1, I/O 2, a fresh one */

static void conn_init(struct nvmf_conn *c, int i)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->r = g_r;
    c->qsize = 32;
    snprintf(c->peer.str, sizeof c->peer.str, "fuzz:%d", i);
    dp_in6_from_v4(&c->peer.addr, &(struct in_addr){ htonl(0x7f000001) });
}

/* One command with its in-capsule data, through the transport's checks. */
static void command(struct nvmf_conn *c, const struct nvme_sqe *sqe, const uint8_t *data, uint32_t dlen)
{
    if (g_nreqs == FZ_MAX_REQS || c->closing)
        return;
    struct fz_req *f = calloc(1, sizeof *f);
    g_reqs[g_nreqs++] = f;
    struct nvmf_req *q = &f->q;
    q->c = c;
    q->sqe = *sqe;
    q->sqe.flags = NVME_CMD_PSDT_SGL;
    q->sqe.sgl1 = (struct nvme_sgl_desc){ .length = dlen, .id = NVME_TCP_SGL_INCAPSULE };
    uint32_t len;
    bool icd;
    uint16_t st = nvmf_sgl_check(&q->sqe, dlen, NVMF_MAX_XFER, &len, &icd);
    if (st) {
        nvmf_req_complete(q, st | NVME_STATUS_DNR, 0);
        return;
    }
    q->len = len;
    if (nvmf_req_buf(q) < 0)
        return;
    if (dlen)
        memcpy(q->buf, data, dlen);
    if (q->sqe.opc == NVME_ADM_FABRICS)
        nvmf_fabrics_cmd(q);
    else if (!c->ctrlr || !c->connected)
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR) | NVME_STATUS_DNR, 0);
    else if (c->qid == 0)
        nvmf_admin_cmd(q);
    else
        nvmf_io_cmd(q);
    if (c->connect_req) /* the move to the device's reactor, at once */
        nvmf_connect_migrated(c);
    run_pending();
}

static void connect_q(struct nvmf_conn *c, uint16_t qid, uint16_t cntlid)
{
    struct nvmf_connect_cmd cmd = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_CONNECT, .qid = qid };
    cmd.sqsize = 31;
    struct nvmf_connect_data d;
    memset(&d, 0, sizeof d);
    d.cntlid = cntlid;
    strcpy(d.subnqn, FZ_SUBNQN);
    strcpy(d.hostnqn, FZ_HOSTNQN);
    command(c, (const struct nvme_sqe *)&cmd, (const uint8_t *)&d, sizeof d);
}

static void setup(uint8_t flags)
{
    if (!(flags & 1))
        return;
    connect_q(&g_conns[0], 0, 0xffff);
    if (!g_conns[0].ctrlr)
        abort();
    struct nvmf_property_set_cmd p = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_PROPERTY_SET };
    p.ofst = NVME_REG_CC;
    p.value = NVME_CC_EN;
    command(&g_conns[0], (const struct nvme_sqe *)&p, NULL, 0);
    if (!(flags & 2))
        return;
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0x00010001 };
    command(&g_conns[0], &s, NULL, 0);
    for (int i = 1; i <= 2; i++)
        connect_q(&g_conns[i], (uint16_t)i, g_conns[0].ctrlr->cntlid);
}

static void teardown(void)
{
    for (int i = 3; i >= 0; i--) /* I/O queues first, then the admin queue and its controller */
        nvmf_conn_close(&g_conns[i], NULL);
    for (struct nvmf_ctrlr *k = g_ctrlrs, *next; k; k = next) { /* the keep-alive timers fire */
        next = k->next;
        if (k->ka_inflight)
            k->ka_op.cb(&k->ka_op, -ECANCELED, 0);
        else
            abort(); /* a controller with no queue and no timer must be gone */
    }
    if (g_ctrlrs || g_nvmf_nctrlrs)
        abort();
    for (int i = 0; i < g_nreqs; i++) {
        free(g_reqs[i]->q.buf);
        free(g_reqs[i]);
    }
    g_nreqs = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_exp) {
        g_exp = calloc(1, sizeof *g_exp + sizeof FZ_SUBNQN);
        strcpy(g_exp->name, FZ_SUBNQN);
        g_exp->bdev = &g_bdev;
        g_nvmf_exports.head = g_exp;
    }
    if (size < 1)
        return 0;
    g_bdev.read_only = data[0] & 4;
    g_bdev.size = FZ_DEV_SIZE;
    for (int i = 0; i < 4; i++)
        conn_init(&g_conns[i], i);
    setup(data[0]);
    size_t off = 1;
    while (size - off >= 1 + sizeof(struct nvme_sqe) + 2) {
        struct nvmf_conn *c = &g_conns[data[off] % 4];
        if (data[off] & 0x80) /* the device changes size (a namespace attribute event) */
            g_bdev.size = g_bdev.size == FZ_DEV_SIZE ? FZ_DEV_SIZE / 2 : FZ_DEV_SIZE;
        struct nvme_sqe sqe;
        memcpy(&sqe, data + off + 1, sizeof sqe);
        uint16_t dlen = (uint16_t)(data[off + 65] | data[off + 66] << 8);
        off += 67;
        if (dlen > size - off)
            dlen = (uint16_t)(size - off);
        command(c, &sqe, data + off, dlen);
        off += dlen;
    }
    teardown();
    return 0;
}
