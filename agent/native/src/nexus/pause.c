/*
 * pause.c - pausing a nexus for a consistent snapshot of its children.
 *
 * Pause: on the reactor, new application requests start waiting in the nexus
 * wait FIFO (io.c) instead of going to the children; the control thread then
 * waits until the requests in flight are done (including writes waiting for
 * a label round or a rebuild segment: they count as in flight), and flushes
 * every healthy child so each holds every acknowledged write. Resume starts
 * the held requests in the order they arrived. Nothing is failed.
 *
 * A pause carries a deadline: a one-shot reactor timer resumes the nexus by
 * itself when it passes and marks the pause expired, so a control thread
 * stuck in a snapshot (a remote target that does not answer) never leaves
 * the volume frozen; the snapshot then fails and is undone (snapshot.c).
 * The reactor timer cannot be cancelled: it is a small allocation that the
 * nexus detaches on resume (and on free) and that frees itself when it fires.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexus/nexus.h"

struct nx_pause_timer {
    struct dp_uring_op op;
    struct __kernel_timespec ts;
    struct nexus *nx; /* NULL once detached; reactor thread only */
    uint64_t seq;
};

/* Reactor: end the pause and start what waited. */
static void pause_end(struct nexus *nx, bool expired)
{
    nx->paused = false;
    __atomic_store_n(&nx->pause_expired, expired, __ATOMIC_RELEASE);
    if (nx->pause_timer) {
        nx->pause_timer->nx = NULL;
        nx->pause_timer = NULL;
    }
    nx_io_release_wait(nx);
    nx_notify(nx);
}

static void timer_cb(struct dp_uring_op *op, int res, uint32_t cqe_flags)
{
    (void)res;
    (void)cqe_flags;
    struct nx_pause_timer *t = (struct nx_pause_timer *)op;
    struct nexus *nx = t->nx;
    if (nx && nx->paused && nx->pause_seq == t->seq) {
        nx->pause_timer = NULL; /* freed below */
        pause_end(nx, true);
    }
    free(t);
}

struct pause_arg {
    struct nexus *nx;
    uint32_t deadline_ms;
    int rc;
};

static void pause_msg(void *a)
{
    struct pause_arg *p = a;
    struct nexus *nx = p->nx;
    struct nx_pause_timer *t = calloc(1, sizeof *t);
    if (!t) {
        p->rc = -ENOMEM;
        return;
    }
    nx->paused = true;
    nx->pause_expired = false;
    nx->pause_seq++;
    nx->pauses++;
    t->op.cb = timer_cb;
    t->nx = nx;
    t->seq = nx->pause_seq;
    t->ts.tv_sec = p->deadline_ms / 1000;
    t->ts.tv_nsec = (long long)(p->deadline_ms % 1000) * 1000000;
    nx->pause_timer = t;
    dp_reactor_timer(nx->reactor, &t->op, &t->ts); /* inline: we are on the reactor */
}

static bool pred_drained(struct nexus *nx, void *arg)
{
    (void)arg;
    return !nx->paused || nx->app_inflight == 0;
}

static bool expired(struct nexus *nx)
{
    return __atomic_load_n(&nx->pause_expired, __ATOMIC_ACQUIRE);
}

int nx_pause(struct nexus *nx, uint32_t deadline_ms)
{
    struct pause_arg p = { nx, deadline_ms, 0 };
    dp_reactor_call(nx->reactor, pause_msg, &p);
    if (p.rc < 0) {
        dp_set_error("nexus '%s': out of memory pausing it", nx->uuid);
        return p.rc;
    }
    nx_wait_until(nx, pred_drained, NULL);
    if (expired(nx)) {
        dp_set_error("nexus '%s': I/O in flight did not drain within the pause deadline (%u ms)", nx->uuid,
                     deadline_ms);
        return -ETIMEDOUT;
    }
    /* No I/O reaches the children now: children change only under nx_ctl_lock, which we hold. */
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_ONLINE || c->resync || !c->bdev)
            continue;
        int rc = dp_bdev_rw_sync(c->bdev, DP_IO_FLUSH, NULL, 0, 0);
        if (rc < 0) {
            char e[256];
            snprintf(e, sizeof e, "%s", dp_get_error());
            nx_resume(nx);
            dp_set_error("nexus '%s': child '%s': flush before the snapshot failed: %s", nx->uuid, c->uri, e);
            return rc;
        }
    }
    if (expired(nx)) {
        dp_set_error("nexus '%s': flushing the children took longer than the pause deadline (%u ms)", nx->uuid,
                     deadline_ms);
        return -ETIMEDOUT;
    }
    return 0;
}

struct resume_arg {
    struct nexus *nx;
    bool was_paused;
};

static void resume_msg(void *a)
{
    struct resume_arg *r = a;
    r->was_paused = r->nx->paused;
    if (r->nx->paused)
        pause_end(r->nx, false);
}

int nx_resume(struct nexus *nx)
{
    struct resume_arg r = { nx, false };
    dp_reactor_call(nx->reactor, resume_msg, &r);
    return r.was_paused ? 0 : -ETIMEDOUT;
}

void nx_pause_forget(struct nexus *nx)
{
    if (nx->pause_timer) {
        nx->pause_timer->nx = NULL;
        nx->pause_timer = NULL;
    }
}
