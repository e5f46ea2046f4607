/*
 * snapshot.c - a consistent snapshot of a nexus: pause, snapshot every
 * healthy child's replica, resume (dp_nexus_snapshot).
 *
 * The children are snapshotted one after the other on the control thread
 * (the bdev op may block: a local replica commits its pool's metadata, an
 * nvmf:// child asks its target with a vendor admin command) while the
 * reactor holds the volume's I/O. Every child is checked before the pause:
 * a faulted, offline, rebuilding or resyncing child fails the call (unless
 * DP_NEXUS_SNAP_SKIP_UNHEALTHY), as does a child that cannot be snapshotted
 * (nbd://, files). Any failure after the pause (a child's op, the deadline)
 * destroys the snapshots already made: nothing is left half-made.
 *
 * Each child's snapshot uuid is derived from the group uuid and the child's
 * replica identity (dp_bdev_ident: the replica uuid for bdev:/// and nvmf://
 * children) as a name-based uuid (RFC 4122 version 5: SHA-1 over the group
 * uuid's 16 bytes then the identity's text), so a retry names the same
 * snapshots and anyone knowing the group and a replica can predict its part.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

_Static_assert(sizeof(dp_nexus_snap_child) == 496, "dp_nexus_snap_child size");

#define NX_SNAP_DESTROY_PAUSE_MS 10000u /* the longest a volume snapshot's removal holds the volume's I/O */

int nx_snapshot_uuid(const uint8_t group[16], const char *ident, char out[37])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, group, 16) &&
             EVP_DigestUpdate(ctx, ident, strlen(ident)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 16)
        return -EIO;
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    dp_uuid_format(md, out);
    return 0;
}

DP_EXPORT int dp_nexus_snapshot_uuid(const char *group, const char *replica, char *out)
{
    dp_clear_error();
    uint8_t g[16];
    if (!group || dp_uuid_parse(group, g) < 0) {
        dp_set_error("group: '%s' is not a uuid", group ? group : "(null)");
        return -EINVAL;
    }
    if (!replica || !*replica || !out) {
        dp_set_error("replica: empty");
        return -EINVAL;
    }
    return nx_snapshot_uuid(g, replica, out);
}

/* One child as seen before the pause (copied on the reactor). */
struct snap_plan {
    struct nx_child *c;
    bool healthy, skip;
    enum nx_child_state state;
    bool resync;
};

struct plan_arg {
    struct nexus *nx;
    struct snap_plan p[NX_MAX_CHILDREN];
    uint32_t n;
    enum nx_state state;
};

static void plan_msg(void *a)
{
    struct plan_arg *pa = a;
    struct nexus *nx = pa->nx;
    pa->state = nx->state;
    pa->n = nx->nchildren;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        pa->p[i].c = c;
        pa->p[i].state = c->state;
        pa->p[i].resync = c->resync;
        pa->p[i].healthy = c->state == NXC_ONLINE && !c->resync && c->bdev;
    }
}

static const char *unhealthy_why(const struct snap_plan *p)
{
    switch (p->state) {
    case NXC_ONLINE: return p->resync ? "resyncing" : "closed";
    case NXC_DEGRADED: return "rebuilding";
    case NXC_FAULTED: return "faulted";
    case NXC_OFFLINE: return "offline";
    }
    return "unhealthy";
}

static void fill_out(dp_nexus_snap_child *o, const struct nx_child *c, const char *snap)
{
    memset(o, 0, sizeof *o);
    snprintf(o->uri, sizeof o->uri, "%s", c->uri);
    snprintf(o->replica, sizeof o->replica, "%s", c->ident);
    snprintf(o->snapshot, sizeof o->snapshot, "%s", snap);
}

/* Before the pause: every child healthy (or skipped) and able to take a snapshot. */
static int check_plan(struct nexus *nx, struct plan_arg *pa, uint32_t flags)
{
    if (pa->state == NX_FAULTED) {
        dp_set_error("nexus '%s' is faulted (%s): nothing to snapshot", nx->uuid, nx->reason);
        return -ENODEV;
    }
    uint32_t todo = 0;
    for (uint32_t i = 0; i < pa->n; i++) {
        struct snap_plan *p = &pa->p[i];
        if (!p->healthy) {
            if (!(flags & DP_NEXUS_SNAP_SKIP_UNHEALTHY)) {
                dp_set_error("nexus '%s': child '%s' is %s%s%s: a volume snapshot needs every child healthy "
                             "(or skipUnhealthy)",
                             nx->uuid, p->c->uri, unhealthy_why(p), p->c->reason[0] ? ": " : "", p->c->reason);
                return -ENODEV;
            }
            p->skip = true;
            continue;
        }
        if (!p->c->bdev->ops->snapshot_create) {
            dp_set_error("nexus '%s': child '%s' cannot be snapshotted (only pool replicas, bdev:///, and "
                         "nvmf:// children can)",
                         nx->uuid, p->c->uri);
            return -ENOTSUP;
        }
        todo++;
    }
    if (!todo) {
        dp_set_error("nexus '%s': no healthy child to snapshot", nx->uuid);
        return -ENODEV;
    }
    return 0;
}

/* Undo the snapshots of children [0, upto) that were made. */
static void undo(struct plan_arg *pa, uint32_t upto, dp_nexus_snap_child *out, uint32_t max_out, char snaps[][37])
{
    for (uint32_t i = upto; i-- > 0;) {
        struct snap_plan *p = &pa->p[i];
        if (p->skip)
            continue;
        int rc = dp_bdev_snapshot_destroy(p->c->bdev, snaps[i]);
        if (i < max_out && out && rc < 0 && rc != -ENOENT) {
            out[i].status = rc;
            snprintf(out[i].reason, sizeof out[i].reason, "undo failed: %s", dp_get_error());
        }
    }
}

/* The pause is on: snapshot the children in order; on failure undo and resume. */
static int snapshot_children(struct nexus *nx, struct plan_arg *pa, const char *group, uint32_t deadline_ms,
                             dp_nexus_snap_child *out, uint32_t max_out, char snaps[][37])
{
    for (uint32_t i = 0; i < pa->n; i++) {
        struct snap_plan *p = &pa->p[i];
        if (p->skip)
            continue;
        int rc = __atomic_load_n(&nx->pause_expired, __ATOMIC_ACQUIRE) ? -ETIMEDOUT : 0;
        char e[256] = "the pause deadline passed";
        if (rc == 0 && (p->c->state != NXC_ONLINE || !p->c->bdev)) {
            rc = -ENODEV; /* faulted by a rebuild error since the check */
            snprintf(e, sizeof e, "it became unhealthy (%s)", p->c->reason);
        }
        bool unknown = false; /* the create may have happened (a transport error) */
        if (rc == 0) {
            rc = dp_bdev_snapshot_create(p->c->bdev, snaps[i], group);
            if (rc < 0)
                snprintf(e, sizeof e, "%s", dp_get_error());
            unknown = rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -ECONNRESET || rc == -EPIPE || rc == -EIO;
        }
        if (rc == 0 && __atomic_load_n(&nx->pause_expired, __ATOMIC_ACQUIRE)) {
            /* made, but the volume resumed meanwhile: undo it too */
            rc = -ETIMEDOUT;
            snprintf(e, sizeof e, "the pause deadline (%u ms) passed while it was snapshotted", deadline_ms);
            undo(pa, i + 1, out, max_out, snaps);
        } else if (rc < 0) {
            /* a create whose outcome is unknown is undone too (ENOENT if it never happened), so no
             * orphan part blocks a retry of the same volume snapshot with -EEXIST */
            undo(pa, unknown ? i + 1 : i, out, max_out, snaps);
        }
        if (rc < 0) {
            nx_resume(nx);
            if (out && i < max_out) {
                out[i].status = rc;
                snprintf(out[i].reason, sizeof out[i].reason, "%s", e);
            }
            dp_set_error("nexus '%s': snapshot of child '%s' failed: %s (nothing was kept)", nx->uuid, p->c->uri, e);
            return rc;
        }
    }
    if (nx_resume(nx) < 0) {
        undo(pa, pa->n, out, max_out, snaps);
        dp_set_error("nexus '%s': the pause deadline (%u ms) passed before every child was snapshotted "
                     "(nothing was kept)",
                     nx->uuid, deadline_ms);
        return -ETIMEDOUT;
    }
    return 0;
}

DP_EXPORT int dp_nexus_snapshot(const char *uuid, const char *group, uint32_t deadline_ms, uint32_t flags,
                                dp_nexus_snap_child *out, uint32_t max_out)
{
    dp_clear_error();
    uint8_t g[16];
    if (!group || dp_uuid_parse(group, g) < 0) {
        dp_set_error("group: '%s' is not a uuid", group ? group : "(null)");
        return -EINVAL;
    }
    if (deadline_ms == 0 || deadline_ms > DP_NEXUS_SNAP_DEADLINE_MAX_MS) {
        dp_set_error("deadline_ms: %u is out of range (1..%u)", deadline_ms, DP_NEXUS_SNAP_DEADLINE_MAX_MS);
        return -EINVAL;
    }
    if (flags & ~DP_NEXUS_SNAP_SKIP_UNHEALTHY) {
        dp_set_error("flags: unknown bits 0x%x", flags & ~DP_NEXUS_SNAP_SKIP_UNHEALTHY);
        return -EINVAL;
    }
    struct nexus *nx = nx_ctl_find(uuid);
    if (!nx)
        return -ENOENT;
    struct plan_arg pa = { .nx = nx };
    dp_reactor_call(nx->reactor, plan_msg, &pa);
    char snaps[NX_MAX_CHILDREN][37];
    for (uint32_t i = 0; i < pa.n; i++) {
        snaps[i][0] = 0;
        if (nx_snapshot_uuid(g, pa.p[i].c->ident, snaps[i]) < 0) {
            pthread_mutex_unlock(&nx_ctl_lock);
            dp_set_error("nexus '%s': cannot derive snapshot uuids (libcrypto SHA-1)", nx->uuid);
            return -EIO;
        }
        if (out && i < max_out) {
            fill_out(&out[i], pa.p[i].c, snaps[i]);
        }
    }
    int rc = check_plan(nx, &pa, flags);
    for (uint32_t i = 0; out && i < pa.n && i < max_out; i++)
        out[i].skipped = pa.p[i].skip;
    if (rc == 0)
        rc = nx_pause(nx, deadline_ms);
    if (rc == 0)
        rc = snapshot_children(nx, &pa, group, deadline_ms, out, max_out, snaps);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc < 0 ? rc : (int)pa.n;
}

/*
 * Destroy the parts of a volume snapshot through the children (local
 * replicas and nvmf:// children alike). A part already gone is fine.
 */
DP_EXPORT int dp_nexus_snapshot_destroy(const char *uuid, const char *group, dp_nexus_snap_child *out, uint32_t max_out)
{
    dp_clear_error();
    uint8_t g[16];
    if (!group || dp_uuid_parse(group, g) < 0) {
        dp_set_error("group: '%s' is not a uuid", group ? group : "(null)");
        return -EINVAL;
    }
    struct nexus *nx = nx_ctl_find(uuid);
    if (!nx)
        return -ENOENT;
    struct plan_arg pa = { .nx = nx };
    dp_reactor_call(nx->reactor, plan_msg, &pa);
    /*
     * Held I/O while the parts go: a part's removal merges it into its
     * replica (metadata only), which freezes the replica until its requests
     * in flight are done (pool/snapshot.c); a paused volume has none, so the
     * merge does not wait behind the volume's writes. Best effort: if the
     * pause cannot be had, the parts go without it.
     */
    bool paused = nx_pause(nx, NX_SNAP_DESTROY_PAUSE_MS) == 0;
    int first = 0;
    char first_err[384] = "";
    for (uint32_t i = 0; i < pa.n; i++) {
        struct nx_child *c = pa.p[i].c;
        char snap[37] = "";
        nx_snapshot_uuid(g, c->ident, snap);
        dp_nexus_snap_child tmp, *o = out && i < max_out ? &out[i] : &tmp;
        fill_out(o, c, snap);
        int rc = c->bdev ? dp_bdev_snapshot_destroy(c->bdev, snap) : -ENODEV;
        if (rc == -ENOENT)
            rc = 0;
        if (rc < 0) {
            o->status = rc;
            snprintf(o->reason, sizeof o->reason, "%s", c->bdev ? dp_get_error() : "the child is closed");
            if (!first) {
                first = rc;
                snprintf(first_err, sizeof first_err, "child '%s': %s", c->uri, o->reason);
            }
        }
    }
    if (paused)
        nx_resume(nx); /* -ETIMEDOUT: it resumed by itself already */
    pthread_mutex_unlock(&nx_ctl_lock);
    if (first) {
        dp_set_error("nexus '%s': %s", uuid, first_err);
        return first;
    }
    return (int)pa.n;
}
