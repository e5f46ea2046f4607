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
#define DP_NAME_MAX 128 /* pool and bdev names, NUL included */

/* ---- library lifecycle ------------------------------------------------- */

/* Start `reactors` reactor threads (>= 1). Reactors sleep in io_uring when idle. */
int dp_init(uint32_t reactors);
/* Stop reactors, close every pool and device. Safe to call twice. */
void dp_fini(void);
/* Message for the last error on this thread ("" if none). Never NULL. */
const char *dp_last_error(void);
/* Library version string. */
const char *dp_version(void);
/*
 * Take an exclusive flock on `path` (created 0644 if missing) and write this
 * process's pid into it. Returns the fd that holds the lock for the life of
 * the process (or until dp_unlock_file): the kernel drops the lock when the
 * process dies, so a stale file never blocks. -EBUSY (the message names the
 * pid in the file) when another process holds it. Needs no dp_init.
 */
int dp_lock_file(const char *path);
/* Unlink `path` (NULL: keep it) and close the fd of dp_lock_file. */
int dp_unlock_file(int fd, const char *path);

/* ---- pools --------------------------------------------------------------- */

/*
 * Create a pool named `name` concatenating `ndisks` disks, given as URIs
 * ("uring:///path", "aio:///path"; plain absolute paths mean uring://).
 * cluster_size 0 selects the 4 MiB default. Every disk must carry no pool
 * label (-EEXIST otherwise, naming the disk and its pool). uuid_out receives
 * the new pool's uuid (DP_UUID_STR_LEN bytes).
 */
int dp_pool_create(const char *name, const char *const *disks, uint32_t ndisks, uint64_t cluster_size, char *uuid_out);
/*
 * Import an existing pool from its disks (after a restart, or on another
 * agent). `name` must match the on-disk name (-EINVAL otherwise). Replicas
 * come back with it.
 */
int dp_pool_import(const char *name, const char *const *disks, uint32_t ndisks, char *uuid_out);
/* Close a pool without touching its disks (agent shutdown). */
int dp_pool_export(const char *name);
/* Destroy a pool: -EBUSY while it holds replicas; wipes the labels. */
int dp_pool_destroy(const char *name);

/*
 * A pool's state in the data path. FAILED: a metadata write (or flush) failed;
 * nothing reaches its metadata any more and every operation that needs a
 * commit (allocation, create, resize, destroy) fails with -EIO. Data already
 * allocated still reads and writes. The way back is export + import (the
 * metadata on disk is the last durable commit).
 */
enum dp_pool_state { DP_POOL_ONLINE = 0, DP_POOL_FAILED = 1 };
#define DP_POOL_REASON_MAX 128

typedef struct dp_pool_info {
    char name[DP_NAME_MAX];
    char uuid[DP_UUID_STR_LEN];
    uint32_t ndisks;
    uint32_t replicas;
    uint64_t cluster_size;
    uint64_t capacity_bytes; /* data clusters * cluster size */
    uint64_t used_bytes; /* allocated clusters * cluster size */
    uint32_t state; /* enum dp_pool_state */
    char reason[DP_POOL_REASON_MAX]; /* why it failed ("" when online) */
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
    char parent[DP_UUID_STR_LEN]; /* the snapshot it overlays, "" if none */
    char incarnation[DP_UUID_STR_LEN]; /* random at create: a re-created replica has another */
    char pad[6];
    uint64_t snapshot_bytes; /* clusters held by its snapshot chain (parent, its parent...) */
} dp_replica_info;

/* -ENOSPC for a thick replica beyond the free space; -EEXIST for a used uuid. */
int dp_replica_create(const char *pool, const char *uuid, uint64_t size_bytes, uint32_t thin);
/* -EBUSY while open. Returns the clusters to the pool. */
int dp_replica_destroy(const char *uuid);
/* Grow online (-EINVAL to shrink). Thick replicas reserve the new clusters. */
int dp_replica_resize(const char *uuid, uint64_t size_bytes);
int dp_replica_stat(const char *uuid, dp_replica_info *out);
/* Writable replicas of a pool by index: 0..n-1, -ENOENT past the end
 * (snapshots: dp_pool_snapshot_at). */
int dp_pool_replica_at(const char *pool, uint32_t index, dp_replica_info *out);

/* ---- snapshots and clones (pool format v2, src/pool/FORMAT.md) ----------
 * A snapshot is a read-only replica that takes over the clusters its source
 * had mapped (metadata only); the source keeps its uuid, size and
 * incarnation and becomes a thin overlay whose parent is the snapshot.
 * Reads fall through the parent chain; a first write to a cluster copies it.
 * Snapshots are devices too (read-only, thin), registered by their uuid.
 * Errors name the object: -ENOENT missing, -EEXIST uuid in use, -EINVAL not
 * a snapshot / not an ancestor, -EBUSY open or with several children. */
#define DP_SNAP_CHILDREN_MAX 160 /* "uuid,uuid,uuid,uuid" and the NUL */

typedef struct dp_snapshot_info {
    char uuid[DP_UUID_STR_LEN];
    char source[DP_UUID_STR_LEN]; /* the replica it was taken of */
    char parent[DP_UUID_STR_LEN]; /* the snapshot below it, "" if none */
    char pool[DP_NAME_MAX];
    char group[DP_UUID_STR_LEN]; /* volume snapshot it belongs to, "" if none */
    char pad[4];
    uint64_t size_bytes;
    uint64_t referenced_bytes; /* clusters it owns * cluster size */
    uint64_t create_time; /* unix seconds */
    uint32_t nchildren; /* replicas, clones and snapshots whose parent it is */
    char children[DP_SNAP_CHILDREN_MAX]; /* the first few, comma separated */
    uint32_t reserved;
} dp_snapshot_info;

/* group: a uuid, or NULL/"" for none. The replica may be open and busy. */
int dp_snapshot_create(const char *replica_uuid, const char *snap_uuid, const char *group);
/* No children: its clusters are freed. One child: merged into it (the child
 * takes the clusters it does not map itself). More: -EBUSY naming them. */
int dp_snapshot_destroy(const char *snap_uuid);
int dp_snapshot_stat(const char *uuid, dp_snapshot_info *out);
/* Snapshots of a pool by index: 0..n-1, -ENOENT past the end. */
int dp_pool_snapshot_at(const char *pool, uint32_t index, dp_snapshot_info *out);
/* A new writable thin replica over a snapshot, of the snapshot's size, in its pool. */
int dp_replica_clone(const char *clone_uuid, const char *snap_uuid);
/* Roll a replica back to an ancestor snapshot in place (uuid and incarnation
 * stay; its own clusters are freed). -EBUSY while the replica is open. */
int dp_replica_revert(const char *replica_uuid, const char *snap_uuid);

/* ---- embedded block access (descriptors) -------------------------------- */

typedef struct dp_desc dp_desc;
typedef struct dp_cq dp_cq;

enum dp_io_op {
    DP_OP_READ = 0,
    DP_OP_WRITE = 1,
    DP_OP_FLUSH = 2,
    DP_OP_UNMAP = 3, /* discard; reads of the range return zeros after */
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
int dp_io_submit(dp_desc *desc, dp_cq *cq, uint32_t op, void *buf, uint64_t offset, uint64_t length, uint64_t tag);

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

/* ---- NBD target ------------------------------------------------------------ */

/*
 * Listen for NBD clients on host:port (port 0 picks a free port; read it
 * back with dp_nbd_port()). One listener per process: -EALREADY if one is
 * up. Fixed-newstyle handshake; exports advertise FLUSH, FUA, TRIM,
 * WRITE_ZEROES, DF, MULTI_CONN, base:allocation and block sizes (min = the
 * device's block size, preferred 4096, max payload 32 MiB).
 */
int dp_nbd_listen(const char *host, uint16_t port);
/* The bound port, or -ENOTCONN when not listening. */
int dp_nbd_port(void);
/*
 * Export a device as `export_name` (NULL or "": the device name). The device
 * is a replica uuid, any registered bdev name, or a device URI
 * (uring:///path, malloc:///name?size_mb=N, ...). allowed_hosts_csv: NULL,
 * "" or "*" allows every peer; otherwise comma-separated IP addresses or
 * CIDR prefixes ("10.0.0.5,192.168.1.0/24,::1"). Sharing the same device
 * under the same name again updates allowed hosts (idempotent); another
 * device under a used name is -EEXIST. The export holds the device open.
 */
int dp_nbd_share(const char *bdev_name, const char *export_name, const char *allowed_hosts_csv);
/* Remove an export: its clients are disconnected (outstanding I/O completes
 * first) before this returns, and the device reference is dropped. */
int dp_nbd_unshare(const char *export_name);
/* Connections currently attached to an export, or -ENOENT. */
int dp_nbd_export_connections(const char *export_name);
/* Stop listening, unshare everything, close every connection. Call before
 * dp_fini(); safe when nothing was started. */
void dp_nbd_shutdown(void);

/* ---- NVMe/TCP target -------------------------------------------------------- */

/*
 * Listen for NVMe/TCP hosts on host:port (port 0 picks a free port; read it
 * back with dp_nvmf_port()). One listener per process: -EALREADY if one is
 * up. advertise_host (NULL or "": host) is the address the discovery log
 * page gives hosts (traddr), so that a host behind NAT can reach it. The
 * discovery controller (nqn.2014-08.org.nvmexpress.discovery) answers on the
 * same port. Connections are admitted under the target limits below.
 */
int dp_nvmf_listen(const char *host, uint16_t port, const char *advertise_host);
/* The bound port, or -ENOTCONN when not listening. */
int dp_nvmf_port(void);
/*
 * Export a device as an NVM subsystem named `nqn` (the agent passes
 * nqn.2019-05.io.openebs:<uuid>, agent/api is where that rule lives) with
 * one namespace (nsid 1) whose NGUID/UUID is `uuid` (a 36-character uuid,
 * or NULL: derived from the device). The device is a replica uuid, any
 * registered bdev name, or a device URI, as for dp_nbd_share.
 * allowed_hosts_csv: NULL, "" or "*" allows every host; otherwise
 * comma-separated host NQNs, matched exactly (an IP address or CIDR entry
 * matches the host's address instead): a host not listed is refused at
 * Connect (Connect Invalid Host) and does not see the subsystem in
 * discovery. Sharing the same device under the
 * same nqn again replaces the allowed hosts (idempotent); another device
 * under a used nqn is -EEXIST; a malformed nqn or host NQN is -EINVAL naming
 * it. The export holds the device open.
 */
int dp_nvmf_share(const char *bdev_name, const char *nqn, const char *uuid, const char *allowed_hosts_csv);
/* Remove a subsystem: its controllers are disconnected (outstanding I/O
 * completes first) before this returns, and the device reference is dropped. */
int dp_nvmf_unshare(const char *nqn);
/* Host connections (admin and I/O queues) attached to a subsystem, or -ENOENT. */
int dp_nvmf_export_connections(const char *nqn);
/* Stop listening, unshare everything, close every connection. Call before
 * dp_fini(); safe when nothing was started. */
void dp_nvmf_shutdown(void);

/*
 * The host NQN our nvmf:// children (the initiator) connect with:
 * $MAYASTOR_NVMF_HOSTNQN, else nqn.2014-08.org.nvmexpress:uuid:<uuid> derived
 * from /etc/machine-id, so it is stable across restarts and a remote
 * subsystem's allowed hosts can name it.
 */
const char *dp_nvmf_host_nqn(void);

/* ---- target limits (every target protocol) -------------------------------- */

/*
 * Limits against unauthenticated clients, for every target protocol (NBD).
 * A refused connection is closed at once (a client asking for an export
 * that is full gets NBD_REP_ERR_POLICY naming the limit first).
 */
typedef struct dp_target_limits {
    uint32_t max_connections; /* per agent (default 1024) */
    uint32_t max_connections_per_export; /* per export (default 128) */
    uint32_t handshake_timeout_ms; /* accept to end of negotiation (default 10000) */
    uint32_t fd_headroom; /* fds kept free below RLIMIT_NOFILE (default 64) */
    uint64_t conn_memory_budget; /* slot and payload bytes per connection (default 64 MiB, >= 1 MiB);
                                            the advertised maximum payload is min(32 MiB, half of it) */
    uint64_t memory_budget; /* across all connections (default 1 GiB, >= conn_memory_budget) */
    uint32_t writer_grace_ms; /* an export serving a nexus child stays writable only by the nexus's host
                                 this long after its last connection drops (default 30000, <= 86400000) */
    uint32_t pad; /* 0 */
} dp_target_limits;

/* Set the limits (any time; new values apply to new charges and connections).
 * -EINVAL naming the field for a value out of range. */
int dp_target_set_limits(const dp_target_limits *limits);
/* The limits in force. */
int dp_target_get_limits(dp_target_limits *out);

typedef struct dp_target_stats {
    uint64_t connections; /* open now, handshake included */
    uint64_t handshakes; /* in the handshake now */
    uint64_t accepted; /* connections admitted, total */
    uint64_t refused_max_connections; /* refused: per-agent cap */
    uint64_t refused_max_connections_per_export; /* refused: per-export cap */
    uint64_t refused_fd_headroom; /* refused: open fds within fd_headroom of the limit */
    uint64_t handshake_timeouts; /* dropped at the handshake deadline */
    uint64_t accept_backoffs; /* accepting paused on EMFILE/ENFILE/ENOBUFS/ENOMEM */
    uint64_t memory_bytes; /* slot and payload bytes held now */
    uint64_t memory_waits; /* requests that waited for memory (back-pressure) */
    uint64_t writer_leases; /* exports now writable only by the host of the nexus they serve a child to */
    uint64_t writes_refused; /* writes/unmaps/write-zeroes refused (EPERM): another host holds the lease */
} dp_target_stats;

int dp_target_stats_get(dp_target_stats *out);

/*
 * The writer lease of the export serving a device (issue 10): an export that
 * serves a nexus child is writable (and snapshottable) only by that nexus's
 * host, while it has a connection and writer_grace_ms after its last one
 * drops. Before a replica is rolled back under its exports (revert), the
 * agent asks whether a remote nexus may still come back to it.
 */
typedef struct dp_writer_lease {
    char host[256]; /* the nexus's host: an IP address (NBD) or a host NQN (NVMe/TCP) */
    char proto[8]; /* "nbd" or "nvmf": the export holding the lease */
    uint32_t connected; /* 1: the host has a connection to the export now */
    uint32_t grace_left_ms; /* not connected: the lease ends in this many ms */
} dp_writer_lease;

/*
 * bdev_name: a replica uuid or a device name; every NBD export and NVMe/TCP
 * subsystem serving that device (or named so) is looked at. 1 with *out when
 * one of them has a writer lease, 0 when none does (or the device is not
 * exported), -EINVAL for a NULL/empty name or out.
 */
int dp_export_writer_lease(const char *bdev_name, dp_writer_lease *out);

/* ---- nexus (RAID-1 over children) ---------------------------------------- */

/*
 * A nexus mirrors one volume of `size` bytes onto 1..DP_NEXUS_MAX_CHILDREN
 * children given as URIs: bdev:///<replica-uuid>, nbd://host:port/export,
 * uring:///path, aio:///path, malloc:///name?size_mb=N (and every scheme a
 * module registers). Each child reserves DP_NEXUS_HEADER_BYTES at its start
 * for the nexus label, so a child must be at least size + that. The nexus is
 * a bdev named by its uuid: open it with dp_desc_open(uuid) or share it.
 * Label and recovery rules: agent/native/src/nexus/LABEL.md.
 */
#define DP_NEXUS_MAX_CHILDREN 8
#define DP_NEXUS_HEADER_BYTES (1024 * 1024)
#define DP_URI_MAX 256
#define DP_REASON_MAX 128

enum dp_nexus_state { DP_NEXUS_ONLINE = 0, DP_NEXUS_DEGRADED = 1, DP_NEXUS_FAULTED = 2 };
enum dp_child_state {
    DP_CHILD_ONLINE = 0, /* in sync, serves reads */
    DP_CHILD_DEGRADED = 1, /* rebuilding: takes writes, never read */
    DP_CHILD_FAULTED = 2, /* I/O error, unreachable, or faulted on request */
    DP_CHILD_OFFLINE = 3, /* taken offline on request; closed */
};

typedef struct dp_nexus_info {
    char uuid[DP_UUID_STR_LEN];
    uint64_t size_bytes;
    uint32_t state; /* enum dp_nexus_state */
    uint32_t nchildren;
    uint32_t block_size;
    uint32_t rebuilds; /* children rebuilding now */
    uint64_t generation; /* label generation */
    char reason[DP_REASON_MAX];
    uint64_t reads, writes, flushes, errors;
} dp_nexus_info;

typedef struct dp_nexus_child_info {
    char uri[DP_URI_MAX];
    uint32_t state; /* enum dp_child_state */
    uint32_t rebuild_percent; /* 0..100; 100 once in sync */
    char reason[DP_REASON_MAX];
    uint64_t rebuild_bytes_done; /* of the nexus range processed (copied or skipped holes) */
    uint64_t rebuild_bytes_total; /* nexus size */
    uint64_t rebuild_bytes_copied; /* actually copied (allocated ranges only) */
    uint64_t rebuild_rate; /* bytes/s processed since the rebuild started */
    uint32_t rebuilding; /* 1 while a rebuild runs */
    uint32_t pad;
    uint64_t reads, writes, errors;
} dp_nexus_child_info;

/*
 * Flags of create, add child and online child.
 * DP_NEXUS_FORCE: take a child whose label belongs to another nexus that did
 * not release it (the other nexus is gone for good: its data is overwritten
 * by a rebuild); online: accept a child as the source although it does not
 * hold the newest generation (writes acknowledged after its generation are
 * lost). Never needed in normal operation: see LABEL.md, "Ownership".
 */
#define DP_NEXUS_FORCE 0x1u
/* dp_nexus_destroy: mark the children's labels released (the volume is
 * deleted; another nexus or a pool may take them without force). */
#define DP_NEXUS_RELEASE 0x1u

/*
 * Create a nexus. Children without a label of this nexus are new; if every
 * child is new the nexus is fresh (generation 1, all children in sync). If
 * some children carry labels of this nexus uuid, create behaves like
 * dp_nexus_open(). Each child is claimed (one writer-owner): a child in use
 * by a pool or another nexus here, locked by another process, carrying a pool
 * label, or carrying the label of another nexus that did not release it is
 * refused with -EBUSY naming the owner (the last one is taken with
 * DP_NEXUS_FORCE). Two URIs that reach the same device or replica (bdev:///R
 * and nbd://host:port/R) are duplicates. Errors (-EINVAL/-ENODEV/-EEXIST/
 * -EBUSY...) name the field: uuid, size, children[i] (duplicate, unknown
 * scheme, unreachable, too small, sizes differ, owned). Nothing is left
 * behind on failure.
 */
int dp_nexus_create(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren, uint32_t flags);
/*
 * Recover a nexus after a restart from its children's labels: only children
 * of the newest generation serve; the others are rebuilt. Unreachable
 * children are faulted (not an error) unless they might hold newer data.
 * Refuses (-ENODEV, naming why) when no present child is known to be current
 * (only stale children left), or -ENOENT when no child has a label of it.
 * Labels of current children recording a size larger than `size` (a growth
 * interrupted or not recorded) are adopted: read the size back with
 * dp_nexus_stat. A smaller recorded size is -EINVAL.
 */
int dp_nexus_open(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren);
/* Close the nexus (labels marked clean), keeping the children's data. -EBUSY while shared/open.
 * flags: DP_NEXUS_RELEASE (deleted for good) or 0 (shutdown: reopened later). */
int dp_nexus_destroy(const char *uuid, uint32_t flags);
int dp_nexus_stat(const char *uuid, dp_nexus_info *out);
/* Nexuses by index: 0..n-1, -ENOENT past the end. */
int dp_nexus_at(uint32_t index, dp_nexus_info *out);
/* Children by index: 0..n-1, -ENOENT past the end. */
int dp_nexus_child_at(const char *uuid, uint32_t index, dp_nexus_child_info *out);
/* Add a child and start its full rebuild (returns once it started). Claimed
 * as for create (flags: DP_NEXUS_FORCE). */
int dp_nexus_add_child(const char *uuid, const char *uri, uint32_t flags);
/* Remove a child (-EBUSY for the last healthy one). Waits for the child's
 * outstanding I/O; its label is then marked out of sync (never trusted again). */
int dp_nexus_remove_child(const char *uuid, const char *uri);
/* Take a child offline (closed; -EBUSY for the last healthy one). */
int dp_nexus_child_offline(const char *uuid, const char *uri);
/*
 * Bring an offline or faulted child back: reopened and fully rebuilt from a
 * healthy child. When no child is healthy (the nexus is faulted), the child
 * that holds the newest generation is accepted as the source instead (its
 * label is SYNCED at the nexus's generation: it has every acknowledged
 * write); any other child is refused with -ENODEV naming the generations,
 * and no label is changed (DP_NEXUS_FORCE accepts it anyway). A failed call
 * changes no label.
 */
int dp_nexus_child_online(const char *uuid, const char *uri, uint32_t flags);
/* Fault a child on request (even the last one: the nexus then faults).
 * Returns once the new label generation is on the remaining children; the
 * child's own outstanding I/O (maybe to a dead peer) is not waited for. */
int dp_nexus_child_fault(const char *uuid, const char *uri);
/*
 * Grow the nexus to new_size (a multiple of its block size; never shrinks:
 * -EINVAL; the same size: 0, nothing written). Every online in-sync child
 * must already hold new_size + DP_NEXUS_HEADER_BYTES (-ENOSPC naming the
 * child: grow the replicas first); -EBUSY while a child rebuilds or
 * resyncs; -ENODEV when the nexus is faulted. The new range is zeroed on
 * every serving child, then the labels record the new size, then I/O may
 * reach it. Application I/O continues meanwhile. NBD clients that connect
 * afterwards see the new size; connected ones keep theirs. After a crash
 * mid-way, dp_nexus_open() adopts the larger size (read it back with
 * dp_nexus_stat). Faulted/offline children are rebuilt over the new size
 * when they come back (they must be large enough then).
 */
int dp_nexus_resize(const char *uuid, uint64_t new_size);

/* ---- nexus snapshots (a consistent snapshot of a volume) ------------------
 * dp_nexus_snapshot pauses the nexus (new I/O held, in-flight I/O drained, a
 * flush to every healthy child), snapshots every healthy child's replica
 * (dp_bdev_snapshot_create: local replicas in their pool, nvmf:// children
 * through their target), and resumes. Held I/O is never failed. The pause
 * ends by itself after deadline_ms (the reactor resumes the volume), and the
 * snapshot then fails with -ETIMEDOUT. A faulted, offline, rebuilding or
 * resyncing child fails the call with -ENODEV naming it (unless
 * DP_NEXUS_SNAP_SKIP_UNHEALTHY: it is skipped and reported); a child that
 * cannot be snapshotted (nbd://, files) -ENOTSUP naming it, before any
 * pause. Any failure destroys the snapshots already made: nothing is left
 * half-made. Each child's snapshot uuid is dp_nexus_snapshot_uuid(group,
 * its replica identity), so a retry is idempotent and predictable. `out`
 * (up to max_out entries, may be NULL) gets one entry per child, in child
 * order. Returns the number of children, or -errno.
 */
#define DP_NEXUS_SNAP_SKIP_UNHEALTHY 0x1u
#define DP_NEXUS_SNAP_DEADLINE_MAX_MS 600000u

typedef struct dp_nexus_snap_child {
    char uri[DP_URI_MAX];
    char replica[64]; /* the child's replica identity (a replica uuid for bdev:/// and nvmf://) */
    char snapshot[DP_UUID_STR_LEN]; /* its snapshot's uuid */
    char pad[3];
    uint32_t skipped; /* 1: unhealthy, skipped (DP_NEXUS_SNAP_SKIP_UNHEALTHY) */
    int32_t status; /* 0, or -errno of this child's step (or of undoing it) */
    char reason[DP_REASON_MAX];
} dp_nexus_snap_child;

int dp_nexus_snapshot(const char *uuid, const char *group, uint32_t deadline_ms, uint32_t flags,
                      dp_nexus_snap_child *out, uint32_t max_out);
/* Destroy a volume snapshot's parts through the nexus's children (a part already gone counts as done).
 * Returns the number of children, or the first -errno (dp_last_error names the child). */
int dp_nexus_snapshot_destroy(const char *uuid, const char *group, dp_nexus_snap_child *out, uint32_t max_out);
/* The uuid of a replica's part of volume snapshot `group` (RFC 4122 version 5: SHA-1 of the group's
 * 16 bytes, then the replica identity's text). out: DP_UUID_STR_LEN bytes. */
int dp_nexus_snapshot_uuid(const char *group, const char *replica, char *out);
/* Mark the nexus label a device carries (uri) as released, so another nexus
 * takes it without force: a clone of a snapshot of a nexus child carries a
 * copy of that child's label. 1: released; 0: no valid label, or released
 * already; -EBUSY: the device is claimed (a nexus or pool uses it). */
int dp_nexus_label_release(const char *uri);

/* ---- layout pins ----------------------------------------------------------
 * The agent reads these structs through koffi (agent/src/native/declarations.ts),
 * which cannot see this header: a field added or moved here without it would be
 * misread silently. test/unit/native-layout.test.ts checks koffi's view against
 * these same numbers, so a change must update both sides.
 */
#ifndef __cplusplus
_Static_assert(sizeof(dp_pool_info) == 336, "dp_pool_info size");
_Static_assert(offsetof(dp_pool_info, name) == 0, "dp_pool_info.name");
_Static_assert(offsetof(dp_pool_info, uuid) == 128, "dp_pool_info.uuid");
_Static_assert(offsetof(dp_pool_info, ndisks) == 168, "dp_pool_info.ndisks");
_Static_assert(offsetof(dp_pool_info, replicas) == 172, "dp_pool_info.replicas");
_Static_assert(offsetof(dp_pool_info, cluster_size) == 176, "dp_pool_info.cluster_size");
_Static_assert(offsetof(dp_pool_info, capacity_bytes) == 184, "dp_pool_info.capacity_bytes");
_Static_assert(offsetof(dp_pool_info, used_bytes) == 192, "dp_pool_info.used_bytes");
_Static_assert(offsetof(dp_pool_info, state) == 200, "dp_pool_info.state");
_Static_assert(offsetof(dp_pool_info, reason) == 204, "dp_pool_info.reason");
_Static_assert(sizeof(dp_replica_info) == 280, "dp_replica_info size");
_Static_assert(offsetof(dp_replica_info, uuid) == 0, "dp_replica_info.uuid");
_Static_assert(offsetof(dp_replica_info, pool) == 37, "dp_replica_info.pool");
_Static_assert(offsetof(dp_replica_info, size_bytes) == 168, "dp_replica_info.size_bytes");
_Static_assert(offsetof(dp_replica_info, allocated_bytes) == 176, "dp_replica_info.allocated_bytes");
_Static_assert(offsetof(dp_replica_info, thin) == 184, "dp_replica_info.thin");
_Static_assert(offsetof(dp_replica_info, open_count) == 188, "dp_replica_info.open_count");
_Static_assert(offsetof(dp_replica_info, parent) == 192, "dp_replica_info.parent");
_Static_assert(offsetof(dp_replica_info, incarnation) == 229, "dp_replica_info.incarnation");
_Static_assert(offsetof(dp_replica_info, snapshot_bytes) == 272, "dp_replica_info.snapshot_bytes");
_Static_assert(sizeof(dp_snapshot_info) == 472, "dp_snapshot_info size");
_Static_assert(offsetof(dp_snapshot_info, source) == 37, "dp_snapshot_info.source");
_Static_assert(offsetof(dp_snapshot_info, parent) == 74, "dp_snapshot_info.parent");
_Static_assert(offsetof(dp_snapshot_info, pool) == 111, "dp_snapshot_info.pool");
_Static_assert(offsetof(dp_snapshot_info, group) == 239, "dp_snapshot_info.group");
_Static_assert(offsetof(dp_snapshot_info, size_bytes) == 280, "dp_snapshot_info.size_bytes");
_Static_assert(offsetof(dp_snapshot_info, referenced_bytes) == 288, "dp_snapshot_info.referenced_bytes");
_Static_assert(offsetof(dp_snapshot_info, create_time) == 296, "dp_snapshot_info.create_time");
_Static_assert(offsetof(dp_snapshot_info, nchildren) == 304, "dp_snapshot_info.nchildren");
_Static_assert(offsetof(dp_snapshot_info, children) == 308, "dp_snapshot_info.children");
_Static_assert(offsetof(dp_snapshot_info, reserved) == 468, "dp_snapshot_info.reserved");
_Static_assert(sizeof(dp_io_stats) == 56, "dp_io_stats size");
_Static_assert(offsetof(dp_io_stats, reads) == 0, "dp_io_stats.reads");
_Static_assert(offsetof(dp_io_stats, writes) == 8, "dp_io_stats.writes");
_Static_assert(offsetof(dp_io_stats, flushes) == 16, "dp_io_stats.flushes");
_Static_assert(offsetof(dp_io_stats, unmaps) == 24, "dp_io_stats.unmaps");
_Static_assert(offsetof(dp_io_stats, bytes_read) == 32, "dp_io_stats.bytes_read");
_Static_assert(offsetof(dp_io_stats, bytes_written) == 40, "dp_io_stats.bytes_written");
_Static_assert(offsetof(dp_io_stats, errors) == 48, "dp_io_stats.errors");
_Static_assert(sizeof(dp_nexus_info) == 232, "dp_nexus_info size");
_Static_assert(offsetof(dp_nexus_info, uuid) == 0, "dp_nexus_info.uuid");
_Static_assert(offsetof(dp_nexus_info, size_bytes) == 40, "dp_nexus_info.size_bytes");
_Static_assert(offsetof(dp_nexus_info, state) == 48, "dp_nexus_info.state");
_Static_assert(offsetof(dp_nexus_info, nchildren) == 52, "dp_nexus_info.nchildren");
_Static_assert(offsetof(dp_nexus_info, block_size) == 56, "dp_nexus_info.block_size");
_Static_assert(offsetof(dp_nexus_info, rebuilds) == 60, "dp_nexus_info.rebuilds");
_Static_assert(offsetof(dp_nexus_info, generation) == 64, "dp_nexus_info.generation");
_Static_assert(offsetof(dp_nexus_info, reason) == 72, "dp_nexus_info.reason");
_Static_assert(offsetof(dp_nexus_info, reads) == 200, "dp_nexus_info.reads");
_Static_assert(offsetof(dp_nexus_info, writes) == 208, "dp_nexus_info.writes");
_Static_assert(offsetof(dp_nexus_info, flushes) == 216, "dp_nexus_info.flushes");
_Static_assert(offsetof(dp_nexus_info, errors) == 224, "dp_nexus_info.errors");
_Static_assert(sizeof(dp_nexus_child_info) == 456, "dp_nexus_child_info size");
_Static_assert(offsetof(dp_nexus_child_info, uri) == 0, "dp_nexus_child_info.uri");
_Static_assert(offsetof(dp_nexus_child_info, state) == 256, "dp_nexus_child_info.state");
_Static_assert(offsetof(dp_nexus_child_info, rebuild_percent) == 260, "dp_nexus_child_info.rebuild_percent");
_Static_assert(offsetof(dp_nexus_child_info, reason) == 264, "dp_nexus_child_info.reason");
_Static_assert(offsetof(dp_nexus_child_info, rebuild_bytes_done) == 392, "dp_nexus_child_info.rebuild_bytes_done");
_Static_assert(offsetof(dp_nexus_child_info, rebuild_bytes_total) == 400, "dp_nexus_child_info.rebuild_bytes_total");
_Static_assert(offsetof(dp_nexus_child_info, rebuild_bytes_copied) == 408, "dp_nexus_child_info.rebuild_bytes_copied");
_Static_assert(offsetof(dp_nexus_child_info, rebuild_rate) == 416, "dp_nexus_child_info.rebuild_rate");
_Static_assert(offsetof(dp_nexus_child_info, rebuilding) == 424, "dp_nexus_child_info.rebuilding");
_Static_assert(offsetof(dp_nexus_child_info, pad) == 428, "dp_nexus_child_info.pad");
_Static_assert(offsetof(dp_nexus_child_info, reads) == 432, "dp_nexus_child_info.reads");
_Static_assert(offsetof(dp_nexus_child_info, writes) == 440, "dp_nexus_child_info.writes");
_Static_assert(offsetof(dp_nexus_child_info, errors) == 448, "dp_nexus_child_info.errors");
_Static_assert(sizeof(dp_nexus_snap_child) == 496, "dp_nexus_snap_child size");
_Static_assert(offsetof(dp_nexus_snap_child, uri) == 0, "dp_nexus_snap_child.uri");
_Static_assert(offsetof(dp_nexus_snap_child, replica) == 256, "dp_nexus_snap_child.replica");
_Static_assert(offsetof(dp_nexus_snap_child, snapshot) == 320, "dp_nexus_snap_child.snapshot");
_Static_assert(offsetof(dp_nexus_snap_child, skipped) == 360, "dp_nexus_snap_child.skipped");
_Static_assert(offsetof(dp_nexus_snap_child, status) == 364, "dp_nexus_snap_child.status");
_Static_assert(offsetof(dp_nexus_snap_child, reason) == 368, "dp_nexus_snap_child.reason");
_Static_assert(offsetof(dp_snapshot_info, uuid) == 0, "dp_snapshot_info.uuid");
_Static_assert(sizeof(dp_target_limits) == 40, "dp_target_limits size");
_Static_assert(offsetof(dp_target_limits, max_connections) == 0, "dp_target_limits.max_connections");
_Static_assert(offsetof(dp_target_limits, max_connections_per_export) == 4,
               "dp_target_limits.max_connections_per_export");
_Static_assert(offsetof(dp_target_limits, handshake_timeout_ms) == 8, "dp_target_limits.handshake_timeout_ms");
_Static_assert(offsetof(dp_target_limits, fd_headroom) == 12, "dp_target_limits.fd_headroom");
_Static_assert(offsetof(dp_target_limits, conn_memory_budget) == 16, "dp_target_limits.conn_memory_budget");
_Static_assert(offsetof(dp_target_limits, memory_budget) == 24, "dp_target_limits.memory_budget");
_Static_assert(offsetof(dp_target_limits, writer_grace_ms) == 32, "dp_target_limits.writer_grace_ms");
_Static_assert(offsetof(dp_target_limits, pad) == 36, "dp_target_limits.pad");
_Static_assert(sizeof(dp_writer_lease) == 272, "dp_writer_lease size");
_Static_assert(offsetof(dp_writer_lease, host) == 0, "dp_writer_lease.host");
_Static_assert(offsetof(dp_writer_lease, proto) == 256, "dp_writer_lease.proto");
_Static_assert(offsetof(dp_writer_lease, connected) == 264, "dp_writer_lease.connected");
_Static_assert(offsetof(dp_writer_lease, grace_left_ms) == 268, "dp_writer_lease.grace_left_ms");
_Static_assert(sizeof(dp_target_stats) == 96, "dp_target_stats size");
_Static_assert(offsetof(dp_target_stats, connections) == 0, "dp_target_stats.connections");
_Static_assert(offsetof(dp_target_stats, handshakes) == 8, "dp_target_stats.handshakes");
_Static_assert(offsetof(dp_target_stats, accepted) == 16, "dp_target_stats.accepted");
_Static_assert(offsetof(dp_target_stats, refused_max_connections) == 24, "dp_target_stats.refused_max_connections");
_Static_assert(offsetof(dp_target_stats, refused_max_connections_per_export) == 32,
               "dp_target_stats.refused_max_connections_per_export");
_Static_assert(offsetof(dp_target_stats, refused_fd_headroom) == 40, "dp_target_stats.refused_fd_headroom");
_Static_assert(offsetof(dp_target_stats, handshake_timeouts) == 48, "dp_target_stats.handshake_timeouts");
_Static_assert(offsetof(dp_target_stats, accept_backoffs) == 56, "dp_target_stats.accept_backoffs");
_Static_assert(offsetof(dp_target_stats, memory_bytes) == 64, "dp_target_stats.memory_bytes");
_Static_assert(offsetof(dp_target_stats, memory_waits) == 72, "dp_target_stats.memory_waits");
_Static_assert(offsetof(dp_target_stats, writer_leases) == 80, "dp_target_stats.writer_leases");
_Static_assert(offsetof(dp_target_stats, writes_refused) == 88, "dp_target_stats.writes_refused");
#endif

#ifdef __cplusplus
}
#endif
#endif /* DATAPATH_H */
