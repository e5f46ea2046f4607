/*
 * datapath.h - the whole FFI surface of libdatapath.so.
 *
 * The agent (agent/src/native.ts) loads this library with koffi and declares
 * every function below in one place. Nothing else in the library is public.
 *
 * Conventions
 *  - Functions return 0 (or a non-negative count) on success and a negative
 *    errno on failure. dp_last_error() returns a human-readable message for
 *    the last failure on the calling thread, naming the object or field.
 *  - Control functions (dp_pool_*, dp_replica_*, dp_*_share) block the calling
 *    thread until done: the agent calls them through koffi's `.async` so the
 *    JS event loop never waits. They are safe to call from any thread.
 *  - The I/O path never blocks: dp_io_submit() queues a request to the
 *    reactor that owns the device and returns; completions are collected from
 *    a completion queue (dp_cq) by dp_cq_wait().
 *  - Sizes and offsets are bytes, uint64_t.
 */
#ifndef DATAPATH_H
#define DATAPATH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DP_UUID_STR_LEN 37 /* 36 characters and the NUL */
#define DP_NAME_MAX 128    /* pool and bdev names, NUL included */

/* ---- library lifecycle ------------------------------------------------- */

/* Start `reactors` reactor threads (>= 1). Reactors sleep in io_uring when idle. */
int dp_init(uint32_t reactors);
/* Stop reactors, close every pool and device. Safe to call twice. */
void dp_fini(void);
/* Message for the last error on this thread ("" if none). Never NULL. */
const char *dp_last_error(void);
/* Library version string. */
const char *dp_version(void);

/* ---- pools --------------------------------------------------------------- */

/*
 * Create a pool named `name` concatenating `ndisks` disks, given as URIs
 * ("uring:///path", "aio:///path"; plain absolute paths mean uring://).
 * cluster_size 0 selects the 4 MiB default. Every disk must carry no pool
 * label (-EEXIST otherwise, naming the disk and its pool). uuid_out receives
 * the new pool's uuid (DP_UUID_STR_LEN bytes).
 */
int dp_pool_create(const char *name, const char *const *disks, uint32_t ndisks,
                   uint64_t cluster_size, char *uuid_out);
/*
 * Import an existing pool from its disks (after a restart, or on another
 * agent). `name` must match the on-disk name (-EINVAL otherwise). Replicas
 * come back with it.
 */
int dp_pool_import(const char *name, const char *const *disks, uint32_t ndisks,
                   char *uuid_out);
/* Close a pool without touching its disks (agent shutdown). */
int dp_pool_export(const char *name);
/* Destroy a pool: -EBUSY while it holds replicas; wipes the labels. */
int dp_pool_destroy(const char *name);

typedef struct dp_pool_info {
    char name[DP_NAME_MAX];
    char uuid[DP_UUID_STR_LEN];
    uint32_t ndisks;
    uint32_t replicas;
    uint64_t cluster_size;
    uint64_t capacity_bytes; /* data clusters * cluster size */
    uint64_t used_bytes;     /* allocated clusters * cluster size */
} dp_pool_info;

int dp_pool_stat(const char *name, dp_pool_info *out);

/*
 * Read the label of a disk without importing it. Returns 1 and fills out
 * (name, uuid, cluster_size; the rest zero) if the disk holds a pool label,
 * 0 if it holds none, negative errno if it cannot be read.
 */
int dp_disk_probe(const char *disk, dp_pool_info *out);

/* ---- replicas (logical volumes in a pool) -------------------------------- */

typedef struct dp_replica_info {
    char uuid[DP_UUID_STR_LEN];
    char pool[DP_NAME_MAX];
    uint64_t size_bytes;
    uint64_t allocated_bytes;
    uint32_t thin;
    uint32_t open_count; /* descriptors and shares holding it open */
} dp_replica_info;

/* -ENOSPC for a thick replica beyond the free space; -EEXIST for a used uuid. */
int dp_replica_create(const char *pool, const char *uuid, uint64_t size_bytes, uint32_t thin);
/* -EBUSY while open. Returns the clusters to the pool. */
int dp_replica_destroy(const char *uuid);
/* Grow online (-EINVAL to shrink). Thick replicas reserve the new clusters. */
int dp_replica_resize(const char *uuid, uint64_t size_bytes);
int dp_replica_stat(const char *uuid, dp_replica_info *out);
/* Replicas of a pool by index: 0..n-1, -ENOENT past the end. */
int dp_pool_replica_at(const char *pool, uint32_t index, dp_replica_info *out);

/* ---- embedded block access (descriptors) -------------------------------- */

typedef struct dp_desc dp_desc;
typedef struct dp_cq dp_cq;

enum dp_io_op {
    DP_OP_READ = 0,
    DP_OP_WRITE = 1,
    DP_OP_FLUSH = 2,
    DP_OP_UNMAP = 3,        /* discard; reads of the range return zeros after */
    DP_OP_WRITE_ZEROES = 4,
};

/*
 * Open a device for I/O. `target` is a replica uuid or a device URI
 * (uring:///path, aio:///path, malloc:///name?size_mb=N).
 */
int dp_desc_open(const char *target, dp_desc **out);
/* Close; outstanding I/O completes first. */
void dp_desc_close(dp_desc *desc);
uint64_t dp_desc_size(const dp_desc *desc);
/* Requests must be aligned to this (offset and length); see dp_io_submit. */
uint32_t dp_desc_block_size(const dp_desc *desc);

dp_cq *dp_cq_create(void);
void dp_cq_destroy(dp_cq *cq);

/*
 * Queue one request. `buf` must stay valid until its completion is reaped.
 * Unaligned offset/length are rejected with -EINVAL at once (no
 * read-modify-write: a silent RMW could tear concurrent writes).
 * Out-of-range requests: -ERANGE at once. On success the completion
 * (tag, result: 0 or negative errno) is posted to `cq`.
 */
int dp_io_submit(dp_desc *desc, dp_cq *cq, uint32_t op, void *buf,
                 uint64_t offset, uint64_t length, uint64_t tag);

/*
 * Wait up to timeout_ms (-1 forever) for completions and reap up to `max`.
 * Returns the number reaped (0 on timeout), or -EINTR after dp_cq_wake().
 */
int dp_cq_wait(dp_cq *cq, uint64_t *tags, int32_t *results, uint32_t max, int32_t timeout_ms);
/* Make a blocked dp_cq_wait return (used at shutdown). */
void dp_cq_wake(dp_cq *cq);

/* ---- statistics ---------------------------------------------------------- */

typedef struct dp_io_stats {
    uint64_t reads, writes, flushes, unmaps;
    uint64_t bytes_read, bytes_written;
    uint64_t errors;
} dp_io_stats;

/* I/O counters of a replica (by uuid) or an open device URI. */
int dp_io_stat(const char *target, dp_io_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* DATAPATH_H */
