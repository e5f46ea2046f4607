/*
 * nexus.h - internals of the nexus: a RAID-1 bdev over child bdevs.
 *
 * Threading: a nexus belongs to one reactor (that of its first child, so a
 * nexus over local replicas needs no thread hop). All state below is touched
 * only on that reactor, except where marked. Control functions run on
 * koffi worker threads: they hold nx_ctl_lock (one control operation at a
 * time), make short state changes with dp_reactor_call() and wait for
 * asynchronous work (I/O drain, label writes, rebuild stop) on nx->ev_cond.
 *
 * Children can live on other reactors (remote children, replicas of a pool
 * on another reactor): legs are then sent there with dp_reactor_send() and
 * their completion is sent back.
 */
#ifndef DP_NEXUS_H
#define DP_NEXUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bdev/bdev.h"
#include "util/crc32c.h"
#include "util/le.h"
#include "util/uuid.h"
#include "reactor/reactor.h"

#define NX_HDR_SIZE (1ull << 20) /* reserved at each child's start */
#define NX_LABEL_BLOCK 4096u /* one label slot */
#define NX_LABEL_SIZE 512u /* encoded bytes in a slot (crc covers them) */
#define NX_MAX_CHILDREN 8u
#define NX_URI_MAX 256u
#define NX_REASON_MAX 128u
#define NX_IO_POOL 256u /* nexus I/O contexts, allocated at create */
#define NX_RB_SEG (1ull << 20) /* rebuild segment */
#define NX_RB_DEPTH 8u /* segments in flight per rebuild */

/* ---- label (label.c) ----------------------------------------------------- */

#define NX_LABEL_MAGIC "MAYANXL1"
#define NX_LABEL_VERSION 1u
#define NX_LABEL_SYNCED 0x1u /* holds every write up to `generation` */
#define NX_LABEL_CLEAN 0x2u /* nexus closed orderly (no write in flight) */
#define NX_LABEL_RELEASED 0x4u /* the nexus was deleted: the child is free for another owner */

struct nx_label {
    uint8_t nexus_uuid[16];
    uint8_t child_id[16];
    uint64_t seq; /* bumped on every label write; picks the slot */
    uint64_t generation;
    uint64_t data_offset;
    uint64_t data_size;
    uint32_t flags;
    uint32_t block_size;
    uint32_t nmembers;
    uint8_t members[NX_MAX_CHILDREN][16]; /* ids in sync at `generation` */
};

/* Fill one NX_LABEL_BLOCK (zero padded). */
void nx_label_encode(const struct nx_label *l, uint8_t *block);
/* 0: valid; -ENOENT: no magic (blank); -EINVAL: damaged (why says how). */
int nx_label_decode(const uint8_t *block, struct nx_label *out, char *why, size_t whylen);
/*
 * Decode both slots (2 * NX_LABEL_BLOCK bytes from the child's start) and
 * pick the valid one with the highest seq. Returns 0, -ENOENT (no label at
 * all) or -EINVAL (a magic but no valid slot).
 */
int nx_label_read_slots(const uint8_t *two_blocks, struct nx_label *out, char *why, size_t whylen);
static inline uint64_t nx_label_slot_offset(uint64_t seq)
{
    return (seq & 1) * NX_LABEL_BLOCK;
}

/* ---- I/O structures ------------------------------------------------------ */

struct nexus;
struct nx_child;
struct nx_leg;

typedef void (*nx_leg_done_fn)(struct nx_leg *leg);

/* One request to one child. Completion runs `done` on the nexus reactor. */
struct nx_leg {
    struct dp_bdev_io io;
    struct iovec iov; /* for legs that own their buffer */
    struct nx_child *child;
    struct dp_bdev *bdev; /* the child's bdev when submitted */
    int status;
    nx_leg_done_fn done;
    void *ctx;
};

/* An application request to the nexus. */
struct nx_io {
    struct dp_bdev_io *parent;
    struct nexus *nx;
    struct nx_io *next, *prev; /* in-flight write list, wait and hold queues */
    uint32_t pending; /* legs outstanding */
    uint32_t tried; /* reads: bitmask of children tried */
    int status;
    bool inflight_listed;
    struct nx_leg legs[NX_MAX_CHILDREN];
};

struct nx_ioq {
    struct nx_io *head, *tail;
};

enum nx_child_state { /* same values as DP_CHILD_* */
                      NXC_ONLINE = 0,
                      NXC_DEGRADED = 1, /* rebuilding: takes writes, never reads */
                      NXC_FAULTED = 2,
                      NXC_OFFLINE = 3,
};

enum nx_state { NX_ONLINE = 0, NX_DEGRADED = 1, NX_FAULTED = 2 };

struct nx_rebuild;

struct nx_child {
    struct nexus *nx;
    char uri[NX_URI_MAX];
    struct dp_bdev *bdev; /* NULL while closed (offline, unreachable) */
    char ident[64]; /* what the child is (dp_bdev_ident), kept while closed */
    enum nx_child_state state;
    char reason[NX_REASON_MAX];
    uint8_t id[16];
    uint64_t label_seq;
    uint8_t *label_buf; /* NX_LABEL_BLOCK, DMA-able */
    struct nx_leg label_leg;
    uint32_t inflight; /* legs outstanding */
    uint64_t reads, writes, errors;
    /*
     * Resync after an unclean shutdown: an online member that holds every
     * acknowledged write but may differ from the read source in blocks of
     * writes that were in flight at the crash. Takes writes, serves no
     * reads, until its rebuild from the source has finished.
     */
    bool resync;
    struct nx_rebuild *rebuild; /* while rebuilding */
    /* last or current rebuild, for stats */
    uint64_t rb_done, rb_total, rb_copied, rb_rate;
    bool rb_active;
    /*
     * Replaced (revive.c): faulted by ENODEV, the verdict of a remote child
     * whose device is no longer the one it verified (re-created). The
     * reviver reopens it as a new child and rebuilds it. by_hand: the
     * operator faulted or offlined it; it is never revived by itself.
     */
    bool replaced, by_hand;
    /* child.c, under nx_ctl_lock: the revive attempt that reopens it unlocked (0: none yet) */
    uint64_t revive_ticket;
};

struct nx_rb_seg;

struct nexus {
    struct dp_bdev bdev; /* registered under the uuid */
    char uuid[37];
    uint8_t uuid_bin[16];
    uint64_t size;
    uint32_t block_size;
    struct dp_reactor *reactor;
    enum nx_state state;
    char reason[NX_REASON_MAX];
    uint64_t generation;
    /*
     * The newest generation whose labels are stable on some child. A child
     * that left last (no child was there to take a newer generation) holds
     * it, or a newer one whose write did not complete: such a child has
     * every acknowledged write and may come back as the source (child.c).
     */
    uint64_t gen_durable;
    bool was_dirty; /* opened over labels not marked clean */
    /*
     * Clean/dirty in the labels of the members: CLEAN on disk until the first
     * write after open (or clean close), which waits in dirty_wait until a
     * label round without CLEAN is stable (nx_label_mark_dirty); then DIRTY
     * until the orderly close. Never per write.
     */
    enum { NX_LBL_CLEAN, NX_LBL_MARKING, NX_LBL_DIRTY } dirty_state;
    struct nx_ioq dirty_wait; /* writes waiting for the dirty mark */
    uint64_t dirty_marks; /* times marked dirty (tests) */
    struct nx_child *children[NX_MAX_CHILDREN];
    uint32_t nchildren;
    uint32_t rr;

    struct nx_io *io_mem;
    struct nx_io *io_free;
    struct dp_bdev_io *wait_head, *wait_tail; /* waiting for a free nx_io */
    struct nx_ioq inflight_writes; /* at children: the rebuild range lock checks them */
    struct nx_ioq lock_wait; /* writes waiting for a rebuild segment */
    struct nx_ioq held; /* done, waiting for a label update */
    uint32_t app_inflight; /* nx_io in use */
    struct nx_rb_seg *locks; /* rebuild segments locked or locking */

    /* label updates */
    bool label_busy, label_again;
    bool label_newgen; /* the next round bumps the generation */
    bool round_dirty; /* the round in progress writes "dirty" */
    uint32_t label_pending;
    uint64_t label_rounds; /* completed updates (tests) */
    /*
     * Data size written into labels. Equal to `size` except during a resize:
     * the labels get the new size (after the new range was zeroed on every
     * serving child) before `size` lets I/O reach it.
     */
    uint64_t label_size;
    struct nx_child *label_only; /* tests: a round writes this child only */

    bool destroying;

    /* control-thread waits: the reactor bumps ev_seq and broadcasts */
    pthread_mutex_t ev_lock;
    pthread_cond_t ev_cond;
    uint64_t ev_seq;

    /*
     * Pause for a snapshot (pause.c): new requests wait in the wait FIFO
     * until resume or the deadline timer, which resumes by itself and sets
     * pause_expired (read by the control thread with __atomic_load_n).
     */
    bool paused, pause_expired;
    uint64_t pause_seq;
    struct nx_pause_timer *pause_timer;
    uint64_t pauses; /* tests, stats */

    uint64_t reads, writes, flushes, errors;
    uint64_t lock_waits; /* writes that waited for a rebuild segment */
    uint64_t seg_waits; /* rebuild segments that waited for writes */
    struct nexus *reg_next;
};

/* nexus.c: core */
/* One control operation at a time (every dp_nexus_* that changes a nexus). */
extern pthread_mutex_t nx_ctl_lock;
void nx_notify(struct nexus *nx);
/* Control thread: wait until pred (evaluated on the nexus reactor) holds. */
void nx_wait_until(struct nexus *nx, bool (*pred)(struct nexus *, void *), void *arg);
void nx_update_state(struct nexus *nx);
void nx_child_fault(struct nx_child *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nx_resync_check(struct nexus *nx);
/* Registry of live nexuses (under its own lock). */
void nx_list_add(struct nexus *nx);
struct nexus *nx_find(const char *uuid);
/* nx_ctl_lock taken and the nexus found; or NULL with the lock released and
 * dp_set_error "nexus '<uuid>' not found" (the caller returns -ENOENT). */
struct nexus *nx_ctl_find(const char *uuid);
struct nx_child *nx_find_child(struct nexus *nx, const char *uri);
bool nx_valid_uri(const char *uri);
struct nx_child *nx_child_new(struct nexus *nx, const char *uri);
void nx_child_free(struct nx_child *c);
/* Open a child URI and claim it for nx (one writer-owner); *err gets the reason. */
int nx_open_child(struct nexus *nx, const char *uri, struct dp_bdev **out, char *err, size_t errlen);
/* Its two halves: open (not a nexus), and claim for nx (the reviver opens unlocked, claims under nx_ctl_lock). */
int nx_open_device(const char *uri, struct dp_bdev **out, char *err, size_t errlen);
int nx_claim_device(struct nexus *nx, struct dp_bdev *b, char *err, size_t errlen);
/* Drop a child's device: its claim, then the reference. */
void nx_child_bdev_put(struct nexus *nx, struct dp_bdev *b);
/* Is the child (its first two label blocks in `two`) ours to write? -EBUSY with why (LABEL.md, "Ownership"). */
int nx_child_owner_check(struct nexus *nx, const uint8_t *two, uint32_t flags, char *why, size_t len);
/* The child of nx other than self that is the same device or replica as b, or NULL. */
struct nx_child *nx_same_as_child(struct nexus *nx, struct dp_bdev *b, struct nx_child *self);
/* Reactor message: start the rebuilds of children that wait for one. */
void nx_start_rebuilds_msg(void *nexus);
void nx_free(struct nexus *nx);

/* child.c */
uint32_t nx_online_count(struct nexus *nx);
/*
 * Reviver thread: reopen a replaced child and rebuild it. Takes nx_ctl_lock
 * itself, but not across the reopen (a network connect). 1: reopening
 * failed, try again after next_ms; 0: done (rebuilding, or kept faulted with
 * the reason why, or the child/nexus is gone, not replaced or changed by hand
 * during the reopen).
 */
int nx_child_revive(const char *uuid, const char *uri, uint32_t attempt, uint32_t max, uint32_t next_ms);

/* revive.c */
/* Reactor: a leg of c failed with status after c was faulted; ENODEV marks it replaced. */
void nx_child_io_error(struct nx_child *c, int status);
/* Stop the reviver thread (dp_fini, before the nexuses close). */
void nx_revive_shutdown(void);
/* After the nexuses closed (dp_fini): allow a new reviver for a later dp_init. */
void nx_revive_reset(void);
/* dp_fini is stopping the reviver: an attempt in progress drops what it opened. */
bool nx_revive_stopping(void);
#define NX_REVIVE_TRIES 20u
/* Tries to reopen a replaced child (NX_REVIVE_TRIES; tests lower it). */
extern uint32_t nx_revive_tries;
#define NX_REVIVE_FIRST_MS 100u
#define NX_REVIVE_MAX_MS 5000u

/* label_io.c */
/* A label round for every online child (same generation), now or after the one in progress. */
void nx_label_request(struct nexus *nx);
void nx_label_bump(struct nexus *nx);
void nx_label_mark_dirty(struct nexus *nx);
/* Control thread, no I/O to the child: write its label (both slots unless SYNCED), then flush. */
int nx_child_write_label_sync(struct nexus *nx, struct nx_child *c, uint32_t flags, uint64_t gen,
                              const struct nx_label *members_from);
/* Continue the child's label seq from the labels in `two` (any nexus), so our next label wins. */
void nx_child_adopt_seq(struct nx_child *c, const uint8_t *two);
/* Tests: drop a nexus as a crash would (no clean labels written). */
int nx_test_drop_unclean(const char *uuid);
/*
 * Tests: the next dp_nexus_resize stops as a crash would and returns -EINTR:
 * 1 after zeroing the new range, 2 after the label of the first serving
 * child only, 3 after every label (the size not yet published in memory).
 * Then drop the nexus with nx_test_drop_unclean. 0: off.
 */
extern int nx_test_resize_stop;
bool nx_label_idle(const struct nexus *nx); /* label_io.c */
extern const struct dp_bdev_ops nx_bdev_ops;

/* io.c */
void nx_leg_submit(struct nexus *nx, struct nx_leg *leg);
void nx_io_submit(struct dp_bdev *bdev, struct dp_bdev_io *io);
int nx_io_block_status(struct dp_bdev *bdev, uint64_t offset, uint64_t len, uint64_t *len_out, uint32_t *status_out);
int nx_io_init(struct nexus *nx);
void nx_io_fini(struct nexus *nx);
void nx_io_release_held(struct nexus *nx);
void nx_io_release_wait(struct nexus *nx);
void nx_io_release_dirty_wait(struct nexus *nx);
void nx_io_locks_changed(struct nexus *nx);
bool nx_io_write_overlaps(struct nexus *nx, uint64_t off, uint64_t len);
struct nx_child *nx_pick_read_child(struct nexus *nx, uint32_t exclude_mask);

/* pause.c (control thread, under nx_ctl_lock) */
/*
 * Hold new I/O, wait for the I/O in flight, flush every healthy child. After
 * deadline_ms the reactor resumes by itself (a stuck caller never leaves the
 * volume frozen). 0, or -ETIMEDOUT / the flush's error (dp_set_error naming
 * the child) with the nexus resumed.
 */
int nx_pause(struct nexus *nx, uint32_t deadline_ms);
/* Release held I/O in order. 0, or -ETIMEDOUT when the deadline resumed it first. */
int nx_resume(struct nexus *nx);
/* Detach a pending deadline timer (nx_free). */
void nx_pause_forget(struct nexus *nx);

/* snapshot.c: the per-child snapshot uuid (version 5 of group + identity). */
int nx_snapshot_uuid(const uint8_t group[16], const char *ident, char out[37]);

/* rebuild.c */
int nx_rebuild_start(struct nx_child *dst);
void nx_rebuild_stop(struct nx_child *dst);
void nx_rebuild_restart(struct nx_child *dst);
void nx_rebuild_writes_drained(struct nexus *nx);

struct nx_rb_seg {
    struct nx_rebuild *rb;
    struct nx_rb_seg *lock_next;
    uint64_t off, len; /* nexus-relative */
    uint64_t pos, run; /* current run within the segment */
    uint32_t run_status;
    int step;
    bool listed, locked, waited;
    struct nx_child *src;
    struct nx_leg leg;
    void *buf;
};

static inline bool nx_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static inline int nx_child_index(const struct nexus *nx, const struct nx_child *c)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i] == c)
            return (int)i;
    return -1;
}

#endif /* DP_NEXUS_H */
