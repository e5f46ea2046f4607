/*
 * replica.c - replica control operations: create, resize, destroy, stat and
 * list. The control thread validates under the registry lock and allocates;
 * the pool's reactor takes the clusters, zeroes (thick) or discards them in
 * contiguous runs, and commits the metadata (commit.c) before the control
 * thread wakes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/export.h"
#include "datapath.h"
#include "pool/pool.h"

int check_uuid(const char *what, const char *s, uint8_t out[16])
{
    if (!s || dp_uuid_parse(s, out) < 0) {
        dp_set_error("%s '%.64s': not a uuid (8-4-4-4-12 hex digits)", what, s ? s : "(null)");
        return -EINVAL;
    }
    return 0;
}

/* ---- the replica table and its clusters (reactor) ----------------------- */

static void runs_next(struct pool_ctl *c);

static void runs_done(struct base_io *b, int status)
{
    struct pool_ctl *c = container_of(b, struct pool_ctl, b);
    if (status < 0 && c->run_type == DP_IO_WRITE_ZEROES) {
        c->after(c, status);
        return;
    }
    /* Discards are advisory: a base without them just keeps the bytes. */
    runs_next(c);
}

/* Zero or discard c->cl[] in runs of physically contiguous clusters. */
static void runs_next(struct pool_ctl *c)
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
    pool_base_prep(&c->b, c->run_type, off, (uint64_t)n << p->cl_shift, NULL, 0, runs_done);
    pool_base_submit(p, d, &c->b);
}

void pool_runs_start(struct pool_ctl *c)
{
    c->idx = 0;
    runs_next(c);
}

void pool_table_add(struct pool *p, struct replica *r)
{
    p->replicas[p->nreplicas++] = r;
}

void pool_table_remove(struct pool *p, struct replica *r)
{
    for (uint32_t i = 0; i < p->nreplicas; i++)
        if (p->replicas[i] == r) {
            memmove(&p->replicas[i], &p->replicas[i + 1], (p->nreplicas - i - 1) * sizeof r);
            p->nreplicas--;
            return;
        }
}

static void free_bytes_msg(struct pool_ctl *c, const char *what, uint64_t need)
{
    struct pool *p = c->p;
    pool_ctl_fail(c, -ENOSPC,
                  "pool '%s': not enough free space for %s: needs %" PRIu64 " bytes, %" PRIu64 " bytes free", p->name,
                  what, need << p->cl_shift, (p->total_clusters - p->nused) << p->cl_shift);
}

/* Take n clusters into c->cl, or give them all back. */
static int take_clusters(struct pool_ctl *c, uint32_t n)
{
    struct pool *p = c->p;
    c->ncl = c->idx = 0;
    if (n > p->total_clusters - p->nused)
        return -ENOSPC;
    for (uint32_t i = 0; i < n; i++)
        c->cl[c->ncl++] = (uint32_t)pool_cluster_take(p);
    return 0;
}

static void put_clusters(struct pool_ctl *c)
{
    for (uint32_t i = 0; i < c->ncl; i++)
        pool_cluster_put(c->p, c->cl[i]);
    c->ncl = 0;
}

static bool ctl_pool_failed(struct pool_ctl *c)
{
    if (!c->p->failed)
        return false;
    pool_ctl_fail(c, -EIO, "pool '%s' is failed (%s): re-import it (PUT the pool again)", c->p->name,
                  c->p->fail_reason[0] ? c->p->fail_reason : "metadata write error");
    return true;
}

/* Ends the control operation: the last thing to touch c or the replica. */
static void commit_failed(struct pool_ctl *c, int rc, const char *doing)
{
    pool_ctl_fail(c, rc, "pool '%s': metadata commit failed %s replica '%s'", c->p->name, doing, c->r->bdev.name);
}

/* Take n clusters for a thick replica and zero them, then c->after. */
static void zero_new_clusters(struct pool_ctl *c, uint32_t n, const char *what,
                              void (*after)(struct pool_ctl *c, int rc))
{
    if (take_clusters(c, n) < 0) {
        free_bytes_msg(c, what, n);
        return;
    }
    c->run_type = DP_IO_WRITE_ZEROES;
    c->after = after;
    runs_next(c);
}

static bool zeroing_failed(struct pool_ctl *c, int rc)
{
    if (rc >= 0)
        return false;
    put_clusters(c);
    pool_ctl_fail(c, rc, "pool '%s': zeroing clusters for replica '%s': %s", c->p->name, c->r->bdev.name,
                  strerror(-rc));
    return true;
}

/* replica create */

static void rcreate_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    if (rc < 0) {
        pool_table_remove(c->p, c->r); /* before the control thread wakes and frees it */
        commit_failed(c, rc, "creating");
        return;
    }
    pool_ctl_done(c, 0);
}

static void rcreate_zeroed(struct pool_ctl *c, int rc)
{
    struct replica *r = c->r;
    if (zeroing_failed(c, rc))
        return;
    if (!r->thin) {
        for (uint32_t l = 0; l < r->ncl; l++)
            r->map[l] = c->cl[l];
        r->nalloc = r->ncl;
    }
    pool_table_add(c->p, r);
    c->w.cb = rcreate_committed;
    pool_commit(c->p, &c->w);
}

static void rcreate_msg(void *arg)
{
    struct pool_ctl *c = arg;
    struct pool *p = c->p;
    if (ctl_pool_failed(c))
        return;
    if (p->nreplicas >= p->max_records) {
        pool_ctl_fail(c, -ENOSPC, "pool '%s': holds the maximum of %u replicas and snapshots", p->name, p->max_records);
        return;
    }
    zero_new_clusters(c, c->r->thin ? 0 : c->r->ncl, "thick replica", rcreate_zeroed);
}

/* replica resize */

static void rresize_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    if (rc < 0) {
        commit_failed(c, rc, "resizing");
        return;
    }
    /* The new range becomes addressable only once it is durable. */
    c->r->bdev.size = c->r->size;
    pool_ctl_done(c, 0);
}

static void rresize_zeroed(struct pool_ctl *c, int rc)
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
    struct pool_ctl *c = arg;
    struct replica *r = c->r;
    if (ctl_pool_failed(c))
        return;
    zero_new_clusters(c, r->thin ? 0 : c->newncl - r->ncl, "growing the thick replica", rresize_zeroed);
}

/* replica destroy */

static void rdestroy_discarded(struct pool_ctl *c, int rc)
{
    put_clusters(c);
    pool_ctl_done(c, 0);
}

static void rdestroy_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
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
    struct pool_ctl *c = arg;
    c->r->dead = true;
    pool_table_remove(c->p, c->r);
    c->w.cb = rdestroy_committed;
    pool_commit(c->p, &c->w);
}

int replica_open_count(struct replica *r)
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
    if (r->parent)
        memcpy(out->parent, r->parent->bdev.name, sizeof out->parent);
    dp_uuid_format(r->incarnation, out->incarnation);
    /* What its snapshot chain holds (shared with other branches or not). */
    for (const struct replica *a = r->parent; a; a = a->parent)
        out->snapshot_bytes += a->nalloc << (r->pool ? r->pool->cl_shift : 0);
}

uint32_t replica_chain_map(const struct replica *r, uint32_t l, const struct replica **owner)
{
    for (const struct replica *a = r; a; a = a->parent)
        if (l < a->ncl && a->map[l] != MAP_UNALLOC) {
            if (owner)
                *owner = a;
            return a->map[l];
        }
    if (owner)
        *owner = NULL;
    return MAP_UNALLOC;
}

bool replica_settled(const struct replica *r)
{
    /* Allocations belong to requests: none in flight, none of those either. */
    return r->inflight == 0;
}

static void replica_stat_msg(void *arg)
{
    struct pool_ctl *c = arg;
    replica_fill_info(c->r, c->arg);
    pool_ctl_done(c, 0);
}

/* ---- replica objects ----------------------------------------------------- */

void replica_free(struct replica *r)
{
    free(r->map);
    free(r);
}

/* The bdev layer calls this when the last reference goes. */
void lvol_bdev_destroy(struct dp_bdev *bdev)
{
    replica_free(bdev->ctx);
}

struct replica *replica_new(struct pool *p, const uint8_t uuid[16], uint64_t size, bool thin)
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
    dp_uuid_generate(r->incarnation);
    r->ctime = (uint64_t)time(NULL);
    dp_uuid_format(uuid, r->bdev.name);
    r->bdev.size = size;
    r->bdev.block_size = p->block_size;
    r->bdev.thin = thin;
    r->bdev.ops = &lvol_ops;
    r->bdev.ctx = r;
    r->bdev.reactor = p->reactor;
    return r;
}

int replica_register(struct replica *r)
{
    int ret = dp_bdev_register(&r->bdev);
    if (ret == 0)
        r->registered = true;
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
    int ret = pool_check_name("pool name", pool);
    if (ret < 0 || (ret = check_uuid("replica uuid", uuid, u)) < 0)
        return ret;
    if (dp_uuid_is_nil(u)) {
        dp_set_error("replica uuid '%s': the nil uuid is not allowed", uuid);
        return -EINVAL;
    }
    pool_lock();
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
        struct pool_ctl c = { .r = r };
        c.cl = r && !thin ? malloc((size_t)(r->ncl ? r->ncl : 1) * 4) : NULL;
        if (!r || (!thin && !c.cl)) {
            dp_set_error("replica %s: out of memory", us);
            ret = -ENOMEM;
            if (r)
                replica_free(r);
        } else {
            ret = pool_ctl_run(&c, p, rcreate_msg);
            if (ret == 0 && (ret = replica_register(r)) < 0) {
                /* Cannot happen (name checked under the lock), but never leak. */
                dp_set_error("replica %s: registering the device failed", us);
            } else if (ret < 0) {
                replica_free(r);
            }
        }
        free(c.cl);
    }
    pool_unlock();
    return ret;
}

struct replica *replica_lookup(const char *uuid, int *ret)
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
    pool_lock();
    struct replica *r = replica_lookup(uuid, &ret);
    if (r && r->ro) {
        dp_set_error("replica %s is a snapshot: destroy it as a snapshot", r->bdev.name);
        ret = -EINVAL;
    } else if (r) {
        int open = replica_open_count(r);
        if (open > 0) {
            dp_set_error("replica %s is open (%d handle%s); close it first", r->bdev.name, open, open == 1 ? "" : "s");
            ret = -EBUSY;
        } else {
            struct pool_ctl c = { .r = r };
            c.cl = malloc((size_t)(r->ncl ? r->ncl : 1) * 4);
            if (!c.cl) {
                dp_set_error("replica %s: out of memory", r->bdev.name);
                ret = -ENOMEM;
            } else {
                ret = pool_ctl_run(&c, r->pool, rdestroy_msg);
                free(c.cl);
                /* Gone from the table either way (a failed commit fails the pool). */
                r->pool = NULL;
                dp_bdev_unregister(&r->bdev);
            }
        }
    }
    pool_unlock();
    return ret;
}

DP_EXPORT int dp_replica_resize(const char *uuid, uint64_t size_bytes)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *r = replica_lookup(uuid, &ret);
    if (r && r->ro) {
        dp_set_error("replica %s is a snapshot: snapshots cannot be resized", r->bdev.name);
        ret = -EROFS;
    } else if (r && (ret = check_size(r->pool, r->bdev.name, size_bytes)) == 0) {
        if (size_bytes < r->size) {
            dp_set_error("replica %s: size_bytes %" PRIu64 " is smaller than the current %" PRIu64
                         " (replicas only grow)",
                         r->bdev.name, size_bytes, r->size);
            ret = -EINVAL;
        } else if (size_bytes > r->size) {
            struct pool *p = r->pool;
            struct pool_ctl c = { .r = r, .size = size_bytes };
            c.newncl = (uint32_t)((size_bytes + p->cluster_size - 1) >> p->cl_shift);
            c.newmap = malloc((size_t)c.newncl * 4);
            c.cl = malloc((size_t)(c.newncl - r->ncl + 1) * 4);
            if (!c.newmap || !c.cl) {
                dp_set_error("replica %s: out of memory", r->bdev.name);
                ret = -ENOMEM;
            } else {
                ret = pool_ctl_run(&c, p, rresize_msg);
            }
            free(c.newmap); /* the old map on success, the unused new one on failure */
            free(c.cl);
        }
    }
    pool_unlock();
    return ret;
}

DP_EXPORT int dp_replica_stat(const char *uuid, dp_replica_info *out)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *r = replica_lookup(uuid, &ret);
    if (r && r->ro) {
        dp_set_error("replica %s not found (it is a snapshot)", r->bdev.name);
        ret = -ENOENT;
    } else if (r) {
        struct pool_ctl c = { .r = r, .arg = out };
        ret = pool_ctl_run(&c, r->pool, replica_stat_msg);
    }
    pool_unlock();
    return ret;
}

DP_EXPORT int dp_pool_replica_at(const char *pool, uint32_t index, dp_replica_info *out)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct pool *p = pool_lookup(pool, &ret);
    struct replica *r = NULL;
    for (uint32_t i = 0, k = 0; p && i < p->nreplicas && !r; i++)
        if (!p->replicas[i]->ro && k++ == index)
            r = p->replicas[i];
    if (p && !r) {
        ret = -ENOENT;
    } else if (p) {
        struct pool_ctl c = { .r = r, .arg = out };
        ret = pool_ctl_run(&c, p, replica_stat_msg);
    }
    pool_unlock();
    return ret;
}
