/*
 * resize.c - dp_nexus_resize: a nexus grows in place (LABEL.md, "Growing a
 * nexus"): the new range zeroed on every serving child, the labels record the
 * new size, then I/O may reach it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"

/* messages and reasons are truncated on purpose where they would not fit */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int nx_test_resize_stop;

#define NX_ZERO_CHUNK (32ull << 20) /* one write-zeroes request */
#define NX_ZERO_BUF (1ull << 20) /* zero buffer where write-zeroes is not supported */

struct resize_op {
    struct nexus *nx;
    uint64_t new_size;
    int rc;
    char err[256];
    uint32_t n; /* serving children */
    struct nx_child *serve[NX_MAX_CHILDREN];
    uint64_t rounds;
};

/* Can the nexus grow now? Collects the serving children (online, in sync). */
static void resize_check_msg(void *a)
{
    struct resize_op *r = a;
    struct nexus *nx = r->nx;
    r->n = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->rebuild || c->resync || c->state == NXC_DEGRADED) {
            /* rebuild ranges are sized at start: refuse rather than interleave */
            snprintf(r->err, sizeof r->err, "child '%s' is %s: try again when it is done", c->uri,
                     c->resync ? "resyncing" : "rebuilding");
            r->rc = -EBUSY;
            return;
        }
        if (c->state == NXC_ONLINE && c->bdev)
            r->serve[r->n++] = c;
    }
    if (nx->state == NX_FAULTED || r->n == 0) {
        snprintf(r->err, sizeof r->err, "the nexus is faulted (%s)", nx->reason);
        r->rc = -ENODEV;
    }
}

/* Zero [off, off+len) of a child: write-zeroes (cheap on thin replicas and
 * files), else zero buffers. From the control thread, like label I/O. */
static int zero_child_range(struct dp_bdev *b, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    int rc = 0;
    while (off < end) {
        uint64_t n = end - off < NX_ZERO_CHUNK ? end - off : NX_ZERO_CHUNK;
        rc = dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, off, n);
        if (rc == -EOPNOTSUPP || rc == -ENOTSUP || rc == -EINVAL)
            break; /* not supported: zero buffers from here */
        if (rc < 0)
            return rc;
        off += n;
    }
    if (off >= end)
        return 0;
    uint8_t *zero = dp_buf_alloc(NX_ZERO_BUF);
    if (!zero)
        return -ENOMEM;
    for (rc = 0; off < end && rc == 0; off += NX_ZERO_BUF) {
        uint64_t n = end - off < NX_ZERO_BUF ? end - off : NX_ZERO_BUF;
        rc = dp_bdev_rw_sync(b, DP_IO_WRITE, zero, off, n);
    }
    dp_buf_free(zero);
    return rc;
}

/* Publish the new size in the labels: one label round of the same generation. */
static void resize_label_msg(void *a)
{
    struct resize_op *r = a;
    struct nexus *nx = r->nx;
    nx->label_size = r->new_size;
    r->rounds = nx->label_rounds;
    if (nx_test_resize_stop == 2)
        for (uint32_t i = 0; i < nx->nchildren && !nx->label_only; i++)
            if (nx->children[i]->state == NXC_ONLINE && nx->children[i]->bdev)
                nx->label_only = nx->children[i];
    nx_label_request(nx);
}

/* The round asked for (or one started after it) is on disk. */
static bool pred_resize_labels(struct nexus *nx, void *arg)
{
    struct resize_op *r = arg;
    return nx_label_idle(nx) && nx->label_rounds > r->rounds;
}

static void resize_publish_msg(void *a)
{
    struct resize_op *r = a;
    struct nexus *nx = r->nx;
    nx->label_only = NULL;
    if (nx_online_count(nx) == 0) {
        /* every label write failed: nothing serves; an open adopts whatever landed */
        snprintf(r->err, sizeof r->err, "writing the labels failed on every child (%s)", nx->reason);
        r->rc = -EIO;
        return;
    }
    if (nx_test_resize_stop >= 2) {
        r->rc = -EINTR;
        return;
    }
    /* every online child records the new size and has zeros there: I/O may reach it */
    nx->size = r->new_size;
    __atomic_store_n(&nx->bdev.size, r->new_size, __ATOMIC_RELEASE);
}

DP_EXPORT int dp_nexus_resize(const char *uuid, uint64_t new_size)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct resize_op r = { .new_size = new_size };
    int rc = 0;
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        rc = -ENOENT;
        goto out;
    }
    r.nx = nx;
    uint64_t old = nx->size; /* changes only under nx_ctl_lock */
    if (new_size % nx->block_size || new_size > UINT64_MAX - NX_HDR_SIZE) {
        dp_set_error("nexus '%s': resize: size %llu is not a multiple of the block size %u", uuid,
                     (unsigned long long)new_size, nx->block_size);
        rc = -EINVAL;
        goto out;
    }
    if (new_size < old) {
        dp_set_error("nexus '%s': resize: size %llu is smaller than the current size %llu: a nexus cannot "
                     "shrink",
                     uuid, (unsigned long long)new_size, (unsigned long long)old);
        rc = -EINVAL;
        goto out;
    }
    if (new_size == old)
        goto out;
    dp_reactor_call(nx->reactor, resize_check_msg, &r);
    if (r.rc < 0) {
        dp_set_error("nexus '%s': resize: %s", uuid, r.err);
        rc = r.rc;
        goto out;
    }
    /* every child that keeps serving must hold the new size (the replicas grow first) */
    for (uint32_t i = 0; i < r.n; i++) {
        struct nx_child *c = r.serve[i];
        uint64_t have = __atomic_load_n(&c->bdev->size, __ATOMIC_ACQUIRE);
        /* a remote child learned its size when it connected: ask again (blocking is fine: control thread) */
        if (have < new_size + NX_HDR_SIZE) {
            int err = dp_bdev_refresh_size(c->bdev);
            if (err < 0) {
                char why[512];
                snprintf(why, sizeof why, "%s", dp_last_error());
                dp_set_error("nexus '%s': resize to %llu: child '%s': %s", uuid, (unsigned long long)new_size, c->uri,
                             why);
                rc = err;
                goto out;
            }
            have = __atomic_load_n(&c->bdev->size, __ATOMIC_ACQUIRE);
        }
        if (have < new_size + NX_HDR_SIZE) {
            dp_set_error("nexus '%s': resize to %llu: child '%s' has %llu bytes, needs %llu (the size plus "
                         "%llu bytes of label): grow it first",
                         uuid, (unsigned long long)new_size, c->uri, (unsigned long long)have,
                         (unsigned long long)(new_size + NX_HDR_SIZE), (unsigned long long)NX_HDR_SIZE);
            rc = -ENOSPC;
            goto out;
        }
    }
    /*
     * 1. Zeros over the new range on every serving child, stable before any
     * label changes: whatever labels a crash leaves, the range reads the
     * same everywhere. Nothing else writes there (I/O stops at the old size,
     * no rebuild runs). Children bdevs stay open: we hold nx_ctl_lock.
     */
    for (uint32_t i = 0; i < r.n; i++) {
        struct nx_child *c = r.serve[i];
        rc = zero_child_range(c->bdev, NX_HDR_SIZE + old, new_size - old);
        if (rc == 0)
            rc = dp_bdev_rw_sync(c->bdev, DP_IO_FLUSH, NULL, 0, 0);
        if (rc < 0) {
            dp_set_error("nexus '%s': resize: zeroing the new range of child '%s' failed: %s (nothing changed)", uuid,
                         c->uri, strerror(-rc));
            goto out;
        }
    }
    if (nx_test_resize_stop == 1) {
        rc = -EINTR;
        goto out;
    }
    /* 2. the labels record the new size (children failing it are faulted as for any label write) */
    dp_reactor_call(nx->reactor, resize_label_msg, &r);
    nx_wait_until(nx, pred_resize_labels, &r);
    /* 3. then I/O may reach the new range */
    dp_reactor_call(nx->reactor, resize_publish_msg, &r);
    if (r.rc < 0) {
        if (r.rc != -EINTR)
            dp_set_error("nexus '%s': resize: %s", uuid, r.err);
        rc = r.rc;
    }
out:
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}
