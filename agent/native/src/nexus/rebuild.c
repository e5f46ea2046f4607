/*
 * rebuild.c - full rebuild of a child from the online ones.
 *
 * The nexus range is copied in NX_RB_SEG segments, NX_RB_DEPTH at a time.
 * Application writes go to the rebuilding child all along (io.c), so the
 * only race is a copy overtaking a write in the same range. A segment
 * therefore locks its range first: it is put on nx->locks (new overlapping
 * writes wait, io.c), then waits until no overlapping write is in flight,
 * then copies. Within the lock the data cannot change, so the copy is exact,
 * and every later write reaches the child directly.
 *
 * Thin stays thin: each run of the source is checked with block_status;
 * holes are not copied. Where the source has a hole but the target might
 * hold old data (it is allocated there), the target range is unmapped
 * (falling back to write-zeroes, then to writing zeros).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nexus/nexus.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

enum seg_step {
    S_IDLE,
    S_LOCKING, /* on nx->locks, waiting for overlapping writes */
    S_SRC_BS, /* block status of the source */
    S_DST_BS, /* block status of the target (source had a hole) */
    S_READ,
    S_WRITE,
    S_UNMAP,
    S_ZEROES,
    S_ZERO_WRITE,
};

struct nx_rebuild {
    struct nexus *nx;
    struct nx_child *dst;
    uint64_t next, total;
    uint64_t done, copied;
    uint64_t start_ns;
    uint32_t active;
    bool stopping, finishing, dead;
    bool restart; /* start over when stopped (the resync source changed) */
    uint32_t msgs; /* messages in flight that point at it */
    char fail[NX_REASON_MAX];
    struct nx_leg flush_leg;
    struct nx_rb_seg segs[NX_RB_DEPTH];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rb_pump(struct nx_rebuild *rb);
static void run_next(struct nx_rb_seg *s);

static void rb_stats(struct nx_rebuild *rb)
{
    struct nx_child *d = rb->dst;
    d->rb_done = rb->done;
    d->rb_total = rb->total;
    d->rb_copied = rb->copied;
    uint64_t el = now_ns() - rb->start_ns;
    if (el < 1000000)
        el = 1000000;
    d->rb_rate = (uint64_t)((double)rb->done * 1e9 / (double)el);
}

static void rb_free(struct nx_rebuild *rb)
{
    for (uint32_t i = 0; i < NX_RB_DEPTH; i++)
        dp_buf_free(rb->segs[i].buf);
    free(rb);
}

static void rb_put(struct nx_rebuild *rb)
{
    if (--rb->msgs == 0 && rb->dead)
        rb_free(rb);
}

static void free_msg(void *a)
{
    rb_put(a);
}

/* A child the rebuild still has to bring in sync: a new/stale one, or a member being resynced. */
static bool rb_target(const struct nx_child *d)
{
    return d->state == NXC_DEGRADED || (d->state == NXC_ONLINE && d->resync);
}

/* The rebuild is over (done, stopped or failed): detach it from the child. */
static void rb_end(struct nx_rebuild *rb, bool success)
{
    struct nexus *nx = rb->nx;
    struct nx_child *d = rb->dst;
    rb_stats(rb);
    d->rebuild = NULL;
    d->rb_active = false;
    bool again = false;
    if (success && d->state == NXC_DEGRADED) {
        d->state = NXC_ONLINE;
        d->reason[0] = 0;
        nx_label_bump(nx); /* it is a member of the next generation */
    } else if (success && rb_target(d)) {
        d->resync = false; /* same as the source now: it may serve reads */
        d->reason[0] = 0;
    } else if (rb->fail[0] && rb_target(d)) {
        nx_child_fault(d, "%s", rb->fail);
    } else if (rb->restart && rb_target(d) && !nx->destroying) {
        again = true;
    }
    nx_update_state(nx);
    if (again)
        nx_rebuild_start(d); /* from the new source, from the start */
    /* freed from a message: callers up the stack may still look at it */
    rb->dead = true;
    rb->msgs++;
    dp_reactor_send(nx->reactor, free_msg, rb);
    nx_notify(nx);
}

static void flush_done(struct nx_leg *leg)
{
    struct nx_rebuild *rb = leg->ctx;
    if (leg->status < 0 && !rb->fail[0])
        snprintf(rb->fail, sizeof rb->fail, "rebuild: flush failed: %s", strerror(-leg->status));
    rb_end(rb, leg->status == 0 && !rb->stopping);
}

static void rb_finish(struct nx_rebuild *rb)
{
    if (rb->finishing)
        return;
    rb->finishing = true;
    if (rb->stopping || rb->fail[0] || !rb->dst->bdev || !rb_target(rb->dst)) {
        rb_end(rb, false);
        return;
    }
    /* everything copied: make it stable before the child counts as in sync */
    struct nx_leg *leg = &rb->flush_leg;
    memset(&leg->io, 0, sizeof leg->io);
    leg->io.type = DP_IO_FLUSH;
    leg->child = rb->dst;
    leg->done = flush_done;
    leg->ctx = rb;
    nx_leg_submit(rb->nx, leg);
}

static void seg_end(struct nx_rb_seg *s)
{
    struct nx_rebuild *rb = s->rb;
    struct nexus *nx = rb->nx;
    if (s->listed) {
        for (struct nx_rb_seg **p = &nx->locks; *p; p = &(*p)->lock_next)
            if (*p == s) {
                *p = s->lock_next;
                break;
            }
        s->listed = false;
        s->lock_next = NULL;
    }
    if (s->pos == s->off + s->len && !rb->stopping)
        rb->done += s->len;
    s->step = S_IDLE;
    s->locked = false;
    rb->active--;
    rb_stats(rb);
    nx_io_locks_changed(nx);
    rb_pump(rb);
}

static void try_lock(struct nx_rb_seg *s)
{
    struct nexus *nx = s->rb->nx;
    if (nx_io_write_overlaps(nx, s->off, s->len)) {
        if (!s->waited)
            nx->seg_waits++;
        s->waited = true;
        return; /* nx_rebuild_writes_drained() calls again */
    }
    s->waited = false;
    s->locked = true;
    s->pos = s->off;
    run_next(s);
}

static void rb_pump(struct nx_rebuild *rb)
{
    struct nexus *nx = rb->nx;
    for (uint32_t i = 0; i < NX_RB_DEPTH; i++) {
        struct nx_rb_seg *s = &rb->segs[i];
        if (s->step != S_IDLE || rb->stopping || rb->fail[0] || rb->next >= rb->total)
            continue;
        s->off = rb->next;
        s->len = rb->total - rb->next < NX_RB_SEG ? rb->total - rb->next : NX_RB_SEG;
        rb->next += s->len;
        s->step = S_LOCKING;
        s->listed = true;
        s->lock_next = nx->locks;
        nx->locks = s;
        rb->active++;
        try_lock(s);
        if (rb->dead || rb->finishing)
            return;
    }
    if (rb->active == 0)
        rb_finish(rb);
}

/* ---- one run of a segment ------------------------------------------------------- */

static void seg_io(struct nx_rb_seg *s, struct nx_child *c, enum dp_bdev_io_type type, uint64_t len)
{
    struct nx_leg *leg = &s->leg;
    memset(&leg->io, 0, sizeof leg->io);
    leg->io.type = type;
    leg->io.offset = s->pos + NX_HDR_SIZE;
    leg->io.length = len;
    if (type == DP_IO_READ || type == DP_IO_WRITE) {
        leg->iov.iov_base = s->buf;
        leg->iov.iov_len = len;
        leg->io.iov = &leg->iov;
        leg->io.iovcnt = 1;
    }
    leg->child = c;
    nx_leg_submit(s->rb->nx, leg);
}

static void run_advance(struct nx_rb_seg *s)
{
    s->pos += s->run;
    run_next(s);
}

/* block_status runs on the queried bdev's reactor; the answer comes back here */
struct bs_req {
    struct nx_rb_seg *seg;
    struct nx_child *c;
    uint64_t len_out;
    uint32_t status;
    int rc;
};

static void bs_result(struct nx_rb_seg *s, int rc, uint64_t len_out, uint32_t status);

static void bs_query(struct dp_bdev *b, uint64_t off, uint64_t len, int *rc, uint64_t *len_out, uint32_t *st)
{
    *rc = b->ops->block_status(b, off, len, len_out, st);
}

static void bs_back_msg(void *a)
{
    struct nx_rb_seg *s = a;
    struct nx_child *c = s->step == S_SRC_BS ? s->src : s->rb->dst;
    c->inflight--;
    bs_result(s, s->leg.status, s->leg.io.length, (uint32_t)s->leg.io.flags);
}

static void bs_remote_msg(void *a)
{
    struct nx_rb_seg *s = a;
    struct nx_child *c = s->step == S_SRC_BS ? s->src : s->rb->dst;
    uint64_t len_out = 0;
    uint32_t st = 0;
    int rc;
    bs_query(c->bdev, s->pos + NX_HDR_SIZE, s->off + s->len - s->pos, &rc, &len_out, &st);
    /* borrow the idle leg's fields to carry the answer */
    s->leg.status = rc;
    s->leg.io.length = len_out;
    s->leg.io.flags = st;
    dp_reactor_send(s->rb->nx->reactor, bs_back_msg, s);
}

static void ask_status(struct nx_rb_seg *s, struct nx_child *c)
{
    struct nexus *nx = s->rb->nx;
    uint64_t want = s->off + s->len - s->pos;
    if (!c->bdev->ops->block_status) {
        bs_result(s, 0, want, DP_BS_ALLOCATED);
        return;
    }
    if (c->bdev->reactor == nx->reactor) {
        uint64_t len_out = 0;
        uint32_t st = 0;
        int rc;
        bs_query(c->bdev, s->pos + NX_HDR_SIZE, want, &rc, &len_out, &st);
        bs_result(s, rc, len_out, st);
        return;
    }
    c->inflight++; /* keeps the child's bdev open across the hop */
    dp_reactor_send(c->bdev->reactor, bs_remote_msg, s);
}

static void bs_result(struct nx_rb_seg *s, int rc, uint64_t len_out, uint32_t status)
{
    struct nx_rebuild *rb = s->rb;
    uint64_t want = s->off + s->len - s->pos;
    if (rb->stopping || rb->fail[0]) {
        seg_end(s);
        return;
    }
    if (rc < 0 || len_out == 0 || len_out > want) {
        len_out = want; /* unknown: copy it all */
        status = DP_BS_ALLOCATED;
    }
    /* keep runs block aligned for the target */
    uint32_t bs = rb->nx->block_size;
    if (len_out % bs && len_out != want) {
        uint64_t down = len_out / bs * bs;
        len_out = down ? down : (want < bs ? want : bs);
    }
    if (s->step == S_SRC_BS) {
        s->run = len_out;
        s->run_status = status;
        if (!(status & DP_BS_HOLE)) {
            s->step = S_READ;
            seg_io(s, s->src, DP_IO_READ, s->run);
            return;
        }
        if (!rb->dst->bdev->ops->block_status) {
            s->step = S_UNMAP;
            seg_io(s, rb->dst, DP_IO_UNMAP, s->run);
            return;
        }
        s->step = S_DST_BS;
        ask_status(s, rb->dst);
        return;
    }
    /* S_DST_BS: the source has a hole of s->run bytes here */
    if (len_out < s->run)
        s->run = len_out;
    if (status & DP_BS_HOLE) {
        run_advance(s); /* both holes: nothing to do */
        return;
    }
    s->step = S_UNMAP;
    seg_io(s, rb->dst, DP_IO_UNMAP, s->run);
}

static void seg_leg_done(struct nx_leg *leg)
{
    struct nx_rb_seg *s = leg->ctx;
    struct nx_rebuild *rb = s->rb;
    struct nx_child *d = rb->dst;
    int st = leg->status;
    switch (s->step) {
    case S_READ:
        if (st < 0) {
            s->src->errors++;
            nx_child_fault(s->src, "read error during rebuild of '%s': %s", d->uri, strerror(-st));
            nx_child_io_error(s->src, st);
            run_next(s); /* another source, same run */
            return;
        }
        if (rb->stopping) {
            seg_end(s);
            return;
        }
        s->step = S_WRITE;
        seg_io(s, d, DP_IO_WRITE, s->run);
        return;
    case S_UNMAP:
        if (st == -EOPNOTSUPP || st == -ENOTSUP || st == -EINVAL) {
            s->step = S_ZEROES;
            seg_io(s, d, DP_IO_WRITE_ZEROES, s->run);
            return;
        }
        break;
    case S_ZEROES:
        if (st == -EOPNOTSUPP || st == -ENOTSUP || st == -EINVAL) {
            memset(s->buf, 0, s->run);
            s->step = S_ZERO_WRITE;
            seg_io(s, d, DP_IO_WRITE, s->run);
            return;
        }
        break;
    default: break;
    }
    /* a write, unmap or zeroing of the target */
    if (st < 0) {
        d->errors++;
        if (!rb->fail[0])
            snprintf(rb->fail, sizeof rb->fail, "rebuild write failed: %s", strerror(-st));
        nx_child_fault(d, "rebuild write failed: %s", strerror(-st));
        nx_child_io_error(d, st);
        seg_end(s);
        return;
    }
    if (s->step == S_WRITE)
        rb->copied += s->run;
    d->writes++;
    run_advance(s);
}

static void run_next(struct nx_rb_seg *s)
{
    struct nx_rebuild *rb = s->rb;
    struct nexus *nx = rb->nx;
    if (rb->stopping || rb->fail[0] || s->pos >= s->off + s->len || !rb->dst->bdev) {
        seg_end(s);
        return;
    }
    struct nx_child *src = nx_pick_read_child(nx, 0);
    if (!src) {
        if (!rb->fail[0])
            snprintf(rb->fail, sizeof rb->fail, "rebuild: no healthy child left to copy from");
        seg_end(s);
        return;
    }
    s->src = src;
    s->leg.ctx = s;
    s->leg.done = seg_leg_done;
    s->step = S_SRC_BS;
    ask_status(s, src);
}

/* ---- control -------------------------------------------------------------------------- */

void nx_rebuild_writes_drained(struct nexus *nx)
{
    struct nx_rb_seg *wait[NX_MAX_CHILDREN * NX_RB_DEPTH];
    uint32_t n = 0;
    for (struct nx_rb_seg *s = nx->locks; s && n < NX_MAX_CHILDREN * NX_RB_DEPTH; s = s->lock_next)
        if (s->step == S_LOCKING && !s->locked)
            wait[n++] = s;
    for (uint32_t i = 0; i < n; i++) {
        /* a segment may have ended meanwhile (its rebuild stopped) */
        if (wait[i]->step != S_LOCKING || wait[i]->locked)
            continue;
        if (wait[i]->rb->stopping) {
            seg_end(wait[i]);
            continue;
        }
        try_lock(wait[i]);
    }
}

static void stop_msg(void *a)
{
    struct nx_rebuild *rb = a;
    if (!rb->dead) {
        /* segments still waiting for their lock stop now; the others at their next step */
        for (uint32_t i = 0; i < NX_RB_DEPTH && !rb->dead && !rb->finishing; i++) {
            struct nx_rb_seg *s = &rb->segs[i];
            if (s->step == S_LOCKING && !s->locked)
                seg_end(s);
        }
        if (!rb->dead && rb->active == 0)
            rb_finish(rb);
    }
    rb_put(rb);
}

/* Stop the rebuild and start it again from the beginning (asynchronously). */
void nx_rebuild_restart(struct nx_child *dst)
{
    struct nx_rebuild *rb = dst->rebuild;
    if (!rb || rb->stopping)
        return;
    rb->restart = true;
    nx_rebuild_stop(dst);
}

/* Ask the rebuild to stop; it ends asynchronously (child->rebuild goes NULL). */
void nx_rebuild_stop(struct nx_child *dst)
{
    struct nx_rebuild *rb = dst->rebuild;
    if (!rb || rb->stopping)
        return;
    rb->stopping = true;
    /* not now: we may be deep inside one of this rebuild's own callbacks */
    rb->msgs++;
    dp_reactor_send(rb->nx->reactor, stop_msg, rb);
}

int nx_rebuild_start(struct nx_child *dst)
{
    struct nexus *nx = dst->nx;
    if (dst->rebuild)
        return 0;
    bool source = false;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->state == NXC_ONLINE && !nx->children[i]->resync && nx->children[i] != dst)
            source = true;
    if (!source) {
        if (dst->state == NXC_ONLINE) {
            nx_child_fault(dst, "no healthy child to resync from");
            return -ENODEV;
        }
        dst->state = NXC_FAULTED;
        snprintf(dst->reason, sizeof dst->reason, "no healthy child to rebuild from");
        nx_update_state(nx);
        return -ENODEV;
    }
    struct nx_rebuild *rb = calloc(1, sizeof *rb);
    bool ok = rb != NULL;
    for (uint32_t i = 0; ok && i < NX_RB_DEPTH; i++) {
        rb->segs[i].rb = rb;
        rb->segs[i].buf = dp_buf_alloc(NX_RB_SEG);
        ok = rb->segs[i].buf != NULL;
    }
    if (!ok) {
        if (rb)
            rb_free(rb);
        if (dst->state == NXC_ONLINE) {
            nx_child_fault(dst, "resync: out of memory");
            return -ENOMEM;
        }
        dst->state = NXC_FAULTED;
        snprintf(dst->reason, sizeof dst->reason, "rebuild: out of memory");
        nx_update_state(nx);
        return -ENOMEM;
    }
    rb->nx = nx;
    rb->dst = dst;
    rb->total = nx->size;
    rb->start_ns = now_ns();
    dst->rebuild = rb;
    dst->rb_active = true;
    dst->rb_done = dst->rb_copied = dst->rb_rate = 0;
    dst->rb_total = rb->total;
    rb_pump(rb);
    return 0;
}
