/*
 * pool.h - pools (logical-volume stores over one or more base bdevs) and
 * their replicas (lvol bdevs). Internal to src/pool/; the public surface is
 * the dp_pool_* / dp_replica_* functions of datapath.h.
 *
 * Threading: a pool and its replicas belong to the reactor of the pool's
 * first disk. Every field below is touched only on that reactor's thread,
 * except while the pool is not yet (or no longer) live: create/import build
 * it on the control thread before it is published, export/destroy tear it
 * down after it is unpublished and idle. Control functions serialize on one
 * global mutex and run their mutations on the reactor (pool.c core,
 * create.c, import.c, commit.c, replica.c; lvol.c is the I/O path).
 */
#ifndef DP_POOL_H
#define DP_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "pool/format.h"

/*
 * Test hooks (tests/test_pool_crash.c). When dp_pool_fault_after_writes is
 * >= 0, that many metadata slot writes succeed; the next one "crashes":
 * mode 0 drops it, mode 1 writes only its first half (whole blocks), mode 2
 * writes it whole with the second half of its bytes scrambled, mode 3
 * writes it whole and crashes before the flush. After the
 * crash the pool is failed: no further metadata reaches the disk and every
 * operation that needs a commit fails with -EIO. dp_pool_fault_hit counts
 * crashes.
 */
extern int dp_pool_fault_after_writes;
extern int dp_pool_fault_mode;
extern int dp_pool_fault_hit;
/* Test hook (tests/test_pool_ghost.c): when set, pool_ctl_run calls it
 * once (and clears it) before handing its operation to the reactor, on the
 * control thread under the lock: after every check of the call. */
extern void (*pool_ctl_test_hook)(void);

/* Cluster map values (in memory only; on disk a replica lists its pairs). */
#define MAP_UNALLOC 0xFFFFFFFFu
#define MAP_ZEROING 0x80000000u /* cluster being zeroed: not yet in any commit */
#define MAP_COMMITTING 0x40000000u /* zeroed, waiting for its commit to be durable */
#define MAP_PCL_MASK 0x3FFFFFFFu

static inline bool map_ready(uint32_t m)
{
    return m != MAP_UNALLOC && !(m & (MAP_ZEROING | MAP_COMMITTING));
}

struct pool;

/* Waits for a metadata commit; cb runs on the reactor with 0 or -errno. */
struct pool_waiter {
    void (*cb)(struct pool_waiter *w, int rc);
    struct pool_waiter *next;
};

/* A request to a base disk, bounced back to the pool's reactor if needed. */
struct base_io {
    struct dp_bdev_io io;
    struct pool *pool;
    void (*done)(struct base_io *b, int status);
    int status;
};

struct pool_disk {
    struct dp_bdev *bdev;
    char uri[512];
    uint8_t uuid[16];
    uint64_t data_start, first_cluster, nclusters;
    bool dirty; /* zeroed since the last commit: flush before the slot write */
    bool flush_now; /* part of the commit in flight */
};

struct replica {
    struct dp_bdev bdev; /* name = uuid string; ctx = this */
    struct pool *pool; /* NULL once the pool is closed under an open handle */
    uint8_t uuid[16];
    uint64_t size; /* requested bytes */
    bool thin;
    bool ro; /* a snapshot (PF_REPLICA_RO) */
    struct replica *parent; /* a snapshot this one overlays, or NULL */
    uint8_t parent_uuid[16]; /* import: resolved into parent after the walk */
    uint8_t incarnation[16]; /* random at create; new on re-create (issue 15) */
    uint8_t group[16]; /* snapshots: the volume snapshot, or nil */
    uint8_t source[16]; /* snapshots: the replica taken, or nil */
    uint64_t ctime; /* unix seconds */
    uint32_t ncl; /* logical clusters: ceil(size / cluster) */
    uint32_t *map; /* ncl entries */
    uint64_t nalloc; /* clusters mapped (any state) */
    bool registered;
    bool dead; /* destroyed: I/O fails */
    bool frozen; /* a snapshot/merge/revert waits for it to go quiet: new requests park */
    dp_msg_fn settle_fn; /* ... and runs this (on the reactor) once it has */
    void *settle_arg;
    uint32_t inflight; /* requests of r started and not completed (parked ones not counted) */
    struct lvol_req *wait_head, *wait_tail; /* reqs waiting on an allocation */
    struct lvol_req *fz_head, *fz_tail; /* new requests parked by the freeze, in arrival order */
};

struct lvol_req {
    struct base_io b;
    struct dp_uring_op nop;
    struct pool_waiter w;
    struct iovec iov[DP_IO_MAX_IOV];
    struct dp_bdev_io *parent;
    struct replica *r;
    uint64_t pos; /* bytes of the parent done */
    uint64_t chunk; /* bytes of the child in flight */
    uint32_t alloc_l; /* allocation in flight: logical cluster */
    uint32_t alloc_p; /* ... and the physical one */
    void *cow_buf; /* ... bounced through this (cluster size) */
    uint32_t disk; /* flush: next disk */
    bool need_commit; /* unmapped clusters: commit before completing */
    bool in_submit; /* completion must be deferred */
    bool counted; /* in r->inflight */
    uint8_t ep; /* epoch parity at start (pool.inflight_ep) */
    int status;
    struct lvol_req *next;
};

#define POOL_REQS 128

struct pool {
    char name[PF_NAME_MAX];
    uint8_t uuid[16];
    char uuid_str[37];
    struct dp_reactor *reactor;
    uint32_t ndisks;
    struct pool_disk disks[PF_MAX_DISKS];
    uint64_t cluster_size;
    uint32_t cl_shift;
    uint64_t total_clusters;
    uint32_t block_size;
    uint64_t slot_size;
    uint64_t seq; /* of the current (newest durable) slot */
    uint32_t version; /* the format its commits write (1: a v1 pool too full to upgrade) */
    uint32_t max_records; /* records the slot holds (pf_max_records of version) */
    int cur_slot; /* 0 = A, 1 = B */
    uint8_t *slot_buf; /* slot_size, DP_BUF_ALIGN */

    /* Cluster accounting. A cluster is in `used` from allocation until it
     * is free on disk AND no I/O issued before its unmap can still touch it. */
    uint64_t *used;
    uint64_t nused;
    uint64_t *freeing, nfreeing; /* unmapped, not yet in a commit */
    uint64_t *committing, ncommitting; /* unmapped, in the commit in flight */
    uint64_t *released, nreleased; /* durably free, waiting for I/O to drain */
    /* Released clusters wait for the requests started before them, not for
     * an idle pool (a steady load never is): `draining` waits for the reqs
     * of epoch parity (epoch & 1) ^ 1, new reqs count in epoch & 1. */
    uint64_t *draining, ndraining;
    uint64_t epoch;
    uint32_t inflight_ep[2];
    uint64_t hint;

    struct replica **replicas;
    uint32_t nreplicas, cap;

    /* Commit engine: one commit in flight; waiters that arrive meanwhile
     * share the next one. */
    bool commit_busy, failed;
    char fail_reason[DP_POOL_REASON_MAX]; /* why `failed` (dp_pool_info.reason) */
    struct pool_waiter *w_next, *w_cur;
    struct base_io cio;
    int cstage;
    uint32_t cdisk;
    uint64_t cwrite_len;
    struct iovec slot_iov;

    struct lvol_req *reqs, *free_reqs;
    uint32_t inflight;
    int submit_depth; /* inside lvol_submit: completions are deferred */
    struct dp_bdev_io *pwait_head, *pwait_tail; /* parents waiting for a req */

    struct pool *next; /* registry */
};

static inline uint64_t bm_words(uint64_t n)
{
    return (n + 63) / 64;
}

/* ---- commit.c: base I/O, metadata commit, cluster accounting (reactor) --- */

void pool_commit(struct pool *p, struct pool_waiter *w);
void pool_base_submit(struct pool *p, uint32_t disk, struct base_io *b);
void pool_base_prep(struct base_io *b, enum dp_bdev_io_type type, uint64_t off, uint64_t len, struct iovec *iov,
                    int iovcnt, void (*done)(struct base_io *, int));
/* Serialize the replicas into p->slot_buf as slot p->seq + 1: bytes used. */
uint64_t pool_meta_serialize(struct pool *p);
/* Physical cluster -> disk index and byte offset of its start. */
uint32_t pool_locate(struct pool *p, uint32_t pcl, uint64_t *offset);
/* Take a free cluster: its number, or -ENOSPC. */
int64_t pool_cluster_take(struct pool *p);
void pool_cluster_put(struct pool *p, uint32_t pcl);
/* A cluster unmapped from a replica: freed once durable and drained. */
void pool_cluster_unmapped(struct pool *p, uint32_t pcl);
void pool_try_release(struct pool *p);

/* ---- pool.c: registry, shared setup steps, control round trip ----------- */

/* One lock serializes every control operation and guards the registry. */
void pool_lock(void);
void pool_unlock(void);
/* Under the lock. */
struct pool *pool_find(const char *name);
/* Under the lock: the pool called name, or NULL with *ret and the error set. */
struct pool *pool_lookup(const char *name, int *ret);
struct replica *replica_find(const uint8_t uuid[16]);

int pool_check_name(const char *what, const char *name);
/* Put context in front of the error the last call set: "<context>: <error>". */
void pool_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open the disks of a create/import; p->disks[i].bdev in argument order. */
int pool_open_disks(struct pool *p, const char *what, const char *const *disks, uint32_t ndisks);
/* 0 and *l decoded, 1 no label, -EINVAL damaged, other -errno with err set. */
int pool_read_label(struct dp_bdev *b, uint8_t *buf, struct pf_label *l, char *err, size_t errlen);
/* Allocate the in-memory state sized for p->total_clusters. */
int pool_alloc_state(struct pool *p);
/* Under the lock, create/import done: publish p and give its uuid, or free
 * it (ret < 0); unlocks, returns ret. */
int pool_setup_end(struct pool *p, int ret, char *uuid_out);

/* A control operation handed to the pool's reactor; the control thread
 * sleeps in pool_ctl_run until the reactor's chain calls pool_ctl_done. */
struct pool_ctl {
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
    void (*after)(struct pool_ctl *c, int rc);
    dp_msg_fn fn;
    void *arg; /* stat output */
};

int pool_ctl_run(struct pool_ctl *c, struct pool *p, dp_msg_fn fn);
void pool_ctl_done(struct pool_ctl *c, int rc);
int pool_ctl_fail(struct pool_ctl *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- replica.c ----------------------------------------------------------- */

struct replica *replica_new(struct pool *p, const uint8_t uuid[16], uint64_t size, bool thin);
int replica_register(struct replica *r);
void replica_free(struct replica *r);
/* Handles open on the replica, besides the registry's own reference. */
int replica_open_count(struct replica *r);
/* Reactor (or a pool not yet live): append r to the pool's table. */
void pool_table_add(struct pool *p, struct replica *r);

/* The cluster a read of logical cluster l of r reaches: r's own, else the
 * nearest ancestor's (the parent chain), else MAP_UNALLOC. *owner gets who. */
uint32_t replica_chain_map(const struct replica *r, uint32_t l, const struct replica **owner);
/* No request of r in flight, so none holds a physical cluster of its map
 * (a snapshot, merge or revert may move the map). */
bool replica_settled(const struct replica *r);
struct replica *replica_lookup(const char *uuid, int *ret);
int check_uuid(const char *what, const char *s, uint8_t out[16]);
void pool_table_remove(struct pool *p, struct replica *r);
/* Zero or discard c->cl[0..c->ncl) with c->run_type, then c->after. */
void pool_runs_start(struct pool_ctl *c);

/* snapshot.c: the bdev ops of a replica */
int lvol_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group);
int lvol_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid);

/* lvol.c */
extern const struct dp_bdev_ops lvol_ops;
/* replica.c: frees the replica when its last reference goes */
void lvol_bdev_destroy(struct dp_bdev *bdev);
int lvol_reqs_init(struct pool *p);
/* Reactor: end a freeze (replica.frozen); parked requests run again. */
void replica_thaw(struct replica *r);
void lvol_reqs_free(struct pool *p);

#endif /* DP_POOL_H */
