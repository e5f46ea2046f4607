/*
 * lvol.c - the replica bdev: maps replica I/O onto the pool's clusters.
 *
 * Each parent request takes one preallocated lvol_req of its pool and is
 * processed cluster by cluster (one child request in flight at a time), so
 * the hot path allocates nothing; parents that find no free req wait in a
 * queue linked through their driver[] scratch.
 *
 * Thin allocation: the first write to an unmapped cluster takes a free
 * cluster, zeroes it on the base, and commits the mapping (the commit
 * flushes the zeroes first, then writes and flushes the metadata) before the
 * data write goes out, so the write is acknowledged only after its
 * allocation is durable. Meanwhile the map entry is marked ZEROING, then
 * COMMITTING; other requests touching that cluster park on the replica's
 * wait list and re-run when the allocation settles, so a cluster is
 * allocated once however many first writes race for it. Commits batch:
 * allocations that finish zeroing while a commit is in flight share the
 * next one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

int lvol_reqs_init(struct pool *p)
{
    p->reqs = calloc(POOL_REQS, sizeof *p->reqs);
    if (!p->reqs)
        return -ENOMEM;
    for (uint32_t i = 0; i < POOL_REQS; i++) {
        p->reqs[i].next = p->free_reqs;
        p->free_reqs = &p->reqs[i];
    }
    return 0;
}

void lvol_reqs_free(struct pool *p)
{
    free(p->reqs);
    p->reqs = p->free_reqs = NULL;
}

static void req_run(struct lvol_req *q);
static void req_start(struct pool *p, struct lvol_req *q, struct dp_bdev_io *io);

static inline struct dp_bdev_io *wait_link(struct dp_bdev_io *io)
{
    return (struct dp_bdev_io *)(uintptr_t)io->driver[0];
}

static void req_complete(struct lvol_req *q, int status)
{
    struct replica *r = q->r;
    struct pool *p = r->pool;
    struct dp_bdev_io *io = q->parent;
    q->parent = NULL;
    q->next = p->free_reqs;
    p->free_reqs = q;
    p->inflight--;
    p->inflight_ep[q->ep]--;
    if (q->counted)
        r->inflight--;
    q->counted = false;
    if (p->submit_depth)
        dp_bdev_io_complete_deferred(io, status);
    else
        io->cb(io, status);
    /* The last request of a frozen replica: the control operation runs. */
    if (r->settle_fn && r->inflight == 0) {
        dp_msg_fn fn = r->settle_fn;
        r->settle_fn = NULL;
        fn(r->settle_arg);
    }
    /* A parent waiting for a req gets this one. */
    if (p->pwait_head && p->free_reqs) {
        struct dp_bdev_io *w = p->pwait_head;
        p->pwait_head = wait_link(w);
        if (!p->pwait_head)
            p->pwait_tail = NULL;
        struct lvol_req *n = p->free_reqs;
        p->free_reqs = n->next;
        req_start(p, n, w);
    }
    pool_try_release(p);
}

/* An allocation ended: the requests parked on it run again. */
static void wake_waiters(struct replica *r)
{
    struct lvol_req *q = r->wait_head;
    r->wait_head = r->wait_tail = NULL;
    while (q) {
        struct lvol_req *next = q->next;
        req_run(q);
        q = next;
    }
}

static void wait_alloc(struct replica *r, struct lvol_req *q)
{
    q->next = NULL;
    if (r->wait_tail)
        r->wait_tail->next = q;
    else
        r->wait_head = q;
    r->wait_tail = q;
}

/* A new request while frozen: parked before it touches the map (it is not
 * in flight: the freeze waits only for the requests started before it);
 * the thaw starts the parked ones in arrival order. */
static void wait_thaw(struct replica *r, struct lvol_req *q)
{
    q->next = NULL;
    if (r->fz_tail)
        r->fz_tail->next = q;
    else
        r->fz_head = q;
    r->fz_tail = q;
}

void replica_thaw(struct replica *r)
{
    r->frozen = false;
    struct lvol_req *q = r->fz_head;
    r->fz_head = r->fz_tail = NULL;
    while (q) {
        struct lvol_req *next = q->next;
        q->counted = true;
        r->inflight++;
        req_run(q);
        q = next;
    }
}

/* Slice [pos, pos+len) of the parent's buffer into q->iov; returns the
 * bytes covered (less than len when DP_IO_MAX_IOV entries run out). */
static uint64_t iov_slice(struct lvol_req *q, uint64_t pos, uint64_t len, int *cnt)
{
    const struct dp_bdev_io *io = q->parent;
    int i = 0, n = 0;
    while (i < io->iovcnt && pos >= io->iov[i].iov_len)
        pos -= io->iov[i++].iov_len;
    uint64_t got = 0;
    while (i < io->iovcnt && got < len && n < DP_IO_MAX_IOV) {
        uint64_t take = io->iov[i].iov_len - pos;
        if (take > len - got)
            take = len - got;
        q->iov[n].iov_base = (char *)io->iov[i].iov_base + pos;
        q->iov[n].iov_len = take;
        n++;
        got += take;
        pos = 0;
        i++;
    }
    *cnt = n;
    return got;
}

static void iov_zero(const struct dp_bdev_io *io, uint64_t pos, uint64_t len)
{
    for (int i = 0; i < io->iovcnt && len; i++) {
        uint64_t l = io->iov[i].iov_len;
        if (pos >= l) {
            pos -= l;
            continue;
        }
        uint64_t take = l - pos < len ? l - pos : len;
        memset((char *)io->iov[i].iov_base + pos, 0, take);
        len -= take;
        pos = 0;
    }
}

static void child_done(struct base_io *b, int status)
{
    struct lvol_req *q = container_of(b, struct lvol_req, b);
    if (status < 0) {
        req_complete(q, status);
        return;
    }
    q->pos += q->chunk;
    req_run(q);
}

static void submit_child(struct lvol_req *q, enum dp_bdev_io_type type, uint32_t m, uint64_t in, uint64_t len)
{
    struct pool *p = q->r->pool;
    uint64_t off;
    uint32_t d = pool_locate(p, m & MAP_PCL_MASK, &off);
    int cnt = 0;
    if (type == DP_IO_READ || type == DP_IO_WRITE) {
        uint64_t got = iov_slice(q, q->pos, len, &cnt);
        if (got < len) {
            /* Out of iovec slots: cut at a block boundary, redo the slice. */
            got &= ~(uint64_t)(q->r->bdev.block_size - 1);
            if (got == 0) {
                req_complete(q, -EINVAL);
                return;
            }
            len = iov_slice(q, q->pos, got, &cnt);
        }
    }
    q->chunk = len;
    struct dp_bdev_io *c = &q->b.io;
    c->type = type;
    c->flags = q->parent->flags;
    c->offset = off + in;
    c->length = len;
    c->iov = cnt ? q->iov : NULL;
    c->iovcnt = cnt;
    q->b.done = child_done;
    pool_base_submit(p, d, &q->b);
}

static void alloc_committed(struct pool_waiter *w, int rc)
{
    struct lvol_req *q = container_of(w, struct lvol_req, w);
    struct replica *r = q->r;
    if (rc < 0) {
        /* The pool is failed; the cluster stays counted as used. */
        r->map[q->alloc_l] = MAP_UNALLOC;
        r->nalloc--;
        wake_waiters(r);
        req_complete(q, -EIO);
        return;
    }
    r->map[q->alloc_l] = q->alloc_p;
    wake_waiters(r);
    req_run(q);
}

static void alloc_zeroed(struct base_io *b, int status)
{
    struct lvol_req *q = container_of(b, struct lvol_req, b);
    struct replica *r = q->r;
    struct pool *p = r->pool;
    dp_buf_free(q->cow_buf);
    q->cow_buf = NULL;
    if (status < 0) {
        r->map[q->alloc_l] = MAP_UNALLOC;
        r->nalloc--;
        pool_cluster_put(p, q->alloc_p);
        wake_waiters(r);
        req_complete(q, status);
        return;
    }
    uint64_t off;
    p->disks[pool_locate(p, q->alloc_p, &off)].dirty = true;
    r->map[q->alloc_l] = q->alloc_p | MAP_COMMITTING;
    q->w.cb = alloc_committed;
    pool_commit(p, &q->w);
}

/* One whole-cluster request to the base for an allocation in flight. */
static void alloc_io(struct lvol_req *q, enum dp_bdev_io_type type, uint32_t pcl, void (*done)(struct base_io *, int))
{
    struct pool *p = q->r->pool;
    uint64_t off;
    uint32_t d = pool_locate(p, pcl, &off);
    struct dp_bdev_io *c = &q->b.io;
    c->type = type;
    c->flags = 0;
    c->offset = off;
    c->length = p->cluster_size;
    q->iov[0].iov_base = q->cow_buf;
    q->iov[0].iov_len = p->cluster_size;
    c->iov = type == DP_IO_WRITE_ZEROES ? NULL : q->iov;
    c->iovcnt = type == DP_IO_WRITE_ZEROES ? 0 : 1;
    q->b.done = done;
    pool_base_submit(p, d, &q->b);
}

/* Copy-on-first-write: the ancestor's cluster was read, write it to ours. */
static void cow_read_done(struct base_io *b, int status)
{
    struct lvol_req *q = container_of(b, struct lvol_req, b);
    if (status < 0) {
        alloc_zeroed(b, status);
        return;
    }
    alloc_io(q, DP_IO_WRITE, q->alloc_p, alloc_zeroed);
}

/* Allocate logical cluster l: zero the new cluster, or (src is an
 * ancestor's cluster) copy src into it; then commit the mapping. */
static void alloc_start(struct lvol_req *q, uint32_t l, uint32_t src)
{
    struct replica *r = q->r;
    struct pool *p = r->pool;
    if (p->failed) {
        req_complete(q, -EIO);
        return;
    }
    int64_t pc = pool_cluster_take(p);
    if (pc < 0) {
        req_complete(q, -ENOSPC);
        return;
    }
    q->alloc_l = l;
    q->alloc_p = (uint32_t)pc;
    r->map[l] = (uint32_t)pc | MAP_ZEROING;
    r->nalloc++;
    if (src == MAP_UNALLOC) {
        alloc_io(q, DP_IO_WRITE_ZEROES, q->alloc_p, alloc_zeroed);
        return;
    }
    q->cow_buf = dp_buf_alloc(p->cluster_size);
    if (!q->cow_buf) {
        q->b.pool = p;
        alloc_zeroed(&q->b, -ENOMEM);
        return;
    }
    alloc_io(q, DP_IO_READ, src & MAP_PCL_MASK, cow_read_done);
}

static void req_committed(struct pool_waiter *w, int rc)
{
    struct lvol_req *q = container_of(w, struct lvol_req, w);
    req_complete(q, rc < 0 ? -EIO : 0);
}

static void flush_done(struct base_io *b, int status)
{
    struct lvol_req *q = container_of(b, struct lvol_req, b);
    if (status < 0) {
        req_complete(q, status);
        return;
    }
    req_run(q);
}

static void req_run(struct lvol_req *q)
{
    struct dp_bdev_io *io = q->parent;
    struct replica *r = q->r;
    struct pool *p = r->pool;
    uint64_t cs = p->cluster_size;

    if (io->type == DP_IO_FLUSH) {
        if (q->disk < p->ndisks) {
            struct dp_bdev_io *c = &q->b.io;
            c->type = DP_IO_FLUSH;
            c->flags = 0;
            c->offset = c->length = 0;
            c->iov = NULL;
            c->iovcnt = 0;
            q->b.done = flush_done;
            pool_base_submit(p, q->disk++, &q->b);
            return;
        }
        req_complete(q, 0);
        return;
    }
    while (q->pos < io->length) {
        uint64_t off = io->offset + q->pos;
        uint32_t l = (uint32_t)(off >> p->cl_shift);
        uint64_t in = off & (cs - 1);
        uint64_t len = cs - in < io->length - q->pos ? cs - in : io->length - q->pos;
        uint32_t m = r->map[l];
        if (m != MAP_UNALLOC && !map_ready(m)) {
            wait_alloc(r, q);
            return;
        }
        /* What the parent chain holds for l (snapshots never change under I/O). */
        uint32_t below = r->parent ? replica_chain_map(r->parent, l, NULL) : MAP_UNALLOC;
        bool whole = in == 0 && (len == cs || off + len >= r->size);
        switch (io->type) {
        case DP_IO_READ:
            if (m == MAP_UNALLOC)
                m = below;
            if (m == MAP_UNALLOC) {
                iov_zero(io, q->pos, len);
                q->pos += len;
                continue;
            }
            submit_child(q, DP_IO_READ, m, in, len);
            return;
        case DP_IO_WRITE:
            if (m == MAP_UNALLOC) {
                /* A whole-cluster write needs no copy: zeroing is cheaper. */
                alloc_start(q, l, whole ? MAP_UNALLOC : below);
                return;
            }
            submit_child(q, DP_IO_WRITE, m, in, len);
            return;
        case DP_IO_UNMAP:
        case DP_IO_WRITE_ZEROES:
            if (m == MAP_UNALLOC && below == MAP_UNALLOC) {
                q->pos += len;
                continue;
            }
            if (m == MAP_UNALLOC) {
                /* Reads must see zeroes, not the parent's data: own it. */
                alloc_start(q, l, whole ? MAP_UNALLOC : below);
                return;
            }
            if (r->thin && whole && below == MAP_UNALLOC) {
                /* A whole cluster of a thin replica goes back to the pool. */
                r->map[l] = MAP_UNALLOC;
                r->nalloc--;
                pool_cluster_unmapped(p, m);
                q->need_commit = true;
                q->pos += len;
                continue;
            }
            submit_child(q, below == MAP_UNALLOC ? io->type : DP_IO_WRITE_ZEROES, m, in, len);
            return;
        default: req_complete(q, -EINVAL); return;
        }
    }
    if (q->need_commit) {
        q->need_commit = false;
        q->w.cb = req_committed;
        pool_commit(p, &q->w);
        return;
    }
    req_complete(q, 0);
}

static void req_start(struct pool *p, struct lvol_req *q, struct dp_bdev_io *io)
{
    struct replica *r = io->bdev->ctx;
    q->parent = io;
    q->r = r;
    q->pos = q->chunk = 0;
    q->disk = 0;
    q->need_commit = false;
    q->cow_buf = NULL;
    q->status = 0;
    q->next = NULL;
    q->counted = false;
    p->inflight++;
    q->ep = (uint8_t)(p->epoch & 1);
    p->inflight_ep[q->ep]++;
    if (r->dead || r->pool != p) {
        req_complete(q, -ENODEV);
        return;
    }
    if (r->frozen) {
        wait_thaw(r, q);
        return;
    }
    q->counted = true;
    r->inflight++;
    req_run(q);
}

static void lvol_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct replica *r = bdev->ctx;
    struct pool *p = r->pool;
    if (!p || r->dead) {
        dp_bdev_io_complete_deferred(io, -ENODEV);
        return;
    }
    p->submit_depth++;
    /* Behind the parents already waiting: a completion callback that
     * resubmits must not take the req its completion frees for them. */
    struct lvol_req *q = p->pwait_head ? NULL : p->free_reqs;
    if (q) {
        p->free_reqs = q->next;
        req_start(p, q, io);
    } else {
        io->driver[0] = 0;
        if (p->pwait_tail)
            p->pwait_tail->driver[0] = (uint64_t)(uintptr_t)io;
        else
            p->pwait_head = io;
        p->pwait_tail = io;
    }
    p->submit_depth--;
}

static int lvol_block_status(struct dp_bdev *bdev, uint64_t offset, uint64_t len, uint64_t *len_out,
                             uint32_t *status_out)
{
    struct replica *r = bdev->ctx;
    struct pool *p = r->pool;
    if (!p)
        return -ENODEV;
    if (len == 0 || offset >= bdev->size)
        return -ERANGE;
    if (len > bdev->size - offset)
        len = bdev->size - offset;
    /* A hole only where no one in the parent chain maps the cluster. */
    uint32_t l = (uint32_t)(offset >> p->cl_shift);
    bool hole = replica_chain_map(r, l, NULL) == MAP_UNALLOC;
    uint64_t end = ((uint64_t)l + 1) << p->cl_shift;
    while (end < offset + len && (replica_chain_map(r, (uint32_t)(end >> p->cl_shift), NULL) == MAP_UNALLOC) == hole)
        end += p->cluster_size;
    *len_out = (end < offset + len ? end : offset + len) - offset;
    *status_out = hole ? DP_BS_HOLE : DP_BS_ALLOCATED;
    return 0;
}

const struct dp_bdev_ops lvol_ops = {
    .submit = lvol_submit,
    .block_status = lvol_block_status,
    .destroy = lvol_bdev_destroy,
    .snapshot_create = lvol_snapshot_create,
    .snapshot_destroy = lvol_snapshot_destroy,
};
