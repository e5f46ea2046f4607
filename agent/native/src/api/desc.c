/*
 * desc.c - embedded block access: descriptors and completion queues.
 *
 * dp_io_submit() runs on the caller's thread (the Node main thread): it
 * validates, takes a request from the descriptor's free list and hands it to
 * the bdev's reactor. The completion is posted to a dp_cq, which a thread
 * (a libuv worker through koffi's .async) drains with dp_cq_wait().
 * Steady state allocates nothing: requests are recycled, the cq ring only
 * grows.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/export.h"
#include "bdev/bdev.h"
#include "datapath.h"

struct dp_req {
    struct dp_bdev_io io;
    struct iovec iov;
    struct dp_desc *desc;
    struct dp_cq *cq;
    uint64_t tag;
    struct dp_req *next; /* free list */
    struct dp_req *all_next; /* every request of the descriptor */
};

struct dp_desc {
    struct dp_bdev *bdev;
    pthread_mutex_t m;
    pthread_cond_t idle;
    struct dp_req *free;
    struct dp_req *all;
    uint64_t outstanding;
};

struct cq_ent {
    uint64_t tag;
    int32_t res;
};

struct dp_cq {
    pthread_mutex_t m;
    pthread_cond_t c;
    struct cq_ent *v;
    size_t cap, head, n; /* ring */
    bool woken;
};

/* ---- completion queues -------------------------------------------------- */

DP_EXPORT dp_cq *dp_cq_create(void)
{
    dp_clear_error();
    dp_cq *cq = calloc(1, sizeof *cq);
    if (!cq) {
        dp_set_error("completion queue: out of memory");
        return NULL;
    }
    cq->cap = 256;
    cq->v = malloc(cq->cap * sizeof *cq->v);
    if (!cq->v) {
        free(cq);
        dp_set_error("completion queue: out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cq->c, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&cq->m, NULL);
    return cq;
}

DP_EXPORT void dp_cq_destroy(dp_cq *cq)
{
    if (!cq)
        return;
    pthread_cond_destroy(&cq->c);
    pthread_mutex_destroy(&cq->m);
    free(cq->v);
    free(cq);
}

/* Grow the ring (under cq->m), keeping order. */
static bool cq_grow(dp_cq *cq)
{
    size_t cap = cq->cap * 2;
    struct cq_ent *v = malloc(cap * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < cq->n; i++)
        v[i] = cq->v[(cq->head + i) % cq->cap];
    free(cq->v);
    cq->v = v;
    cq->cap = cap;
    cq->head = 0;
    return true;
}

static void cq_post(dp_cq *cq, uint64_t tag, int32_t res)
{
    pthread_mutex_lock(&cq->m);
    while (cq->n == cq->cap && !cq_grow(cq)) {
        /* A completion must never be dropped: wait for memory or a reaper. */
        pthread_mutex_unlock(&cq->m);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&cq->m);
    }
    cq->v[(cq->head + cq->n) % cq->cap] = (struct cq_ent){ tag, res };
    cq->n++;
    pthread_cond_signal(&cq->c);
    pthread_mutex_unlock(&cq->m);
}

DP_EXPORT int dp_cq_wait(dp_cq *cq, uint64_t *tags, int32_t *results, uint32_t max, int32_t timeout_ms)
{
    dp_clear_error();
    if (!cq || !tags || !results || max == 0) {
        dp_set_error("dp_cq_wait: %s", !cq ? "cq is NULL" : max == 0 ? "max is 0" : "tags/results is NULL");
        return -EINVAL;
    }
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&cq->m);
    while (cq->n == 0 && !cq->woken && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&cq->c, &cq->m);
        else if (pthread_cond_timedwait(&cq->c, &cq->m, &deadline) == ETIMEDOUT)
            break;
    }
    int ret = 0;
    if (cq->n) {
        while (cq->n && (uint32_t)ret < max) {
            tags[ret] = cq->v[cq->head].tag;
            results[ret] = cq->v[cq->head].res;
            cq->head = (cq->head + 1) % cq->cap;
            cq->n--;
            ret++;
        }
    } else if (cq->woken) {
        cq->woken = false;
        ret = -EINTR;
    }
    pthread_mutex_unlock(&cq->m);
    return ret;
}

DP_EXPORT void dp_cq_wake(dp_cq *cq)
{
    if (!cq)
        return;
    pthread_mutex_lock(&cq->m);
    cq->woken = true;
    pthread_cond_broadcast(&cq->c);
    pthread_mutex_unlock(&cq->m);
}

/* ---- descriptors -------------------------------------------------------- */

/* A name or URI to its registered bdev (a reference), or NULL. */
static struct dp_bdev *lookup(const char *target)
{
    struct dp_bdev *b = dp_bdev_get(target);
    if (b)
        return b;
    char name[sizeof(((struct dp_bdev *)0)->name)];
    if (!strncmp(target, "bdev:///", 8))
        return dp_bdev_get(target + 8);
    if (!strncmp(target, "malloc:///", 10)) {
        snprintf(name, sizeof name, "%.*s", (int)strcspn(target, "?"), target);
        return dp_bdev_get(name);
    }
    const char *path = target[0] == '/'                  ? target
                       : !strncmp(target, "uring://", 8) ? target + 8
                       : !strncmp(target, "aio://", 6)   ? target + 6
                                                         : NULL;
    char real[PATH_MAX];
    if (path && realpath(path, real) && (size_t)snprintf(name, sizeof name, "uring://%s", real) < sizeof name)
        return dp_bdev_get(name);
    return NULL;
}

DP_EXPORT int dp_desc_open(const char *target, dp_desc **out)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("dp_desc_open: out is NULL");
        return -EINVAL;
    }
    *out = NULL;
    if (!target || !*target) {
        dp_set_error("dp_desc_open: target is empty");
        return -EINVAL;
    }
    if (dp_reactor_count() == 0) {
        dp_set_error("'%s': the data path is not initialised (dp_init)", target);
        return -ENODEV;
    }
    struct dp_bdev *b = dp_bdev_get(target);
    if (!b) {
        if (target[0] != '/' && !strstr(target, "://")) {
            dp_set_error("no replica or device named '%s'", target);
            return -ENOENT;
        }
        int ret = dp_bdev_open_uri(target, &b);
        if (ret < 0)
            return ret;
    }
    dp_desc *d = calloc(1, sizeof *d);
    if (!d) {
        dp_bdev_put(b);
        dp_set_error("'%s': out of memory", target);
        return -ENOMEM;
    }
    d->bdev = b;
    pthread_mutex_init(&d->m, NULL);
    pthread_cond_init(&d->idle, NULL);
    *out = d;
    return 0;
}

DP_EXPORT void dp_desc_close(dp_desc *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->m);
    while (d->outstanding)
        pthread_cond_wait(&d->idle, &d->m);
    pthread_mutex_unlock(&d->m);
    for (struct dp_req *r = d->all, *n; r; r = n) {
        n = r->all_next;
        free(r);
    }
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->m);
    dp_bdev_put(d->bdev);
    free(d);
}

DP_EXPORT uint64_t dp_desc_size(const dp_desc *d)
{
    return d ? __atomic_load_n(&d->bdev->size, __ATOMIC_RELAXED) : 0;
}

DP_EXPORT uint32_t dp_desc_block_size(const dp_desc *d)
{
    return d ? d->bdev->block_size : 0;
}

static void req_done(struct dp_bdev_io *io, int status)
{
    struct dp_req *r = (struct dp_req *)io;
    struct dp_desc *d = r->desc;
    cq_post(r->cq, r->tag, status);
    pthread_mutex_lock(&d->m);
    r->next = d->free;
    d->free = r;
    if (--d->outstanding == 0)
        pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->m);
}

static const char *op_names[] = { "read", "write", "flush", "unmap", "write-zeroes" };

DP_EXPORT int dp_io_submit(dp_desc *d, dp_cq *cq, uint32_t op, void *buf, uint64_t offset, uint64_t length,
                           uint64_t tag)
{
    dp_clear_error();
    if (!d || !cq) {
        dp_set_error("dp_io_submit: %s is NULL", !d ? "descriptor" : "cq");
        return -EINVAL;
    }
    struct dp_bdev *b = d->bdev;
    if (dp_reactor_count() == 0) {
        dp_set_error("'%s': the data path is stopped (dp_fini)", b->name);
        return -ENODEV;
    }
    if (op > DP_OP_WRITE_ZEROES) {
        dp_set_error("'%s': op %u is not an I/O operation (0..4)", b->name, op);
        return -EINVAL;
    }
    if (op != DP_OP_FLUSH) {
        uint64_t size = __atomic_load_n(&b->size, __ATOMIC_RELAXED);
        uint32_t bs = b->block_size;
        if ((op == DP_OP_READ || op == DP_OP_WRITE) && !buf) {
            dp_set_error("'%s': %s: buffer is NULL", b->name, op_names[op]);
            return -EINVAL;
        }
        if (length == 0) {
            dp_set_error("'%s': %s: length is 0", b->name, op_names[op]);
            return -EINVAL;
        }
        if (offset % bs || length % bs) {
            dp_set_error("'%s': %s: offset %llu and length %llu must be multiples of the block size %u", b->name,
                         op_names[op], (unsigned long long)offset, (unsigned long long)length, bs);
            return -EINVAL;
        }
        if (offset > size || length > size - offset) {
            dp_set_error("'%s': %s: offset %llu + length %llu is beyond the device size %llu", b->name, op_names[op],
                         (unsigned long long)offset, (unsigned long long)length, (unsigned long long)size);
            return -ERANGE;
        }
    }

    pthread_mutex_lock(&d->m);
    struct dp_req *r = d->free;
    if (r) {
        d->free = r->next;
    } else {
        r = malloc(sizeof *r);
        if (!r) {
            pthread_mutex_unlock(&d->m);
            dp_set_error("'%s': out of memory for a request", b->name);
            return -ENOMEM;
        }
        r->desc = d;
        r->all_next = d->all;
        d->all = r;
    }
    d->outstanding++;
    pthread_mutex_unlock(&d->m);

    static const enum dp_bdev_io_type types[] = { DP_IO_READ, DP_IO_WRITE, DP_IO_FLUSH, DP_IO_UNMAP,
                                                  DP_IO_WRITE_ZEROES };
    memset(&r->io, 0, sizeof r->io);
    r->io.type = types[op];
    r->io.offset = op == DP_OP_FLUSH ? 0 : offset;
    r->io.length = op == DP_OP_FLUSH ? 0 : length;
    if (op == DP_OP_READ || op == DP_OP_WRITE) {
        r->iov.iov_base = buf;
        r->iov.iov_len = length;
        r->io.iov = &r->iov;
        r->io.iovcnt = 1;
    }
    r->io.cb = req_done;
    r->cq = cq;
    r->tag = tag;
    dp_bdev_submit(b, &r->io);
    return 0;
}

/* ---- statistics --------------------------------------------------------- */

DP_EXPORT int dp_io_stat(const char *target, dp_io_stats *out)
{
    dp_clear_error();
    if (!target || !out) {
        dp_set_error("dp_io_stat: %s is NULL", !target ? "target" : "out");
        return -EINVAL;
    }
    struct dp_bdev *b = lookup(target);
    if (!b) {
        dp_set_error("no open device or replica named '%s'", target);
        return -ENOENT;
    }
    const struct dp_io_counters *s = &b->stats;
    out->reads = __atomic_load_n(&s->reads, __ATOMIC_RELAXED);
    out->writes = __atomic_load_n(&s->writes, __ATOMIC_RELAXED);
    out->flushes = __atomic_load_n(&s->flushes, __ATOMIC_RELAXED);
    out->unmaps = __atomic_load_n(&s->unmaps, __ATOMIC_RELAXED);
    out->bytes_read = __atomic_load_n(&s->bytes_read, __ATOMIC_RELAXED);
    out->bytes_written = __atomic_load_n(&s->bytes_written, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
    dp_bdev_put(b);
    return 0;
}
