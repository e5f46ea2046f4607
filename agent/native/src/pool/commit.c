/*
 * commit.c - what a pool writes under its data: the requests to its base
 * disks (bounced back to the pool's reactor), the metadata commit engine
 * (one slot write in flight, A/B alternating, see FORMAT.md), and the
 * cluster accounting whose frees become reusable only once a commit made
 * them durable. Everything here runs on the pool's reactor.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "pool/pool.h"

int dp_pool_fault_after_writes = -1;
int dp_pool_fault_mode;
int dp_pool_fault_hit;

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
 * cluster's next owner). Waiting for no I/O at all would starve under a
 * steady load (the pool fills up with released clusters), so a drain flips
 * the epoch and waits only for the requests started before the flip; the
 * clusters released meanwhile wait for the next drain.
 */
void pool_try_release(struct pool *p)
{
    for (;;) {
        if (p->ndraining) {
            if (p->inflight_ep[(p->epoch & 1) ^ 1])
                return;
            for (uint64_t w = 0; w < bm_words(p->total_clusters); w++) {
                p->used[w] &= ~p->draining[w];
                p->draining[w] = 0;
            }
            p->nused -= p->ndraining;
            p->ndraining = 0;
        }
        if (!p->nreleased)
            return;
        uint64_t *t = p->draining;
        p->draining = p->released;
        p->released = t;
        p->ndraining = p->nreleased;
        p->nreleased = 0;
        p->epoch++; /* the old parity holds only reqs started before now */
    }
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

void pool_base_prep(struct base_io *b, enum dp_bdev_io_type type, uint64_t off, uint64_t len, struct iovec *iov,
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

uint64_t pool_meta_serialize(struct pool *p)
{
    uint8_t *s = p->slot_buf;
    uint64_t off = PF_META_HDR_SIZE;
    uint32_t version = p->version;
    for (uint32_t i = 0; i < p->nreplicas; i++) {
        struct replica *r = p->replicas[i];
        struct pf_replica_rec rec = { .size = r->size,
                                      .flags = (r->thin ? PF_REPLICA_THIN : 0) | (r->ro ? PF_REPLICA_RO : 0),
                                      .create_time = r->ctime };
        memcpy(rec.uuid, r->uuid, 16);
        if (r->parent)
            memcpy(rec.parent, r->parent->uuid, 16);
        memcpy(rec.incarnation, r->incarnation, 16);
        memcpy(rec.group, r->group, 16);
        memcpy(rec.source, r->source, 16);
        uint64_t roff = off;
        off += pf_rec_size(version);
        for (uint32_t l = 0; l < r->ncl; l++) {
            uint32_t m = r->map[l];
            /* A cluster still being zeroed is not referenced by any commit. */
            if (m == MAP_UNALLOC || (m & MAP_ZEROING))
                continue;
            off += pf_meta_put_map(s + off, l, m & MAP_PCL_MASK);
            rec.nmap++;
        }
        pf_meta_put_rec(s + roff, &rec, version);
    }
    struct pf_meta_hdr h = { .version = version, .seq = p->seq + 1, .used_len = off, .nreplicas = p->nreplicas };
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
        uint64_t used = pool_meta_serialize(p);
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
            pool_base_prep(&p->cio, DP_IO_FLUSH, 0, 0, NULL, 0, commit_io_done);
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
        pool_base_prep(&p->cio, DP_IO_WRITE, off, len, &p->slot_iov, 1, commit_io_done);
        pool_base_submit(p, 0, &p->cio);
        return;
    }
    p->cstage = 4;
    pool_base_prep(&p->cio, DP_IO_FLUSH, 0, 0, NULL, 0, commit_io_done);
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
