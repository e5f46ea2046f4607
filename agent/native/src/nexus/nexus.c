/*
 * nexus.c - the nexus core: states, control-thread waits, the registry of
 * live nexuses, child devices (open, claim, ownership, identity), the bdev
 * it registers as, close and destroy, stats. Creating and opening is open.c,
 * child operations child.c, growth resize.c, label writes label_io.c.
 *
 * Control functions (dp_nexus_*) run on koffi worker threads. They hold
 * nx_ctl_lock for their whole run (one nexus control operation at a time), do
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

pthread_mutex_t nx_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
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
void nx_wait_until(struct nexus *nx, bool (*pred)(struct nexus *, void *), void *arg)
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

/* ---- registry ----------------------------------------------------------------- */

static struct nexus *find_locked(const char *uuid)
{
    for (struct nexus *n = nx_list; n; n = n->reg_next)
        if (!strcmp(n->uuid, uuid))
            return n;
    return NULL;
}

void nx_list_add(struct nexus *nx)
{
    pthread_mutex_lock(&reg_lock);
    nx->reg_next = nx_list;
    nx_list = nx;
    pthread_mutex_unlock(&reg_lock);
}

struct nexus *nx_find(const char *uuid)
{
    pthread_mutex_lock(&reg_lock);
    struct nexus *n = find_locked(uuid);
    pthread_mutex_unlock(&reg_lock);
    return n;
}

struct nexus *nx_ctl_find(const char *uuid)
{
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&nx_ctl_lock);
        dp_set_error("nexus '%s' not found", uuid ? uuid : "(null)");
    }
    return nx;
}

struct nx_child *nx_find_child(struct nexus *nx, const char *uri)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (!strcmp(nx->children[i]->uri, uri))
            return nx->children[i];
    return NULL;
}

/* ---- children ----------------------------------------------------------------- */

struct nx_child *nx_child_new(struct nexus *nx, const char *uri)
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
void nx_child_bdev_put(struct nexus *nx, struct dp_bdev *b)
{
    dp_bdev_unclaim(b, nx);
    dp_bdev_put(b);
}

void nx_child_free(struct nx_child *c)
{
    if (!c)
        return;
    if (c->bdev)
        nx_child_bdev_put(c->nx, c->bdev);
    dp_buf_free(c->label_buf);
    free(c);
}

/* Open a child URI, not yet claimed: no nexus (they cannot be nested). */
int nx_open_device(const char *uri, struct dp_bdev **out, char *err, size_t errlen)
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
    return 0;
}

/* Claim b for nx (one writer-owner: a second nexus or a pool gets -EBUSY naming the owner). */
int nx_claim_device(struct nexus *nx, struct dp_bdev *b, char *err, size_t errlen)
{
    char owner[64];
    snprintf(owner, sizeof owner, "nexus '%s'", nx->uuid);
    int rc = dp_bdev_claim(b, nx, owner);
    if (rc < 0)
        snprintf(err, errlen, "%s", dp_get_error());
    return rc;
}

/* Open a child URI and claim it for the nexus. On failure *err gets the reason (without the URI). */
int nx_open_child(struct nexus *nx, const char *uri, struct dp_bdev **out, char *err, size_t errlen)
{
    int rc = nx_open_device(uri, out, err, errlen);
    if (rc == 0 && (rc = nx_claim_device(nx, *out, err, errlen)) < 0) {
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
int nx_child_owner_check(struct nexus *nx, const uint8_t *two, uint32_t flags, char *why, size_t len)
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
        snprintf(why, len,
                 "belongs to nexus '%s' (its label, generation %llu); if that nexus is gone for "
                 "good, force takes it (its data is then rebuilt over)",
                 u, (unsigned long long)l.generation);
        return -EBUSY;
    }
    return 0;
}

/* Is `b` the same device or replica as a child of nx other than `self`? */
struct nx_child *nx_same_as_child(struct nexus *nx, struct dp_bdev *b, struct nx_child *self)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i] != self && !strcmp(nx->children[i]->ident, dp_bdev_ident(b)))
            return nx->children[i];
    return NULL;
}

bool nx_valid_uri(const char *uri)
{
    return uri && *uri && strlen(uri) < NX_URI_MAX;
}

struct start_arg {
    struct nexus *nx;
};

void nx_start_rebuilds_msg(void *a)
{
    struct nexus *nx = a;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if ((c->state == NXC_DEGRADED || (c->state == NXC_ONLINE && c->resync)) && !c->rebuild)
            nx_rebuild_start(c);
    }
    nx_update_state(nx);
}

void nx_free(struct nexus *nx)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        nx_child_free(nx->children[i]);
    nx->nchildren = 0;
    nx_pause_forget(nx);
    nx_io_fini(nx);
    pthread_cond_destroy(&nx->ev_cond);
    pthread_mutex_destroy(&nx->ev_lock);
    free(nx);
}

static void nx_bdev_destroy(struct dp_bdev *bdev)
{
    /* Last reference to the nexus bdev: children were closed by destroy. */
    nx_free(bdev->ctx);
}

const struct dp_bdev_ops nx_bdev_ops = {
    .submit = nx_io_submit,
    .block_status = nx_io_block_status,
    .destroy = nx_bdev_destroy,
};
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
                nx_child_write_label_sync(nx, c, NX_LABEL_SYNCED | NX_LABEL_CLEAN | (release ? NX_LABEL_RELEASED : 0),
                                          nx->generation, &members);
        }
    }
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->bdev) {
            nx_child_bdev_put(nx, c->bdev);
            c->bdev = NULL;
        }
    }
    if (self)
        dp_bdev_put(self); /* the last reference: nx_bdev_destroy frees it */
}

/* Take a nexus out of the list of live ones (under nx_ctl_lock). */
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
    struct nexus *nx = nx_ctl_find(uuid);
    if (!nx)
        return -ENOENT;
    /* registry + nothing else: a share or descriptor holding it must go first */
    int refs = __atomic_load_n(&nx->bdev.refs, __ATOMIC_RELAXED);
    if (refs > 1) {
        pthread_mutex_unlock(&nx_ctl_lock);
        dp_set_error("nexus '%s' is in use (%d open handles: unshare it and close its descriptors first)", uuid,
                     refs - 1);
        return -EBUSY;
    }
    nx_unlist(nx);
    nexus_close(nx, true, true, flags & DP_NEXUS_RELEASE);
    pthread_mutex_unlock(&nx_ctl_lock);
    return 0;
}

/* Tests: forget a nexus as a crash would, writing no label. */
int nx_test_drop_unclean(const char *uuid)
{
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx = nx_find(uuid ? uuid : "");
    if (!nx) {
        pthread_mutex_unlock(&nx_ctl_lock);
        return -ENOENT;
    }
    nx_unlist(nx);
    nexus_close(nx, true, false, false);
    pthread_mutex_unlock(&nx_ctl_lock);
    return 0;
}

/* dp_fini: close every nexus (labels clean) before the devices go. */
static void nexus_fini(void)
{
    nx_revive_shutdown(); /* before nx_ctl_lock: an attempt takes it to look up and to join its child */
    pthread_mutex_lock(&nx_ctl_lock);
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
    pthread_mutex_unlock(&nx_ctl_lock);
    nx_revive_reset();
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

/*
 * The stat calls: look the nexus up (by uuid, or the index-th) under
 * reg_lock and run fn on its reactor, which owns the state read, while the
 * lock keeps the nexus from being destroyed.
 */
static int stat_call(const char *fn_name, const char *uuid, uint32_t nth, void *out, dp_msg_fn fn, struct stat_arg *s)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("%s: out is NULL", fn_name);
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    struct nexus *nx;
    if (uuid) {
        nx = find_locked(uuid);
    } else {
        nx = nx_list;
        for (uint32_t i = 0; nx && i < nth; i++)
            nx = nx->reg_next;
    }
    if (!nx) {
        pthread_mutex_unlock(&reg_lock);
        if (uuid)
            dp_set_error("nexus '%s' not found", uuid);
        return -ENOENT;
    }
    s->nx = nx;
    dp_reactor_call(nx->reactor, fn, s);
    pthread_mutex_unlock(&reg_lock);
    return s->rc;
}

DP_EXPORT int dp_nexus_stat(const char *uuid, dp_nexus_info *out)
{
    struct stat_arg s = { .info = out };
    return stat_call("dp_nexus_stat", uuid ? uuid : "", 0, out, stat_msg, &s);
}

DP_EXPORT int dp_nexus_at(uint32_t index, dp_nexus_info *out)
{
    struct stat_arg s = { .info = out };
    return stat_call("dp_nexus_at", NULL, index, out, stat_msg, &s);
}

DP_EXPORT int dp_nexus_child_at(const char *uuid, uint32_t index, dp_nexus_child_info *out)
{
    struct stat_arg s = { .index = index, .child = out };
    return stat_call("dp_nexus_child_at", uuid ? uuid : "", 0, out, child_stat_msg, &s);
}

/* dp_fini: nexuses close (labels clean) before their children go. */
static struct dp_module nexus_module = { .name = "nexus", .fini = nexus_fini, .fini_stage = DP_FINI_VOLUMES };
DP_MODULE_REGISTER(nexus_module)
