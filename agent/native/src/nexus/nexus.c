/*
 * nexus.c - nexus lifecycle, child management, states, label updates, growth.
 *
 * Control functions (dp_nexus_*) run on koffi worker threads. They hold
 * ctl_lock for their whole run (one nexus control operation at a time), do
 * blocking work (opening child URIs, synchronous label I/O on children no
 * I/O goes to) on their own thread, change nexus state only inside
 * dp_reactor_call() on the nexus reactor, and wait for asynchronous
 * conditions (a child's I/O drained, a label update written, a rebuild
 * stopped) with nx_wait_until().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "pool/format.h"

/* messages and reasons are truncated on purpose where they would not fit */
#pragma GCC diagnostic ignored "-Wformat-truncation"

_Static_assert(DP_NEXUS_MAX_CHILDREN == NX_MAX_CHILDREN, "max children");
_Static_assert(DP_NEXUS_HEADER_BYTES == NX_HDR_SIZE, "header size");
_Static_assert(DP_URI_MAX == NX_URI_MAX && DP_REASON_MAX == NX_REASON_MAX, "string sizes");
_Static_assert((int)DP_CHILD_DEGRADED == (int)NXC_DEGRADED && (int)DP_CHILD_OFFLINE == (int)NXC_OFFLINE,
               "child states");

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER; /* nx_list */
static struct nexus *nx_list;

static const char *child_state_name(enum nx_child_state s)
{
    switch (s) {
    case NXC_ONLINE: return "online";
    case NXC_DEGRADED: return "degraded";
    case NXC_FAULTED: return "faulted";
    case NXC_OFFLINE: return "offline";
    }
    return "?";
}

/* ---- events for control-thread waits -------------------------------------- */

void nx_notify(struct nexus *nx)
{
    pthread_mutex_lock(&nx->ev_lock);
    nx->ev_seq++;
    pthread_cond_broadcast(&nx->ev_cond);
    pthread_mutex_unlock(&nx->ev_lock);
}

struct pred_call {
    struct nexus *nx;
    bool (*pred)(struct nexus *, void *);
    void *arg;
    bool ok;
};

static void pred_run(void *a)
{
    struct pred_call *p = a;
    p->ok = p->pred(p->nx, p->arg);
}

/* Wait until pred (evaluated on the reactor) holds. */
static void nx_wait_until(struct nexus *nx, bool (*pred)(struct nexus *, void *), void *arg)
{
    for (;;) {
        pthread_mutex_lock(&nx->ev_lock);
        uint64_t seq = nx->ev_seq;
        pthread_mutex_unlock(&nx->ev_lock);
        struct pred_call p = { nx, pred, arg, false };
        dp_reactor_call(nx->reactor, pred_run, &p);
        if (p.ok)
            return;
        pthread_mutex_lock(&nx->ev_lock);
        while (nx->ev_seq == seq)
            pthread_cond_wait(&nx->ev_cond, &nx->ev_lock);
        pthread_mutex_unlock(&nx->ev_lock);
    }
}

/* ---- states ---------------------------------------------------------------- */

/*
 * The children that serve reads during a resync (online, not resyncing)
 * hold the same data. When the last of them leaves while others are still
 * resyncing, one of those becomes the source (lowest child id, as at open)
 * and every rebuild restarts from it: what they copied so far came from a
 * child that may differ from it in blocks unacknowledged at the crash.
 */
void nx_resync_check(struct nexus *nx)
{
    struct nx_child *cand = NULL;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_ONLINE)
            continue;
        if (!c->resync)
            return; /* a source is left */
        if (!cand || memcmp(c->id, cand->id, 16) < 0)
            cand = c;
    }
    if (!cand)
        return;
    cand->resync = false;
    cand->reason[0] = 0;
    if (cand->rebuild)
        nx_rebuild_stop(cand);
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i] != cand && nx->children[i]->rebuild)
            nx_rebuild_restart(nx->children[i]);
}

void nx_update_state(struct nexus *nx)
{
    nx_resync_check(nx);
    uint32_t online = 0;
    struct nx_child *bad = NULL;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state == NXC_ONLINE)
            online++;
        else if (!bad)
            bad = c;
    }
    enum nx_state old = nx->state;
    if (online == 0) {
        nx->state = NX_FAULTED;
        if (old != NX_FAULTED)
            snprintf(nx->reason, sizeof nx->reason, "no healthy child%s%s%s", bad ? " (last: " : "",
                     bad ? bad->uri : "", bad ? ")" : "");
    } else if (bad) {
        nx->state = NX_DEGRADED;
        snprintf(nx->reason, sizeof nx->reason, "child '%s' is %s", bad->uri, child_state_name(bad->state));
    } else {
        nx->state = NX_ONLINE;
        nx->reason[0] = 0;
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->resync) {
                snprintf(nx->reason, sizeof nx->reason, "resyncing after an unclean shutdown");
                break;
            }
    }
    if (nx->state != old)
        nx_notify(nx);
}

void nx_child_fault(struct nx_child *c, const char *fmt, ...)
{
    struct nexus *nx = c->nx;
    if (c->state != NXC_ONLINE && c->state != NXC_DEGRADED)
        return;
    enum nx_child_state prev = c->state;
    c->state = NXC_FAULTED;
    c->resync = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof c->reason, fmt, ap);
    va_end(ap);
    if (c->rebuild)
        nx_rebuild_stop(c);
    if (prev == NXC_ONLINE)
        nx_label_bump(nx); /* it may have missed writes: it must never look current */
    nx_update_state(nx);
    nx_notify(nx);
}

/* ---- label updates on the reactor ------------------------------------------ */

static void label_round(struct nexus *nx);

static void fill_label(struct nexus *nx, struct nx_child *c, struct nx_label *l, uint32_t flags)
{
    memset(l, 0, sizeof *l);
    memcpy(l->nexus_uuid, nx->uuid_bin, 16);
    memcpy(l->child_id, c->id, 16);
    l->seq = ++c->label_seq;
    l->generation = nx->generation;
    l->data_offset = NX_HDR_SIZE;
    l->data_size = nx->label_size;
    l->flags = flags;
    l->block_size = nx->block_size;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->state == NXC_ONLINE && l->nmembers < NX_MAX_CHILDREN)
            memcpy(l->members[l->nmembers++], nx->children[i]->id, 16);
}

bool nx_label_idle(const struct nexus *nx)
{
    return !nx->label_busy && !nx->label_again;
}

static void label_finish(struct nexus *nx)
{
    nx->label_busy = false;
    nx->label_rounds++;
    if (nx->round_dirty && nx->dirty_state == NX_LBL_MARKING) {
        /* "dirty" is stable on every member: data may go to the children */
        nx->dirty_state = NX_LBL_DIRTY;
        nx_io_release_dirty_wait(nx);
    }
    if (nx->label_again) {
        label_round(nx);
        return;
    }
    nx_io_release_held(nx);
    nx_notify(nx);
}

static void label_leg_done(struct nx_leg *leg)
{
    struct nx_child *c = leg->child;
    struct nexus *nx = c->nx;
    if (leg->status < 0) {
        c->errors++;
        nx_child_fault(c, "label %s failed: %s", leg->io.type == DP_IO_WRITE ? "write" : "flush",
                       strerror(-leg->status));
    } else if (leg->io.type == DP_IO_WRITE && c->state == NXC_ONLINE) {
        /* then make it stable */
        leg->io.type = DP_IO_FLUSH;
        leg->io.offset = 0;
        leg->io.length = 0;
        leg->io.iov = NULL;
        leg->io.iovcnt = 0;
        nx_leg_submit(nx, leg);
        return;
    }
    if (--nx->label_pending == 0)
        label_finish(nx);
}

static void label_round(struct nexus *nx)
{
    struct nx_child *todo[NX_MAX_CHILDREN];
    uint32_t ntodo = 0;
    nx->label_again = false;
    nx->label_busy = true;
    bool bumped = nx->label_newgen;
    if (bumped) {
        nx->generation++;
        nx->label_newgen = false;
    }
    nx->round_dirty = nx->dirty_state != NX_LBL_CLEAN;
    uint32_t flags = NX_LABEL_SYNCED | (nx->round_dirty ? 0 : NX_LABEL_CLEAN);
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_ONLINE || !c->bdev || (nx->label_only && c != nx->label_only))
            continue;
        struct nx_label l;
        fill_label(nx, c, &l, flags);
        nx_label_encode(&l, c->label_buf);
        struct nx_leg *leg = &c->label_leg;
        memset(&leg->io, 0, sizeof leg->io);
        leg->io.type = DP_IO_WRITE;
        leg->io.offset = nx_label_slot_offset(l.seq);
        leg->io.length = NX_LABEL_BLOCK;
        leg->iov.iov_base = c->label_buf;
        leg->iov.iov_len = NX_LABEL_BLOCK;
        leg->io.iov = &leg->iov;
        leg->io.iovcnt = 1;
        leg->child = c;
        leg->done = label_leg_done;
        todo[ntodo++] = c;
    }
    /* count all before submitting any: completions never run inline, but be explicit */
    nx->label_pending = ntodo;
    if (ntodo == 0) {
        /*
         * No child to carry it (the last one left): the generation is not
         * counted, so the child that left last still holds the newest one
         * and may be accepted as the source when it comes back.
         */
        if (bumped)
            nx->generation--;
        label_finish(nx);
        return;
    }
    for (uint32_t i = 0; i < ntodo; i++)
        nx_leg_submit(nx, &todo[i]->label_leg);
}

/*
 * A child left or joined: write the next generation to every online child.
 * Write completions wait (io.c holds them) until the round is on disk.
 */
static void label_request(struct nexus *nx)
{
    if (nx->label_busy) {
        nx->label_again = true;
        return;
    }
    label_round(nx);
}

void nx_label_bump(struct nexus *nx)
{
    nx->label_newgen = true;
    label_request(nx);
}

/* The first write since the labels said clean: same generation, without CLEAN. */
void nx_label_mark_dirty(struct nexus *nx)
{
    nx->dirty_state = NX_LBL_MARKING;
    nx->dirty_marks++;
    label_request(nx);
}

/* ---- synchronous label I/O from control threads ----------------------------- */

static int child_write_label_sync(struct nexus *nx, struct nx_child *c, uint32_t flags, uint64_t gen,
                                  const struct nx_label *members_from)
{
    struct nx_label l;
    memset(&l, 0, sizeof l);
    memcpy(l.nexus_uuid, nx->uuid_bin, 16);
    memcpy(l.child_id, c->id, 16);
    l.seq = ++c->label_seq;
    l.generation = gen;
    l.data_offset = NX_HDR_SIZE;
    l.data_size = nx->label_size;
    l.flags = flags;
    l.block_size = nx->block_size;
    if (members_from) {
        l.nmembers = members_from->nmembers;
        memcpy(l.members, members_from->members, sizeof l.members);
    }
    /* an out-of-sync mark goes to both slots: no older label may survive it */
    int rc = 0;
    for (int k = 0; k < (flags & NX_LABEL_SYNCED ? 1 : 2) && rc == 0; k++) {
        if (k)
            l.seq = ++c->label_seq;
        nx_label_encode(&l, c->label_buf);
        rc = dp_bdev_rw_sync(c->bdev, DP_IO_WRITE, c->label_buf, nx_label_slot_offset(l.seq), NX_LABEL_BLOCK);
    }
    if (rc == 0)
        rc = dp_bdev_rw_sync(c->bdev, DP_IO_FLUSH, NULL, 0, 0);
    return rc;
}

/* Continue the child's label seq from what is on it (any nexus), so our next label wins. */
static void child_adopt_seq(struct nx_child *c, const uint8_t *two)
{
    for (int i = 0; i < 2; i++) {
        struct nx_label l;
        char why[96];
        if (nx_label_decode(two + i * NX_LABEL_BLOCK, &l, why, sizeof why) == 0 && l.seq > c->label_seq &&
            l.seq < UINT64_MAX / 2)
            c->label_seq = l.seq;
    }
}

/* ---- registry ----------------------------------------------------------------- */

static struct nexus *find_locked(const char *uuid)
{
    for (struct nexus *n = nx_list; n; n = n->reg_next)
        if (!strcmp(n->uuid, uuid))
            return n;
    return NULL;
}

static struct nexus *nx_find(const char *uuid)
{
    pthread_mutex_lock(&reg_lock);
    struct nexus *n = find_locked(uuid);
    pthread_mutex_unlock(&reg_lock);
    return n;
}

static struct nx_child *find_child(struct nexus *nx, const char *uri)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (!strcmp(nx->children[i]->uri, uri))
            return nx->children[i];
    return NULL;
}

/* ---- children ----------------------------------------------------------------- */

static struct nx_child *child_new(struct nexus *nx, const char *uri)
{
    struct nx_child *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->label_buf = dp_buf_alloc(NX_LABEL_BLOCK);
    if (!c->label_buf) {
        free(c);
        return NULL;
    }
    c->nx = nx;
    snprintf(c->uri, sizeof c->uri, "%s", uri);
    return c;
}

/* Drop a child's device: its claim first, then the reference. */
static void child_bdev_put(struct nexus *nx, struct dp_bdev *b)
{
    dp_bdev_unclaim(b, nx);
    dp_bdev_put(b);
}

static void child_free(struct nx_child *c)
{
    if (!c)
        return;
    if (c->bdev)
        child_bdev_put(c->nx, c->bdev);
    dp_buf_free(c->label_buf);
    free(c);
}

/*
 * Open a child URI and claim it for the nexus (one writer-owner: a second
 * nexus or a pool here gets -EBUSY naming the owner). On failure *err gets
 * the reason (without the URI).
 */
static int open_child(struct nexus *nx, const char *uri, struct dp_bdev **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = dp_bdev_open_uri(uri, out);
    if (rc < 0) {
        snprintf(err, errlen, "%s", dp_get_error());
        return rc;
    }
    if ((*out)->ops == &nx_bdev_ops) {
        dp_bdev_put(*out);
        *out = NULL;
        snprintf(err, errlen, "is a nexus (nexuses cannot be nested)");
        return -EINVAL;
    }
    char owner[64];
    snprintf(owner, sizeof owner, "nexus '%s'", nx->uuid);
    rc = dp_bdev_claim(*out, nx, owner);
    if (rc < 0) {
        snprintf(err, errlen, "%s", dp_get_error());
        dp_bdev_put(*out);
        *out = NULL;
    }
    return rc;
}

/*
 * Is this child ours to write? `two` holds its first two label blocks. A pool
 * disk never is; a child labelled by another nexus is not unless that nexus
 * released it (deleted) or the caller forces it (the other nexus is gone for
 * good). -EBUSY with the reason in why.
 */
static int child_owner_check(struct nexus *nx, const uint8_t *two, uint32_t flags, char *why, size_t len)
{
    if (!memcmp(two, PF_LABEL_MAGIC, 8)) {
        struct pf_label pl;
        char e[128];
        if (pf_label_decode(two, &pl, e, sizeof e) == 0)
            snprintf(why, len, "is a disk of pool '%s' (a device has one owner)", pl.pool_name);
        else
            snprintf(why, len, "carries a pool label (%s): a pool disk is never a nexus child", e);
        return -EBUSY;
    }
    struct nx_label l;
    char e[128];
    if (nx_label_read_slots(two, &l, e, sizeof e) == 0 && memcmp(l.nexus_uuid, nx->uuid_bin, 16) &&
        !(l.flags & NX_LABEL_RELEASED) && !(flags & DP_NEXUS_FORCE)) {
        char u[37];
        dp_uuid_format(l.nexus_uuid, u);
        snprintf(why, len, "belongs to nexus '%s' (its label, generation %llu); if that nexus is gone for "
                 "good, force takes it (its data is then rebuilt over)", u, (unsigned long long)l.generation);
        return -EBUSY;
    }
    return 0;
}

/* Is `b` the same device or replica as a child of nx other than `self`? */
static struct nx_child *same_as_child(struct nexus *nx, struct dp_bdev *b, struct nx_child *self)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i] != self && !strcmp(nx->children[i]->ident, dp_bdev_ident(b)))
            return nx->children[i];
    return NULL;
}

static bool valid_uri(const char *uri)
{
    return uri && *uri && strlen(uri) < NX_URI_MAX;
}

/* ---- create / open --------------------------------------------------------------- */

enum probe_class { P_NEW, P_STALE, P_SYNCED, P_DOWN };

struct probe {
    struct dp_bdev *bdev;
    enum probe_class cls;
    struct nx_label label;
    char why[256];
};

struct start_arg {
    struct nexus *nx;
};

static void start_rebuilds_msg(void *a)
{
    struct nexus *nx = a;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if ((c->state == NXC_DEGRADED || (c->state == NXC_ONLINE && c->resync)) && !c->rebuild)
            nx_rebuild_start(c);
    }
    nx_update_state(nx);
}

static void nexus_free(struct nexus *nx)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        child_free(nx->children[i]);
    nx->nchildren = 0;
    nx_io_fini(nx);
    pthread_cond_destroy(&nx->ev_cond);
    pthread_mutex_destroy(&nx->ev_lock);
    free(nx);
}

static void nx_bdev_destroy(struct dp_bdev *bdev)
{
    /* Last reference to the nexus bdev: children were closed by destroy. */
    nexus_free(bdev->ctx);
}

const struct dp_bdev_ops nx_bdev_ops = {
    .submit = nx_io_submit,
    .block_status = nx_io_block_status,
    .destroy = nx_bdev_destroy,
};

static int nexus_setup(const char *uuid, uint64_t size, const char *const *uris, uint32_t n, bool open_mode,
                       uint32_t flags)
{
    const char *what = open_mode ? "open" : "create";
    uint8_t uuid_bin[16];
    if (!uuid || dp_uuid_parse(uuid, uuid_bin) < 0) {
        dp_set_error("nexus %s: uuid '%s' is not a UUID (8-4-4-4-12 hex digits)", what, uuid ? uuid : "(null)");
        return -EINVAL;
    }
    if (size == 0 || size % 512) {
        dp_set_error("nexus '%s': size %llu must be a non-zero multiple of 512 bytes", uuid,
                     (unsigned long long)size);
        return -EINVAL;
    }
    if (n == 0 || !uris) {
        dp_set_error("nexus '%s': children: at least one child is needed", uuid);
        return -EINVAL;
    }
    if (n > NX_MAX_CHILDREN) {
        dp_set_error("nexus '%s': children: %u children given, at most %u", uuid, n, NX_MAX_CHILDREN);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!valid_uri(uris[i])) {
            dp_set_error("nexus '%s': children[%u]: URI is empty or longer than %u bytes", uuid, i,
                         NX_URI_MAX - 1);
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(uris[i], uris[j])) {
                dp_set_error("nexus '%s': children[%u] '%s' duplicates children[%u]", uuid, i, uris[i], j);
                return -EINVAL;
            }
    }
    if (nx_find(uuid)) {
        dp_set_error("nexus '%s' already exists", uuid);
        return -EEXIST;
    }
    struct dp_bdev *clash = dp_bdev_get(uuid);
    if (clash) {
        dp_bdev_put(clash);
        dp_set_error("nexus '%s': a device named '%s' already exists", uuid, uuid);
        return -EEXIST;
    }

    int rc = 0;
    struct probe *pr = calloc(n, sizeof *pr);
    struct nexus *nx = calloc(1, sizeof *nx);
    uint8_t *lbuf = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!pr || !nx || !lbuf) {
        free(pr);
        free(nx);
        dp_buf_free(lbuf);
        dp_set_error("nexus '%s': out of memory", uuid);
        return -ENOMEM;
    }
    pthread_mutex_init(&nx->ev_lock, NULL);
    pthread_cond_init(&nx->ev_cond, NULL);
    snprintf(nx->uuid, sizeof nx->uuid, "%s", uuid);
    memcpy(nx->uuid_bin, uuid_bin, 16);
    nx->size = size;
    nx->label_size = size;
    nx->block_size = 512;

    /* 1. open every child */
    uint32_t reachable = 0;
    for (uint32_t i = 0; i < n; i++) {
        char err[256];
        rc = open_child(nx, uris[i], &pr[i].bdev, err, sizeof err);
        if (rc < 0) {
            if (!open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': %s", uuid, i, uris[i], err);
                goto fail;
            }
            pr[i].cls = P_DOWN;
            snprintf(pr[i].why, sizeof pr[i].why, "unreachable: %s", err);
            rc = 0;
            continue;
        }
        for (uint32_t j = 0; j < i; j++)
            if (pr[j].bdev && !strcmp(dp_bdev_ident(pr[j].bdev), dp_bdev_ident(pr[i].bdev))) {
                dp_set_error("nexus '%s': children[%u] '%s' is the same device as children[%u] '%s' (%s)",
                             uuid, i, uris[i], j, uris[j], dp_bdev_ident(pr[i].bdev));
                rc = -EINVAL;
                goto fail;
            }
        struct dp_bdev *b = pr[i].bdev;
        /* open: a child too small is left out below (the labels may record a larger size anyway) */
        if (!open_mode && b->size < size + NX_HDR_SIZE) {
            dp_set_error("nexus '%s': children[%u] '%s': size %llu is too small for a nexus of %llu bytes "
                         "(a child needs the size plus %llu bytes for the nexus label)",
                         uuid, i, uris[i], (unsigned long long)b->size, (unsigned long long)size,
                         (unsigned long long)NX_HDR_SIZE);
            rc = -EINVAL;
            goto fail;
        }
        if (!open_mode && reachable && b->size != pr[0].bdev->size) {
            dp_set_error("nexus '%s': children[%u] '%s' has %llu bytes but children[0] '%s' has %llu: "
                         "children must be the same size", uuid, i, uris[i],
                         (unsigned long long)b->size, uris[0], (unsigned long long)pr[0].bdev->size);
            rc = -EINVAL;
            goto fail;
        }
        if (b->block_size > nx->block_size)
            nx->block_size = b->block_size;
        reachable++;
    }
    if (reachable == 0) {
        char list[512] = "";
        size_t o = 0;
        for (uint32_t i = 0; i < n && o < sizeof list; i++)
            o += snprintf(list + o, sizeof list - o, "%schildren[%u] '%s': %s", o ? "; " : "", i, uris[i],
                          pr[i].why);
        dp_set_error("nexus '%s': no child can be opened (%s)", uuid, list);
        rc = -ENODEV;
        goto fail;
    }
    if (size % nx->block_size) {
        dp_set_error("nexus '%s': size %llu is not a multiple of the children's block size %u", uuid,
                     (unsigned long long)size, nx->block_size);
        rc = -EINVAL;
        goto fail;
    }

    /* 2. read the labels */
    for (uint32_t i = 0; i < n; i++) {
        if (pr[i].cls == P_DOWN)
            continue;
        rc = dp_bdev_rw_sync(pr[i].bdev, DP_IO_READ, lbuf, 0, 2 * NX_LABEL_BLOCK);
        if (rc < 0) {
            if (!open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': reading the label failed: %s", uuid, i, uris[i],
                             strerror(-rc));
                goto fail;
            }
            pr[i].cls = P_DOWN;
            snprintf(pr[i].why, sizeof pr[i].why, "reading the label failed: %s", strerror(-rc));
            rc = 0;
            continue;
        }
        char why[128];
        rc = child_owner_check(nx, lbuf, flags, pr[i].why, sizeof pr[i].why);
        if (rc < 0) {
            if (!open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s' %s", uuid, i, uris[i], pr[i].why);
                goto fail;
            }
            /* never written: its owner may still need it */
            pr[i].cls = P_DOWN;
            child_bdev_put(nx, pr[i].bdev);
            pr[i].bdev = NULL;
            rc = 0;
            continue;
        }
        int lr = nx_label_read_slots(lbuf, &pr[i].label, why, sizeof why);
        if (lr < 0 || memcmp(pr[i].label.nexus_uuid, uuid_bin, 16) != 0) {
            pr[i].cls = P_NEW; /* blank, damaged, or another nexus's: a new child */
            snprintf(pr[i].why, sizeof pr[i].why, "new child (%s)",
                     lr < 0 ? why : "label of another nexus");
            uint64_t seq = lr == 0 && pr[i].label.seq < UINT64_MAX / 2 ? pr[i].label.seq : 0;
            memset(&pr[i].label, 0, sizeof pr[i].label);
            pr[i].label.seq = seq;
            continue;
        }
        pr[i].cls = (pr[i].label.flags & NX_LABEL_SYNCED) ? P_SYNCED : P_STALE;
        if (pr[i].cls == P_STALE)
            snprintf(pr[i].why, sizeof pr[i].why, "out of sync (label generation %llu not synced)",
                     (unsigned long long)pr[i].label.generation);
    }

    /* 3. decide who is current (LABEL.md, "Opening") */
    uint64_t gmax = 0;
    int newest = -1;
    bool any_label = false, all_new = true;
    for (uint32_t i = 0; i < n; i++) {
        if (pr[i].cls == P_STALE || pr[i].cls == P_SYNCED)
            any_label = true;
        if (pr[i].cls != P_NEW)
            all_new = false;
        if (pr[i].cls == P_SYNCED && (newest < 0 || pr[i].label.generation > gmax)) {
            gmax = pr[i].label.generation;
            newest = (int)i;
        }
    }
    bool fresh = false;
    if (newest < 0) {
        if (!open_mode && all_new) {
            fresh = true;
        } else if (!any_label) {
            dp_set_error("nexus '%s': no child carries a label of this nexus (nothing to open)", uuid);
            rc = -ENOENT;
            goto fail;
        } else {
            /* only stale (or new) children: their data may be old */
            char list[512] = "";
            size_t o = 0;
            for (uint32_t i = 0; i < n && o < sizeof list; i++)
                o += snprintf(list + o, sizeof list - o, "%schildren[%u] '%s': %s", o ? "; " : "", i,
                              uris[i], pr[i].why);
            dp_set_error("nexus '%s': no child holds current data, refusing to serve stale data (%s)", uuid,
                         list);
            rc = -ENODEV;
            goto fail;
        }
    }
    if (!fresh) {
        /* synced but older than the newest: stale */
        for (uint32_t i = 0; i < n; i++)
            if (pr[i].cls == P_SYNCED && pr[i].label.generation < gmax) {
                pr[i].cls = P_STALE;
                snprintf(pr[i].why, sizeof pr[i].why, "out of sync (generation %llu, newest %llu)",
                         (unsigned long long)pr[i].label.generation, (unsigned long long)gmax);
            }
        /* every member of the newest generation must be here: a missing one may hold newer writes */
        const struct nx_label *nl = &pr[newest].label;
        for (uint32_t m = 0; m < nl->nmembers; m++) {
            bool present = false;
            for (uint32_t i = 0; i < n; i++)
                if (pr[i].cls == P_SYNCED && !memcmp(pr[i].label.child_id, nl->members[m], 16))
                    present = true;
            if (!present) {
                char idstr[37];
                dp_uuid_format(nl->members[m], idstr);
                const char *uri = NULL;
                for (uint32_t i = 0; i < n; i++)
                    if (pr[i].cls == P_DOWN)
                        uri = uris[i];
                dp_set_error("nexus '%s': child %s, in sync at generation %llu, is missing%s%s%s; it may hold "
                             "newer data, refusing to serve possibly stale data", uuid, idstr,
                             (unsigned long long)gmax, uri ? " (unreachable: " : "", uri ? uri : "",
                             uri ? ")" : "");
                rc = -ENODEV;
                goto fail;
            }
        }
        /*
         * Size (LABEL.md, rule 3): a current child recording less than the
         * requested size is an error; a larger one is a growth that was
         * interrupted or not yet recorded by the agent: roll forward to the
         * largest (the new range was zeroed on every serving child before
         * any label changed). Stale and new children are rebuilt over it.
         */
        uint64_t adopt = size;
        for (uint32_t i = 0; i < n; i++) {
            if (pr[i].cls != P_SYNCED)
                continue;
            if (pr[i].label.data_size < size) {
                dp_set_error("nexus '%s': size %llu is larger than the size %llu recorded in the label of "
                             "children[%u] '%s' (a nexus grows with dp_nexus_resize only)", uuid,
                             (unsigned long long)size, (unsigned long long)pr[i].label.data_size, i, uris[i]);
                rc = -EINVAL;
                goto fail;
            }
            if (pr[i].label.data_size > adopt)
                adopt = pr[i].label.data_size;
        }
        if (adopt % nx->block_size || adopt > UINT64_MAX - NX_HDR_SIZE) {
            dp_set_error("nexus '%s': size %llu recorded in the labels is not usable (not a multiple of the "
                         "children's block size %u, or too large)", uuid, (unsigned long long)adopt,
                         nx->block_size);
            rc = -EINVAL;
            goto fail;
        }
        nx->size = nx->label_size = adopt;
        /* dirty if any current child's label says so (a close may have been cut short) */
        for (uint32_t i = 0; i < n; i++)
            if (pr[i].cls == P_SYNCED && !(pr[i].label.flags & NX_LABEL_CLEAN))
                nx->was_dirty = true;
        nx->generation = gmax;
    }

    /*
     * A child too small for the size (possibly adopted from the labels) can
     * neither serve nor be rebuilt: it is left out as faulted (open) until
     * it is grown and brought online. Membership was checked above, so a
     * current member left out here held nothing the others lack.
     */
    if (open_mode || nx->size != size) {
        uint32_t usable = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (pr[i].cls == P_DOWN)
                continue;
            uint64_t have = pr[i].bdev->size;
            if (have >= nx->size + NX_HDR_SIZE) {
                usable += pr[i].cls == P_SYNCED;
                continue;
            }
            if (!open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': size %llu is too small for the size %llu "
                             "recorded in the labels (a child needs the size plus %llu bytes)", uuid, i,
                             uris[i], (unsigned long long)have, (unsigned long long)nx->size,
                             (unsigned long long)NX_HDR_SIZE);
                rc = -EINVAL;
                goto fail;
            }
            snprintf(pr[i].why, sizeof pr[i].why,
                     "size %llu is too small for the nexus size %llu plus %llu bytes of label: grow it, "
                     "then bring it online", (unsigned long long)have, (unsigned long long)nx->size,
                     (unsigned long long)NX_HDR_SIZE);
            pr[i].cls = P_DOWN;
        }
        if (!fresh && usable == 0) {
            char list[512] = "";
            size_t o = 0;
            for (uint32_t i = 0; i < n && o < sizeof list; i++)
                o += snprintf(list + o, sizeof list - o, "%schildren[%u] '%s': %s", o ? "; " : "", i,
                              uris[i], pr[i].cls == P_DOWN ? pr[i].why : "out of sync");
            dp_set_error("nexus '%s': no current child can hold the nexus size %llu (%s)", uuid,
                         (unsigned long long)nx->size, list);
            rc = -ENODEV;
            goto fail;
        }
    }

    /* 4. build the nexus */
    nx->reactor = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct nx_child *c = child_new(nx, uris[i]);
        if (!c) {
            dp_set_error("nexus '%s': out of memory", uuid);
            rc = -ENOMEM;
            goto fail;
        }
        nx->children[nx->nchildren++] = c;
        c->bdev = pr[i].bdev;
        pr[i].bdev = NULL;
        snprintf(c->ident, sizeof c->ident, "%s", c->bdev ? dp_bdev_ident(c->bdev) : uris[i]);
        c->label_seq = pr[i].label.seq;
        if (pr[i].cls == P_SYNCED || pr[i].cls == P_STALE)
            memcpy(c->id, pr[i].label.child_id, 16);
        else
            dp_uuid_generate(c->id);
        switch (pr[i].cls) {
        case P_SYNCED:
            c->state = NXC_ONLINE;
            break;
        case P_NEW:
            c->state = fresh ? NXC_ONLINE : NXC_DEGRADED;
            if (!fresh)
                snprintf(c->reason, sizeof c->reason, "%s: rebuilding", pr[i].why);
            break;
        case P_STALE:
            c->state = NXC_DEGRADED;
            snprintf(c->reason, sizeof c->reason, "%s: rebuilding", pr[i].why);
            break;
        case P_DOWN:
            c->state = NXC_FAULTED;
            snprintf(c->reason, sizeof c->reason, "%s", pr[i].why);
            break;
        }
    }
    /* live on the reactor of most children: legs to them need no thread hop */
    uint32_t best = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (!c->bdev)
            continue;
        uint32_t k = 0;
        for (uint32_t j = 0; j < nx->nchildren; j++)
            k += nx->children[j]->bdev && nx->children[j]->bdev->reactor == c->bdev->reactor;
        if (k > best) {
            best = k;
            nx->reactor = c->bdev->reactor;
        }
    }
    rc = nx_io_init(nx);
    if (rc < 0) {
        dp_set_error("nexus '%s': out of memory", uuid);
        goto fail;
    }

    /*
     * 5. labels: members get the next generation; rebuild targets are marked
     * out of sync. After an unclean shutdown with more than one current
     * child they may differ in blocks of unacknowledged writes: the labels
     * stay dirty, so that a crash during the resync resyncs again.
     */
    uint32_t ncurrent = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        ncurrent += nx->children[i]->state == NXC_ONLINE;
    bool resync = nx->was_dirty && ncurrent > 1;
    nx->dirty_state = resync ? NX_LBL_DIRTY : NX_LBL_CLEAN;
    for (;;) {
        nx->generation++;
        struct nx_label members;
        memset(&members, 0, sizeof members);
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->state == NXC_ONLINE)
                memcpy(members.members[members.nmembers++], nx->children[i]->id, 16);
        if (members.nmembers == 0) {
            dp_set_error("nexus '%s': writing the labels failed on every current child", uuid);
            rc = -EIO;
            goto fail;
        }
        bool failed = false;
        for (uint32_t i = 0; i < nx->nchildren; i++) {
            struct nx_child *c = nx->children[i];
            if (c->state != NXC_ONLINE)
                continue;
            int wr = child_write_label_sync(nx, c, NX_LABEL_SYNCED | (resync ? 0 : NX_LABEL_CLEAN),
                                            nx->generation, &members);
            if (wr < 0) {
                if (!open_mode) {
                    dp_set_error("nexus '%s': children[%u] '%s': writing the label failed: %s", uuid, i,
                                 c->uri, strerror(-wr));
                    rc = wr;
                    goto fail_wipe;
                }
                c->state = NXC_FAULTED;
                snprintf(c->reason, sizeof c->reason, "writing the label failed: %s", strerror(-wr));
                failed = true;
            }
        }
        if (!failed)
            break;
    }
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_DEGRADED)
            continue;
        int wr = child_write_label_sync(nx, c, 0, nx->generation, NULL);
        if (wr < 0) {
            if (!open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': writing the label failed: %s", uuid, i, c->uri,
                             strerror(-wr));
                rc = wr;
                goto fail_wipe;
            }
            c->state = NXC_FAULTED;
            snprintf(c->reason, sizeof c->reason, "writing the label failed: %s", strerror(-wr));
        }
    }

    /*
     * Resync: one current child is the source (the lowest child id: the same
     * choice after every restart, whatever the order of the URIs); until the
     * others are rebuilt from it (start_rebuilds_msg) reads go to it alone.
     */
    if (resync) {
        struct nx_child *src = NULL;
        for (uint32_t i = 0; i < nx->nchildren; i++) {
            struct nx_child *c = nx->children[i];
            if (c->state == NXC_ONLINE && (!src || memcmp(c->id, src->id, 16) < 0))
                src = c;
        }
        for (uint32_t i = 0; i < nx->nchildren; i++) {
            struct nx_child *c = nx->children[i];
            if (c->state == NXC_ONLINE && c != src) {
                c->resync = true;
                snprintf(c->reason, sizeof c->reason,
                         "resyncing from '%s' after an unclean shutdown (no reads until done)", src->uri);
            }
        }
    }

    /* 6. register as a bdev named by the uuid */
    snprintf(nx->bdev.name, sizeof nx->bdev.name, "%s", uuid);
    nx->bdev.size = nx->size;
    nx->bdev.block_size = nx->block_size;
    nx->bdev.thin = false;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->bdev && nx->children[i]->bdev->thin)
            nx->bdev.thin = true;
    nx->bdev.ops = &nx_bdev_ops;
    nx->bdev.ctx = nx;
    nx->bdev.reactor = nx->reactor;
    nx_update_state(nx);
    rc = dp_bdev_register(&nx->bdev);
    if (rc < 0) {
        char e[256];
        snprintf(e, sizeof e, "%s", dp_get_error());
        dp_set_error("nexus '%s': %s", uuid, e);
        goto fail_wipe;
    }
    pthread_mutex_lock(&reg_lock);
    nx->reg_next = nx_list;
    nx_list = nx;
    pthread_mutex_unlock(&reg_lock);
    dp_reactor_call(nx->reactor, start_rebuilds_msg, nx);

    free(pr);
    dp_buf_free(lbuf);
    return 0;

fail_wipe:
    /* a fresh create leaves no label behind */
    if (fresh) {
        memset(lbuf, 0, 2 * NX_LABEL_BLOCK);
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->bdev)
                dp_bdev_rw_sync(nx->children[i]->bdev, DP_IO_WRITE, lbuf, 0, 2 * NX_LABEL_BLOCK);
    }
fail:
    {
        char e[512];
        snprintf(e, sizeof e, "%s", dp_get_error());
        for (uint32_t i = 0; i < n; i++)
            if (pr[i].bdev)
                child_bdev_put(nx, pr[i].bdev);
        nexus_free(nx);
        free(pr);
        dp_buf_free(lbuf);
        dp_set_error("%s", e);
    }
    return rc;
}

DP_EXPORT int dp_nexus_create(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren,
                              uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    int rc = nexus_setup(uuid, size, children, nchildren, false, flags);
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

DP_EXPORT int dp_nexus_open(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    int rc = nexus_setup(uuid, size, children, nchildren, true, 0);
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

/* ---- destroy ------------------------------------------------------------------------- */

static bool pred_quiet(struct nexus *nx, void *arg)
{
    (void)arg;
    if (nx->app_inflight || !nx_label_idle(nx))
        return false;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->rebuild || nx->children[i]->inflight)
            return false;
    return true;
}

static void destroy_begin_msg(void *a)
{
    struct nexus *nx = a;
    nx->destroying = true;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->rebuild)
            nx_rebuild_stop(nx->children[i]);
}

static void nexus_close(struct nexus *nx, bool unregister, bool clean, bool release)
{
    struct dp_bdev *self = dp_bdev_get(nx->uuid); /* keeps nx alive until the end */
    if (unregister)
        dp_bdev_unregister(&nx->bdev);
    dp_reactor_call(nx->reactor, destroy_begin_msg, nx);
    nx_wait_until(nx, pred_quiet, NULL);
    /* orderly close: labels say clean, generation unchanged; not while a
     * resync is unfinished (the next open resyncs again) */
    bool resyncing = false;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        resyncing |= nx->children[i]->state == NXC_ONLINE && nx->children[i]->resync;
    if (clean && nx->state != NX_FAULTED && !resyncing) {
        struct nx_label members;
        memset(&members, 0, sizeof members);
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->state == NXC_ONLINE)
                memcpy(members.members[members.nmembers++], nx->children[i]->id, 16);
        for (uint32_t i = 0; i < nx->nchildren; i++) {
            struct nx_child *c = nx->children[i];
            if (c->state == NXC_ONLINE && c->bdev)
                child_write_label_sync(nx, c, NX_LABEL_SYNCED | NX_LABEL_CLEAN | (release ? NX_LABEL_RELEASED : 0),
                                       nx->generation, &members);
        }
    }
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->bdev) {
            child_bdev_put(nx, c->bdev);
            c->bdev = NULL;
        }
    }
    if (self)
        dp_bdev_put(self); /* the last reference: nx_bdev_destroy frees it */
}

/* Take a nexus out of the list of live ones (under ctl_lock). */
static void nx_unlist(struct nexus *nx)
{
    pthread_mutex_lock(&reg_lock);
    for (struct nexus **p = &nx_list; *p; p = &(*p)->reg_next)
        if (*p == nx) {
            *p = nx->reg_next;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

DP_EXPORT int dp_nexus_destroy(const char *uuid, uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&ctl_lock);
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        return -ENOENT;
    }
    /* registry + nothing else: a share or descriptor holding it must go first */
    int refs = __atomic_load_n(&nx->bdev.refs, __ATOMIC_RELAXED);
    if (refs > 1) {
        pthread_mutex_unlock(&ctl_lock);
        dp_set_error("nexus '%s' is in use (%d open handles: unshare it and close its descriptors first)",
                     uuid, refs - 1);
        return -EBUSY;
    }
    nx_unlist(nx);
    nexus_close(nx, true, true, flags & DP_NEXUS_RELEASE);
    pthread_mutex_unlock(&ctl_lock);
    return 0;
}

/* Tests: forget a nexus as a crash would, writing no label. */
int nx_test_drop_unclean(const char *uuid)
{
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&ctl_lock);
        return -ENOENT;
    }
    nx_unlist(nx);
    nexus_close(nx, true, false, false);
    pthread_mutex_unlock(&ctl_lock);
    return 0;
}

/* dp_fini: close every nexus (labels clean) before the devices go. */
void dp_nexus_close_all(void)
{
    pthread_mutex_lock(&ctl_lock);
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        struct nexus *nx = nx_list;
        if (nx)
            nx_list = nx->reg_next;
        pthread_mutex_unlock(&reg_lock);
        if (!nx)
            break;
        nexus_close(nx, true, true, false);
    }
    pthread_mutex_unlock(&ctl_lock);
}

/* ---- stats ---------------------------------------------------------------------------- */

struct stat_arg {
    struct nexus *nx;
    dp_nexus_info *info;
    uint32_t index;
    dp_nexus_child_info *child;
    int rc;
};

static void fill_info(struct nexus *nx, dp_nexus_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->uuid, sizeof o->uuid, "%s", nx->uuid);
    o->size_bytes = nx->size;
    o->state = nx->state;
    o->nchildren = nx->nchildren;
    o->block_size = nx->block_size;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->rebuild)
            o->rebuilds++;
    o->generation = nx->generation;
    snprintf(o->reason, sizeof o->reason, "%s", nx->reason);
    o->reads = nx->reads;
    o->writes = nx->writes;
    o->flushes = nx->flushes;
    o->errors = nx->errors;
}

static void stat_msg(void *a)
{
    struct stat_arg *s = a;
    fill_info(s->nx, s->info);
}

static void child_stat_msg(void *a)
{
    struct stat_arg *s = a;
    struct nexus *nx = s->nx;
    if (s->index >= nx->nchildren) {
        s->rc = -ENOENT;
        return;
    }
    struct nx_child *c = nx->children[s->index];
    dp_nexus_child_info *o = s->child;
    memset(o, 0, sizeof *o);
    snprintf(o->uri, sizeof o->uri, "%s", c->uri);
    o->state = c->state;
    snprintf(o->reason, sizeof o->reason, "%s", c->reason);
    o->rebuild_bytes_done = c->rb_done;
    o->rebuild_bytes_total = c->rb_total;
    o->rebuild_bytes_copied = c->rb_copied;
    o->rebuild_rate = c->rb_rate;
    o->rebuilding = c->rebuild != NULL;
    bool in_sync = c->state == NXC_ONLINE && !c->resync;
    if (in_sync)
        o->rebuild_percent = 100;
    else if (c->rb_total)
        o->rebuild_percent = (uint32_t)(c->rb_done * 100 / c->rb_total);
    if (o->rebuild_percent > 100 || (!in_sync && o->rebuild_percent == 100))
        o->rebuild_percent = 99; /* 100 only once in sync */
    o->reads = c->reads;
    o->writes = c->writes;
    o->errors = c->errors;
}

DP_EXPORT int dp_nexus_stat(const char *uuid, dp_nexus_info *out)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("dp_nexus_stat: out is NULL");
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    struct nexus *nx = find_locked(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&reg_lock);
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        return -ENOENT;
    }
    struct stat_arg s = { .nx = nx, .info = out };
    dp_reactor_call(nx->reactor, stat_msg, &s);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

DP_EXPORT int dp_nexus_at(uint32_t index, dp_nexus_info *out)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("dp_nexus_at: out is NULL");
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    struct nexus *nx = nx_list;
    for (uint32_t i = 0; nx && i < index; i++)
        nx = nx->reg_next;
    if (!nx) {
        pthread_mutex_unlock(&reg_lock);
        return -ENOENT;
    }
    struct stat_arg s = { .nx = nx, .info = out };
    dp_reactor_call(nx->reactor, stat_msg, &s);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

DP_EXPORT int dp_nexus_child_at(const char *uuid, uint32_t index, dp_nexus_child_info *out)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("dp_nexus_child_at: out is NULL");
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    struct nexus *nx = find_locked(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&reg_lock);
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        return -ENOENT;
    }
    struct stat_arg s = { .nx = nx, .index = index, .child = out };
    dp_reactor_call(nx->reactor, child_stat_msg, &s);
    pthread_mutex_unlock(&reg_lock);
    return s.rc;
}

/* ---- child operations ------------------------------------------------------------------- */

struct child_op {
    struct nexus *nx;
    struct nx_child *c;
    int rc;
    enum nx_child_state prev;
    const char *op;
    char err[256];
};

static int lookup(const char *uuid, const char *uri, const char *op, struct nexus **nxo, struct nx_child **co)
{
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        return -ENOENT;
    }
    *nxo = nx;
    if (!valid_uri(uri)) {
        dp_set_error("nexus '%s': %s: uri is empty or longer than %u bytes", uuid, op, NX_URI_MAX - 1);
        return -EINVAL;
    }
    if (co) {
        *co = find_child(nx, uri);
        if (!*co) {
            dp_set_error("nexus '%s': %s: '%s' is not a child of this nexus", uuid, op, uri);
            return -ENOENT;
        }
    }
    return 0;
}

static uint32_t online_count(struct nexus *nx)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        k += nx->children[i]->state == NXC_ONLINE;
    return k;
}

/* Take a child out of service (remove/offline): no new I/O goes to it. */
static void leave_msg(void *a)
{
    struct child_op *o = a;
    struct nexus *nx = o->nx;
    struct nx_child *c = o->c;
    o->prev = c->state;
    if (c->state == NXC_ONLINE && online_count(nx) == 1 && !nx->destroying) {
        snprintf(o->err, sizeof o->err, "'%s' is the last healthy child", c->uri);
        o->rc = -EBUSY;
        return;
    }
    c->state = NXC_OFFLINE;
    c->resync = false;
    snprintf(c->reason, sizeof c->reason, "%s by request", o->op);
    if (c->rebuild)
        nx_rebuild_stop(c);
    if (o->prev == NXC_ONLINE)
        nx_label_bump(nx);
    nx_update_state(nx);
}

static bool pred_child_quiet(struct nexus *nx, void *arg)
{
    struct nx_child *c = arg;
    return !c->rebuild && c->inflight == 0 && nx_label_idle(nx);
}

static void detach_msg(void *a)
{
    struct child_op *o = a;
    struct nexus *nx = o->nx;
    int idx = nx_child_index(nx, o->c);
    if (idx < 0)
        return;
    for (uint32_t i = (uint32_t)idx; i + 1 < nx->nchildren; i++)
        nx->children[i] = nx->children[i + 1];
    nx->nchildren--;
    nx_update_state(nx);
}

static void close_bdev_msg(void *a)
{
    struct child_op *o = a;
    o->c->bdev = NULL;
}

/* Common part of remove and offline: stop I/O, mark the label out of sync, close. */
static int child_leave(struct nexus *nx, struct nx_child *c, const char *op)
{
    struct child_op o = { .nx = nx, .c = c, .op = op };
    dp_reactor_call(nx->reactor, leave_msg, &o);
    if (o.rc < 0) {
        dp_set_error("nexus '%s': %s '%s': %s", nx->uuid, op, c->uri, o.err);
        return o.rc;
    }
    nx_wait_until(nx, pred_child_quiet, c);
    struct dp_bdev *b = c->bdev;
    if (b && (o.prev == NXC_ONLINE || o.prev == NXC_DEGRADED))
        child_write_label_sync(nx, c, 0, nx->generation, NULL); /* best effort: never trusted again */
    dp_reactor_call(nx->reactor, close_bdev_msg, &o);
    if (b)
        child_bdev_put(nx, b);
    return 0;
}

DP_EXPORT int dp_nexus_remove_child(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    int rc = lookup(uuid, uri, "remove child", &nx, &c);
    if (rc == 0)
        rc = child_leave(nx, c, "removed");
    if (rc == 0) {
        struct child_op o = { .nx = nx, .c = c };
        dp_reactor_call(nx->reactor, detach_msg, &o);
        child_free(c);
    }
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

DP_EXPORT int dp_nexus_child_offline(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    int rc = lookup(uuid, uri, "offline child", &nx, &c);
    if (rc == 0 && c->state != NXC_OFFLINE)
        rc = child_leave(nx, c, "offlined");
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

static bool pred_fault_done(struct nexus *nx, void *arg)
{
    struct nx_child *c = arg;
    return !c->rebuild && nx_label_idle(nx);
}

static void fault_msg(void *a)
{
    struct child_op *o = a;
    nx_child_fault(o->c, "faulted by request");
}

DP_EXPORT int dp_nexus_child_fault(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    int rc = lookup(uuid, uri, "fault child", &nx, &c);
    if (rc == 0) {
        struct child_op o = { .nx = nx, .c = c };
        dp_reactor_call(nx->reactor, fault_msg, &o);
        /* the new generation is on disk when this returns; the child's own
         * outstanding I/O (maybe to a dead peer) is not waited for */
        nx_wait_until(nx, pred_fault_done, c);
    }
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

/* Insert or re-enable a child as a rebuild target. */
static void join_msg(void *a)
{
    struct child_op *o = a;
    struct nexus *nx = o->nx;
    struct nx_child *c = o->c;
    if (nx->state == NX_FAULTED || online_count(nx) == 0) {
        snprintf(o->err, sizeof o->err, "no healthy child to rebuild from");
        o->rc = -ENODEV;
        return;
    }
    if (nx_child_index(nx, c) < 0) {
        if (nx->nchildren >= NX_MAX_CHILDREN) {
            snprintf(o->err, sizeof o->err, "the nexus has %u children already (max)", nx->nchildren);
            o->rc = -ENOSPC;
            return;
        }
        nx->children[nx->nchildren++] = c;
    }
    c->state = NXC_DEGRADED;
    snprintf(c->reason, sizeof c->reason, "rebuilding");
    o->rc = nx_rebuild_start(c);
    if (o->rc < 0) {
        snprintf(o->err, sizeof o->err, "%s", c->reason);
    }
    nx_update_state(nx);
}

static int check_child_bdev(struct nexus *nx, const char *op, const char *uri, struct dp_bdev *b,
                            struct nx_child *self)
{
    if (b->size < nx->size + NX_HDR_SIZE) {
        dp_set_error("nexus '%s': %s '%s': size %llu is too small (needs %llu: the nexus size plus %llu "
                     "bytes for the label)", nx->uuid, op, uri, (unsigned long long)b->size,
                     (unsigned long long)(nx->size + NX_HDR_SIZE), (unsigned long long)NX_HDR_SIZE);
        return -EINVAL;
    }
    if (b->block_size > nx->block_size || nx->block_size % b->block_size) {
        dp_set_error("nexus '%s': %s '%s': block size %u does not fit the nexus block size %u", nx->uuid, op,
                     uri, b->block_size, nx->block_size);
        return -EINVAL;
    }
    struct nx_child *twin = same_as_child(nx, b, self);
    if (twin) {
        dp_set_error("nexus '%s': %s '%s' is the same device as child '%s' (%s)", nx->uuid, op, uri, twin->uri,
                     twin->ident);
        return -EINVAL;
    }
    return 0;
}

/*
 * The checks a child passes before the nexus writes anything to it: size and
 * identity (check_child_bdev), then ownership by its label (read into `two`,
 * 2 * NX_LABEL_BLOCK bytes). Sets c->ident; continues the child's label seq
 * so that our next label wins.
 */
static int child_attach_checks(struct nexus *nx, struct nx_child *c, struct dp_bdev *b, const char *op,
                               uint32_t flags, uint8_t *two)
{
    int rc = check_child_bdev(nx, op, c->uri, b, c);
    if (rc < 0)
        return rc;
    rc = dp_bdev_rw_sync(b, DP_IO_READ, two, 0, 2 * NX_LABEL_BLOCK);
    if (rc < 0) {
        dp_set_error("nexus '%s': %s '%s': reading the label failed: %s", nx->uuid, op, c->uri, strerror(-rc));
        return rc;
    }
    char why[256];
    rc = child_owner_check(nx, two, flags, why, sizeof why);
    if (rc < 0) {
        dp_set_error("nexus '%s': %s '%s' %s", nx->uuid, op, c->uri, why);
        return rc;
    }
    snprintf(c->ident, sizeof c->ident, "%s", dp_bdev_ident(b));
    child_adopt_seq(c, two);
    return 0;
}

/* Can a child be rebuilt now? Checked before any label is written. */
static void healthy_msg(void *a)
{
    struct child_op *o = a;
    o->rc = o->nx->state != NX_FAULTED && online_count(o->nx) > 0;
}

DP_EXPORT int dp_nexus_add_child(const char *uuid, const char *uri, uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx;
    int rc = lookup(uuid, uri, "add child", &nx, NULL);
    struct nx_child *c = NULL;
    uint8_t *two = NULL;
    if (rc < 0)
        goto out;
    if (find_child(nx, uri)) {
        dp_set_error("nexus '%s': add child '%s': already a child of this nexus", uuid, uri);
        rc = -EEXIST;
        goto out;
    }
    if (nx->nchildren >= NX_MAX_CHILDREN) {
        dp_set_error("nexus '%s': add child '%s': the nexus has %u children already (max)", uuid, uri,
                     nx->nchildren);
        rc = -ENOSPC;
        goto out;
    }
    struct child_op o = { .nx = nx };
    dp_reactor_call(nx->reactor, healthy_msg, &o);
    if (!o.rc) {
        dp_set_error("nexus '%s': add child '%s': no healthy child to rebuild from", uuid, uri);
        rc = -ENODEV;
        goto out;
    }
    c = child_new(nx, uri);
    two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!c || !two) {
        dp_set_error("nexus '%s': add child '%s': out of memory", uuid, uri);
        rc = -ENOMEM;
        goto out;
    }
    char err[256];
    rc = open_child(nx, uri, &c->bdev, err, sizeof err);
    if (rc < 0) {
        dp_set_error("nexus '%s': add child '%s': %s", uuid, uri, err);
        goto out;
    }
    rc = child_attach_checks(nx, c, c->bdev, "add child", flags, two);
    if (rc < 0)
        goto out;
    dp_uuid_generate(c->id);
    rc = child_write_label_sync(nx, c, 0, nx->generation, NULL);
    if (rc < 0) {
        dp_set_error("nexus '%s': add child '%s': writing the label failed: %s", uuid, uri, strerror(-rc));
        goto out;
    }
    o.c = c;
    o.rc = 0;
    dp_reactor_call(nx->reactor, join_msg, &o);
    if (o.rc < 0) {
        rc = o.rc;
        dp_set_error("nexus '%s': add child '%s': %s", uuid, uri, o.err);
        if (nx_child_index(nx, c) >= 0) {
            /* it was inserted but the rebuild could not start: keep nothing half-done */
            child_leave(nx, c, "removed");
            dp_reactor_call(nx->reactor, detach_msg, &o);
        }
        goto out;
    }
    c = NULL;
out:
    if (c)
        child_free(c);
    dp_buf_free(two);
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

static void state_msg(void *a)
{
    struct child_op *o = a;
    o->prev = o->c->state;
}

/*
 * The nexus has no healthy child and this one holds the newest data (or the
 * operator forced it): it serves again, a new generation names it, and the
 * children waiting for a rebuild start theirs from it.
 */
static void accept_source_msg(void *a)
{
    struct child_op *o = a;
    struct nexus *nx = o->nx;
    struct nx_child *c = o->c;
    c->state = NXC_ONLINE;
    c->resync = false;
    c->reason[0] = 0;
    nx_label_bump(nx);
    nx_update_state(nx);
    start_rebuilds_msg(nx);
}

static bool pred_label_idle(struct nexus *nx, void *arg)
{
    (void)arg;
    return nx_label_idle(nx);
}

/*
 * Does the child hold every acknowledged write? Its label is this nexus's,
 * SYNCED, with its own id, at the nexus's generation (a generation no child
 * could be given is never counted: label_round). Else *why says what it holds.
 */
static bool child_is_newest(struct nexus *nx, struct nx_child *c, const uint8_t *two, char *why, size_t len)
{
    struct nx_label l;
    char e[128];
    if (nx_label_read_slots(two, &l, e, sizeof e) < 0) {
        snprintf(why, len, "its label is missing or damaged (%s): it was re-created or wiped", e);
        return false;
    }
    if (memcmp(l.nexus_uuid, nx->uuid_bin, 16) || memcmp(l.child_id, c->id, 16)) {
        snprintf(why, len, "its label is not the one this nexus gave it (re-created or taken over)");
        return false;
    }
    if (!(l.flags & NX_LABEL_SYNCED) || l.generation != nx->generation) {
        snprintf(why, len, "it holds generation %llu%s, the newest is %llu: bring the child that holds "
                 "generation %llu online first", (unsigned long long)l.generation,
                 l.flags & NX_LABEL_SYNCED ? "" : " (out of sync)", (unsigned long long)nx->generation,
                 (unsigned long long)nx->generation);
        return false;
    }
    return true;
}

DP_EXPORT int dp_nexus_child_online(const char *uuid, const char *uri, uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    struct dp_bdev *b = NULL;
    uint8_t *two = NULL;
    int rc = lookup(uuid, uri, "online child", &nx, &c);
    if (rc < 0)
        goto out;
    struct child_op o = { .nx = nx, .c = c };
    dp_reactor_call(nx->reactor, state_msg, &o);
    if (o.prev == NXC_ONLINE || o.prev == NXC_DEGRADED)
        goto out; /* already serving or rebuilding */
    two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!two) {
        dp_set_error("nexus '%s': online child '%s': out of memory", uuid, uri);
        rc = -ENOMEM;
        goto out;
    }
    /* faulted: its bdev may still be open (a dead connection); start afresh */
    nx_wait_until(nx, pred_child_quiet, c);
    struct dp_bdev *old = c->bdev;
    dp_reactor_call(nx->reactor, close_bdev_msg, &o);
    if (old)
        child_bdev_put(nx, old);
    char err[256];
    rc = open_child(nx, uri, &b, err, sizeof err);
    if (rc < 0) {
        dp_set_error("nexus '%s': online child '%s': %s", uuid, uri, err);
        goto out;
    }
    rc = child_attach_checks(nx, c, b, "online child", flags, two);
    if (rc < 0)
        goto out;
    dp_reactor_call(nx->reactor, healthy_msg, &o);
    if (!o.rc) {
        /* No child to rebuild from: nothing may be written unless this child is the newest. */
        char why[256];
        if (!child_is_newest(nx, c, two, why, sizeof why) && !(flags & DP_NEXUS_FORCE)) {
            dp_set_error("nexus '%s': online child '%s': no healthy child to rebuild from, and this child cannot "
                         "be the source: %s; force accepts it as the source (writes acknowledged after its "
                         "generation are lost). No label was changed", uuid, uri, why);
            rc = -ENODEV;
            goto out;
        }
        c->bdev = b; /* no I/O reaches a faulted/offline child, so no race */
        b = NULL;
        dp_reactor_call(nx->reactor, accept_source_msg, &o);
        nx_wait_until(nx, pred_label_idle, NULL);
        dp_reactor_call(nx->reactor, state_msg, &o);
        if (o.prev != NXC_ONLINE) {
            dp_set_error("nexus '%s': online child '%s': writing the new generation failed: %s", uuid, uri,
                         c->reason);
            rc = -EIO;
        }
        goto out;
    }
    c->bdev = b; /* no I/O reaches a faulted/offline child, so no race */
    b = NULL;
    rc = child_write_label_sync(nx, c, 0, nx->generation, NULL);
    if (rc < 0) {
        dp_set_error("nexus '%s': online child '%s': writing the label failed: %s", uuid, uri, strerror(-rc));
        goto out;
    }
    dp_reactor_call(nx->reactor, join_msg, &o);
    if (o.rc < 0) {
        rc = o.rc;
        dp_set_error("nexus '%s': online child '%s': %s", uuid, uri, o.err);
    }
out:
    if (b)
        child_bdev_put(nx, b);
    dp_buf_free(two);
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}

/* ---- grow ---------------------------------------------------------------------------------- */

int nx_test_resize_stop;

#define NX_ZERO_CHUNK (32ull << 20) /* one write-zeroes request */
#define NX_ZERO_BUF   (1ull << 20)  /* zero buffer where write-zeroes is not supported */

struct resize_op {
    struct nexus *nx;
    uint64_t new_size;
    int rc;
    char err[256];
    uint32_t n;                               /* serving children */
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
    label_request(nx);
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
    if (online_count(nx) == 0) {
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
    pthread_mutex_lock(&ctl_lock);
    struct resize_op r = { .new_size = new_size };
    int rc = 0;
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
        rc = -ENOENT;
        goto out;
    }
    r.nx = nx;
    uint64_t old = nx->size; /* changes only under ctl_lock */
    if (new_size % nx->block_size || new_size > UINT64_MAX - NX_HDR_SIZE) {
        dp_set_error("nexus '%s': resize: size %llu is not a multiple of the block size %u", uuid,
                     (unsigned long long)new_size, nx->block_size);
        rc = -EINVAL;
        goto out;
    }
    if (new_size < old) {
        dp_set_error("nexus '%s': resize: size %llu is smaller than the current size %llu: a nexus cannot "
                     "shrink", uuid, (unsigned long long)new_size, (unsigned long long)old);
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
                dp_set_error("nexus '%s': resize to %llu: child '%s': %s", uuid, (unsigned long long)new_size,
                             c->uri, why);
                rc = err;
                goto out;
            }
            have = __atomic_load_n(&c->bdev->size, __ATOMIC_ACQUIRE);
        }
        if (have < new_size + NX_HDR_SIZE) {
            dp_set_error("nexus '%s': resize to %llu: child '%s' has %llu bytes, needs %llu (the size plus "
                         "%llu bytes of label): grow it first", uuid, (unsigned long long)new_size, c->uri,
                         (unsigned long long)have, (unsigned long long)(new_size + NX_HDR_SIZE),
                         (unsigned long long)NX_HDR_SIZE);
            rc = -ENOSPC;
            goto out;
        }
    }
    /*
     * 1. Zeros over the new range on every serving child, stable before any
     * label changes: whatever labels a crash leaves, the range reads the
     * same everywhere. Nothing else writes there (I/O stops at the old size,
     * no rebuild runs). Children bdevs stay open: we hold ctl_lock.
     */
    for (uint32_t i = 0; i < r.n; i++) {
        struct nx_child *c = r.serve[i];
        rc = zero_child_range(c->bdev, NX_HDR_SIZE + old, new_size - old);
        if (rc == 0)
            rc = dp_bdev_rw_sync(c->bdev, DP_IO_FLUSH, NULL, 0, 0);
        if (rc < 0) {
            dp_set_error("nexus '%s': resize: zeroing the new range of child '%s' failed: %s (nothing changed)",
                         uuid, c->uri, strerror(-rc));
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
    pthread_mutex_unlock(&ctl_lock);
    return rc;
}
