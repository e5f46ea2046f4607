/*
 * reactor.c - reactor threads: one io_uring each, sleeping in the kernel
 * when idle (no busy polling, no periodic ticks).
 *
 * Messages from other threads go into a mutex-protected vector and wake the
 * reactor through an eventfd it keeps a read posted on. A sender writes the
 * eventfd only when no wake-up is pending yet, so a burst of messages costs
 * one write. Messages a reactor sends to itself (deferred completions, one
 * per inline I/O) go into a second vector without a lock and need no
 * wake-up: the loop drains both before it sleeps. Vectors are swapped,
 * never freed, so steady-state messaging allocates nothing.
 *
 * The ring is created SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
 * them: completions are posted only when the reactor enters the kernel to
 * wait, so there are no inter-processor interrupts to run task work and a
 * busy reactor collects many completions per io_uring_enter. One
 * io_uring_enter both submits and sleeps. Under valgrind the ring is plain
 * and the reactor sleeps in poll() instead (see reactor_sleep).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "util/error.h"
#include "reactor/reactor.h"
#include "util/container.h"

#define RING_ENTRIES 512
/* user_data with this bit set is the reactor's own (eventfd read, cancel):
 * not counted in `pending`. Ops are pointers to structs, so bit 0 is free. */
#define UD_INTERNAL 1ull

struct msg {
    dp_msg_fn fn;
    void *arg;
};

struct msgq {
    struct msg *v;
    size_t n, cap;
};

struct dp_reactor {
    uint32_t index;
    pthread_t thread;
    bool thread_started;
    struct io_uring ring;
    bool ring_ok;
    bool deferred_tw; /* DEFER_TASKRUN ring: wait in io_uring_enter */
    int efd;
    uint64_t efd_buf;
    struct dp_uring_op efd_op;

    pthread_mutex_t lock; /* protects q, wake_pending */
    struct msgq q; /* incoming */
    bool wake_pending; /* an eventfd write is on its way */

    /* reactor thread only */
    struct msgq run; /* being executed */
    struct msgq local, lrun; /* sent to itself; being executed */
    uint64_t pending; /* user SQEs handed out whose final CQE has not come */
    bool stop, cancelled;
};

static struct dp_reactor *reactors;
static uint32_t nreactors;
static atomic_uint rr_next;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct dp_reactor *self;

static void post_efd_read(struct dp_reactor *r);

static void efd_done(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct dp_reactor *r = container_of(op, struct dp_reactor, efd_op);
    /* The messages themselves are drained by the loop; only re-arm (also
     * after the stop-time cancel, so senders still wake a stopping loop). */
    post_efd_read(r);
}

static struct io_uring_sqe *raw_sqe(struct dp_reactor *r)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&r->ring)))
        io_uring_submit(&r->ring);
    return sqe;
}

static void post_efd_read(struct dp_reactor *r)
{
    struct io_uring_sqe *sqe = raw_sqe(r);
    io_uring_prep_read(sqe, r->efd, &r->efd_buf, sizeof r->efd_buf, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&r->efd_op | UD_INTERNAL);
}

static bool msgq_push(struct msgq *q, dp_msg_fn fn, void *arg)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct msg *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return false;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = (struct msg){ fn, arg };
    return true;
}

/* Run the messages queued so far; those they send run in the next round. */
static void run_msgs(struct dp_reactor *r)
{
    pthread_mutex_lock(&r->lock);
    struct msgq t = r->q;
    r->q = r->run;
    r->run = t;
    r->wake_pending = false;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < r->run.n; i++)
        r->run.v[i].fn(r->run.v[i].arg);
    r->run.n = 0;
    if (r->local.n) {
        t = r->local;
        r->local = r->lrun;
        r->lrun = t;
        for (size_t i = 0; i < r->lrun.n; i++)
            r->lrun.v[i].fn(r->lrun.v[i].arg);
        r->lrun.n = 0;
    }
}

static bool queue_empty(struct dp_reactor *r)
{
    if (r->local.n)
        return false;
    pthread_mutex_lock(&r->lock);
    bool empty = r->q.n == 0;
    pthread_mutex_unlock(&r->lock);
    return empty;
}

static void reap(struct dp_reactor *r)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        uint32_t flags = cqe->flags;
        io_uring_cqe_seen(&r->ring, cqe);
        if (!(ud & UD_INTERNAL) && !(flags & IORING_CQE_F_MORE))
            r->pending--;
        struct dp_uring_op *op = (struct dp_uring_op *)(uintptr_t)(ud & ~UD_INTERNAL);
        if (op)
            op->cb(op, res, flags);
    }
}

/*
 * Submit, then sleep until a CQE is ready: one io_uring_enter. Under
 * valgrind the sleep is a poll() on the ring fd instead: valgrind (3.19)
 * treats io_uring_enter as non-blocking and holds its global lock through
 * it, which would stall every other thread of the process.
 */
static void reactor_sleep(struct dp_reactor *r)
{
    if (r->deferred_tw) {
        int ret = io_uring_cq_ready(&r->ring) ? io_uring_submit_and_get_events(&r->ring)
                                              : io_uring_submit_and_wait(&r->ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
            fprintf(stderr, "dp-reactor-%u: io_uring_enter: %s\n", r->index, strerror(-ret));
            abort();
        }
        return;
    }
    int ret = io_uring_submit(&r->ring);
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
        fprintf(stderr, "dp-reactor-%u: io_uring_submit: %s\n", r->index, strerror(-ret));
        abort();
    }
    if (io_uring_cq_ready(&r->ring))
        return;
    struct pollfd pfd = { .fd = r->ring.ring_fd, .events = POLLIN };
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
        fprintf(stderr, "dp-reactor-%u: poll: %s\n", r->index, strerror(errno));
        abort();
    }
}

/*
 * Messages are still queued: put the queued SQEs in (and, with deferred task
 * run, let completions post) without sleeping. A stream of messages (a client
 * re-submitting I/O that completes at once) must never keep I/O, and with it
 * a pool's metadata commit, out of the kernel.
 */
static void reactor_kick(struct dp_reactor *r)
{
    if (!r->deferred_tw && !io_uring_sq_ready(&r->ring))
        return;
    int ret = r->deferred_tw ? io_uring_submit_and_get_events(&r->ring) : io_uring_submit(&r->ring);
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
        fprintf(stderr, "dp-reactor-%u: io_uring_submit: %s\n", r->index, strerror(-ret));
        abort();
    }
}

static void stop_msg(void *arg)
{
    ((struct dp_reactor *)arg)->stop = true;
}

static void *reactor_main(void *arg)
{
    struct dp_reactor *r = arg;
    char name[16];
    snprintf(name, sizeof name, "dp-reactor-%u", r->index);
    pthread_setname_np(pthread_self(), name);
    self = r;
    if (r->deferred_tw) {
        /* SINGLE_ISSUER: the submitter is the thread that enables the ring. */
        /* (liburing 2.3 has no io_uring_enable_rings) */
        if (syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
            fprintf(stderr, "dp-reactor-%u: enable ring: %s\n", r->index, strerror(errno));
            abort();
        }
    }
    post_efd_read(r);
    for (;;) {
        run_msgs(r);
        reap(r);
        if (r->stop && !r->cancelled) {
            /* Whatever is still in flight (sockets waiting for peers,
             * timers) completes now with -ECANCELED so owners can free. */
            struct io_uring_sqe *sqe = raw_sqe(r);
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, UD_INTERNAL);
            r->cancelled = true;
        }
        if (!queue_empty(r)) {
            reactor_kick(r);
            continue;
        }
        if (r->stop && r->pending == 0)
            break;
        reactor_sleep(r);
    }
    io_uring_submit(&r->ring);
    self = NULL;
    return NULL;
}

static void reactor_free(struct dp_reactor *r)
{
    if (r->ring_ok)
        io_uring_queue_exit(&r->ring);
    if (r->efd >= 0)
        close(r->efd);
    pthread_mutex_destroy(&r->lock);
    free(r->q.v);
    free(r->run.v);
    free(r->local.v);
    free(r->lrun.v);
}

int dp_reactors_start(uint32_t count)
{
    int ret = 0;
    if (count == 0 || count > 256) {
        dp_set_error("reactors: count %u out of range 1..256", count);
        return -EINVAL;
    }
    pthread_mutex_lock(&start_lock);
    if (reactors)
        goto out;
    struct dp_reactor *rs = calloc(count, sizeof *rs);
    if (!rs) {
        ret = -ENOMEM;
        dp_set_error("reactors: out of memory");
        goto out;
    }
    uint32_t i;
    for (i = 0; i < count; i++) {
        struct dp_reactor *r = &rs[i];
        r->index = i;
        r->efd = -1;
        r->efd_op.cb = efd_done;
        pthread_mutex_init(&r->lock, NULL);
        ret = -EINVAL;
        if (!RUNNING_ON_VALGRIND) {
            ret =
                io_uring_queue_init(RING_ENTRIES, &r->ring,
                                    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED);
            r->deferred_tw = ret == 0;
        }
        if (ret < 0) /* older kernel, or valgrind */
            ret = io_uring_queue_init(RING_ENTRIES, &r->ring, 0);
        if (ret < 0) {
            dp_set_error("reactor %u: io_uring_queue_init: %s", i, strerror(-ret));
            break;
        }
        r->ring_ok = true;
        r->efd = eventfd(0, EFD_CLOEXEC);
        if (r->efd < 0) {
            ret = -errno;
            dp_set_error("reactor %u: eventfd: %s", i, strerror(errno));
            break;
        }
        ret = -pthread_create(&r->thread, NULL, reactor_main, r);
        if (ret < 0) {
            dp_set_error("reactor %u: pthread_create: %s", i, strerror(-ret));
            break;
        }
        r->thread_started = true;
    }
    if (ret < 0) {
        for (uint32_t j = 0; j <= i && j < count; j++) {
            if (rs[j].thread_started) {
                dp_reactor_send(&rs[j], stop_msg, &rs[j]);
                pthread_join(rs[j].thread, NULL);
            }
            reactor_free(&rs[j]);
        }
        free(rs);
        goto out;
    }
    nreactors = count;
    reactors = rs;
out:
    pthread_mutex_unlock(&start_lock);
    return ret;
}

void dp_reactors_stop(void)
{
    pthread_mutex_lock(&start_lock);
    if (reactors) {
        for (uint32_t i = 0; i < nreactors; i++)
            dp_reactor_send(&reactors[i], stop_msg, &reactors[i]);
        for (uint32_t i = 0; i < nreactors; i++) {
            pthread_join(reactors[i].thread, NULL);
            reactor_free(&reactors[i]);
        }
        free(reactors);
        reactors = NULL;
        nreactors = 0;
    }
    pthread_mutex_unlock(&start_lock);
}

uint32_t dp_reactor_count(void)
{
    return nreactors;
}

struct dp_reactor *dp_reactor_get(uint32_t index)
{
    return index < nreactors ? &reactors[index] : NULL;
}

struct dp_reactor *dp_reactor_self(void)
{
    return self;
}

struct dp_reactor *dp_reactor_next(void)
{
    if (!nreactors)
        return NULL;
    return &reactors[atomic_fetch_add(&rr_next, 1) % nreactors];
}

void dp_reactor_send(struct dp_reactor *r, dp_msg_fn fn, void *arg)
{
    bool wake = false;
    if (self == r) {
        /* Only this thread touches `local`: no lock, no wake-up. */
        while (!msgq_push(&r->local, fn, arg))
            usleep(1000); /* out of memory: messages must not be dropped */
        return;
    }
    pthread_mutex_lock(&r->lock);
    while (!msgq_push(&r->q, fn, arg)) {
        /* Out of memory for the queue: messages must not be dropped. */
        pthread_mutex_unlock(&r->lock);
        usleep(1000);
        pthread_mutex_lock(&r->lock);
    }
    if (self != r && !r->wake_pending) {
        r->wake_pending = true;
        wake = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t n;
        do
            n = write(r->efd, &one, sizeof one);
        while (n < 0 && errno == EINTR);
    }
}

struct call {
    dp_msg_fn fn;
    void *arg;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
};

static void call_run(void *p)
{
    struct call *c = p;
    c->fn(c->arg);
    pthread_mutex_lock(&c->m);
    c->done = true;
    pthread_cond_signal(&c->c);
    pthread_mutex_unlock(&c->m);
}

void dp_reactor_call(struct dp_reactor *r, dp_msg_fn fn, void *arg)
{
    if (self == r) {
        fn(arg);
        return;
    }
    struct call c = { .fn = fn, .arg = arg, .done = false };
    pthread_mutex_init(&c.m, NULL);
    pthread_cond_init(&c.c, NULL);
    dp_reactor_send(r, call_run, &c);
    pthread_mutex_lock(&c.m);
    while (!c.done)
        pthread_cond_wait(&c.c, &c.m);
    pthread_mutex_unlock(&c.m);
    pthread_cond_destroy(&c.c);
    pthread_mutex_destroy(&c.m);
}

struct io_uring_sqe *dp_reactor_sqe(struct dp_reactor *r)
{
    if (self != r) {
        fprintf(stderr, "dp_reactor_sqe: called off reactor %u's thread\n", r->index);
        abort();
    }
    struct io_uring_sqe *sqe = raw_sqe(r);
    r->pending++;
    return sqe;
}

struct timer_arg {
    struct dp_reactor *r;
    struct dp_uring_op *op;
    struct __kernel_timespec *ts;
};

static void timer_msg(void *p)
{
    struct timer_arg *t = p;
    struct io_uring_sqe *sqe = dp_reactor_sqe(t->r);
    io_uring_prep_timeout(sqe, t->ts, 0, 0);
    io_uring_sqe_set_data(sqe, t->op);
    /* The kernel reads *ts at submission: submit now, the caller's
     * timespec may not outlive this call. */
    io_uring_submit(&t->r->ring);
}

void dp_reactor_timer(struct dp_reactor *r, struct dp_uring_op *op, struct __kernel_timespec *ts)
{
    struct timer_arg t = { r, op, ts };
    dp_reactor_call(r, timer_msg, &t);
}
