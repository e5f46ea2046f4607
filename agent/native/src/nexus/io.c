/*
 * io.c - the nexus I/O path (all on the nexus reactor).
 *
 * Writes (and unmap, write-zeroes, flush) fan out to every online child and
 * to rebuilding children; they complete when every leg has, successfully
 * if at least one child that is still online took them. Reads go to the
 * online child with the fewest requests outstanding (round-robin among
 * equals); an error faults that child and the read is retried on another.
 *
 * While a label update is being written (a child left), finished writes are
 * held: nothing is acknowledged that a stale child could later claim to
 * have. Writes overlapping a segment the rebuild is copying wait for it
 * (rebuild.c). The first write after the labels said clean waits until they
 * say dirty (nx_label_mark_dirty; LABEL.md). While the nexus is paused for a
 * snapshot (pause.c), new requests wait in the same FIFO as those waiting for
 * a free context, and start in order when it resumes.
 *
 * Cost: the nexus itself adds well under a microsecond per write; the legs
 * dominate. On tmpfs and buffered files a leg is a memcpy that uring.c does
 * on the reactor thread, so three legs cost three times a single device.
 * All but one leg to children of this reactor carry DP_IO_NOINLINE: io_uring
 * workers do those copies in parallel (tools/dp-nexus-bench measures it).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nexus/nexus.h"
#include "util/container.h"

/* ---- legs ------------------------------------------------------------------ */

static void leg_finish(struct nx_leg *leg)
{
    struct nx_child *c = leg->child;
    struct nexus *nx = c->nx;
    c->inflight--;
    leg->done(leg);
    if (c->inflight == 0 && (c->state >= NXC_FAULTED || nx->destroying))
        nx_notify(nx);
}

static void leg_back_msg(void *arg)
{
    leg_finish(arg);
}

static void leg_cb(struct dp_bdev_io *io, int status)
{
    struct nx_leg *leg = container_of(io, struct nx_leg, io);
    leg->status = status;
    struct nexus *nx = leg->child->nx;
    if (dp_reactor_self() != nx->reactor)
        dp_reactor_send(nx->reactor, leg_back_msg, leg); /* the child lives on another reactor */
    else
        leg_finish(leg);
}

void nx_leg_submit(struct nexus *nx, struct nx_leg *leg)
{
    struct nx_child *c = leg->child;
    (void)nx;
    c->inflight++;
    leg->bdev = c->bdev;
    leg->status = 0;
    leg->io.cb = leg_cb;
    leg->io.cb_arg = leg;
    dp_bdev_submit(c->bdev, &leg->io); /* hops to the child's reactor if needed */
}

/* ---- nx_io pool and queues ---------------------------------------------------- */

int nx_io_init(struct nexus *nx)
{
    nx->io_mem = calloc(NX_IO_POOL, sizeof *nx->io_mem);
    if (!nx->io_mem)
        return -ENOMEM;
    for (uint32_t i = 0; i < NX_IO_POOL; i++) {
        nx->io_mem[i].nx = nx;
        nx->io_mem[i].next = nx->io_free;
        nx->io_free = &nx->io_mem[i];
    }
    return 0;
}

void nx_io_fini(struct nexus *nx)
{
    free(nx->io_mem);
    nx->io_mem = NULL;
    nx->io_free = NULL;
}

static void q_push(struct nx_ioq *q, struct nx_io *n)
{
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

static void q_del(struct nx_ioq *q, struct nx_io *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
}

static void start(struct nexus *nx, struct nx_io *nio, struct dp_bdev_io *parent);

/* Complete the application request; `deferred` when possibly inside its submit. */
static void finish(struct nx_io *nio, int status, bool deferred)
{
    struct nexus *nx = nio->nx;
    struct dp_bdev_io *parent = nio->parent;
    if (status < 0)
        nx->errors++;
    nio->parent = NULL;
    nio->next = nx->io_free;
    nx->io_free = nio;
    nx->app_inflight--;
    if (deferred)
        dp_bdev_io_complete_deferred(parent, status);
    else
        parent->cb(parent, status);
    if (!nx->paused)
        nx_io_release_wait(nx);
    if (nx->app_inflight == 0 && (nx->destroying || nx->paused))
        nx_notify(nx);
}

/* Start the requests that wait for a free nx_io or for the end of a pause, in order. */
void nx_io_release_wait(struct nexus *nx)
{
    while (nx->wait_head && nx->io_free) {
        struct dp_bdev_io *w = nx->wait_head;
        nx->wait_head = (struct dp_bdev_io *)(uintptr_t)w->driver[0];
        if (!nx->wait_head)
            nx->wait_tail = NULL;
        struct nx_io *n = nx->io_free;
        nx->io_free = n->next;
        start(nx, n, w);
    }
}

/* ---- reads ---------------------------------------------------------------------- */

struct nx_child *nx_pick_read_child(struct nexus *nx, uint32_t exclude_mask)
{
    uint32_t n = nx->nchildren;
    if (n == 0)
        return NULL;
    uint32_t start_at = nx->rr++ % n;
    struct nx_child *best = NULL;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start_at + k) % n;
        struct nx_child *c = nx->children[i];
        /* resyncing children may differ from the source in unacknowledged blocks */
        if (c->state != NXC_ONLINE || c->resync || !c->bdev || (exclude_mask & (1u << i)))
            continue;
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    return best;
}

static void read_next(struct nx_io *nio, bool deferred);

static void read_leg_done(struct nx_leg *leg)
{
    struct nx_io *nio = leg->ctx;
    if (leg->status == 0) {
        finish(nio, 0, false);
        return;
    }
    leg->child->errors++;
    nx_child_fault(leg->child, "read error: %s", strerror(-leg->status));
    nx_child_io_error(leg->child, leg->status);
    read_next(nio, false);
}

static void read_next(struct nx_io *nio, bool deferred)
{
    struct nexus *nx = nio->nx;
    /* exclude the children tried already (by their current index) */
    uint32_t mask = 0;
    for (uint32_t k = 0; k < nio->tried; k++) {
        int idx = nx_child_index(nx, nio->legs[k].child);
        if (idx >= 0)
            mask |= 1u << idx;
    }
    struct nx_child *c = nio->tried < NX_MAX_CHILDREN ? nx_pick_read_child(nx, mask) : NULL;
    if (!c) {
        finish(nio, -EIO, deferred);
        return;
    }
    struct dp_bdev_io *p = nio->parent;
    struct nx_leg *leg = &nio->legs[nio->tried++];
    memset(&leg->io, 0, offsetof(struct dp_bdev_io, driver));
    leg->io.type = DP_IO_READ;
    leg->io.flags = p->flags;
    leg->io.offset = p->offset + NX_HDR_SIZE;
    leg->io.length = p->length;
    leg->io.iov = p->iov;
    leg->io.iovcnt = p->iovcnt;
    leg->child = c;
    leg->done = read_leg_done;
    leg->ctx = nio;
    c->reads++;
    nx_leg_submit(nx, leg);
}

/* ---- writes, unmap, write-zeroes, flush -------------------------------------------- */

static void complete_write(struct nx_io *nio)
{
    /* acknowledged only if a child that is still online has it */
    bool ok = false, nospace = false;
    for (uint32_t k = 0; k < nio->tried; k++) {
        if (nio->legs[k].status == 0 && nio->legs[k].child->state == NXC_ONLINE)
            ok = true;
        nospace |= nio->legs[k].status == -ENOSPC;
    }
    finish(nio, ok ? 0 : nospace ? -ENOSPC : -EIO, false);
}

/*
 * A leg that failed with ENOSPC (a thin child whose pool is full) holds what
 * it held before, as far as acknowledged data goes. If no online child took
 * the write, nothing was acknowledged that it lacks: the writer gets ENOSPC
 * and the child stays current for reads, ready once space returns. If
 * another online child took it, this child missed a write the nexus
 * acknowledges: it is faulted like any failed leg. Decided when every leg is
 * done, before the write completes.
 */
static void fault_failed_legs(struct nx_io *nio)
{
    bool taken = false;
    for (uint32_t k = 0; k < nio->tried; k++)
        if (nio->legs[k].status == 0 && nio->legs[k].child->state == NXC_ONLINE)
            taken = true;
    for (uint32_t k = 0; k < nio->tried; k++) {
        struct nx_leg *leg = &nio->legs[k];
        if (leg->status != -ENOSPC || !taken)
            continue;
        nx_child_fault(leg->child, "%s error: %s", leg->io.type == DP_IO_FLUSH ? "flush" : "write",
                       strerror(-leg->status));
    }
}

static void write_leg_done(struct nx_leg *leg)
{
    struct nx_io *nio = leg->ctx;
    struct nexus *nx = nio->nx;
    if (leg->status < 0) {
        leg->child->errors++;
        if (leg->status != -ENOSPC) {
            nx_child_fault(leg->child, "%s error: %s", leg->io.type == DP_IO_FLUSH ? "flush" : "write",
                           strerror(-leg->status));
            nx_child_io_error(leg->child, leg->status);
        }
    }
    if (--nio->pending)
        return;
    fault_failed_legs(nio);
    if (nio->inflight_listed) {
        q_del(&nx->inflight_writes, nio);
        nio->inflight_listed = false;
        if (nx->locks)
            nx_rebuild_writes_drained(nx);
    }
    if (!nx_label_idle(nx)) {
        q_push(&nx->held, nio);
        return;
    }
    complete_write(nio);
}

void nx_io_release_held(struct nexus *nx)
{
    struct nx_ioq q = nx->held;
    nx->held.head = nx->held.tail = NULL;
    while (q.head) {
        struct nx_io *n = q.head;
        q_del(&q, n);
        complete_write(n);
    }
}

static void fanout(struct nx_io *nio, bool deferred)
{
    struct nexus *nx = nio->nx;
    struct dp_bdev_io *p = nio->parent;
    uint32_t n = 0;
    bool online = false, local_inline = false;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if ((c->state != NXC_ONLINE && c->state != NXC_DEGRADED) || !c->bdev)
            continue;
        struct nx_leg *leg = &nio->legs[n++];
        memset(&leg->io, 0, offsetof(struct dp_bdev_io, driver));
        leg->io.type = p->type;
        leg->io.flags = p->flags;
        if (p->type != DP_IO_FLUSH) {
            leg->io.offset = p->offset + NX_HDR_SIZE;
            leg->io.length = p->length;
        }
        if (p->type == DP_IO_WRITE) {
            leg->io.iov = p->iov;
            leg->io.iovcnt = p->iovcnt;
            /*
             * Children on this reactor: one leg may copy on the reactor
             * thread (tmpfs, buffered files), the others go to io_uring's
             * workers, so the copies run in parallel instead of one after
             * the other on this thread.
             */
            if (c->bdev->reactor == nx->reactor) {
                if (local_inline)
                    leg->io.flags |= DP_IO_NOINLINE;
                local_inline = true;
            }
        }
        leg->child = c;
        leg->done = write_leg_done;
        leg->ctx = nio;
        if (c->state == NXC_ONLINE)
            online = true;
        if (p->type != DP_IO_FLUSH)
            c->writes++;
    }
    if (!online) {
        finish(nio, -EIO, deferred);
        return;
    }
    nio->tried = n;
    nio->pending = n;
    if (p->type != DP_IO_FLUSH) {
        q_push(&nx->inflight_writes, nio);
        nio->inflight_listed = true;
    }
    for (uint32_t k = 0; k < n; k++)
        nx_leg_submit(nx, &nio->legs[k]);
}

static bool overlaps_lock(struct nexus *nx, uint64_t off, uint64_t len)
{
    for (struct nx_rb_seg *s = nx->locks; s; s = s->lock_next)
        if (nx_ranges_overlap(off, len, s->off, s->len))
            return true;
    return false;
}

bool nx_io_write_overlaps(struct nexus *nx, uint64_t off, uint64_t len)
{
    for (struct nx_io *n = nx->inflight_writes.head; n; n = n->next)
        if (nx_ranges_overlap(off, len, n->parent->offset, n->parent->length))
            return true;
    return false;
}

/* Past the dirty mark: wait for a rebuild segment in the range, or go. */
static void write_go(struct nx_io *nio, bool deferred)
{
    struct nexus *nx = nio->nx;
    struct dp_bdev_io *p = nio->parent;
    if (nx->locks && overlaps_lock(nx, p->offset, p->length)) {
        nx->lock_waits++;
        q_push(&nx->lock_wait, nio);
        return;
    }
    fanout(nio, deferred);
}

/* The labels say dirty on disk: start the writes that waited for it. */
void nx_io_release_dirty_wait(struct nexus *nx)
{
    struct nx_ioq q = nx->dirty_wait;
    nx->dirty_wait.head = nx->dirty_wait.tail = NULL;
    while (q.head) {
        struct nx_io *n = q.head;
        q_del(&q, n);
        write_go(n, true); /* may run inside an application's submit (label round with no child) */
    }
}

/* A rebuild segment was unlocked: start the writes that waited for it. */
void nx_io_locks_changed(struct nexus *nx)
{
    struct nx_io *n = nx->lock_wait.head;
    while (n) {
        struct nx_io *next = n->next;
        if (!overlaps_lock(nx, n->parent->offset, n->parent->length)) {
            q_del(&nx->lock_wait, n);
            fanout(n, true);
        }
        n = next;
    }
}

/* ---- submission ------------------------------------------------------------------------ */

static void start(struct nexus *nx, struct nx_io *nio, struct dp_bdev_io *parent)
{
    nio->parent = parent;
    nio->pending = 0;
    nio->tried = 0;
    nio->status = 0;
    nio->inflight_listed = false;
    nx->app_inflight++;
    if (nx->state == NX_FAULTED) {
        finish(nio, -EIO, true);
        return;
    }
    switch (parent->type) {
    case DP_IO_READ:
        nx->reads++;
        read_next(nio, true);
        return;
    case DP_IO_WRITE:
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES:
        nx->writes++;
        if (__builtin_expect(nx->dirty_state != NX_LBL_DIRTY, 0)) {
            /* the first write since the labels said clean: no data reaches a
             * child before the labels say dirty (a crash then resyncs) */
            q_push(&nx->dirty_wait, nio);
            if (nx->dirty_state == NX_LBL_CLEAN)
                nx_label_mark_dirty(nx);
            return;
        }
        write_go(nio, true);
        return;
    case DP_IO_FLUSH:
        nx->flushes++;
        fanout(nio, true);
        return;
    }
    finish(nio, -EINVAL, true);
}

void nx_io_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct nexus *nx = bdev->ctx;
    struct nx_io *nio = nx->io_free;
    if (!nio || nx->wait_head || nx->paused) {
        /* all contexts busy, or paused for a snapshot (pause.c): queue (FIFO)
         * until one frees up or the pause ends */
        io->driver[0] = 0;
        if (nx->wait_tail)
            nx->wait_tail->driver[0] = (uint64_t)(uintptr_t)io;
        else
            nx->wait_head = io;
        nx->wait_tail = io;
        return;
    }
    nx->io_free = nio->next;
    start(nx, nio, io);
}

/* Holes of the nexus are those of an online child on this reactor. */
int nx_io_block_status(struct dp_bdev *bdev, uint64_t offset, uint64_t len, uint64_t *len_out, uint32_t *status_out)
{
    struct nexus *nx = bdev->ctx;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state == NXC_ONLINE && !c->resync && c->bdev && c->bdev->ops->block_status &&
            c->bdev->reactor == nx->reactor) {
            int rc = c->bdev->ops->block_status(c->bdev, offset + NX_HDR_SIZE, len, len_out, status_out);
            if (rc == 0 && *len_out > 0 && *len_out <= len)
                return 0;
            break;
        }
    }
    *len_out = len;
    *status_out = DP_BS_ALLOCATED;
    return 0;
}
