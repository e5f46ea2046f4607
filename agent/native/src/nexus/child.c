/*
 * child.c - child operations on a live nexus: add (rebuilt), remove, offline,
 * online (rebuilt, or accepted as the source when no child is healthy),
 * fault. Each holds nx_ctl_lock, checks before it writes a label (a failed
 * call changes no label), and changes state only on the nexus reactor. The
 * reviver (nx_child_revive, issue 15) is the exception: it lets the lock go
 * while it reopens a replaced child, and re-checks everything after.
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

struct child_op {
    struct nexus *nx;
    struct nx_child *c;
    int rc;
    enum nx_child_state prev;
    const char *op;
    bool revive; /* nx_child_revive: the reason names the source */
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
    if (!nx_valid_uri(uri)) {
        dp_set_error("nexus '%s': %s: uri is empty or longer than %u bytes", uuid, op, NX_URI_MAX - 1);
        return -EINVAL;
    }
    if (co) {
        *co = nx_find_child(nx, uri);
        if (!*co) {
            dp_set_error("nexus '%s': %s: '%s' is not a child of this nexus", uuid, op, uri);
            return -ENOENT;
        }
    }
    return 0;
}

uint32_t nx_online_count(struct nexus *nx)
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
    if (c->state == NXC_ONLINE && nx_online_count(nx) == 1 && !nx->destroying) {
        snprintf(o->err, sizeof o->err, "'%s' is the last healthy child", c->uri);
        o->rc = -EBUSY;
        return;
    }
    c->state = NXC_OFFLINE;
    c->resync = false;
    c->by_hand = true;
    c->replaced = false;
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
        nx_child_write_label_sync(nx, c, 0, nx->generation, NULL); /* best effort: never trusted again */
    dp_reactor_call(nx->reactor, close_bdev_msg, &o);
    if (b)
        nx_child_bdev_put(nx, b);
    return 0;
}

DP_EXPORT int dp_nexus_remove_child(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    int rc = lookup(uuid, uri, "remove child", &nx, &c);
    if (rc == 0)
        rc = child_leave(nx, c, "removed");
    if (rc == 0) {
        struct child_op o = { .nx = nx, .c = c };
        dp_reactor_call(nx->reactor, detach_msg, &o);
        nx_child_free(c);
    }
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

DP_EXPORT int dp_nexus_child_offline(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    int rc = lookup(uuid, uri, "offline child", &nx, &c);
    if (rc == 0 && c->state != NXC_OFFLINE)
        rc = child_leave(nx, c, "offlined");
    pthread_mutex_unlock(&nx_ctl_lock);
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
    o->c->by_hand = true; /* never revived by itself */
    o->c->replaced = false;
    if (o->c->state == NXC_FAULTED) /* already faulted (e.g. replaced): the reason must no longer promise a revive */
        snprintf(o->c->reason, sizeof o->c->reason, "faulted by request");
    nx_child_fault(o->c, "faulted by request");
}

DP_EXPORT int dp_nexus_child_fault(const char *uuid, const char *uri)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
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
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

/* Insert or re-enable a child as a rebuild target. */
static void join_msg(void *a)
{
    struct child_op *o = a;
    struct nexus *nx = o->nx;
    struct nx_child *c = o->c;
    if (nx->state == NX_FAULTED || nx_online_count(nx) == 0) {
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
    c->by_hand = c->replaced = false;
    struct nx_child *src = o->revive ? nx_pick_read_child(nx, 0) : NULL;
    if (src)
        snprintf(c->reason, sizeof c->reason, "replaced: rebuilding from %s", src->uri);
    else
        snprintf(c->reason, sizeof c->reason, "rebuilding");
    snprintf(o->err, sizeof o->err, "%s", c->reason);
    o->rc = nx_rebuild_start(c);
    if (o->rc < 0) {
        snprintf(o->err, sizeof o->err, "%s", c->reason);
    }
    nx_update_state(nx);
}

static int check_child_bdev(struct nexus *nx, const char *op, const char *uri, struct dp_bdev *b, struct nx_child *self)
{
    if (b->size < nx->size + NX_HDR_SIZE) {
        dp_set_error("nexus '%s': %s '%s': size %llu is too small (needs %llu: the nexus size plus %llu "
                     "bytes for the label)",
                     nx->uuid, op, uri, (unsigned long long)b->size, (unsigned long long)(nx->size + NX_HDR_SIZE),
                     (unsigned long long)NX_HDR_SIZE);
        return -EINVAL;
    }
    if (b->block_size > nx->block_size || nx->block_size % b->block_size) {
        dp_set_error("nexus '%s': %s '%s': block size %u does not fit the nexus block size %u", nx->uuid, op, uri,
                     b->block_size, nx->block_size);
        return -EINVAL;
    }
    struct nx_child *twin = nx_same_as_child(nx, b, self);
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
static int child_attach_checks(struct nexus *nx, struct nx_child *c, struct dp_bdev *b, const char *op, uint32_t flags,
                               uint8_t *two)
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
    rc = nx_child_owner_check(nx, two, flags, why, sizeof why);
    if (rc < 0) {
        dp_set_error("nexus '%s': %s '%s' %s", nx->uuid, op, c->uri, why);
        return rc;
    }
    snprintf(c->ident, sizeof c->ident, "%s", dp_bdev_ident(b));
    nx_child_adopt_seq(c, two);
    return 0;
}

/* Can a child be rebuilt now? Checked before any label is written. */
static void healthy_msg(void *a)
{
    struct child_op *o = a;
    o->rc = o->nx->state != NX_FAULTED && nx_online_count(o->nx) > 0;
}

DP_EXPORT int dp_nexus_add_child(const char *uuid, const char *uri, uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx;
    int rc = lookup(uuid, uri, "add child", &nx, NULL);
    struct nx_child *c = NULL;
    uint8_t *two = NULL;
    if (rc < 0)
        goto out;
    if (nx_find_child(nx, uri)) {
        dp_set_error("nexus '%s': add child '%s': already a child of this nexus", uuid, uri);
        rc = -EEXIST;
        goto out;
    }
    if (nx->nchildren >= NX_MAX_CHILDREN) {
        dp_set_error("nexus '%s': add child '%s': the nexus has %u children already (max)", uuid, uri, nx->nchildren);
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
    c = nx_child_new(nx, uri);
    two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!c || !two) {
        dp_set_error("nexus '%s': add child '%s': out of memory", uuid, uri);
        rc = -ENOMEM;
        goto out;
    }
    char err[256];
    rc = nx_open_child(nx, uri, &c->bdev, err, sizeof err);
    if (rc < 0) {
        dp_set_error("nexus '%s': add child '%s': %s", uuid, uri, err);
        goto out;
    }
    rc = child_attach_checks(nx, c, c->bdev, "add child", flags, two);
    if (rc < 0)
        goto out;
    dp_uuid_generate(c->id);
    rc = nx_child_write_label_sync(nx, c, 0, nx->generation, NULL);
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
        nx_child_free(c);
    dp_buf_free(two);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

static void state_msg(void *a)
{
    struct child_op *o = a;
    o->prev = o->c->state;
}

/* online by hand: the operator takes over from the reviver */
static void online_state_msg(void *a)
{
    struct child_op *o = a;
    o->prev = o->c->state;
    o->c->replaced = false;
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
    c->by_hand = c->replaced = false;
    c->reason[0] = 0;
    nx_label_bump(nx);
    nx_update_state(nx);
    nx_start_rebuilds_msg(nx);
}

static bool pred_label_idle(struct nexus *nx, void *arg)
{
    (void)arg;
    return nx_label_idle(nx);
}

/*
 * Does the child hold every acknowledged write? Its label is this nexus's,
 * SYNCED, with its own id, at the newest generation stable on any child or
 * a newer one (a label round to it alone whose flush failed: the writes
 * waiting for that round were never acknowledged). Else *why says what it
 * holds.
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
    if (!(l.flags & NX_LABEL_SYNCED) || l.generation < nx->gen_durable) {
        snprintf(why, len,
                 "it holds generation %llu%s, the newest is %llu: bring the child that holds "
                 "generation %llu online first",
                 (unsigned long long)l.generation, l.flags & NX_LABEL_SYNCED ? "" : " (out of sync)",
                 (unsigned long long)nx->gen_durable, (unsigned long long)nx->gen_durable);
        return false;
    }
    return true;
}

DP_EXPORT int dp_nexus_child_online(const char *uuid, const char *uri, uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct nexus *nx;
    struct nx_child *c;
    struct dp_bdev *b = NULL;
    uint8_t *two = NULL;
    int rc = lookup(uuid, uri, "online child", &nx, &c);
    if (rc < 0)
        goto out;
    struct child_op o = { .nx = nx, .c = c };
    dp_reactor_call(nx->reactor, online_state_msg, &o);
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
        nx_child_bdev_put(nx, old);
    char err[256];
    rc = nx_open_child(nx, uri, &b, err, sizeof err);
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
                         "generation are lost). No label was changed",
                         uuid, uri, why);
            rc = -ENODEV;
            goto out;
        }
        c->bdev = b; /* no I/O reaches a faulted/offline child, so no race */
        b = NULL;
        dp_reactor_call(nx->reactor, accept_source_msg, &o);
        nx_wait_until(nx, pred_label_idle, NULL);
        dp_reactor_call(nx->reactor, state_msg, &o);
        if (o.prev != NXC_ONLINE) {
            dp_set_error("nexus '%s': online child '%s': writing the new generation failed: %s", uuid, uri, c->reason);
            rc = -EIO;
        }
        goto out;
    }
    c->bdev = b; /* no I/O reaches a faulted/offline child, so no race */
    b = NULL;
    rc = nx_child_write_label_sync(nx, c, 0, nx->generation, NULL);
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
        nx_child_bdev_put(nx, b);
    dp_buf_free(two);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

/* ---- revival of a replaced child (revive.c queues it) ------------------------------ */

/*
 * An attempt holds nx_ctl_lock only around its two short steps, never across
 * the reopen (a network connect: up to its timeout). It stamps the child with
 * a ticket first; afterwards the child found by uuid and URI is the same one
 * only if it carries that ticket (a child removed and added again, or a
 * nexus re-created under the same uuid, starts at 0). Under nx_ctl_lock.
 */
static uint64_t revive_tickets;

/* Still replaced and faulted? And is there a source? Else say so (and stop). */
static void revive_check_msg(void *a)
{
    struct child_op *o = a;
    struct nx_child *c = o->c;
    o->rc = c->replaced && c->state == NXC_FAULTED;
    if (o->rc && (o->nx->state == NX_FAULTED || nx_online_count(o->nx) == 0)) {
        c->replaced = false;
        snprintf(c->reason, sizeof c->reason, "replaced, kept faulted: no healthy child to rebuild from");
        fprintf(stderr, "nexus %s: child %s: %s\n", o->nx->uuid, c->uri, c->reason);
        o->rc = 0;
    }
}

/*
 * Under nx_ctl_lock: fill o with the nexus and child to revive, if there is
 * one. With a ticket (after the unlocked reopen) the child must be the one
 * stamped with it, with no device (an `online` by hand meanwhile gave it
 * one), and the reviver not stopping (dp_fini).
 */
static bool revive_find(struct child_op *o, const char *uuid, const char *uri, uint64_t ticket)
{
    struct nexus *nx = nx_find(uuid);
    struct nx_child *c = nx ? nx_find_child(nx, uri) : NULL;
    *o = (struct child_op){ .nx = nx, .c = c };
    if (!c || (ticket && (c->revive_ticket != ticket || c->bdev || nx_revive_stopping())))
        return false;
    dp_reactor_call(nx->reactor, revive_check_msg, o);
    return o->rc;
}

/* Set the reason of a child still faulted; o->rc: stop reviving it. */
static void revive_reason_msg(void *a)
{
    struct child_op *o = a;
    if (o->c->state != NXC_FAULTED)
        return;
    snprintf(o->c->reason, sizeof o->c->reason, "%s", o->err);
    if (o->rc) {
        o->c->replaced = false;
        fprintf(stderr, "nexus %s: child %s: %s\n", o->nx->uuid, o->c->uri, o->err);
    }
}

static void revive_say(struct child_op *o, bool stop, const char *fmt, const char *what)
{
    snprintf(o->err, sizeof o->err, fmt, what);
    o->rc = stop;
    dp_reactor_call(o->nx->reactor, revive_reason_msg, o);
}

/* The last error without its "nexus '...': revive '...'" prefix (the reason has 128 bytes). */
static const char *error_tail(const char *prefix)
{
    const char *e = dp_get_error();
    size_t n = strlen(prefix);
    if (!strncmp(e, prefix, n))
        e += n;
    while (*e == ':' || *e == ' ')
        e++;
    return e;
}

/* Reopening failed: 1 to try again later (the reason says when), 0 after the last try. */
static int revive_retry(struct child_op *o, uint32_t attempt, uint32_t max, uint32_t next_ms, const char *err)
{
    char msg[200];
    int again = attempt + 1 < max;
    if (again)
        snprintf(msg, sizeof msg, "replaced: reopening it, try %u of %u in %u ms: %%s", attempt + 2, max, next_ms);
    else
        snprintf(msg, sizeof msg, "replaced, kept faulted after %u tries to reopen it: %%s", max);
    revive_say(o, !again, msg, err);
    return again;
}

/* After the checks: the new child joins as a rebuild target. */
static void revive_join(struct nexus *nx, struct child_op *o, struct dp_bdev *b)
{
    struct nx_child *c = o->c;
    c->bdev = b; /* no I/O reaches a faulted child, so no race */
    int rc = nx_child_write_label_sync(nx, c, 0, nx->generation, NULL);
    if (rc < 0) {
        revive_say(o, true, "replaced, kept faulted: writing the label failed: %s", strerror(-rc));
        return;
    }
    o->rc = 0;
    o->revive = true;
    dp_reactor_call(nx->reactor, join_msg, o);
    if (o->rc < 0) {
        char why[200];
        snprintf(why, sizeof why, "%s", o->err);
        revive_say(o, true, "replaced, kept faulted: %s", why);
        return;
    }
    /* the log shows each rebuild the nexus started by itself (the state may pass too fast to see) */
    fprintf(stderr, "nexus %s: child %s: %s\n", nx->uuid, c->uri, o->err);
}

static bool nx_uses_bdev(struct nexus *nx, struct dp_bdev *b)
{
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->bdev == b)
            return true;
    return false;
}

/* Under nx_ctl_lock, the child re-checked: claim the reopened device, check it, join. */
static int revive_attach(struct child_op *o, const char *uuid, const char *uri, struct dp_bdev *b, uint32_t attempt,
                         uint32_t max, uint32_t next_ms)
{
    struct nexus *nx = o->nx;
    /* the same device as another child has our claim already: dropping it must not take that */
    bool shared = nx_uses_bdev(nx, b);
    char err[256];
    if (nx_claim_device(nx, b, err, sizeof err) < 0) {
        dp_bdev_put(b);
        return revive_retry(o, attempt, max, next_ms, err);
    }
    uint8_t *two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    int rc = two ? child_attach_checks(nx, o->c, b, "revive", 0, two) : -ENOMEM;
    dp_buf_free(two);
    if (rc < 0) {
        char prefix[NX_URI_MAX + 64];
        snprintf(prefix, sizeof prefix, "nexus '%s': revive '%s'", uuid, uri);
        revive_say(o, true, "replaced, kept faulted: %s", rc == -ENOMEM ? "out of memory" : error_tail(prefix));
        if (shared)
            dp_bdev_put(b);
        else
            nx_child_bdev_put(nx, b);
        return 0;
    }
    revive_join(nx, o, b);
    return 0;
}

int nx_child_revive(const char *uuid, const char *uri, uint32_t attempt, uint32_t max, uint32_t next_ms)
{
    /* locked: the old device (replaced for good) goes, the child is stamped */
    pthread_mutex_lock(&nx_ctl_lock);
    struct child_op o;
    if (!revive_find(&o, uuid, uri, 0)) {
        pthread_mutex_unlock(&nx_ctl_lock);
        return 0;
    }
    nx_wait_until(o.nx, pred_child_quiet, o.c);
    struct dp_bdev *old = o.c->bdev;
    dp_reactor_call(o.nx->reactor, close_bdev_msg, &o);
    if (old)
        nx_child_bdev_put(o.nx, old);
    uint64_t ticket = o.c->revive_ticket = ++revive_tickets;
    pthread_mutex_unlock(&nx_ctl_lock);

    /* unlocked: every control call goes on while this waits for the network */
    struct dp_bdev *b = NULL;
    char err[256];
    int rc = nx_open_device(uri, &b, err, sizeof err); /* not claimed yet: dropping it can take no claim */

    /* locked again: anything changed meanwhile (destroyed, removed, online, offline or
     * faulted by hand) wins, and the device just opened is dropped (never claimed) */
    int again = 0;
    pthread_mutex_lock(&nx_ctl_lock);
    if (!revive_find(&o, uuid, uri, ticket)) {
        if (b)
            dp_bdev_put(b);
    } else if (rc < 0) {
        again = revive_retry(&o, attempt, max, next_ms, err);
    } else {
        again = revive_attach(&o, uuid, uri, b, attempt, max, next_ms);
    }
    pthread_mutex_unlock(&nx_ctl_lock);
    return again;
}
