/*
 * pool.c - the pool core: the registry and its lock, the setup steps that
 * create and import share (open the disks, read a label, size the in-memory
 * state), the control round trip to the pool's reactor, and the pool
 * operations that need no commit (export, destroy, stat, probe).
 * create.c and import.c build pools, commit.c writes their metadata,
 * replica.c runs the replica operations, lvol.c their I/O.
 *
 * Control functions run on caller (koffi worker) threads. They serialize on
 * the registry lock, validate, allocate what they need, then hand the
 * mutation to the pool's reactor as a `pool_ctl` and sleep until the
 * reactor's asynchronous chain (zeroing, commit, discard) signals it. No
 * blocking I/O on a reactor. Pools that are not live yet (create/import) or
 * no longer live (export/destroy) are handled on the control thread with
 * dp_bdev_rw_sync.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/export.h"
#include "datapath.h"
#include "pool/pool.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pool *g_pools;

/* ---- validation ---------------------------------------------------------- */

int pool_check_name(const char *what, const char *name)
{
    const char *why = pf_name_problem(name);
    if (!why)
        return 0;
    if (name && name[0] && strnlen(name, PF_NAME_MAX) < PF_NAME_MAX)
        dp_set_error("%s '%s': %s", what, name, why);
    else
        dp_set_error("%s: %s", what, why);
    return -EINVAL;
}

/* Put context in front of the error the last call set: "<context>: <error>". */
void pool_error_wrap(const char *fmt, ...)
{
    char ctx[512], msg[512];
    snprintf(msg, sizeof msg, "%s", dp_get_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    dp_set_error("%s: %s", ctx, msg);
}

/* ---- registry (under the lock) ------------------------------------------ */

void pool_lock(void)
{
    pthread_mutex_lock(&g_mu);
}

void pool_unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

struct pool *pool_find(const char *name)
{
    for (struct pool *p = g_pools; p; p = p->next)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

/* Under the lock: the pool called name, or NULL with *ret and the error set. */
struct pool *pool_lookup(const char *name, int *ret)
{
    *ret = pool_check_name("pool name", name);
    if (*ret < 0)
        return NULL;
    struct pool *p = pool_find(name);
    if (!p) {
        dp_set_error("pool '%s' not found", name);
        *ret = -ENOENT;
    }
    return p;
}

struct replica *replica_find(const uint8_t uuid[16])
{
    for (struct pool *p = g_pools; p; p = p->next)
        for (uint32_t i = 0; i < p->nreplicas; i++)
            if (!memcmp(p->replicas[i]->uuid, uuid, 16))
                return p->replicas[i];
    return NULL;
}

static void pool_unpublish(struct pool *p)
{
    for (struct pool **pp = &g_pools; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void pool_publish(struct pool *p)
{
    p->next = g_pools;
    g_pools = p;
}

/* Free a pool that is not live (never published, or unpublished and idle). */
static void pool_free(struct pool *p)
{
    for (uint32_t i = 0; i < p->nreplicas; i++) {
        struct replica *r = p->replicas[i];
        r->pool = NULL;
        if (r->registered)
            dp_bdev_unregister(&r->bdev); /* frees it unless someone holds it open */
        else
            replica_free(r);
    }
    for (uint32_t d = 0; d < p->ndisks; d++)
        if (p->disks[d].bdev) {
            dp_bdev_unclaim(p->disks[d].bdev, p);
            dp_bdev_put(p->disks[d].bdev);
        }
    lvol_reqs_free(p);
    free(p->replicas);
    free(p->used);
    free(p->freeing);
    free(p->committing);
    free(p->released);
    free(p->draining);
    dp_buf_free(p->slot_buf);
    free(p);
}

/* ---- setup steps shared by create and import (control thread) ----------- */

/* Identity of a disk URI for duplicate detection ("/x" and "uring:///x"). */
static void disk_key(const char *uri, char *key, size_t len)
{
    const char *path = NULL;
    if (uri[0] == '/')
        path = uri;
    else if (!strncmp(uri, "uring://", 8))
        path = uri + 8;
    else if (!strncmp(uri, "aio://", 6))
        path = uri + 6;
    struct stat st;
    if (path && stat(path, &st) == 0) {
        if (S_ISBLK(st.st_mode))
            snprintf(key, len, "blk:%llu", (unsigned long long)st.st_rdev);
        else
            snprintf(key, len, "file:%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        return;
    }
    snprintf(key, len, "uri:%s", uri);
}

/* Open the disks of a create/import; p->disks[i].bdev in argument order. */
int pool_open_disks(struct pool *p, const char *what, const char *const *disks, uint32_t ndisks)
{
    if (!disks || ndisks == 0 || ndisks > PF_MAX_DISKS) {
        dp_set_error("pool '%s': disks: between 1 and %u disks are needed, got %u", p->name, PF_MAX_DISKS,
                     disks ? ndisks : 0);
        return -EINVAL;
    }
    char keys[PF_MAX_DISKS][600];
    for (uint32_t i = 0; i < ndisks; i++) {
        if (!disks[i] || !disks[i][0] || strlen(disks[i]) >= sizeof p->disks[i].uri) {
            dp_set_error("pool '%s': disks[%u]: empty or longer than %zu characters", p->name, i,
                         sizeof p->disks[i].uri - 1);
            return -EINVAL;
        }
        disk_key(disks[i], keys[i], sizeof keys[i]);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(keys[i], keys[j])) {
                dp_set_error("pool '%s': disks[%u] '%s' is the same disk as disks[%u] '%s'", p->name, i, disks[i], j,
                             disks[j]);
                return -EINVAL;
            }
    }
    for (uint32_t i = 0; i < ndisks; i++) {
        struct dp_bdev *b;
        int ret = dp_bdev_open_uri(disks[i], &b);
        if (ret < 0) {
            pool_error_wrap("pool '%s': %s disk '%s'", p->name, what, disks[i]);
            return ret;
        }
        p->disks[i].bdev = b;
        p->ndisks = i + 1;
        snprintf(p->disks[i].uri, sizeof p->disks[i].uri, "%s", disks[i]);
        /* a disk has one owner: not a nexus child, not another pool's disk */
        char owner[DP_NAME_MAX + 16];
        snprintf(owner, sizeof owner, "pool '%s'", p->name);
        ret = dp_bdev_claim(b, p, owner);
        if (ret < 0) {
            pool_error_wrap("pool '%s': %s disk '%s'", p->name, what, disks[i]);
            return ret;
        }
        if (b->size < PF_LABEL_SIZE || b->block_size == 0 || b->block_size > PF_LABEL_SIZE) {
            dp_set_error("pool '%s': disk '%s': too small (%" PRIu64 " bytes) or block size %u unsupported", p->name,
                         disks[i], b->size, b->block_size);
            return -EINVAL;
        }
    }
    return 0;
}

int pool_read_label(struct dp_bdev *b, uint8_t *buf, struct pf_label *l, char *err, size_t errlen)
{
    int ret = dp_bdev_rw_sync(b, DP_IO_READ, buf, 0, PF_LABEL_SIZE);
    if (ret < 0) {
        snprintf(err, errlen, "%s", dp_get_error());
        return ret;
    }
    return pf_label_decode(buf, l, err, errlen);
}

/* Allocate the in-memory state sized for p->total_clusters. */
int pool_alloc_state(struct pool *p)
{
    uint64_t words = bm_words(p->total_clusters);
    p->used = calloc(words, 8);
    p->freeing = calloc(words, 8);
    p->committing = calloc(words, 8);
    p->released = calloc(words, 8);
    p->draining = calloc(words, 8);
    p->slot_buf = dp_buf_alloc(p->slot_size);
    p->cap = PF_MAX_REPLICAS;
    p->version = pf_write_version;
    p->max_records = pf_max_records(p->version, p->slot_size, p->total_clusters);
    p->replicas = calloc(p->cap, sizeof *p->replicas);
    if (!p->used || !p->freeing || !p->committing || !p->released || !p->draining || !p->slot_buf || !p->replicas ||
        lvol_reqs_init(p) < 0) {
        dp_set_error("pool '%s': out of memory", p->name);
        return -ENOMEM;
    }
    p->reactor = p->disks[0].bdev->reactor;
    p->cl_shift = (uint32_t)__builtin_ctzll(p->cluster_size);
    p->block_size = 512;
    for (uint32_t d = 0; d < p->ndisks; d++)
        if (p->disks[d].bdev->block_size > p->block_size)
            p->block_size = p->disks[d].bdev->block_size;
    return 0;
}

/* The last step of create and import, under the lock: publish p and give
 * its uuid, or free it (ret < 0). Unlocks; returns ret. */
int pool_setup_end(struct pool *p, int ret, char *uuid_out)
{
    if (ret == 0) {
        pool_publish(p);
        if (uuid_out)
            memcpy(uuid_out, p->uuid_str, DP_UUID_STR_LEN);
    } else {
        pool_free(p);
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

/* ---- control operations on the reactor ---------------------------------- */

void pool_ctl_done(struct pool_ctl *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int pool_ctl_fail(struct pool_ctl *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    pool_ctl_done(c, rc);
    return rc;
}

/* Run c->fn on the pool's reactor; it (or its async chain) ends in ctl_done. */
void (*pool_ctl_test_hook)(void);

int pool_ctl_run(struct pool_ctl *c, struct pool *p, dp_msg_fn fn)
{
    if (pool_ctl_test_hook) {
        void (*h)(void) = pool_ctl_test_hook;
        pool_ctl_test_hook = NULL;
        h();
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->p = p;
    c->done = false;
    dp_reactor_send(p->reactor, fn, c);
    pthread_mutex_lock(&c->mu);
    while (!c->done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    if (c->rc < 0)
        dp_set_error("%s", c->err);
    return c->rc;
}

static void pool_fill_info(struct pool *p, dp_pool_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p->name);
    memcpy(out->uuid, p->uuid_str, sizeof out->uuid);
    out->ndisks = p->ndisks;
    for (uint32_t i = 0; i < p->nreplicas; i++)
        out->replicas += !p->replicas[i]->ro; /* snapshots: dp_pool_snapshot_at */
    out->cluster_size = p->cluster_size;
    out->capacity_bytes = p->total_clusters << p->cl_shift;
    out->used_bytes = p->nused << p->cl_shift;
    out->state = p->failed ? DP_POOL_FAILED : DP_POOL_ONLINE;
    if (p->failed)
        snprintf(out->reason, sizeof out->reason, "%s", p->fail_reason[0] ? p->fail_reason : "metadata write failed");
}

static void pool_stat_msg(void *arg)
{
    struct pool_ctl *c = arg;
    pool_fill_info(c->p, c->arg);
    pool_ctl_done(c, 0);
}

/* ---- pool operations without a commit (control threads) ---------------- */

static int pool_busy(struct pool *p, const char *what)
{
    for (uint32_t i = 0; i < p->nreplicas; i++)
        if (replica_open_count(p->replicas[i]) > 0) {
            dp_set_error("pool '%s': cannot %s: replica %s is open", p->name, what, p->replicas[i]->bdev.name);
            return -EBUSY;
        }
    return 0;
}

DP_EXPORT int dp_pool_export(const char *name)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct pool *p = pool_lookup(name, &ret);
    if (p && (ret = pool_busy(p, "export")) == 0) {
        pool_unpublish(p);
        pool_free(p);
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_pool_destroy(const char *name)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct pool *p = pool_lookup(name, &ret);
    if (!p) {
        pthread_mutex_unlock(&g_mu);
        return ret;
    }
    if (p->nreplicas) {
        uint32_t snaps = 0;
        for (uint32_t i = 0; i < p->nreplicas; i++)
            snaps += p->replicas[i]->ro;
        uint32_t reps = p->nreplicas - snaps;
        char more[64] = "";
        if (snaps)
            snprintf(more, sizeof more, " and %u snapshot%s", snaps, snaps == 1 ? "" : "s");
        dp_set_error("pool '%s' still holds %u replica%s%s; destroy them first", name, reps, reps == 1 ? "" : "s",
                     more);
        pthread_mutex_unlock(&g_mu);
        return -EBUSY;
    }
    pool_unpublish(p);
    /* Wipe: disk 0's label first (the pool stops importing), then the
     * slots and the other labels. */
    uint8_t *zero = dp_buf_alloc(PF_LABEL_SIZE);
    for (uint32_t d = 0; d < p->ndisks && ret == 0; d++) {
        struct dp_bdev *b = p->disks[d].bdev;
        ret = dp_bdev_rw_sync(b, DP_IO_WRITE, zero, 0, PF_LABEL_SIZE);
        for (int k = 0; d == 0 && k < 2 && ret == 0; k++)
            ret = dp_bdev_rw_sync(b, DP_IO_WRITE, zero, PF_META_OFFSET + (uint64_t)k * p->slot_size, PF_LABEL_SIZE);
        if (ret == 0)
            ret = dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0);
    }
    dp_buf_free(zero);
    if (ret < 0)
        pool_error_wrap("pool '%s': wiping labels", name);
    pool_free(p);
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_pool_stat(const char *name, dp_pool_info *out)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct pool *p = pool_lookup(name, &ret);
    if (p) {
        struct pool_ctl c = { .arg = out };
        ret = pool_ctl_run(&c, p, pool_stat_msg);
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_disk_probe(const char *disk, dp_pool_info *out)
{
    dp_clear_error();
    memset(out, 0, sizeof *out);
    struct dp_bdev *b;
    int ret = dp_bdev_open_uri(disk, &b);
    if (ret < 0)
        return ret;
    if (b->size < PF_LABEL_SIZE) {
        dp_bdev_put(b);
        return 0;
    }
    uint8_t *buf = dp_buf_alloc(PF_LABEL_SIZE);
    struct pf_label l;
    char err[256];
    ret = pool_read_label(b, buf, &l, err, sizeof err);
    if (ret == 0) {
        snprintf(out->name, sizeof out->name, "%s", l.pool_name);
        dp_uuid_format(l.pool_uuid, out->uuid);
        out->cluster_size = l.cluster_size;
        ret = 1;
    } else if (ret == 1) {
        ret = 0;
    } else {
        dp_set_error("disk '%s': %s", disk, err);
    }
    dp_buf_free(buf);
    dp_bdev_put(b);
    return ret;
}

static void pools_fini(void)
{
    pthread_mutex_lock(&g_mu);
    while (g_pools) {
        struct pool *p = g_pools;
        g_pools = p->next;
        pool_free(p);
    }
    pthread_mutex_unlock(&g_mu);
}

/* dp_fini: pools close (metadata committed) after the volumes over their replicas. */
static struct dp_module pool_module = { .name = "pool", .fini = pools_fini, .fini_stage = DP_FINI_STORES };
DP_MODULE_REGISTER(pool_module)
