/*
 * snapshot.c - snapshots, clones and revert (pool format v2, FORMAT.md).
 * Metadata only: a snapshot takes over its source's clusters, a clone is an
 * empty thin overlay, a delete frees or merges, a revert drops the
 * replica's own clusters. Like replica.c, the control thread validates under
 * the registry lock and the pool's reactor changes the table and commits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "pool/pool.h"

/* A uuid for a new object: valid, not nil, not in use by a replica,
 * snapshot or device. */
static int check_new_uuid(const char *what, const char *s, uint8_t u[16])
{
    int ret = check_uuid(what, s, u);
    if (ret < 0)
        return ret;
    char us[DP_UUID_STR_LEN];
    dp_uuid_format(u, us);
    if (dp_uuid_is_nil(u)) {
        dp_set_error("%s '%s': the nil uuid is not allowed", what, us);
        return -EINVAL;
    }
    struct replica *r = replica_find(u);
    if (r) {
        dp_set_error("%s %s already exists (a %s)", what, us, r->ro ? "snapshot" : "replica");
        return -EEXIST;
    }
    struct dp_bdev *other = dp_bdev_get(us);
    if (other) {
        dp_bdev_put(other);
        dp_set_error("%s %s: a device of that name already exists", what, us);
        return -EEXIST;
    }
    return 0;
}

/* Under the lock: the snapshot called uuid, or NULL with the error set. */
static struct replica *snap_lookup(const char *uuid, int *ret)
{
    uint8_t u[16];
    *ret = check_uuid("snapshot uuid", uuid, u);
    if (*ret < 0)
        return NULL;
    struct replica *s = replica_find(u);
    char us[DP_UUID_STR_LEN];
    dp_uuid_format(u, us);
    if (!s) {
        dp_set_error("snapshot %s not found", us);
        *ret = -ENOENT;
    } else if (!s->ro) {
        dp_set_error("%s is a replica, not a snapshot", us);
        *ret = -EINVAL;
        s = NULL;
    }
    return s;
}

/* Replicas (any kind) whose parent is s; their names into buf (bounded). */
static uint32_t snap_children(struct replica *s, char *buf, size_t len, struct replica **only)
{
    struct pool *p = s->pool;
    uint32_t n = 0;
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (uint32_t i = 0; p && i < p->nreplicas; i++) {
        struct replica *c = p->replicas[i];
        if (c->parent != s)
            continue;
        if (only)
            *only = c;
        if (used + 37 + (n ? 1 : 0) < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", n ? "," : "", c->bdev.name);
        n++;
    }
    return n;
}

static bool ctl_failed(struct pool_ctl *c)
{
    if (!c->p->failed && c->p->nreplicas < c->p->max_records)
        return false;
    if (c->p->failed)
        pool_ctl_fail(c, -EIO, "pool '%s' is failed (%s): re-import it", c->p->name, c->p->fail_reason);
    else
        pool_ctl_fail(c, -ENOSPC, "pool '%s': holds the maximum of %u replicas and snapshots", c->p->name,
                      c->p->max_records);
    return true;
}

/* A request of r in flight (it may hold a physical cluster of r's map):
 * run self again once none is (requests end by themselves; lvol.c calls
 * back from the last completion). Meanwhile r starts no new request (they
 * park), so a busy replica settles too; self thaws it. */
static bool wait_settled(struct pool_ctl *c, struct replica *r, dp_msg_fn self)
{
    if (replica_settled(r))
        return false;
    r->frozen = true;
    r->settle_fn = self;
    r->settle_arg = c;
    return true;
}

/* ---- snapshot create (reactor) ------------------------------------------ */

static void snap_swap(struct replica *r, struct replica *s)
{
    uint32_t *m = r->map;
    uint64_t n = r->nalloc;
    r->map = s->map;
    r->nalloc = s->nalloc;
    s->map = m;
    s->nalloc = n;
}

static void screate_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    struct replica *s = c->arg, *r = c->r;
    if (rc < 0) {
        /* The pool is failed (re-import finds the durable state). No undo:
         * first writes of r may already be copying from s. */
        pool_ctl_fail(c, rc, "pool '%s': metadata commit failed creating snapshot %s of replica %s", c->p->name,
                      s->bdev.name, r->bdev.name);
        return;
    }
    pool_ctl_done(c, 0);
}

static void screate_msg(void *arg)
{
    struct pool_ctl *c = arg;
    struct replica *s = c->arg, *r = c->r;
    if (c->p->failed || c->p->nreplicas >= c->p->max_records) {
        replica_thaw(r);
        ctl_failed(c);
        return;
    }
    if (wait_settled(c, r, screate_msg))
        return;
    /* The snapshot takes the replica's clusters; the replica is an empty
     * overlay on it (it may grow later: the snapshot keeps its size). Its
     * thin flag is its spec and stays: a thick one allocates its
     * overwritten clusters on first write like a thin one (FORMAT.md). */
    snap_swap(r, s);
    s->parent = r->parent;
    r->parent = s;
    pool_table_add(c->p, s);
    c->size = 1; /* s is in the table: the control thread registers it */
    replica_thaw(r); /* its parked first writes copy from s now */
    c->w.cb = screate_committed;
    pool_commit(c->p, &c->w);
}

static int snap_undo(struct replica *s, struct replica *r);

DP_EXPORT int dp_snapshot_create(const char *replica_uuid, const char *snap_uuid, const char *group)
{
    dp_clear_error();
    uint8_t su[16], g[16] = { 0 };
    int ret;
    pool_lock();
    struct replica *r = replica_lookup(replica_uuid, &ret);
    if (r && r->ro) {
        dp_set_error("replica %s is a snapshot: clone it to snapshot its data again", r->bdev.name);
        ret = -EINVAL;
    } else if (r && r->pool->version < 2) {
        struct pool *p = r->pool;
        dp_set_error("pool '%s' is still format version 1: it holds %u replicas, more than the %u a version 2 "
                     "table holds; snapshots need version 2 (destroy replicas down to %u and import it again)",
                     p->name, p->nreplicas, pf_max_records(2, p->slot_size, p->total_clusters),
                     pf_max_records(2, p->slot_size, p->total_clusters));
        ret = -ENOTSUP;
    } else if (r && group && group[0] && (ret = check_uuid("snapshot group", group, g)) < 0) {
    } else if (r && (ret = check_new_uuid("snapshot", snap_uuid, su)) == 0) {
        struct pool *p = r->pool;
        struct replica *s = replica_new(p, su, r->size, true);
        if (!s) {
            dp_set_error("snapshot %s: out of memory", snap_uuid);
            ret = -ENOMEM;
        } else {
            s->ro = s->bdev.read_only = true;
            memcpy(s->group, g, 16);
            memcpy(s->source, r->uuid, 16);
            /* Same size: the maps swap. A grown replica's map is the longer. */
            struct pool_ctl c = { .r = r, .arg = s };
            ret = pool_ctl_run(&c, p, screate_msg);
            if (c.size && ret == 0 && replica_register(s) < 0) {
                /* Its name was taken meanwhile (not under the pool lock):
                 * merge it back so the failed call leaves no record. */
                ret = snap_undo(s, r);
            } else if (c.size) { /* in the table: its commit failed the pool */
                replica_register(s);
            } else {
                replica_free(s);
            }
        }
    }
    pool_unlock();
    return ret;
}

/* ---- snapshot destroy (reactor) ----------------------------------------- */

static void sdestroy_discarded(struct pool_ctl *c, int rc)
{
    (void)rc;
    for (uint32_t i = 0; i < c->ncl; i++)
        pool_cluster_put(c->p, c->cl[i]);
    pool_ctl_done(c, 0);
}

static void sdestroy_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    struct replica *s = c->r;
    if (rc < 0) {
        pool_ctl_fail(c, rc, "pool '%s': metadata commit failed destroying snapshot %s", c->p->name, s->bdev.name);
        return;
    }
    if (c->arg) { /* merged: the clusters it kept went through the commit's free list */
        pool_ctl_done(c, 0);
        return;
    }
    c->ncl = c->idx = 0;
    for (uint32_t l = 0; l < s->ncl; l++)
        if (s->map[l] != MAP_UNALLOC) {
            c->cl[c->ncl++] = s->map[l] & MAP_PCL_MASK;
            s->map[l] = MAP_UNALLOC;
        }
    s->nalloc = 0;
    c->after = sdestroy_discarded;
    c->run_type = DP_IO_UNMAP;
    pool_runs_start(c);
}

/* Exactly one child: it takes the clusters it does not map itself. */
static void snap_merge(struct pool *p, struct replica *s, struct replica *ch)
{
    for (uint32_t l = 0; l < s->ncl; l++) {
        uint32_t m = s->map[l];
        if (m == MAP_UNALLOC)
            continue;
        if (l < ch->ncl && ch->map[l] == MAP_UNALLOC) {
            ch->map[l] = m;
            ch->nalloc++;
        } else {
            /* Freed once the commit is durable and earlier I/O drained. */
            pool_cluster_unmapped(p, m & MAP_PCL_MASK);
        }
        s->map[l] = MAP_UNALLOC;
    }
    s->nalloc = 0;
    ch->parent = s->parent;
}

static void sdestroy_msg(void *arg)
{
    struct pool_ctl *c = arg;
    struct replica *s = c->r, *ch = c->arg;
    if (c->p->failed) {
        if (ch)
            replica_thaw(ch);
        pool_ctl_fail(c, -EIO, "pool '%s' is failed (%s): re-import it", c->p->name, c->p->fail_reason);
        return;
    }
    if (ch) {
        if (wait_settled(c, ch, sdestroy_msg))
            return;
        snap_merge(c->p, s, ch);
        replica_thaw(ch);
    }
    s->dead = true;
    pool_table_remove(c->p, s);
    c->w.cb = sdestroy_committed;
    pool_commit(c->p, &c->w);
}

/* Control thread, under the lock: snapshot s of r was committed but its
 * device could not be registered: merge it back into r (r's bytes do not
 * change) and free it. -EEXIST with the registration's error, or the
 * merge's error (a failed pool: re-import finds s, registered then). */
static int snap_undo(struct replica *s, struct replica *r)
{
    char why[256];
    snprintf(why, sizeof why, "%s", dp_last_error());
    struct pool_ctl c = { .r = s, .arg = r };
    c.cl = malloc((size_t)(s->ncl ? s->ncl : 1) * 4);
    int ret = c.cl ? pool_ctl_run(&c, s->pool, sdestroy_msg) : -ENOMEM;
    free(c.cl);
    if (!c.cl)
        dp_set_error("snapshot %s: %s; undoing it: out of memory", s->bdev.name, why);
    if (!s->dead) { /* still a record (no memory, or a failed pool) */
        replica_register(s);
        return ret;
    }
    char name[DP_UUID_STR_LEN];
    memcpy(name, s->bdev.name, sizeof name);
    replica_free(s);
    if (ret < 0) /* the merge's commit failed the pool (error set) */
        return ret;
    dp_set_error("snapshot %s: %s; nothing was created", name, why);
    return -EEXIST;
}

DP_EXPORT int dp_snapshot_destroy(const char *snap_uuid)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *s = snap_lookup(snap_uuid, &ret), *only = NULL;
    char kids[DP_SNAP_CHILDREN_MAX];
    uint32_t n = s ? snap_children(s, kids, sizeof kids, &only) : 0;
    int open = s ? replica_open_count(s) : 0;
    if (!s) {
    } else if (n > 1) {
        dp_set_error("snapshot %s has %u children (%s%s): delete or revert them first", s->bdev.name, n, kids,
                     n > 4 ? ",..." : "");
        ret = -EBUSY;
    } else if (open > 0) {
        dp_set_error("snapshot %s is open (%d handle%s); close it first", s->bdev.name, open, open == 1 ? "" : "s");
        ret = -EBUSY;
    } else {
        struct pool_ctl c = { .r = s, .arg = only };
        c.cl = malloc((size_t)(s->ncl ? s->ncl : 1) * 4);
        if (!c.cl) {
            dp_set_error("snapshot %s: out of memory", s->bdev.name);
            ret = -ENOMEM;
        } else {
            ret = pool_ctl_run(&c, s->pool, sdestroy_msg);
            free(c.cl);
            if (s->dead) { /* out of the table (a failed commit fails the pool) */
                s->pool = NULL;
                dp_bdev_unregister(&s->bdev);
            }
        }
    }
    pool_unlock();
    return ret;
}

/* ---- clone and revert (reactor) ----------------------------------------- */

static void simple_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    if (rc < 0) {
        if (c->size) /* clone: before the control thread frees it */
            pool_table_remove(c->p, c->r);
        pool_ctl_fail(c, rc, "pool '%s': metadata commit failed for replica %s", c->p->name, c->r->bdev.name);
        return;
    }
    pool_ctl_done(c, 0);
}

static void clone_undo_msg(void *arg)
{
    struct pool_ctl *c = arg;
    c->r->dead = true;
    pool_table_remove(c->p, c->r);
    c->w.cb = simple_committed;
    pool_commit(c->p, &c->w);
}

static void clone_msg(void *arg)
{
    struct pool_ctl *c = arg;
    if (ctl_failed(c))
        return;
    pool_table_add(c->p, c->r);
    c->w.cb = simple_committed;
    pool_commit(c->p, &c->w);
}

DP_EXPORT int dp_replica_clone(const char *clone_uuid, const char *snap_uuid)
{
    dp_clear_error();
    uint8_t u[16];
    int ret;
    pool_lock();
    struct replica *s = snap_lookup(snap_uuid, &ret);
    if (s && (ret = check_new_uuid("clone", clone_uuid, u)) == 0) {
        struct replica *r = replica_new(s->pool, u, s->size, true);
        if (!r) {
            dp_set_error("clone %s: out of memory", clone_uuid);
            ret = -ENOMEM;
        } else {
            r->parent = s;
            struct pool_ctl c = { .r = r, .size = 1 };
            ret = pool_ctl_run(&c, s->pool, clone_msg);
            if (ret == 0 && replica_register(r) < 0) {
                /* Its name was taken meanwhile: remove the record again. */
                char why[256];
                snprintf(why, sizeof why, "%s", dp_last_error());
                struct pool_ctl u = { .r = r };
                ret = pool_ctl_run(&u, s->pool, clone_undo_msg);
                if (ret == 0) {
                    dp_set_error("clone %s: %s; nothing was created", r->bdev.name, why);
                    ret = -EEXIST;
                }
                replica_free(r);
            } else if (ret < 0) {
                replica_free(r);
            }
        }
    }
    pool_unlock();
    return ret;
}

static void revert_msg(void *arg)
{
    struct pool_ctl *c = arg;
    struct replica *r = c->r;
    if (c->p->failed) {
        replica_thaw(r);
        pool_ctl_fail(c, -EIO, "pool '%s' is failed (%s): re-import it", c->p->name, c->p->fail_reason);
        return;
    }
    if (wait_settled(c, r, revert_msg))
        return;
    for (uint32_t l = 0; l < r->ncl; l++)
        if (r->map[l] != MAP_UNALLOC) {
            pool_cluster_unmapped(c->p, r->map[l] & MAP_PCL_MASK);
            r->map[l] = MAP_UNALLOC;
        }
    r->nalloc = 0;
    r->parent = c->arg;
    replica_thaw(r);
    c->w.cb = simple_committed;
    pool_commit(c->p, &c->w);
}

DP_EXPORT int dp_replica_revert(const char *replica_uuid, const char *snap_uuid)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *r = replica_lookup(replica_uuid, &ret), *s = NULL;
    if (r && r->ro) {
        dp_set_error("replica %s is a snapshot: only writable replicas are reverted", r->bdev.name);
        ret = -EINVAL;
    } else if (r && (s = snap_lookup(snap_uuid, &ret))) {
        struct replica *a = r->parent;
        while (a && a != s)
            a = a->parent;
        int open = replica_open_count(r);
        if (!a) {
            dp_set_error("snapshot %s is not a snapshot of replica %s (not in its parent chain)", s->bdev.name,
                         r->bdev.name);
            ret = -EINVAL;
        } else if (open > 0) {
            dp_set_error("replica %s is open (%d handle%s): close it (unshare, remove it from its nexus) to revert",
                         r->bdev.name, open, open == 1 ? "" : "s");
            ret = -EBUSY;
        } else {
            struct pool_ctl c = { .r = r, .arg = s };
            ret = pool_ctl_run(&c, r->pool, revert_msg);
        }
    }
    pool_unlock();
    return ret;
}

/* ---- stat and list ------------------------------------------------------- */

static void snap_fill_msg(void *arg)
{
    struct pool_ctl *c = arg;
    struct replica *s = c->r;
    dp_snapshot_info *out = c->arg;
    memset(out, 0, sizeof *out);
    memcpy(out->uuid, s->bdev.name, sizeof out->uuid);
    if (!dp_uuid_is_nil(s->source))
        dp_uuid_format(s->source, out->source);
    if (s->parent)
        memcpy(out->parent, s->parent->bdev.name, sizeof out->parent);
    snprintf(out->pool, sizeof out->pool, "%s", c->p->name);
    if (!dp_uuid_is_nil(s->group))
        dp_uuid_format(s->group, out->group);
    out->size_bytes = s->size;
    out->referenced_bytes = s->nalloc << c->p->cl_shift;
    out->create_time = s->ctime;
    out->nchildren = snap_children(s, out->children, sizeof out->children, NULL);
    pool_ctl_done(c, 0);
}

DP_EXPORT int dp_snapshot_stat(const char *uuid, dp_snapshot_info *out)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *s = snap_lookup(uuid, &ret);
    if (s) {
        struct pool_ctl c = { .r = s, .arg = out };
        ret = pool_ctl_run(&c, s->pool, snap_fill_msg);
    }
    pool_unlock();
    return ret;
}

DP_EXPORT int dp_pool_snapshot_at(const char *pool, uint32_t index, dp_snapshot_info *out)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct pool *p = pool_lookup(pool, &ret);
    struct replica *s = NULL;
    for (uint32_t i = 0, k = 0; p && i < p->nreplicas && !s; i++)
        if (p->replicas[i]->ro && k++ == index)
            s = p->replicas[i];
    if (p && !s) {
        ret = -ENOENT;
    } else if (p) {
        struct pool_ctl c = { .r = s, .arg = out };
        ret = pool_ctl_run(&c, p, snap_fill_msg);
    }
    pool_unlock();
    return ret;
}

/* ---- the bdev ops (the nexus snapshots its children through these) ------ */

int lvol_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group)
{
    return dp_snapshot_create(bdev->name, snap_uuid, group);
}

int lvol_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid)
{
    dp_clear_error();
    int ret;
    pool_lock();
    struct replica *r = bdev->ctx, *s = snap_lookup(snap_uuid, &ret);
    struct replica *a = s ? r->parent : NULL;
    while (a && a != s)
        a = a->parent;
    if (s && !a) {
        dp_set_error("snapshot %s is not a snapshot of %s", s->bdev.name, bdev->name);
        ret = -EINVAL;
    }
    pool_unlock();
    return ret < 0 ? ret : dp_snapshot_destroy(snap_uuid);
}
