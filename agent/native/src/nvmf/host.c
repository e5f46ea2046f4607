/*
 * host.c - the nvmf://host:port/<nqn> child bdev: our NVMe/TCP initiator on
 * the bdev's reactor (see host.h for the split into files: this one is the
 * life cycle, keep-alive and reconnect; host_io.c the I/O path).
 *
 * One admin queue and N I/O queues (?queues=N, default one per reactor, at
 * most what the controller grants), each its own TCP connection, all on the
 * bdev's reactor, watched with IORING_OP_POLL_ADD (POLLIN always, POLLOUT
 * only while the send buffer is backed up). Commands go round-robin to the
 * queues with a free slot (our target serves each queue on another of its
 * reactors). Each queue's commands live in a fixed table indexed by cid; a bdev I/O
 * larger than MDTS (or than 65536 blocks) becomes several commands, counted
 * in io->driver. Writes up to the I/O queue's in-capsule size go in the
 * capsule; larger ones wait for the controller's R2Ts and answer with
 * H2CData PDUs of at most MAXH2CDATA bytes.
 *
 * Timers: a tick every 250 ms while commands are outstanding (I/O timeout),
 * else every KATO/2, which is when Keep Alive goes out on the admin queue;
 * a Keep Alive still unanswered at the next one means the controller is gone.
 *
 * Connection loss (socket error, protocol error, I/O or keep-alive timeout):
 * every command in flight fails with -EIO (the one that timed out with
 * -ETIMEDOUT) and is never replayed: a write in flight may or may not have
 * reached the media, and replaying it after later writes could reorder them;
 * the owner (the nexus) decides. New I/O fails with -ENOTCONN while a
 * reconnect thread sets the controller up again (blocking, off the reactor)
 * with backoff 100 ms .. 5 s. The namespace it finds must be the same one
 * (NGUID, UUID and EUI64 unchanged, same block size, not smaller) and its
 * first IDENT_BYTES (the nexus/pool labels) must read back as our copy of
 * them, kept by every write that succeeded there (a replica deleted and
 * created again under the same uuid has the same NGUID but no label; a write
 * there that failed or was cut leaves the bytes unknown): otherwise
 * the child is "replaced", every I/O fails with -ENODEV and it never
 * reconnects. Messages name the peer (nvmf://host:port/nqn).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "nvmf/host.h"
#include "reactor/reactor.h"
#include "util/uuid.h"

#define TICK_MS 250
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define OPENEBS_NQN_PREFIX "nqn.2019-05.io.openebs:"

/*
 * One reconnect attempt runs on its own thread (set-up blocks) with its own
 * job: the bdev may be destroyed meanwhile. Under job_lock, destroy detaches
 * the job (j->n = NULL) and the thread sends its result only to a bdev still
 * attached; whoever sees the job last frees it (the thread when it was
 * detached before sending, else the message).
 */
struct rc_job {
    struct nvmfh *n; /* NULL: detached by destroy */
    struct dp_reactor *reactor;
    struct nvmfh_uri u;
    struct sockaddr_storage addr;
    uint32_t addrlen, backoff_ms;
    bool sent, want_ident;
    int rc;
    uint8_t ident[IDENT_BYTES]; /* what the device holds there now */
    struct nvmfh_conn c;
    char err[512];
};

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static void job_close(struct rc_job *j)
{
    if (j->rc == 0)
        nvmfh_conn_close(&j->c);
}

static void reconnected_msg(void *arg);

static void *reconnect_thread(void *arg)
{
    struct rc_job *j = arg;
    bool stop = false;
    for (uint32_t waited = 0; waited < j->backoff_ms && !stop; waited += 20) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&job_lock);
        stop = !j->n;
        pthread_mutex_unlock(&job_lock);
    }
    j->rc = stop ? -ECANCELED : nvmfh_setup(&j->u, &j->addr, j->addrlen, &j->c, j->err, sizeof j->err);
    if (j->rc == 0 && j->want_ident &&
        (j->rc = nvmfh_sync_read(&j->c, 0, j->ident, IDENT_BYTES, j->u.io_timeout_ms, j->err, sizeof j->err)) < 0)
        nvmfh_conn_close(&j->c);
    pthread_mutex_lock(&job_lock);
    bool attached = j->n != NULL;
    if (attached) {
        j->sent = true;
        dp_reactor_send(j->reactor, reconnected_msg, j);
    }
    pthread_mutex_unlock(&job_lock);
    if (!attached) {
        job_close(j);
        free(j);
    }
    return NULL;
}

static void start_reconnect(struct nvmfh *n)
{
    if (n->job || n->destroying || n->state == ST_REPLACED)
        return;
    struct rc_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    *j = (struct rc_job){ .n = n,
                          .reactor = n->bdev.reactor,
                          .u = n->u,
                          .addr = n->addr,
                          .addrlen = n->addrlen,
                          .backoff_ms = n->backoff_ms,
                          .want_ident = n->ident != NULL };
    n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    n->job = j;
    if (pthread_create(&t, &a, reconnect_thread, j) != 0) {
        n->job = NULL;
        free(j);
    }
    pthread_attr_destroy(&a);
}

/* Every socket of n: kill (shut down) or reap (close once no poll holds it). */
static void socks_kill(struct nvmfh *n)
{
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++)
        nvmfh_sock_kill(&n->q[i].io);
    nvmfh_sock_kill(&n->adm);
}

static bool socks_reap(struct nvmfh *n)
{
    bool open = false;
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++) {
        nvmfh_sock_reap(&n->q[i].io);
        open |= n->q[i].io.fd >= 0;
    }
    nvmfh_sock_reap(&n->adm);
    return open || n->adm.fd >= 0;
}

void nvmfh_conn_lost(struct nvmfh *n, const struct hcmd *failed, int status, const char *why)
{
    if (n->state != ST_UP)
        return;
    fprintf(stderr, "datapath: %s: connection lost: %s; failing in-flight I/O, reconnecting\n", n->peer, why);
    n->state = ST_DOWN;
    socks_kill(n);
    socks_reap(n);
    nvmfh_fail_all(n, failed, status);
    start_reconnect(n);
}

/* The I/O queues of the connection in n->c (at create and after a reconnect). */
static void queues_init(struct nvmfh *n)
{
    n->nq = n->c.nioq;
    n->rr = 0;
    for (int i = 0; i < n->nq; i++) {
        struct hqueue *q = &n->q[i];
        q->io.n = n;
        q->io.q = q;
        q->io.fd = n->c.iofd[i];
        q->io.in_op.cb = nvmfh_in_cb;
        q->io.out_op.cb = nvmfh_out_cb;
        nvmfh_rx_init(&q->io.rx, &nvmfh_io_ops, q, true);
        q->qid = (uint16_t)(i + 1);
        q->qlimit = n->c.qsize - 1 < QMAX ? n->c.qsize - 1 : QMAX;
        q->next_cid = 0;
    }
}

/* The connection a job brought is the same namespace: take it. */
static void adopt(struct nvmfh *n, const struct nvmfh_conn *c)
{
    fprintf(stderr, "datapath: %s: reconnected (cntlid %u)\n", n->peer, c->cntlid);
    n->c = *c;
    n->adm.fd = c->afd;
    nvmfh_rx_init(&n->adm.rx, &nvmfh_admin_ops, n, true);
    queues_init(n);
    n->ka_outstanding = false;
    n->next_ka_ms = nvmfh_now_ms() + n->c.kato_ms / 2;
    n->backoff_ms = BACKOFF_MIN_MS;
    n->logged_down = false;
    n->state = ST_UP;
    for (int i = 0; i < n->nq; i++)
        nvmfh_sock_arm_in(&n->q[i].io);
    nvmfh_sock_arm_in(&n->adm);
    nvmfh_arm_tick(n);
}

static void reconnected_msg(void *arg)
{
    struct rc_job *j = arg;
    pthread_mutex_lock(&job_lock);
    struct nvmfh *n = j->n;
    pthread_mutex_unlock(&job_lock);
    if (!n) { /* destroyed after the thread sent this */
        job_close(j);
        free(j);
        return;
    }
    n->job = NULL;
    const struct nvmfh_conn *c = &j->c;
    if (j->rc < 0) {
        if (!n->logged_down)
            fprintf(stderr, "datapath: %s: reconnect failed: %s\n", n->peer, j->err);
        n->logged_down = true;
        start_reconnect(n);
    } else if (memcmp(c->nsid_bytes, n->c.nsid_bytes, sizeof c->nsid_bytes) || c->block_size != n->c.block_size ||
               c->size < n->c.size || (n->ident && (n->ident_lost || memcmp(j->ident, n->ident, IDENT_BYTES)))) {
        fprintf(stderr,
                "datapath: %s: replaced: the namespace is not the one we had (identity, size or label bytes "
                "changed)\n",
                n->peer);
        job_close(j);
        n->state = ST_REPLACED;
    } else if (socks_reap(n)) { /* the old sockets' polls have not come back yet */
        job_close(j);
        start_reconnect(n);
    } else {
        adopt(n, c);
    }
    free(j);
}

/* ---- tick: I/O timeout and keep-alive ---- */

static void send_keep_alive(struct nvmfh *n)
{
    struct hsock *s = &n->adm;
    if (nvmfh_tx_reserve(s, NVME_TCP_CMD_HLEN) < 0)
        return;
    struct nvme_tcp_cmd *p = (void *)(s->tx + s->tx_len);
    memset(p, 0, sizeof *p);
    p->ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_CMD,
                                          .hlen = NVME_TCP_CMD_HLEN,
                                          .plen = NVME_TCP_CMD_HLEN };
    p->sqe.opc = NVME_ADM_KEEP_ALIVE;
    p->sqe.cid = KA_CID;
    p->sqe.flags = NVME_CMD_PSDT_SGL;
    p->sqe.sgl1.id = NVME_TCP_SGL_TRANSPORT;
    s->tx_len += NVME_TCP_CMD_HLEN;
    n->ka_outstanding = true;
    nvmfh_tx_flush(s);
}

static void tick_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nvmfh *n = (struct nvmfh *)((char *)op - offsetof(struct nvmfh, tick_op));
    n->tick = false;
    if (n->destroying || n->state != ST_UP) {
        nvmfh_maybe_free(n);
        return;
    }
    uint64_t now = nvmfh_now_ms();
    for (int k = 0; k < n->nq * QMAX; k++) {
        const struct hcmd *c = &n->q[k / QMAX].cmds[k % QMAX];
        if (c->active && now - c->start_ms > n->u.io_timeout_ms) {
            char m[96];
            snprintf(m, sizeof m, "command %d of I/O queue %d not answered within io_timeout_ms=%u", k % QMAX,
                     k / QMAX + 1, n->u.io_timeout_ms);
            nvmfh_conn_lost(n, c, -EIO, m);
            return;
        }
    }
    if (now >= n->next_ka_ms) {
        if (n->ka_outstanding) {
            nvmfh_conn_lost(n, NULL, -EIO, "Keep Alive not answered");
            return;
        }
        send_keep_alive(n);
        n->next_ka_ms = now + n->c.kato_ms / 2;
    }
    nvmfh_arm_tick(n);
}

static void cancel_tick(struct nvmfh *n)
{
    struct io_uring_sqe *sqe = dp_reactor_sqe(n->bdev.reactor);
    io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&n->tick_op, 0);
    io_uring_sqe_set_data(sqe, NULL); /* reactor ignores a NULL op */
}

void nvmfh_arm_tick(struct nvmfh *n)
{
    /* I/O started under the idle (KATO/2) tick: cut it short, so that the
     * I/O timeout is checked every TICK_MS (tick_cb re-arms on -ECANCELED) */
    if (n->tick && n->outstanding && n->tick_long && !n->tick_cut) {
        n->tick_cut = true;
        cancel_tick(n);
    }
    if (n->tick || n->state != ST_UP || n->destroying)
        return;
    uint64_t ms = n->c.kato_ms / 2;
    if (n->outstanding)
        ms = TICK_MS;
    n->tick_long = !n->outstanding;
    n->tick_cut = false;
    n->tick_ts.tv_sec = (long long)(ms / 1000);
    n->tick_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    n->tick = true;
    dp_reactor_timer(n->bdev.reactor, &n->tick_op, &n->tick_ts);
}

/* ---- life cycle ---- */

void nvmfh_maybe_free(struct nvmfh *n)
{
    if (socks_reap(n) || !n->destroying || n->tick || n->flush_pending)
        return;
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++)
        free(n->q[i].io.tx);
    free(n->adm.tx);
    free(n->rxbuf);
    free(n->ident);
    free(n);
}

static void nvmfh_destroy(struct dp_bdev *bdev)
{
    struct nvmfh *n = bdev->ctx;
    n->destroying = true;
    if (n->job) { /* detach: the thread or its message frees the job */
        pthread_mutex_lock(&job_lock);
        n->job->n = NULL;
        pthread_mutex_unlock(&job_lock);
        n->job = NULL;
    }
    bool up = n->state == ST_UP;
    n->state = ST_DOWN;
    if (up)
        nvmfh_fail_all(n, NULL, -ENODEV);
    if (n->tick && !n->tick_cut)
        cancel_tick(n);
    socks_kill(n);
    nvmfh_maybe_free(n);
}

/*
 * Control thread: the size again (a namespace that grew), from a controller
 * of its own, as the nbd:// child does: the namespace must still be ours,
 * and not smaller.
 */
static int nvmfh_refresh_size(struct dp_bdev *bdev)
{
    struct nvmfh *n = bdev->ctx;
    struct nvmfh_conn c;
    char err[512];
    struct nvmfh_uri u1 = n->u;
    u1.queues = 1; /* a look at the namespace: one I/O queue is enough */
    int rc = nvmfh_setup(&u1, &n->addr, n->addrlen, &c, err, sizeof err);
    if (rc < 0) {
        dp_set_error("%s", err);
        return rc;
    }
    nvmfh_conn_close(&c);
    if (memcmp(c.nsid_bytes, n->c.nsid_bytes, sizeof c.nsid_bytes) || c.block_size != bdev->block_size) {
        dp_set_error("%s: replaced: the namespace is not the one we had", n->peer);
        return -ENODEV;
    }
    uint64_t have = __atomic_load_n(&bdev->size, __ATOMIC_ACQUIRE);
    if (c.size < have) {
        dp_set_error("%s: the namespace shrank from %llu to %llu bytes", n->peer, (unsigned long long)have,
                     (unsigned long long)c.size);
        return -EIO;
    }
    __atomic_store_n(&bdev->size, c.size, __ATOMIC_RELEASE);
    return 0;
}

static const struct dp_bdev_ops nvmfh_ops = {
    .submit = nvmfh_submit,
    .destroy = nvmfh_destroy,
    .refresh_size = nvmfh_refresh_size,
    .snapshot_create = nvmfh_snapshot_create,
    .snapshot_destroy = nvmfh_snapshot_destroy,
};

static void start_msg(void *arg)
{
    struct nvmfh *n = arg;
    for (int i = 0; i < n->nq; i++)
        nvmfh_sock_arm_in(&n->q[i].io);
    nvmfh_sock_arm_in(&n->adm);
    nvmfh_arm_tick(n);
}

static void sock_init(struct nvmfh *n, struct hsock *s, int fd, const struct nvmfh_rx_ops *ops)
{
    s->n = n;
    s->fd = fd;
    s->in_op.cb = nvmfh_in_cb;
    s->out_op.cb = nvmfh_out_cb;
    nvmfh_rx_init(&s->rx, ops, n, true);
}

static int nvmfh_create(const char *uri, struct dp_bdev **out)
{
    struct nvmfh *n = calloc(1, sizeof *n);
    char err[512];
    if (!n || !(n->rxbuf = malloc(RXBUF))) {
        free(n);
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    int rc = nvmfh_uri_parse(uri, &n->u, err, sizeof err);
    if (rc < 0)
        dp_set_error("'%s': %s", uri, err);
    if (rc == 0 && (rc = nvmfh_resolve(&n->u, &n->addr, &n->addrlen, err, sizeof err)) < 0)
        dp_set_error("%s", err);
    if (rc == 0 && (rc = nvmfh_setup(&n->u, &n->addr, n->addrlen, &n->c, err, sizeof err)) < 0)
        dp_set_error("%s", err);
    if (rc == 0 && n->c.size >= IDENT_BYTES && !(n->ident = calloc(1, IDENT_BYTES)))
        rc = -ENOMEM;
    if (rc == 0 && n->ident &&
        (rc = nvmfh_sync_read(&n->c, 0, n->ident, IDENT_BYTES, n->u.io_timeout_ms, err, sizeof err)) < 0) {
        dp_set_error("nvmf://%s:%s/%s: reading the label bytes: %s", n->u.host, n->u.port, n->u.nqn, err);
        nvmfh_conn_close(&n->c);
    }
    if (rc < 0) {
        free(n->ident);
        free(n->rxbuf);
        free(n);
        return rc;
    }
    snprintf(n->peer, sizeof n->peer, "nvmf://%s:%s/%s", n->u.host, n->u.port, n->u.nqn);
    snprintf(n->bdev.name, sizeof n->bdev.name, "%s", uri);
    /* A replica or nexus subsystem is named by its uuid: that is what the child is,
     * whichever transport or alias reached it (bdev:///U, nbd://h:p/U). */
    uint8_t ub[16];
    if (!strncmp(n->u.nqn, OPENEBS_NQN_PREFIX, strlen(OPENEBS_NQN_PREFIX)) &&
        dp_uuid_parse(n->u.nqn + strlen(OPENEBS_NQN_PREFIX), ub) == 0)
        dp_uuid_format(ub, n->bdev.ident);
    n->bdev.size = n->c.size;
    n->bdev.block_size = n->c.block_size;
    n->bdev.read_only = n->c.nsattr & 1; /* a write-protected namespace (a snapshot): writes fail here */
    n->bdev.ops = &nvmfh_ops;
    n->bdev.ctx = n;
    n->bdev.reactor = dp_reactor_next();
    n->tick_op.cb = tick_cb;
    n->backoff_ms = BACKOFF_MIN_MS;
    n->next_ka_ms = nvmfh_now_ms() + n->c.kato_ms / 2;
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++)
        n->q[i].io.fd = -1;
    queues_init(n);
    sock_init(n, &n->adm, n->c.afd, &nvmfh_admin_ops);
    n->state = ST_UP;
    fprintf(stderr,
            "datapath: %s: connected as %s (cntlid %u, nsid %u, %llu bytes of %u, %u I/O queues of %u, in-capsule "
            "%u, maxh2cdata %u, max transfer %u)\n",
            n->peer, nvmfh_host_nqn(NULL), n->c.cntlid, n->c.nsid, (unsigned long long)n->c.size, n->c.block_size,
            n->c.nioq, n->c.qsize, n->c.icd_max, n->c.maxh2cdata, n->c.max_xfer);
    dp_reactor_call(n->bdev.reactor, start_msg, n);
    *out = &n->bdev;
    return 0;
}

static const char *const nvmfh_schemes[] = { "nvmf", NULL };
static struct dp_module nvmfh_module = { .name = "nvmf-host", .schemes = nvmfh_schemes, .create = nvmfh_create };
DP_MODULE_REGISTER(nvmfh_module)
