/*
 * bdev.h - the block-device layer every module builds on.
 *
 * A bdev is a named block device owned by one reactor. Modules provide it:
 * bdev/uring.c (uring:// and aio:// files and block devices), bdev/malloc.c
 * (malloc://), pool/lvol.c (replicas), later nbd://, iscsi://, nvmf:// and
 * the nexus. Consumers (descriptors, the NBD target, pools on top of base
 * bdevs, the nexus on its children) only see this interface.
 *
 * Rules
 *  - dp_bdev_submit() is called on the bdev's reactor thread; the completion
 *    callback runs on that same thread, never inside dp_bdev_submit() itself
 *    (modules defer synchronous completions), so callers need no re-entrancy
 *    guards.
 *  - offset/length of READ/WRITE/UNMAP/WRITE_ZEROES are multiples of
 *    block_size and inside the device; the generic layer checks this before
 *    the module sees the request.
 *  - Buffers for READ/WRITE are iovecs; O_DIRECT modules need them aligned to
 *    DP_BUF_ALIGN: use dp_buf_alloc() for buffers you allocate.
 */
#ifndef DP_BDEV_H
#define DP_BDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "reactor/reactor.h"
#include "util/container.h"
#include "util/error.h"

#define DP_BUF_ALIGN 4096
#define DP_IO_MAX_IOV 64

struct dp_bdev;
struct dp_bdev_io;

enum dp_bdev_io_type {
    DP_IO_READ,
    DP_IO_WRITE,
    DP_IO_FLUSH,
    DP_IO_UNMAP,
    DP_IO_WRITE_ZEROES,
};

/* io->flags */
#define DP_IO_FUA 0x1u /* write reaches stable storage before completion */
/* Hint: do not do the transfer on the reactor thread (uring's inline
 * preadv/pwritev on tmpfs and buffered files); let io_uring's workers do it,
 * in parallel with the reactor. The nexus sets it on all but one leg of a
 * write. Modules without an inline path ignore it. */
#define DP_IO_NOINLINE 0x2u

typedef void (*dp_bdev_io_cb)(struct dp_bdev_io *io, int status /* 0 or -errno */);

/*
 * One request. The submitter owns the memory (embed it, or pool it: the hot
 * path allocates nothing). `driver` is scratch space for the module that
 * handles it; stacked modules (lvol over uring) use a child io of their own.
 */
struct dp_bdev_io {
    enum dp_bdev_io_type type;
    uint32_t flags;
    uint64_t offset;
    uint64_t length;
    struct iovec *iov;
    int iovcnt;
    dp_bdev_io_cb cb;
    void *cb_arg;
    struct dp_bdev *bdev;
    uint64_t driver[16];
    /* private to bdev.c: the submitter's callback while the generic layer
     * counts the completion */
    dp_bdev_io_cb gen_cb;
    int gen_status;
};

/* Ranges reported by block_status. */
#define DP_BS_ALLOCATED 0x0u
#define DP_BS_HOLE 0x1u /* unallocated: reads as zeros */

struct dp_bdev_ops {
    void (*submit)(struct dp_bdev *bdev, struct dp_bdev_io *io);
    /*
     * Optional. Sets *len_out to the length of the run starting at offset
     * (<= len) whose status is *status_out. Runs on the reactor thread;
     * must not block. Bdevs without it are fully allocated.
     */
    int (*block_status)(struct dp_bdev *bdev, uint64_t offset, uint64_t len, uint64_t *len_out, uint32_t *status_out);
    /* Called (on the reactor) when the last reference goes. Frees the bdev. */
    void (*destroy)(struct dp_bdev *bdev);
    /*
     * Optional. Control thread, may block: learn the device's current size
     * again (a remote export that grew). Grow only: 0 with bdev->size updated
     * or unchanged; -errno (dp_set_error) if the size cannot be had or shrank.
     */
    int (*refresh_size)(struct dp_bdev *bdev);
    /*
     * Optional (snapshots, FORMAT.md v2). Control thread, may block. The
     * caller has quiesced writers (a nexus pauses first). `snap_uuid` is the
     * new snapshot's uuid (text); `group` is the volume snapshot it belongs
     * to (text uuid, or "" for a snapshot of this device alone), recorded
     * with it. 0, or -errno after dp_set_error naming the device; a device
     * that cannot be snapshotted has no op (the generic layer says so).
     * Local replicas (pool/lvol.c) do it in their pool; an nvmf:// child
     * asks the target that serves its replica (an NVMe vendor admin command).
     */
    int (*snapshot_create)(struct dp_bdev *bdev, const char *snap_uuid, const char *group);
    /* Optional. Undo a snapshot_create (one with no clones): a volume
     * snapshot that failed on another child leaves nothing half-made. */
    int (*snapshot_destroy)(struct dp_bdev *bdev, const char *snap_uuid);
};

struct dp_io_counters {
    uint64_t reads, writes, flushes, unmaps;
    uint64_t bytes_read, bytes_written;
    uint64_t errors;
};

struct dp_bdev {
    char name[128]; /* registry key: a URI or a replica uuid */
    uint64_t size; /* bytes; may grow (lvol resize) */
    uint32_t block_size; /* 512 or 4096 */
    bool thin; /* block_status may report holes */
    /* Writes, unmaps and write-zeroes fail -EROFS in the generic layer (a
     * snapshot); targets advertise it (NBD_FLAG_READ_ONLY, NVMe write
     * protect). Set by the module before registering. */
    bool read_only;
    const struct dp_bdev_ops *ops;
    void *ctx; /* module state */
    struct dp_reactor *reactor;
    int refs; /* registry + open handles; under the registry lock */
    struct dp_io_counters stats; /* atomic (relaxed) updates */
    /*
     * What the device is, whatever URI reached it: a replica or export uuid
     * ("R" for bdev:///R and nbd://host:port/R alike), "file:DEV:INO" for a
     * file. Empty: only the name identifies it. Set by the module at create.
     */
    char ident[64];
    /* private to bdev.c */
    struct dp_bdev *reg_next;
    const void *claim_holder; /* the one writer-owner (dp_bdev_claim), under the registry lock */
    char claim_owner[96];
    bool registered;
    bool auto_release; /* opened by URI: unregistered when the last opener puts it */
};

/* ---- generic layer (bdev/bdev.c) ---------------------------------------- */

/* The bdev's refresh_size op if it has one (control thread, may block); else 0. */
int dp_bdev_refresh_size(struct dp_bdev *bdev);

/* The bdev's snapshot ops (control thread, may block). A device without
 * them gives -ENOTSUP naming it. */
int dp_bdev_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group);
int dp_bdev_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid);

/* Submit on the bdev's reactor thread. Validates range/alignment, counts stats. */
void dp_bdev_submit(struct dp_bdev *bdev, struct dp_bdev_io *io);

/*
 * Registry. Names are unique. dp_bdev_register takes the registry's
 * reference; dp_bdev_unregister drops it (the bdev is destroyed when open
 * references are gone too).
 */
int dp_bdev_register(struct dp_bdev *bdev);
void dp_bdev_unregister(struct dp_bdev *bdev);
/* Look up by name and take a reference, or NULL. Thread-safe. */
struct dp_bdev *dp_bdev_get(const char *name);
void dp_bdev_put(struct dp_bdev *bdev);

/*
 * Claims (one writer-owner per device, as SPDK's bdev claims): a pool claims
 * its disks, a nexus its children. `holder` identifies the claimer (any
 * pointer), `owner` names it for errors ("pool 'p0'", "nexus 'UUID'").
 * Claiming again with the same holder is a no-op. Another holder gets
 * -EBUSY with dp_set_error naming the device and its current owner.
 */
int dp_bdev_claim(struct dp_bdev *bdev, const void *holder, const char *owner);
/* Drop the claim if `holder` has it (safe to call when it does not). */
void dp_bdev_unclaim(struct dp_bdev *bdev, const void *holder);
/* The current owner's name into buf ("" when unclaimed). */
void dp_bdev_claim_owner(struct dp_bdev *bdev, char *buf, size_t len);
/* The identity of a device (bdev->ident, else its name). */
const char *dp_bdev_ident(const struct dp_bdev *bdev);

/*
 * Open (create if needed) a base bdev from a URI: uring:///path,
 * aio:///path, malloc:///name?size_mb=N, an absolute path (= uring://), and
 * the schemes every registered module opens (struct dp_module). Returns a
 * reference. Errors go to dp_set_error() naming the URI.
 */
int dp_bdev_open_uri(const char *uri, struct dp_bdev **out);

/*
 * A scheme's create function gets the full URI and returns a new bdev
 * (refs 0, name set, normally to the URI, ops/reactor/size set) that is NOT
 * registered: dp_bdev_open_uri() registers it and hands the caller a
 * reference. (A create function may instead return an already registered
 * bdev together with a reference it took.) On failure it returns -errno
 * after dp_set_error(). URI bdevs are unregistered and destroyed when their
 * last opener puts them. dp_bdev_open_uri() first looks the URI up by name,
 * so the same URI opened twice gives the same bdev.
 */
typedef int (*dp_bdev_create_fn)(const char *uri, struct dp_bdev **out);

/*
 * A module of the data path (as SPDK's bdev modules): the URI schemes it
 * opens, and what dp_fini must close, in stages (targets stop first, then
 * volumes close over their children, then stores over their disks, then the
 * devices). Each module fills one static table and registers it with
 * DP_MODULE_REGISTER: the core keeps the list, never a table of every module.
 */
enum dp_fini_stage { DP_FINI_TARGETS = 0, DP_FINI_VOLUMES = 1, DP_FINI_STORES = 2 };

struct dp_module {
    const char *name;
    /* URI schemes ("uring", "aio"), NULL-terminated, opened by `create`; or NULL */
    const char *const *schemes;
    dp_bdev_create_fn create;
    /* dp_fini: close what the module holds, at its stage; or NULL */
    void (*fini)(void);
    enum dp_fini_stage fini_stage;
    struct dp_module *next; /* the core's list */
};

void dp_module_register(struct dp_module *m);
#define DP_MODULE_REGISTER(m) \
    __attribute__((constructor)) static void dp_module_register_##m(void) \
    { \
        dp_module_register(&(m)); \
    }
/* dp_fini: every module's fini, stage by stage. */
void dp_modules_fini(void);

/*
 * Synchronous I/O for control paths (pool create/import, labels), from a
 * non-reactor thread: sends the request to the bdev's reactor and waits.
 */
int dp_bdev_rw_sync(struct dp_bdev *bdev, enum dp_bdev_io_type type, void *buf, uint64_t offset, uint64_t length);

void *dp_buf_alloc(size_t len); /* DP_BUF_ALIGN-aligned, zeroed */
void dp_buf_free(void *buf);

/* dp_fini: drop the registry's reference of every bdev. */
void dp_bdev_unregister_all(void);

/* Complete io with status on its bdev's reactor, later (never inline). */
void dp_bdev_io_complete_deferred(struct dp_bdev_io *io, int status);

#endif /* DP_BDEV_H */
