/*
 * ctrlr.c - fabrics commands and controllers: Connect (admin queue creates
 * a controller with a dynamic cntlid, I/O queues join it by cntlid, host NQN
 * and subsystem NQN), Property Get/Set (CAP, VS, CC, CSTS), Disconnect, the
 * keep-alive timer that tears down a controller whose host went silent, and
 * the subsystem API (dp_nvmf_share/unshare/export_connections).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "nvmf/target.h"
#include "util/error.h"
#include "util/uuid.h"
#include "util/container.h"

static struct nvmf_ctrlr *g_ctrlrs; /* under g_nvmf_exports.lock */
int g_nvmf_nctrlrs; /* under g_nvmf_exports.lock: shutdown waits for 0 */
static uint16_t g_next_cntlid = 1;

static uint64_t cap_value(void)
{
    return (uint64_t)(NVMF_MAX_QSIZE - 1) | NVME_CAP_CQR | (30ull << NVME_CAP_TO_SHIFT) | NVME_CAP_CSS_NVM;
}

/* ---- controller lifetime ------------------------------------------------- */

/* Drop a queue's reference (ka == false) or the keep-alive timer's (ka ==
 * true); the last one frees k. Queues live on several reactors: the count
 * and the list are under g_nvmf_exports.lock. */
static void ctrlr_unref(struct nvmf_ctrlr *k, bool ka)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    if (ka)
        k->ka_inflight = false;
    else
        k->refs--;
    bool last = k->refs <= 0 && !k->ka_inflight;
    if (last) {
        for (struct nvmf_ctrlr **pp = &g_ctrlrs; *pp; pp = &(*pp)->next)
            if (*pp == k) {
                *pp = k->next;
                break;
            }
        g_nvmf_nctrlrs--;
        pthread_cond_broadcast(&g_nvmf_exports.cond);
    }
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (last)
        free(k);
}

/* Tear the controller down (on its reactor): the I/O queues close on their
 * own reactors, the admin queue here. */
static void ctrlr_kill(struct nvmf_ctrlr *k, const char *why)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    bool was = k->dead;
    __atomic_store_n(&k->dead, true, __ATOMIC_RELAXED);
    for (int i = 1; !was && i <= NVMF_MAX_IO_QUEUES; i++)
        if (k->ioq[i])
            nvmf_conn_kill_locked(k->ioq[i]);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (was)
        return;
    k->naer = 0;
    if (why)
        fprintf(stderr, "nvmf: controller %u of host %s on %s: %s; tearing it down\n", k->cntlid, k->hostnqn, k->subnqn,
                why);
    if (k->ka_inflight) {
        struct io_uring_sqe *sqe = dp_reactor_sqe(k->r);
        io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&k->ka_op, 0);
        io_uring_sqe_set_data(sqe, &g_nvmf_noop);
    }
    if (k->admin)
        nvmf_conn_close(k->admin, NULL);
}

/* CC.EN 1 -> 0 (a controller reset): the I/O queues go (the host connects
 * them again after enabling), held AERs are dropped, the queue count may be
 * negotiated again. The admin queue and the controller stay. */
static void ctrlr_reset(struct nvmf_ctrlr *k)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    for (int i = 1; i <= NVMF_MAX_IO_QUEUES; i++)
        if (k->ioq[i])
            nvmf_conn_kill_locked(k->ioq[i]);
    __atomic_store_n(&k->nioq, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    nvmf_aer_drop(k);
}

/* On c's reactor (the admin queue's is the controller's). */
void nvmf_ctrlr_detach(struct nvmf_conn *c)
{
    struct nvmf_ctrlr *k = c->ctrlr;
    if (!k)
        return;
    c->ctrlr = NULL;
    if (k->admin == c) {
        k->admin = NULL;
        ctrlr_kill(k, NULL);
    } else {
        pthread_mutex_lock(&g_nvmf_exports.lock);
        if (c->qid <= NVMF_MAX_IO_QUEUES && k->ioq[c->qid] == c)
            k->ioq[c->qid] = NULL;
        pthread_mutex_unlock(&g_nvmf_exports.lock);
    }
    ctrlr_unref(k, false);
}

static void ka_arm(struct nvmf_ctrlr *k);

static void ka_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct nvmf_ctrlr *k = container_of(op, struct nvmf_ctrlr, ka_op);
    /* ka_inflight stays set until ctrlr_unref: the timer's reference keeps k */
    if (!k->dead && !__atomic_load_n(&k->ka_seen, __ATOMIC_RELAXED)) {
        char why[96];
        snprintf(why, sizeof why, "no command within the keep-alive timeout (%u ms)", k->kato);
        ctrlr_kill(k, why);
    } else if (!k->dead && k->kato) {
        nvmf_ns_check(k);
        ka_arm(k);
        return;
    }
    ctrlr_unref(k, true);
}

/* Check every 1.5 x KATO that the host sent something since the last check
 * (on the controller's reactor; ka_inflight is set by the caller). */
static void ka_arm(struct nvmf_ctrlr *k)
{
    uint64_t ms = (uint64_t)k->kato * 3 / 2;
    k->ka_ts.tv_sec = (long long)(ms / 1000);
    k->ka_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    __atomic_store_n(&k->ka_seen, false, __ATOMIC_RELAXED);
    k->ka_op.cb = ka_cb;
    dp_reactor_timer(k->r, &k->ka_op, &k->ka_ts);
}

static struct nvmf_ctrlr *ctrlr_new(struct nvmf_conn *c, bool discovery)
{
    struct nvmf_ctrlr *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->discovery = discovery;
    k->exp = c->exp;
    k->r = c->r;
    k->ns_size = c->exp ? __atomic_load_n(&c->exp->bdev->size, __ATOMIC_ACQUIRE) : 0;
    memcpy(k->subnqn, c->subnqn, sizeof k->subnqn);
    memcpy(k->hostnqn, c->hostnqn, sizeof k->hostnqn);
    memcpy(k->hostid, c->hostid, sizeof k->hostid);
    k->kato = c->kato;
    k->admin = c;
    k->refs = 1;
    k->ka_inflight = k->kato != 0;
    pthread_mutex_lock(&g_nvmf_exports.lock);
    for (;;) { /* a dynamic cntlid not in use */
        uint16_t id = g_next_cntlid;
        g_next_cntlid = g_next_cntlid >= NVMF_CNTLID_MAX ? 1 : g_next_cntlid + 1;
        bool used = false;
        for (struct nvmf_ctrlr *o = g_ctrlrs; o && !used; o = o->next)
            used = o->cntlid == id;
        if (!used) {
            k->cntlid = id;
            break;
        }
    }
    k->next = g_ctrlrs;
    g_ctrlrs = k;
    g_nvmf_nctrlrs++;
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (k->ka_inflight)
        ka_arm(k);
    return k;
}

/* ---- Connect ------------------------------------------------------------- */

static void connect_fail(struct nvmf_req *q, uint16_t sc, uint32_t cdw0)
{
    nvmf_req_complete(q, NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, sc) | NVME_STATUS_DNR, cdw0);
}

static void connect_ok(struct nvmf_conn *c, struct nvmf_req *q)
{
    c->connected = true;
    c->hs_done = true;
    dp_target_handshake_done(&c->tc);
    nvmf_req_complete(q, 0, c->ctrlr->cntlid);
}

/* On the controller's reactor: create the controller or join it. */
static void connect_finish(struct nvmf_conn *c, struct nvmf_req *q)
{
    if (c->qid == 0) {
        c->ctrlr = ctrlr_new(c, c->exp == NULL);
        if (!c->ctrlr) {
            nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
            return;
        }
        connect_ok(c, q);
        return;
    }
    /* An I/O queue joins on its own reactor: the controller's fields it
     * checks are under the lock (ioq, refs, dead) or atomic (csts, nioq). */
    struct nvmf_ctrlr *k;
    uint16_t sc = 0;
    uint32_t cdw0 = 0;
    pthread_mutex_lock(&g_nvmf_exports.lock);
    for (k = g_ctrlrs; k; k = k->next)
        if (k->cntlid == c->want_cntlid)
            break;
    if (!k || k->dead || k->discovery || strcmp(k->subnqn, c->subnqn) || strcmp(k->hostnqn, c->hostnqn)) {
        sc = NVMF_SC_INVALID_PARAM;
        cdw0 = NVMF_INVALID_PARAM_CDW0(1, __builtin_offsetof(struct nvmf_connect_data, cntlid));
    } else {
        uint16_t nioq = __atomic_load_n(&k->nioq, __ATOMIC_RELAXED);
        if (!(__atomic_load_n(&k->csts, __ATOMIC_RELAXED) & NVME_CSTS_RDY) || c->qid > NVMF_MAX_IO_QUEUES ||
            c->qid > (nioq ? nioq : 1) || k->ioq[c->qid]) {
            sc = NVMF_SC_INVALID_PARAM;
            cdw0 = NVMF_INVALID_PARAM_CDW0(0, __builtin_offsetof(struct nvmf_connect_cmd, qid));
        } else {
            k->ioq[c->qid] = c;
            k->refs++;
            c->ctrlr = k;
        }
    }
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (sc)
        connect_fail(q, sc, cdw0);
    else
        connect_ok(c, q);
}

void nvmf_connect_migrated(void *arg)
{
    struct nvmf_conn *c = arg;
    pthread_mutex_lock(&g_nvmf_exports.lock);
    c->r = dp_reactor_self();
    c->migrating = false;
    bool dead = c->kill_pending || c->exp->dead;
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    struct nvmf_req *q = c->connect_req;
    c->connect_req = NULL;
    if (dead) {
        nvmf_conn_close(c, NULL);
        return;
    }
    connect_finish(c, q);
    nvmf_conn_resume(c);
}

/* The admin queue lives on the device's reactor; I/O queue n on the
 * (n - 1)th reactor after it, round-robin: a host with one queue per CPU
 * spreads its transport work over every reactor (dp_bdev_submit hops to the
 * device's reactor and io.c brings completions back). */
static struct dp_reactor *queue_reactor(struct dp_reactor *dev, uint16_t qid)
{
    uint32_t n = dp_reactor_count(), base = 0;
    if (qid <= 1 || n <= 1)
        return dev;
    while (base < n && dp_reactor_get(base) != dev)
        base++;
    return dp_reactor_get((base + qid - 1u) % n);
}

void nvmf_connect_go(struct nvmf_conn *c)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    c->migrating = true; /* kills wait for the move (kill_pending) */
    c->migrate_to = queue_reactor(c->exp->bdev->reactor, c->qid);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
}

static void connect_cmd(struct nvmf_conn *c, struct nvmf_req *q)
{
    const struct nvmf_connect_cmd *cmd = (const struct nvmf_connect_cmd *)&q->sqe;
    uint32_t cdw0;
    if (c->connected || c->ctrlr) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR) | NVME_STATUS_DNR, 0);
        return;
    }
    if (q->len != NVMF_CONNECT_DATA_LEN || !q->buf) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID) | NVME_STATUS_DNR, 0);
        return;
    }
    const struct nvmf_connect_data *d = (const struct nvmf_connect_data *)q->buf;
    uint16_t st = nvmf_connect_check(cmd, d, cmd->qid == 0, cmd->qid == 0 ? NVMF_ADMIN_QSIZE : NVMF_MAX_QSIZE, &cdw0,
                                     c->subnqn, c->hostnqn);
    if (st) {
        fprintf(stderr, "nvmf: peer %s: Connect refused: invalid parameter (cdw0 0x%x)\n", c->peer.str, cdw0);
        nvmf_req_complete(q, st | NVME_STATUS_DNR, cdw0);
        return;
    }
    c->qid = cmd->qid;
    c->qsize = (uint16_t)(cmd->sqsize + 1);
    c->sqflow_off = cmd->cattr & NVMF_CONNECT_CATTR_DISABLE_SQ_FC;
    c->want_cntlid = d->cntlid;
    c->kato = cmd->kato;
    memcpy(c->hostid, d->hostid, sizeof c->hostid);
    if (strcmp(c->subnqn, NVMF_DISCOVERY_NQN) == 0) {
        if (c->qid != 0) {
            connect_fail(q, NVMF_SC_INVALID_PARAM,
                         NVMF_INVALID_PARAM_CDW0(0, __builtin_offsetof(struct nvmf_connect_cmd, qid)));
            return;
        }
        connect_finish(c, q);
        return;
    }
    pthread_mutex_lock(&g_nvmf_exports.lock);
    struct dp_export *e = dp_export_named_locked(&g_nvmf_exports, c->subnqn);
    uint16_t sc = 0;
    if (!e || e->dead)
        sc = NVMF_SC_INVALID_PARAM;
    else if (!dp_allowlist_allows_nqn(&e->allowed, c->hostnqn, &c->peer.addr))
        sc = NVMF_SC_INVALID_HOST;
    else if (!dp_export_attach_locked(&g_nvmf_exports, e, c->peer.str))
        sc = NVMF_SC_CONTROLLER_BUSY;
    else
        c->exp = e;
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    if (sc) {
        fprintf(stderr, "nvmf: peer %s: Connect of host %s to %s refused: %s\n", c->peer.str, c->hostnqn, c->subnqn,
                sc == NVMF_SC_INVALID_HOST    ? "host not allowed"
                : sc == NVMF_SC_INVALID_PARAM ? "no such subsystem"
                                              : "too many connections");
        connect_fail(q, sc,
                     sc == NVMF_SC_INVALID_PARAM
                         ? NVMF_INVALID_PARAM_CDW0(1, __builtin_offsetof(struct nvmf_connect_data, subnqn))
                         : 0);
        return;
    }
    snprintf(c->wc.host, sizeof c->wc.host, "%s", c->hostnqn);
    c->wc.peer = c->peer.str;
    dp_export_client_attach(e, &c->wc); /* counted for the writer lease (target/export.h) */
    c->connect_req = q;
    nvmf_connect_go(c);
}

/* ---- properties ---------------------------------------------------------- */

static void property_cmd(struct nvmf_conn *c, struct nvmf_req *q, bool set)
{
    struct nvmf_ctrlr *k = c->ctrlr;
    const struct nvmf_property_set_cmd *cmd = (const struct nvmf_property_set_cmd *)&q->sqe;
    bool eight = (cmd->attrib & 7) == NVMF_PROP_SIZE_8;
    const uint16_t inval = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD) | NVME_STATUS_DNR;
    uint64_t v = 0;
    if (set) {
        if (cmd->ofst != NVME_REG_CC || eight) {
            nvmf_req_complete(q, inval, 0);
            return;
        }
        uint32_t cc = (uint32_t)cmd->value, old = k->cc;
        k->cc = cc;
        uint32_t csts = k->csts; /* written here only; I/O queues read it atomically */
        if ((cc & NVME_CC_EN) && !(old & NVME_CC_EN))
            csts |= NVME_CSTS_RDY;
        else if (!(cc & NVME_CC_EN) && (old & NVME_CC_EN)) {
            csts &= ~(NVME_CSTS_RDY | NVME_CSTS_SHST_MASK);
            ctrlr_reset(k);
        }
        if (cc & NVME_CC_SHN_MASK)
            csts = (csts & ~NVME_CSTS_SHST_MASK) | (NVME_CSTS_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT);
        __atomic_store_n(&k->csts, csts, __ATOMIC_RELAXED);
        nvmf_req_complete(q, 0, 0);
        return;
    }
    switch (cmd->ofst) {
    case NVME_REG_CAP: v = cap_value(); break;
    case NVME_REG_VS: v = NVME_VS(1, 3, 0); break;
    case NVME_REG_CC: v = k->cc; break;
    case NVME_REG_CSTS: v = k->csts; break;
    default: nvmf_req_complete(q, inval, 0); return;
    }
    if (!eight && cmd->ofst == NVME_REG_CAP) {
        nvmf_req_complete(q, inval, 0);
        return;
    }
    q->cqe.cdw1 = (uint32_t)(v >> 32);
    nvmf_req_complete(q, 0, (uint32_t)v);
}

void nvmf_fabrics_cmd(struct nvmf_req *q)
{
    struct nvmf_conn *c = q->c;
    uint8_t fctype = ((const struct nvmf_fabric_cmd *)&q->sqe)->fctype;
    if (fctype == NVMF_FCTYPE_CONNECT) {
        connect_cmd(c, q);
        return;
    }
    if (!c->connected || !c->ctrlr) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR) | NVME_STATUS_DNR, 0);
        return;
    }
    __atomic_store_n(&c->ctrlr->ka_seen, true, __ATOMIC_RELAXED);
    switch (fctype) {
    case NVMF_FCTYPE_PROPERTY_GET:
    case NVMF_FCTYPE_PROPERTY_SET:
        if (c->qid != 0)
            break;
        property_cmd(c, q, fctype == NVMF_FCTYPE_PROPERTY_SET);
        return;
    case NVMF_FCTYPE_DISCONNECT: /* this queue goes once the reply is out */
        q->close_after = true;
        nvmf_req_complete(q, 0, 0);
        return;
    }
    nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE) | NVME_STATUS_DNR, 0);
}

/* ---- subsystems (the public API) ----------------------------------------- */

struct nvmf_subsys {
    struct nvmf_subsys *next;
    uint8_t uuid[16];
    char nqn[];
};
static struct nvmf_subsys *g_subsys; /* under g_nvmf_exports.lock */

/* Under lock: the namespace uuid of a subsystem (its share's, or derived from its name). */
void nvmf_ns_uuid_locked(const char *nqn, const char *bdev_name, uint8_t out[16])
{
    for (struct nvmf_subsys *s = g_subsys; s; s = s->next)
        if (!strcmp(s->nqn, nqn)) {
            memcpy(out, s->uuid, 16);
            return;
        }
    /* FNV-1a over the device name: stable for the same device */
    uint64_t h1 = 1469598103934665603ull, h2 = 1099511628211ull;
    for (const char *p = bdev_name; *p; p++) {
        h1 = (h1 ^ (uint8_t)*p) * 1099511628211ull;
        h2 = (h2 ^ (uint8_t)*p) * 1469598103934665603ull;
    }
    memcpy(out, &h1, 8);
    memcpy(out + 8, &h2, 8);
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
}

DP_EXPORT int dp_nvmf_share(const char *bdev_name, const char *nqn, const char *uuid, const char *allowed_hosts_csv)
{
    dp_clear_error();
    uint8_t u[16] = { 0 };
    if (!bdev_name || !*bdev_name) {
        dp_set_error("nvmf share: device name is empty");
        return -EINVAL;
    }
    if (!nqn || !nvmf_nqn_valid(nqn) || !strcmp(nqn, NVMF_DISCOVERY_NQN)) {
        dp_set_error("nvmf share '%.64s': nqn '%.230s' is not a valid subsystem NQN", bdev_name, nqn ? nqn : "");
        return -EINVAL;
    }
    if (uuid && *uuid && dp_uuid_parse(uuid, u) < 0) {
        dp_set_error("nvmf share '%.230s': uuid '%.64s' is not a uuid", nqn, uuid);
        return -EINVAL;
    }
    int rc = dp_export_share(&g_nvmf_exports, bdev_name, nqn, allowed_hosts_csv);
    if (rc < 0 || !uuid || !*uuid)
        return rc;
    pthread_mutex_lock(&g_nvmf_exports.lock);
    struct nvmf_subsys *s;
    for (s = g_subsys; s && strcmp(s->nqn, nqn); s = s->next)
        ;
    if (!s && (s = calloc(1, sizeof *s + strlen(nqn) + 1))) {
        strcpy(s->nqn, nqn);
        s->next = g_subsys;
        g_subsys = s;
    }
    if (s)
        memcpy(s->uuid, u, 16);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    return 0;
}

static void subsys_forget(const char *nqn)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    for (struct nvmf_subsys **pp = &g_subsys; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->nqn, nqn)) {
            struct nvmf_subsys *s = *pp;
            *pp = s->next;
            free(s);
            break;
        }
    pthread_mutex_unlock(&g_nvmf_exports.lock);
}

DP_EXPORT int dp_nvmf_unshare(const char *nqn)
{
    dp_clear_error();
    int rc = dp_export_unshare(&g_nvmf_exports, nqn);
    if (rc == 0)
        subsys_forget(nqn);
    return rc;
}

DP_EXPORT int dp_nvmf_export_connections(const char *nqn)
{
    return dp_export_connections(&g_nvmf_exports, nqn);
}

void nvmf_subsys_forget_all(void)
{
    pthread_mutex_lock(&g_nvmf_exports.lock);
    while (g_subsys) {
        struct nvmf_subsys *s = g_subsys;
        g_subsys = s->next;
        free(s);
    }
    pthread_mutex_unlock(&g_nvmf_exports.lock);
}
