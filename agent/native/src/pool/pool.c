/*
 * pool.c - pools: create/import/export/destroy, the metadata commit engine,
 * cluster accounting, and the replica control operations.
 *
 * Control functions run on caller (koffi worker) threads. They serialize on
 * g_mu, validate, allocate what they need, then hand the mutation to the
 * pool's reactor as a `ctl` and sleep until the reactor's asynchronous chain
 * (zeroing, commit, discard) signals it. No blocking I/O on a reactor.
 * Pools that are not live yet (create/import) or no longer live
 * (export/destroy) are handled on the control thread with dp_bdev_rw_sync.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "pool/pool.h"

int dp_pool_fault_after_writes = -1;
int dp_pool_fault_mode;
int dp_pool_fault_hit;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pool *g_pools;

/* ---- validation ---------------------------------------------------------- */

static int check_name(const char *what, const char *name)
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
static void error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error_wrap(const char *fmt, ...)
{
    char ctx[512], msg[512];
    snprintf(msg, sizeof msg, "%s", dp_get_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    dp_set_error("%s: %s", ctx, msg);
}

static int check_uuid(const char *what, const char *s, uint8_t out[16])
{
    if (!s || dp_uuid_parse(s, out) < 0) {
        dp_set_error("%s '%.64s': not a uuid (8-4-4-4-12 hex digits)", what, s ? s : "(null)");
        return -EINVAL;
    }
    return 0;
}

/* ---- cluster accounting (reactor) --------------------------------------- */

static inline bool bit_get(const uint64_t *b, uint64_t i)
{
    return b[i >> 6] >> (i & 63) & 1;
}
static inline void bit_set(uint64_t *b, uint64_t i)
{
    b[i >> 6] |= 1ull << (i & 63);
}
static inline void bit_clr(uint64_t *b, uint64_t i)
{
    b[i >> 6] &= ~(1ull << (i & 63));
}
static inline uint64_t bm_words(uint64_t n)
{
    return (n + 63) / 64;
}

int64_t pool_cluster_take(struct pool *p)
{
    if (p->nused >= p->total_clusters)
        return -ENOSPC;
    uint64_t words = bm_words(p->total_clusters), w = p->hint >> 6;
    for (uint64_t k = 0; k <= words; k++, w = (w + 1) % words) {
        uint64_t v = p->used[w];
        if (v == ~0ull)
            continue;
        uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(~v);
        if (i >= p->total_clusters)
            continue;
        bit_set(p->used, i);
        p->nused++;
        p->hint = i + 1 < p->total_clusters ? i + 1 : 0;
        return (int64_t)i;
    }
    return -ENOSPC;
}

void pool_cluster_put(struct pool *p, uint32_t pcl)
{
    if (bit_get(p->used, pcl)) {
        bit_clr(p->used, pcl);
        p->nused--;
    }
}

void pool_cluster_unmapped(struct pool *p, uint32_t pcl)
{
    if (!bit_get(p->freeing, pcl)) {
        bit_set(p->freeing, pcl);
        p->nfreeing++;
    }
}

/*
 * Clusters freed by UNMAP become reusable only when the commit that freed
 * them is durable (else a crash could leave two replicas sharing one) and no
 * I/O issued before the unmap is still in flight (else it could land in the
 * cluster's next owner).
 */
void pool_try_release(struct pool *p)
{
    if (p->inflight || !p->nreleased)
        return;
    for (uint64_t w = 0; w < bm_words(p->total_clusters); w++) {
        p->used[w] &= ~p->released[w];
        p->released[w] = 0;
    }
    p->nused -= p->nreleased;
    p->nreleased = 0;
}

uint32_t pool_locate(struct pool *p, uint32_t pcl, uint64_t *offset)
{
    uint32_t d = 0;
    while (d + 1 < p->ndisks && pcl >= p->disks[d].first_cluster + p->disks[d].nclusters)
        d++;
    *offset = p->disks[d].data_start + ((uint64_t)(pcl - p->disks[d].first_cluster) << p->cl_shift);
    return d;
}

/* ---- base I/O ------------------------------------------------------------ */

static void base_bounce(void *arg)
{
    struct base_io *b = arg;
    b->done(b, b->status);
}

static void base_io_cb(struct dp_bdev_io *io, int status)
{
    struct base_io *b = io->cb_arg;
    b->status = status;
    if (dp_reactor_self() != b->pool->reactor) {
        dp_reactor_send(b->pool->reactor, base_bounce, b);
        return;
    }
    b->done(b, status);
}

static void base_submit_msg(void *arg)
{
    struct base_io *b = arg;
    dp_bdev_submit(b->io.bdev, &b->io);
}

/* Disks of one pool may live on other reactors: hop there and back. */
void pool_base_submit(struct pool *p, uint32_t disk, struct base_io *b)
{
    struct dp_bdev *bd = p->disks[disk].bdev;
    b->pool = p;
    b->io.bdev = bd;
    b->io.cb = base_io_cb;
    b->io.cb_arg = b;
    if (bd->reactor == p->reactor)
        dp_bdev_submit(bd, &b->io);
    else
        dp_reactor_send(bd->reactor, base_submit_msg, b);
}

static void base_prep(struct base_io *b, enum dp_bdev_io_type type, uint64_t off, uint64_t len, struct iovec *iov,
                      int iovcnt, void (*done)(struct base_io *, int))
{
    b->io.type = type;
    b->io.flags = 0;
    b->io.offset = off;
    b->io.length = len;
    b->io.iov = iov;
    b->io.iovcnt = iovcnt;
    b->done = done;
}

/* ---- metadata commit (reactor) ----------------------------------------- */

static uint64_t meta_serialize(struct pool *p)
{
    uint8_t *s = p->slot_buf;
    uint64_t off = PF_META_HDR_SIZE;
    for (uint32_t i = 0; i < p->nreplicas; i++) {
        struct replica *r = p->replicas[i];
        struct pf_replica_rec rec = { .size = r->size, .flags = r->thin ? PF_REPLICA_THIN : 0 };
        memcpy(rec.uuid, r->uuid, 16);
        uint64_t roff = off;
        off += PF_META_REC_SIZE;
        for (uint32_t l = 0; l < r->ncl; l++) {
            uint32_t m = r->map[l];
            /* A cluster still being zeroed is not referenced by any commit. */
            if (m == MAP_UNALLOC || (m & MAP_ZEROING))
                continue;
            off += pf_meta_put_map(s + off, l, m & MAP_PCL_MASK);
            rec.nmap++;
        }
        pf_meta_put_rec(s + roff, &rec);
    }
    struct pf_meta_hdr h = { .seq = p->seq + 1, .used_len = off, .nreplicas = p->nreplicas };
    memcpy(h.pool_uuid, p->uuid, 16);
    pf_meta_put_hdr(s, &h);
    pf_meta_seal(s, off);
    return off;
}

static void commit_step(struct pool *p);

static void commit_finish(struct pool *p, int rc)
{
    p->commit_busy = false;
    uint64_t words = bm_words(p->total_clusters);
    if (rc == 0) {
        p->seq++;
        p->cur_slot ^= 1;
        if (p->ncommitting) {
            for (uint64_t w = 0; w < words; w++) {
                p->released[w] |= p->committing[w];
                p->committing[w] = 0;
            }
            p->nreleased += p->ncommitting;
            p->ncommitting = 0;
        }
    } else {
        /* The pool is failed from now on: nothing reaches its metadata.
         * Clusters in flight stay counted as used (a failed pool allocates
         * nothing more). */
        if (!p->fail_reason[0])
            snprintf(p->fail_reason, sizeof p->fail_reason, "metadata commit failed: %s", strerror(-rc));
        p->failed = true;
        memset(p->committing, 0, words * 8);
        p->ncommitting = 0;
    }
    struct pool_waiter *w = p->w_cur;
    p->w_cur = NULL;
    while (w) {
        struct pool_waiter *next = w->next;
        w->cb(w, rc);
        w = next;
    }
    if (rc == 0)
        pool_try_release(p);
    if (!p->commit_busy && p->w_next)
        commit_step(p); /* stage -1: start the next batch */
}

static void commit_io_done(struct base_io *b, int status)
{
    struct pool *p = b->pool;
    if (status < 0) {
        fprintf(stderr, "pool '%s': metadata %s failed: %s\n", p->name, p->cstage == 1 ? "write" : "flush",
                strerror(-status));
        if (!p->failed)
            snprintf(p->fail_reason, sizeof p->fail_reason, "metadata %s failed: %s",
                     p->cstage == 1 ? "write" : "flush", strerror(-status));
        commit_finish(p, -EIO);
        return;
    }
    switch (p->cstage) {
    case 1:
        p->cstage = 2;
        commit_step(p);
        break;
    case 3: commit_finish(p, -EIO); break; /* a torn test write landed: now "crash" */
    case 4: commit_finish(p, 0); break;
    default: commit_step(p); break;
    }
}

/*
 * Stages: start a batch (when idle); 0 flush the data disks zeroed for this
 * batch; 1 write the older slot; 2 flush disk 0 (4 while in flight), done.
 */
static void commit_step(struct pool *p)
{
    if (!p->commit_busy) {
        p->commit_busy = true;
        p->w_cur = p->w_next;
        p->w_next = NULL;
        if (p->failed) {
            commit_finish(p, -EIO);
            return;
        }
        for (uint32_t d = 0; d < p->ndisks; d++) {
            p->disks[d].flush_now = p->disks[d].dirty;
            p->disks[d].dirty = false;
        }
        if (p->nfreeing) {
            uint64_t *t = p->committing;
            p->committing = p->freeing;
            p->freeing = t;
            p->ncommitting = p->nfreeing;
            p->nfreeing = 0;
        }
        uint64_t used = meta_serialize(p);
        p->cwrite_len = (used + 4095) & ~4095ull;
        p->cstage = 0;
        p->cdisk = 0;
    }
    if (p->cstage == 0) {
        while (p->cdisk < p->ndisks && !p->disks[p->cdisk].flush_now)
            p->cdisk++;
        if (p->cdisk < p->ndisks) {
            uint32_t d = p->cdisk++;
            p->disks[d].flush_now = false;
            base_prep(&p->cio, DP_IO_FLUSH, 0, 0, NULL, 0, commit_io_done);
            pool_base_submit(p, d, &p->cio);
            return;
        }
        p->cstage = 1;
    }
    if (p->cstage == 1) {
        uint64_t off = PF_META_OFFSET + (uint64_t)(p->cur_slot ^ 1) * p->slot_size;
        uint64_t len = p->cwrite_len;
        int after = __atomic_load_n(&dp_pool_fault_after_writes, __ATOMIC_SEQ_CST);
        if (after > 0) {
            __atomic_store_n(&dp_pool_fault_after_writes, after - 1, __ATOMIC_SEQ_CST);
        } else if (after == 0) {
            __atomic_store_n(&dp_pool_fault_after_writes, -1, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&dp_pool_fault_hit, 1, __ATOMIC_SEQ_CST);
            if (dp_pool_fault_mode == 1)
                len = (len / 2) & ~4095ull;
            else if (dp_pool_fault_mode == 2)
                for (uint64_t i = len / 2; i < len; i++)
                    p->slot_buf[i] ^= 0xa5;
            if (dp_pool_fault_mode == 0 || len == 0) {
                commit_finish(p, -EIO);
                return;
            }
            p->cstage = 3;
        }
        p->slot_iov.iov_base = p->slot_buf;
        p->slot_iov.iov_len = len;
        base_prep(&p->cio, DP_IO_WRITE, off, len, &p->slot_iov, 1, commit_io_done);
        pool_base_submit(p, 0, &p->cio);
        return;
    }
    p->cstage = 4;
    base_prep(&p->cio, DP_IO_FLUSH, 0, 0, NULL, 0, commit_io_done);
    pool_base_submit(p, 0, &p->cio);
}

void pool_commit(struct pool *p, struct pool_waiter *w)
{
    if (p->failed) {
        w->cb(w, -EIO);
        return;
    }
    w->next = p->w_next;
    p->w_next = w;
    if (!p->commit_busy)
        commit_step(p);
}

/* ---- control operations on the reactor ---------------------------------- */

struct ctl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    char err[512];
    struct pool *p;
    struct replica *r;
    uint64_t size;
    uint32_t *newmap; /* resize: map for the new size, filled on the reactor */
    uint32_t newncl;
    struct pool_waiter w;
    struct base_io b;
    uint32_t *cl; /* clusters to zero or discard */
    uint32_t ncl, idx;
    enum dp_bdev_io_type run_type;
    void (*after)(struct ctl *c, int rc);
    dp_msg_fn fn;
    void *arg; /* stat output */
};

static void ctl_done(struct ctl *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static int ctl_fail(struct ctl *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctl_fail(struct ctl *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    ctl_done(c, rc);
    return rc;
}

/* Run c->fn on the pool's reactor; it (or its async chain) ends in ctl_done. */
static int ctl_run(struct ctl *c, struct pool *p, dp_msg_fn fn)
{
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

static void runs_next(struct ctl *c);

static void runs_done(struct base_io *b, int status)
{
    struct ctl *c = container_of(b, struct ctl, b);
    if (status < 0 && c->run_type == DP_IO_WRITE_ZEROES) {
        c->after(c, status);
        return;
    }
    /* Discards are advisory: a base without them just keeps the bytes. */
    runs_next(c);
}

/* Zero or discard c->cl[] in runs of physically contiguous clusters. */
static void runs_next(struct ctl *c)
{
    struct pool *p = c->p;
    if (c->idx >= c->ncl) {
        c->after(c, 0);
        return;
    }
    uint32_t first = c->cl[c->idx], n = 1;
    uint64_t off;
    uint32_t d = pool_locate(p, first, &off);
    uint64_t end = p->disks[d].first_cluster + p->disks[d].nclusters;
    while (c->idx + n < c->ncl && c->cl[c->idx + n] == first + n && first + n < end && n < 256)
        n++;
    c->idx += n;
    if (c->run_type == DP_IO_WRITE_ZEROES)
        p->disks[d].dirty = true;
    base_prep(&c->b, c->run_type, off, (uint64_t)n << p->cl_shift, NULL, 0, runs_done);
    pool_base_submit(p, d, &c->b);
}

static void table_add(struct pool *p, struct replica *r)
{
    p->replicas[p->nreplicas++] = r;
}

static void table_remove(struct pool *p, struct replica *r)
{
    for (uint32_t i = 0; i < p->nreplicas; i++)
        if (p->replicas[i] == r) {
            memmove(&p->replicas[i], &p->replicas[i + 1], (p->nreplicas - i - 1) * sizeof r);
            p->nreplicas--;
            return;
        }
}

static void free_bytes_msg(struct ctl *c, const char *what, uint64_t need)
{
    struct pool *p = c->p;
    ctl_fail(c, -ENOSPC, "pool '%s': not enough free space for %s: needs %" PRIu64 " bytes, %" PRIu64 " bytes free",
             p->name, what, need << p->cl_shift, (p->total_clusters - p->nused) << p->cl_shift);
}

/* Take n clusters into c->cl, or give them all back. */
static int take_clusters(struct ctl *c, uint32_t n)
{
    struct pool *p = c->p;
    c->ncl = c->idx = 0;
    if (n > p->total_clusters - p->nused)
        return -ENOSPC;
    for (uint32_t i = 0; i < n; i++)
        c->cl[c->ncl++] = (uint32_t)pool_cluster_take(p);
    return 0;
}

static void put_clusters(struct ctl *c)
{
    for (uint32_t i = 0; i < c->ncl; i++)
        pool_cluster_put(c->p, c->cl[i]);
    c->ncl = 0;
}

static bool ctl_pool_failed(struct ctl *c)
{
    if (!c->p->failed)
        return false;
    ctl_fail(c, -EIO, "pool '%s' is failed (%s): re-import it (PUT the pool again)", c->p->name,
             c->p->fail_reason[0] ? c->p->fail_reason : "metadata write error");
    return true;
}

/* Ends the control operation: the last thing to touch c or the replica. */
static void commit_failed(struct ctl *c, int rc, const char *doing)
{
    ctl_fail(c, rc, "pool '%s': metadata commit failed %s replica '%s'", c->p->name, doing, c->r->bdev.name);
}

/* Take n clusters for a thick replica and zero them, then c->after. */
static void zero_new_clusters(struct ctl *c, uint32_t n, const char *what, void (*after)(struct ctl *c, int rc))
{
    if (take_clusters(c, n) < 0) {
        free_bytes_msg(c, what, n);
        return;
    }
    c->run_type = DP_IO_WRITE_ZEROES;
    c->after = after;
    runs_next(c);
}

static bool zeroing_failed(struct ctl *c, int rc)
{
    if (rc >= 0)
        return false;
    put_clusters(c);
    ctl_fail(c, rc, "pool '%s': zeroing clusters for replica '%s': %s", c->p->name, c->r->bdev.name, strerror(-rc));
    return true;
}

/* replica create */

static void rcreate_committed(struct pool_waiter *w, int rc)
{
    struct ctl *c = container_of(w, struct ctl, w);
    if (rc < 0) {
        table_remove(c->p, c->r); /* before the control thread wakes and frees it */
        commit_failed(c, rc, "creating");
        return;
    }
    ctl_done(c, 0);
}

static void rcreate_zeroed(struct ctl *c, int rc)
{
    struct replica *r = c->r;
    if (zeroing_failed(c, rc))
        return;
    if (!r->thin) {
        for (uint32_t l = 0; l < r->ncl; l++)
            r->map[l] = c->cl[l];
        r->nalloc = r->ncl;
    }
    table_add(c->p, r);
    c->w.cb = rcreate_committed;
    pool_commit(c->p, &c->w);
}

static void rcreate_msg(void *arg)
{
    struct ctl *c = arg;
    struct pool *p = c->p;
    if (ctl_pool_failed(c))
        return;
    if (p->nreplicas >= PF_MAX_REPLICAS) {
        ctl_fail(c, -ENOSPC, "pool '%s': holds the maximum of %u replicas", p->name, PF_MAX_REPLICAS);
        return;
    }
    zero_new_clusters(c, c->r->thin ? 0 : c->r->ncl, "thick replica", rcreate_zeroed);
}

/* replica resize */

static void rresize_committed(struct pool_waiter *w, int rc)
{
    struct ctl *c = container_of(w, struct ctl, w);
    if (rc < 0) {
        commit_failed(c, rc, "resizing");
        return;
    }
    /* The new range becomes addressable only once it is durable. */
    c->r->bdev.size = c->r->size;
    ctl_done(c, 0);
}

static void rresize_zeroed(struct ctl *c, int rc)
{
    struct replica *r = c->r;
    if (zeroing_failed(c, rc))
        return;
    uint32_t *m = c->newmap;
    memcpy(m, r->map, (size_t)r->ncl * 4);
    for (uint32_t l = r->ncl; l < c->newncl; l++)
        m[l] = r->thin ? MAP_UNALLOC : c->cl[l - r->ncl];
    if (!r->thin)
        r->nalloc += c->newncl - r->ncl;
    c->newmap = r->map; /* the control thread frees the old one */
    r->map = m;
    r->ncl = c->newncl;
    r->size = c->size;
    c->w.cb = rresize_committed;
    pool_commit(c->p, &c->w);
}

static void rresize_msg(void *arg)
{
    struct ctl *c = arg;
    struct replica *r = c->r;
    if (ctl_pool_failed(c))
        return;
    zero_new_clusters(c, r->thin ? 0 : c->newncl - r->ncl, "growing the thick replica", rresize_zeroed);
}

/* replica destroy */

static void rdestroy_discarded(struct ctl *c, int rc)
{
    put_clusters(c);
    ctl_done(c, 0);
}

static void rdestroy_committed(struct pool_waiter *w, int rc)
{
    struct ctl *c = container_of(w, struct ctl, w);
    struct replica *r = c->r;
    if (rc < 0) {
        commit_failed(c, rc, "destroying");
        return;
    }
    /* Durably gone: discard its clusters (space back to the base), then free them. */
    c->ncl = c->idx = 0;
    for (uint32_t l = 0; l < r->ncl; l++)
        if (r->map[l] != MAP_UNALLOC) {
            c->cl[c->ncl++] = r->map[l] & MAP_PCL_MASK;
            r->map[l] = MAP_UNALLOC;
        }
    r->nalloc = 0;
    c->run_type = DP_IO_UNMAP;
    c->after = rdestroy_discarded;
    runs_next(c);
}

static void rdestroy_msg(void *arg)
{
    struct ctl *c = arg;
    c->r->dead = true;
    table_remove(c->p, c->r);
    c->w.cb = rdestroy_committed;
    pool_commit(c->p, &c->w);
}

/* stats */

static void pool_fill_info(struct pool *p, dp_pool_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p->name);
    memcpy(out->uuid, p->uuid_str, sizeof out->uuid);
    out->ndisks = p->ndisks;
    out->replicas = p->nreplicas;
    out->cluster_size = p->cluster_size;
    out->capacity_bytes = p->total_clusters << p->cl_shift;
    out->used_bytes = p->nused << p->cl_shift;
    out->state = p->failed ? DP_POOL_FAILED : DP_POOL_ONLINE;
    if (p->failed)
        snprintf(out->reason, sizeof out->reason, "%s", p->fail_reason[0] ? p->fail_reason : "metadata write failed");
}

static int replica_open_count(struct replica *r)
{
    int refs = __atomic_load_n(&r->bdev.refs, __ATOMIC_SEQ_CST);
    return refs - (r->registered ? 1 : 0);
}

static void replica_fill_info(struct replica *r, dp_replica_info *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->uuid, r->bdev.name, sizeof out->uuid);
    snprintf(out->pool, sizeof out->pool, "%s", r->pool ? r->pool->name : "");
    out->size_bytes = r->size;
    out->allocated_bytes = r->nalloc << (r->pool ? r->pool->cl_shift : 0);
    out->thin = r->thin;
    int open = replica_open_count(r);
    out->open_count = open > 0 ? (uint32_t)open : 0;
}

static void pool_stat_msg(void *arg)
{
    struct ctl *c = arg;
    pool_fill_info(c->p, c->arg);
    ctl_done(c, 0);
}

static void replica_stat_msg(void *arg)
{
    struct ctl *c = arg;
    replica_fill_info(c->r, c->arg);
    ctl_done(c, 0);
}

/* ---- pool lifecycle (control threads) ----------------------------------- */

static struct pool *pool_find(const char *name)
{
    for (struct pool *p = g_pools; p; p = p->next)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

/* Under g_mu: the pool called name, or NULL with *ret and the error set. */
static struct pool *pool_lookup(const char *name, int *ret)
{
    *ret = check_name("pool name", name);
    if (*ret < 0)
        return NULL;
    struct pool *p = pool_find(name);
    if (!p) {
        dp_set_error("pool '%s' not found", name);
        *ret = -ENOENT;
    }
    return p;
}

static struct replica *replica_find(const uint8_t uuid[16])
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

static void replica_free(struct replica *r)
{
    free(r->map);
    free(r);
}

/* The bdev layer calls this when the last reference goes. */
void lvol_bdev_destroy(struct dp_bdev *bdev)
{
    replica_free(bdev->ctx);
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
    dp_buf_free(p->slot_buf);
    free(p);
}

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
static int open_disks(struct pool *p, const char *what, const char *const *disks, uint32_t ndisks)
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
            error_wrap("pool '%s': %s disk '%s'", p->name, what, disks[i]);
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
            error_wrap("pool '%s': %s disk '%s'", p->name, what, disks[i]);
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

static int read_label(struct dp_bdev *b, uint8_t *buf, struct pf_label *l, char *err, size_t errlen)
{
    int ret = dp_bdev_rw_sync(b, DP_IO_READ, buf, 0, PF_LABEL_SIZE);
    if (ret < 0) {
        snprintf(err, errlen, "%s", dp_get_error());
        return ret;
    }
    return pf_label_decode(buf, l, err, errlen);
}

/*
 * A disk that carries a nexus child label holds a volume's data (a child
 * whose nexus is down, or another agent's): a pool must not format it.
 * Labels of a nexus that released its children (DELETE) do not count.
 */
static int refuse_nexus_child(struct pool *p, struct dp_bdev *b, const char *disk)
{
    uint8_t *two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!two) {
        dp_set_error("pool '%s': out of memory", p->name);
        return -ENOMEM;
    }
    struct nx_label l;
    char why[128];
    int rc = b->size >= 2 * NX_LABEL_BLOCK ? dp_bdev_rw_sync(b, DP_IO_READ, two, 0, 2 * NX_LABEL_BLOCK) : -1;
    if (rc == 0 && nx_label_read_slots(two, &l, why, sizeof why) == 0 && !(l.flags & NX_LABEL_RELEASED)) {
        char u[37];
        dp_uuid_format(l.nexus_uuid, u);
        dp_set_error("pool '%s': disk '%s' holds the label of a child of nexus '%s' (its data would be "
                     "destroyed); remove it from that nexus, or wipe its first 8 KiB if the volume is gone",
                     p->name, disk, u);
        rc = -EBUSY;
    } else {
        rc = 0;
    }
    dp_buf_free(two);
    return rc;
}

/* Allocate the in-memory state sized for p->total_clusters. */
static int pool_alloc_state(struct pool *p)
{
    uint64_t words = bm_words(p->total_clusters);
    p->used = calloc(words, 8);
    p->freeing = calloc(words, 8);
    p->committing = calloc(words, 8);
    p->released = calloc(words, 8);
    p->slot_buf = dp_buf_alloc(p->slot_size);
    p->cap = PF_MAX_REPLICAS;
    p->replicas = calloc(p->cap, sizeof *p->replicas);
    if (!p->used || !p->freeing || !p->committing || !p->released || !p->slot_buf || !p->replicas ||
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

static struct replica *replica_new(struct pool *p, const uint8_t uuid[16], uint64_t size, bool thin)
{
    struct replica *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ncl = (uint32_t)((size + p->cluster_size - 1) >> p->cl_shift);
    r->map = malloc((size_t)(r->ncl ? r->ncl : 1) * 4);
    if (!r->map) {
        free(r);
        return NULL;
    }
    memset(r->map, 0xff, (size_t)r->ncl * 4);
    r->pool = p;
    memcpy(r->uuid, uuid, 16);
    r->size = size;
    r->thin = thin;
    dp_uuid_format(uuid, r->bdev.name);
    r->bdev.size = size;
    r->bdev.block_size = p->block_size;
    r->bdev.thin = thin;
    r->bdev.ops = &lvol_ops;
    r->bdev.ctx = r;
    r->bdev.reactor = p->reactor;
    return r;
}

static int replica_register(struct replica *r)
{
    int ret = dp_bdev_register(&r->bdev);
    if (ret == 0)
        r->registered = true;
    return ret;
}

DP_EXPORT int dp_pool_create(const char *name, const char *const *disks, uint32_t ndisks, uint64_t cluster_size,
                             char *uuid_out)
{
    dp_clear_error();
    int ret = check_name("pool name", name);
    if (ret < 0)
        return ret;
    if (cluster_size == 0)
        cluster_size = PF_DEFAULT_CLUSTER;
    if (cluster_size < PF_MIN_CLUSTER || cluster_size > PF_MAX_CLUSTER || (cluster_size & (cluster_size - 1))) {
        dp_set_error("pool '%s': cluster_size %" PRIu64 " must be a power of two from %u to %u bytes", name,
                     cluster_size, PF_MIN_CLUSTER, PF_MAX_CLUSTER);
        return -EINVAL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (!p) {
        dp_set_error("pool '%s': out of memory", name);
        return -ENOMEM;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->cluster_size = cluster_size;
    uint8_t *buf = dp_buf_alloc(PF_LABEL_SIZE);
    pthread_mutex_lock(&g_mu);
    if (pool_find(name)) {
        dp_set_error("pool '%s' already exists", name);
        ret = -EEXIST;
        goto fail;
    }
    ret = open_disks(p, "create:", disks, ndisks);
    if (ret < 0)
        goto fail;
    for (uint32_t i = 0; i < ndisks; i++) {
        struct pf_label l;
        char err[256];
        ret = read_label(p->disks[i].bdev, buf, &l, err, sizeof err);
        if (ret == 0) {
            char u[37];
            dp_uuid_format(l.pool_uuid, u);
            dp_set_error("pool '%s': disk '%s' already belongs to pool '%s' (uuid %s)", name, disks[i], l.pool_name, u);
            ret = -EEXIST;
            goto fail;
        }
        if (ret == -EINVAL) {
            dp_set_error("pool '%s': disk '%s' carries a damaged pool label (%s); wipe it first", name, disks[i], err);
            ret = -EEXIST;
            goto fail;
        }
        if (ret < 0) {
            dp_set_error("pool '%s': disk '%s': %s", name, disks[i], err);
            goto fail;
        }
        ret = refuse_nexus_child(p, p->disks[i].bdev, disks[i]);
        if (ret < 0)
            goto fail;
    }

    /* Geometry. The slot is sized for an upper bound of the cluster count
     * (disk 0's data start assumed minimal), then disk 0 loses what the
     * slots take. */
    uint64_t cs = cluster_size, bound = 0;
    for (uint32_t i = 0; i < ndisks; i++) {
        uint64_t sz = p->disks[i].bdev->size;
        if (sz > PF_DATA_ALIGN)
            bound += (sz - PF_DATA_ALIGN) / cs;
    }
    if (bound > PF_MAX_CLUSTERS)
        bound = PF_MAX_CLUSTERS;
    p->slot_size = pf_meta_slot_size(bound);
    uint64_t total = 0;
    for (uint32_t i = 0; i < ndisks; i++) {
        struct pool_disk *d = &p->disks[i];
        uint64_t sz = d->bdev->size;
        d->data_start = pf_data_start(i, p->slot_size);
        d->nclusters = sz > d->data_start ? (sz - d->data_start) / cs : 0;
        if (d->nclusters == 0) {
            dp_set_error("pool '%s': disk '%s' is too small: %" PRIu64 " bytes, it needs at least %" PRIu64
                         " (metadata and one %" PRIu64 "-byte cluster)",
                         name, d->uri, sz, d->data_start + cs, cs);
            ret = -EINVAL;
            goto fail;
        }
        d->first_cluster = total;
        total += d->nclusters;
        dp_uuid_generate(d->uuid);
    }
    if (total > PF_MAX_CLUSTERS) {
        dp_set_error("pool '%s': %" PRIu64 " clusters exceed the limit of %u; use a larger cluster_size", name, total,
                     PF_MAX_CLUSTERS);
        ret = -EINVAL;
        goto fail;
    }
    p->total_clusters = total;
    dp_uuid_generate(p->uuid);
    dp_uuid_format(p->uuid, p->uuid_str);
    ret = pool_alloc_state(p);
    if (ret < 0)
        goto fail;

    /* On disk: slot A (seq 1, empty), slot B cleared, then the labels,
     * disk 0's last, each flushed: a disk without label is no member yet. */
    p->seq = 0;
    uint64_t used = meta_serialize(p);
    struct dp_bdev *b0 = p->disks[0].bdev;
    ret = dp_bdev_rw_sync(b0, DP_IO_WRITE, p->slot_buf, PF_META_OFFSET, (used + 4095) & ~4095ull);
    memset(buf, 0, PF_LABEL_SIZE);
    if (ret == 0)
        ret = dp_bdev_rw_sync(b0, DP_IO_WRITE, buf, PF_META_OFFSET + p->slot_size, PF_LABEL_SIZE);
    if (ret == 0)
        ret = dp_bdev_rw_sync(b0, DP_IO_FLUSH, NULL, 0, 0);
    p->seq = 1;
    p->cur_slot = 0;
    for (uint32_t k = 0; ret == 0 && k < ndisks; k++) {
        uint32_t i = ndisks - 1 - k;
        struct pool_disk *d = &p->disks[i];
        struct pf_label l = { .version = PF_VERSION,
                              .disk_index = i,
                              .ndisks = ndisks,
                              .cluster_size = cs,
                              .disk_size = d->bdev->size,
                              .data_start = d->data_start,
                              .data_clusters = d->nclusters,
                              .first_cluster = d->first_cluster,
                              .total_clusters = total,
                              .meta_offset = PF_META_OFFSET,
                              .meta_slot_size = p->slot_size,
                              .create_time = (uint64_t)time(NULL) };
        memcpy(l.pool_uuid, p->uuid, 16);
        memcpy(l.disk_uuid, d->uuid, 16);
        snprintf(l.pool_name, sizeof l.pool_name, "%s", name);
        for (uint32_t j = 0; j < ndisks; j++)
            memcpy(l.members[j], p->disks[j].uuid, 16);
        pf_label_encode(&l, buf);
        ret = dp_bdev_rw_sync(d->bdev, DP_IO_WRITE, buf, 0, PF_LABEL_SIZE);
        if (ret == 0)
            ret = dp_bdev_rw_sync(d->bdev, DP_IO_FLUSH, NULL, 0, 0);
    }
    if (ret < 0) {
        error_wrap("pool '%s': writing labels and metadata", name);
        goto fail;
    }
    p->next = g_pools;
    g_pools = p;
    pthread_mutex_unlock(&g_mu);
    dp_buf_free(buf);
    if (uuid_out)
        memcpy(uuid_out, p->uuid_str, DP_UUID_STR_LEN);
    return 0;
fail:
    pthread_mutex_unlock(&g_mu);
    dp_buf_free(buf);
    pool_free(p);
    return ret;
}

/* Rebuild the replicas and the cluster bitmap from a slot (pf_meta_walk
 * validates it: hostile input). */
static int load_rec(void *ctx, const struct pf_replica_rec *rec, uint32_t ncl)
{
    struct pool *p = ctx;
    struct replica *r = replica_new(p, rec->uuid, rec->size, rec->flags & PF_REPLICA_THIN);
    if (!r)
        return -ENOMEM;
    table_add(p, r);
    return 0;
}

static void load_pair(void *ctx, uint32_t l, uint32_t pc)
{
    struct pool *p = ctx;
    struct replica *r = p->replicas[p->nreplicas - 1];
    r->map[l] = pc;
    r->nalloc++;
    p->nused++;
}

static int meta_load(struct pool *p, const uint8_t *s, const struct pf_meta_hdr *h, char *err, size_t errlen)
{
    const struct pf_geom g = { p->cluster_size, p->block_size, p->total_clusters };
    const struct pf_meta_visit v = { load_rec, load_pair, p };
    return pf_meta_walk(s, h, &g, p->used, &v, err, errlen);
}

DP_EXPORT int dp_pool_import(const char *name, const char *const *disks, uint32_t ndisks, char *uuid_out)
{
    dp_clear_error();
    int ret = check_name("pool name", name);
    if (ret < 0)
        return ret;
    struct pool *p = calloc(1, sizeof *p);
    struct pf_label *lab = calloc(PF_MAX_DISKS, sizeof *lab);
    uint8_t *buf = dp_buf_alloc(PF_LABEL_SIZE), *slot_b = NULL;
    if (!p || !lab || !buf) {
        free(p);
        free(lab);
        dp_buf_free(buf);
        dp_set_error("pool '%s': out of memory", name);
        return -ENOMEM;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    pthread_mutex_lock(&g_mu);
    if (pool_find(name)) {
        dp_set_error("pool '%s' already exists (imported)", name);
        ret = -EEXIST;
        goto fail;
    }
    ret = open_disks(p, "import:", disks, ndisks);
    if (ret < 0)
        goto fail;
    int st[PF_MAX_DISKS];
    char errs[PF_MAX_DISKS][256];
    int ref = -1;
    for (uint32_t i = 0; i < ndisks; i++) {
        st[i] = read_label(p->disks[i].bdev, buf, &lab[i], errs[i], sizeof errs[i]);
        if (st[i] == 0 && ref < 0 && !strcmp(lab[i].pool_name, name))
            ref = (int)i;
    }
    char ru[37], u[37];
    for (uint32_t i = 0; i < ndisks; i++) {
        const char *uri = p->disks[i].uri;
        if (st[i] == 1) {
            dp_set_error("pool '%s': disk '%s' carries no pool label (not a member of any pool)", name, uri);
            ret = -EINVAL;
            goto fail;
        }
        if (st[i] < 0) {
            dp_set_error("pool '%s': disk '%s': %s", name, uri, errs[i]);
            ret = st[i] == -EINVAL ? -EINVAL : st[i];
            goto fail;
        }
        if (ref < 0) {
            dp_set_error("pool '%s': disk '%s' belongs to pool '%s', not to pool '%s'", name, uri, lab[i].pool_name,
                         name);
            ret = -EINVAL;
            goto fail;
        }
        struct pf_label *l = &lab[i], *r = &lab[ref];
        dp_uuid_format(r->pool_uuid, ru);
        dp_uuid_format(l->pool_uuid, u);
        if (memcmp(l->pool_uuid, r->pool_uuid, 16)) {
            dp_set_error("pool '%s': disk '%s' belongs to another pool '%s' (uuid %s), not to this one (uuid %s)", name,
                         uri, l->pool_name, u, ru);
            ret = -EINVAL;
            goto fail;
        }
        if (l->ndisks != r->ndisks || l->cluster_size != r->cluster_size || l->total_clusters != r->total_clusters ||
            l->meta_slot_size != r->meta_slot_size || memcmp(l->members, r->members, sizeof l->members) ||
            strcmp(l->pool_name, r->pool_name)) {
            dp_set_error("pool '%s': disk '%s': its label disagrees with disk '%s' about the pool's geometry", name,
                         uri, p->disks[ref].uri);
            ret = -EINVAL;
            goto fail;
        }
        for (uint32_t j = 0; j < i; j++)
            if (lab[j].disk_index == l->disk_index) {
                dp_set_error("pool '%s': disks '%s' and '%s' both claim to be member %u (copies of one disk?)", name,
                             p->disks[j].uri, uri, l->disk_index);
                ret = -EINVAL;
                goto fail;
            }
    }
    uint32_t want = lab[ref].ndisks;
    if (ndisks < want) {
        for (uint32_t k = 0; k < want; k++) {
            bool have = false;
            for (uint32_t i = 0; i < ndisks; i++)
                have |= lab[i].disk_index == k;
            if (!have) {
                dp_uuid_format(lab[ref].members[k], u);
                dp_set_error("pool '%s': member disk %u of %u (disk uuid %s) is missing", name, k, want, u);
                ret = -ENODEV;
                goto fail;
            }
        }
    }
    /* Order the disks by member index. */
    struct pool_disk sorted[PF_MAX_DISKS];
    for (uint32_t i = 0; i < ndisks; i++)
        sorted[lab[i].disk_index] = p->disks[i];
    uint64_t next = 0;
    for (uint32_t k = 0; k < want; k++) {
        struct pf_label *l = NULL;
        for (uint32_t i = 0; i < ndisks; i++)
            if (lab[i].disk_index == k)
                l = &lab[i];
        struct pool_disk *d = &sorted[k];
        if (l->first_cluster != next) {
            dp_set_error("pool '%s': disk '%s': cluster range does not follow member %u", name, d->uri, k - 1);
            ret = -EINVAL;
            goto fail;
        }
        if (d->bdev->size < l->data_start + (l->data_clusters << __builtin_ctzll(l->cluster_size))) {
            dp_set_error("pool '%s': disk '%s' is %" PRIu64 " bytes, smaller than the pool needs (%" PRIu64 ")", name,
                         d->uri, d->bdev->size, l->data_start + l->data_clusters * l->cluster_size);
            ret = -EINVAL;
            goto fail;
        }
        memcpy(d->uuid, l->disk_uuid, 16);
        d->data_start = l->data_start;
        d->first_cluster = l->first_cluster;
        d->nclusters = l->data_clusters;
        next += l->data_clusters;
    }
    if (next != lab[ref].total_clusters) {
        dp_set_error("pool '%s': member cluster counts do not add up to the pool's %" PRIu64, name,
                     lab[ref].total_clusters);
        ret = -EINVAL;
        goto fail;
    }
    memcpy(p->disks, sorted, sizeof(struct pool_disk) * want);
    memcpy(p->uuid, lab[ref].pool_uuid, 16);
    dp_uuid_format(p->uuid, p->uuid_str);
    p->cluster_size = lab[ref].cluster_size;
    p->total_clusters = lab[ref].total_clusters;
    p->slot_size = lab[ref].meta_slot_size;
    ret = pool_alloc_state(p);
    if (ret < 0)
        goto fail;

    /* Both slots; the valid one with the higher sequence wins. */
    slot_b = dp_buf_alloc(p->slot_size);
    if (!slot_b) {
        dp_set_error("pool '%s': out of memory", name);
        ret = -ENOMEM;
        goto fail;
    }
    uint8_t *slots[2] = { p->slot_buf, slot_b };
    struct pf_meta_hdr h[2];
    int ok[2];
    char serr[2][256];
    for (int k = 0; k < 2; k++) {
        ret = dp_bdev_rw_sync(p->disks[0].bdev, DP_IO_READ, slots[k], PF_META_OFFSET + (uint64_t)k * p->slot_size,
                              p->slot_size);
        if (ret < 0) {
            error_wrap("pool '%s': reading metadata slot %c", name, 'A' + k);
            goto fail;
        }
        ok[k] = pf_meta_check(slots[k], p->slot_size, p->uuid, &h[k], serr[k], sizeof serr[k]) == 0;
    }
    if (!ok[0] && !ok[1]) {
        dp_set_error("pool '%s': no valid metadata on disk '%s' (slot A: %s; slot B: %s)", name, p->disks[0].uri,
                     serr[0], serr[1]);
        ret = -EIO;
        goto fail;
    }
    int cur = ok[0] && (!ok[1] || h[0].seq > h[1].seq) ? 0 : 1;
    char lerr[256];
    ret = meta_load(p, slots[cur], &h[cur], lerr, sizeof lerr);
    if (ret < 0) {
        dp_set_error("pool '%s': metadata slot %c (seq %" PRIu64 ") is inconsistent: %s", name, 'A' + cur, h[cur].seq,
                     lerr);
        goto fail;
    }
    p->seq = h[cur].seq;
    p->cur_slot = cur;
    for (uint32_t i = 0; i < p->nreplicas; i++) {
        ret = replica_register(p->replicas[i]);
        if (ret < 0) {
            error_wrap("pool '%s': replica %s", name, p->replicas[i]->bdev.name);
            goto fail;
        }
    }
    p->next = g_pools;
    g_pools = p;
    pthread_mutex_unlock(&g_mu);
    free(lab);
    dp_buf_free(buf);
    dp_buf_free(slot_b);
    if (uuid_out)
        memcpy(uuid_out, p->uuid_str, DP_UUID_STR_LEN);
    return 0;
fail:
    pthread_mutex_unlock(&g_mu);
    free(lab);
    dp_buf_free(buf);
    dp_buf_free(slot_b);
    pool_free(p);
    return ret;
}

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
        dp_set_error("pool '%s' still holds %u replica%s; destroy them first", name, p->nreplicas,
                     p->nreplicas == 1 ? "" : "s");
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
        error_wrap("pool '%s': wiping labels", name);
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
        struct ctl c = { .arg = out };
        ret = ctl_run(&c, p, pool_stat_msg);
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
    ret = read_label(b, buf, &l, err, sizeof err);
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

/* ---- replicas (control threads) ----------------------------------------- */

static int check_size(struct pool *p, const char *uuid, uint64_t size)
{
    if (size == 0 || size % p->block_size) {
        dp_set_error("replica %s: size_bytes %" PRIu64 " must be a positive multiple of %u", uuid, size, p->block_size);
        return -EINVAL;
    }
    uint64_t max = (uint64_t)PF_MAX_REPLICA_CLUSTERS << p->cl_shift;
    if (size > max) {
        dp_set_error("replica %s: size_bytes %" PRIu64 " exceeds the maximum of %" PRIu64
                     " bytes for pool '%s' (cluster size %" PRIu64 ")",
                     uuid, size, max, p->name, p->cluster_size);
        return -EINVAL;
    }
    return 0;
}

DP_EXPORT int dp_replica_create(const char *pool, const char *uuid, uint64_t size_bytes, uint32_t thin)
{
    dp_clear_error();
    uint8_t u[16];
    int ret = check_name("pool name", pool);
    if (ret < 0 || (ret = check_uuid("replica uuid", uuid, u)) < 0)
        return ret;
    if (dp_uuid_is_nil(u)) {
        dp_set_error("replica uuid '%s': the nil uuid is not allowed", uuid);
        return -EINVAL;
    }
    pthread_mutex_lock(&g_mu);
    struct pool *p = pool_lookup(pool, &ret);
    struct dp_bdev *other;
    char us[37];
    dp_uuid_format(u, us);
    if (!p || (ret = check_size(p, us, size_bytes)) < 0) {
    } else if (replica_find(u)) {
        dp_set_error("replica %s already exists", us);
        ret = -EEXIST;
    } else if ((other = dp_bdev_get(us))) {
        dp_bdev_put(other);
        dp_set_error("replica %s: a device of that name already exists", us);
        ret = -EEXIST;
    } else {
        struct replica *r = replica_new(p, u, size_bytes, thin != 0);
        struct ctl c = { .r = r };
        c.cl = r && !thin ? malloc((size_t)(r->ncl ? r->ncl : 1) * 4) : NULL;
        if (!r || (!thin && !c.cl)) {
            dp_set_error("replica %s: out of memory", us);
            ret = -ENOMEM;
            if (r)
                replica_free(r);
        } else {
            ret = ctl_run(&c, p, rcreate_msg);
            if (ret == 0 && (ret = replica_register(r)) < 0) {
                /* Cannot happen (name checked under g_mu), but never leak. */
                dp_set_error("replica %s: registering the device failed", us);
            } else if (ret < 0) {
                replica_free(r);
            }
        }
        free(c.cl);
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

static struct replica *replica_lookup(const char *uuid, int *ret)
{
    uint8_t u[16];
    *ret = check_uuid("replica uuid", uuid, u);
    if (*ret < 0)
        return NULL;
    struct replica *r = replica_find(u);
    if (!r) {
        char us[37];
        dp_uuid_format(u, us);
        dp_set_error("replica %s not found", us);
        *ret = -ENOENT;
    }
    return r;
}

DP_EXPORT int dp_replica_destroy(const char *uuid)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct replica *r = replica_lookup(uuid, &ret);
    if (r) {
        int open = replica_open_count(r);
        if (open > 0) {
            dp_set_error("replica %s is open (%d handle%s); close it first", r->bdev.name, open, open == 1 ? "" : "s");
            ret = -EBUSY;
        } else {
            struct ctl c = { .r = r };
            c.cl = malloc((size_t)(r->ncl ? r->ncl : 1) * 4);
            if (!c.cl) {
                dp_set_error("replica %s: out of memory", r->bdev.name);
                ret = -ENOMEM;
            } else {
                ret = ctl_run(&c, r->pool, rdestroy_msg);
                free(c.cl);
                /* Gone from the table either way (a failed commit fails the pool). */
                r->pool = NULL;
                dp_bdev_unregister(&r->bdev);
            }
        }
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_replica_resize(const char *uuid, uint64_t size_bytes)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct replica *r = replica_lookup(uuid, &ret);
    if (r && (ret = check_size(r->pool, r->bdev.name, size_bytes)) == 0) {
        if (size_bytes < r->size) {
            dp_set_error("replica %s: size_bytes %" PRIu64 " is smaller than the current %" PRIu64
                         " (replicas only grow)",
                         r->bdev.name, size_bytes, r->size);
            ret = -EINVAL;
        } else if (size_bytes > r->size) {
            struct pool *p = r->pool;
            struct ctl c = { .r = r, .size = size_bytes };
            c.newncl = (uint32_t)((size_bytes + p->cluster_size - 1) >> p->cl_shift);
            c.newmap = malloc((size_t)c.newncl * 4);
            c.cl = malloc((size_t)(c.newncl - r->ncl + 1) * 4);
            if (!c.newmap || !c.cl) {
                dp_set_error("replica %s: out of memory", r->bdev.name);
                ret = -ENOMEM;
            } else {
                ret = ctl_run(&c, p, rresize_msg);
            }
            free(c.newmap); /* the old map on success, the unused new one on failure */
            free(c.cl);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_replica_stat(const char *uuid, dp_replica_info *out)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct replica *r = replica_lookup(uuid, &ret);
    if (r) {
        struct ctl c = { .r = r, .arg = out };
        ret = ctl_run(&c, r->pool, replica_stat_msg);
    }
    pthread_mutex_unlock(&g_mu);
    return ret;
}

DP_EXPORT int dp_pool_replica_at(const char *pool, uint32_t index, dp_replica_info *out)
{
    dp_clear_error();
    int ret;
    pthread_mutex_lock(&g_mu);
    struct pool *p = pool_lookup(pool, &ret);
    if (p && index >= p->nreplicas) {
        ret = -ENOENT;
    } else if (p) {
        struct ctl c = { .r = p->replicas[index], .arg = out };
        ret = ctl_run(&c, p, replica_stat_msg);
    }
    pthread_mutex_unlock(&g_mu);
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
