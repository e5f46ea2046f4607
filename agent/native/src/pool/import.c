/*
 * import.c - dp_pool_import: bring back a pool from its disks, as named
 * steps (read and cross-check the labels, order the members, load the
 * newest valid metadata slot, register the replicas). Everything read is
 * hostile input: each disagreement is an error naming the disk.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "pool/pool.h"

/* Rebuild the replicas and the cluster bitmap from a slot (pf_meta_walk
 * validates it: hostile input). */
static int load_rec(void *ctx, const struct pf_replica_rec *rec, uint32_t ncl)
{
    struct pool *p = ctx;
    struct replica *r = replica_new(p, rec->uuid, rec->size, rec->flags & PF_REPLICA_THIN);
    if (!r)
        return -ENOMEM;
    r->ro = rec->flags & PF_REPLICA_RO;
    r->bdev.read_only = r->ro;
    memcpy(r->parent_uuid, rec->parent, 16);
    if (!dp_uuid_is_nil(rec->incarnation)) /* a version 1 record keeps the fresh one */
        memcpy(r->incarnation, rec->incarnation, 16);
    memcpy(r->group, rec->group, 16);
    memcpy(r->source, rec->source, 16);
    r->ctime = rec->create_time;
    pool_table_add(p, r);
    return 0;
}

static void load_pair(void *ctx, uint32_t l, uint32_t pc)
{
    struct pool *p = ctx;
    struct replica *r = p->replicas[p->nreplicas - 1];
    r->map[l] = pc;
    r->nalloc++;
    p->nused++;
}

static int meta_load(struct pool *p, const uint8_t *s, const struct pf_meta_hdr *h, char *err, size_t errlen)
{
    const struct pf_geom g = { p->cluster_size, p->block_size, p->total_clusters };
    const struct pf_meta_visit v = { load_rec, load_pair, p };
    /* A version 1 slot holds more (smaller) records than version 2. */
    p->max_records = pf_max_records(h->version, p->slot_size, p->total_clusters);
    int ret = pf_meta_walk(s, h, &g, p->used, &v, err, errlen);
    if (ret == 0 && p->nreplicas > p->max_records) {
        snprintf(err, errlen, "%u records exceed the %u the slot holds", p->nreplicas, p->max_records);
        ret = -EINVAL;
    }
    /* The walk proved every parent is a snapshot of this slot. */
    for (uint32_t i = 0; ret == 0 && i < p->nreplicas; i++) {
        struct replica *r = p->replicas[i];
        if (!dp_uuid_is_nil(r->parent_uuid))
            for (uint32_t j = 0; j < p->nreplicas; j++)
                if (!memcmp(p->replicas[j]->uuid, r->parent_uuid, 16))
                    r->parent = p->replicas[j];
    }
    return ret;
}

static void upgrade_committed(struct pool_waiter *w, int rc)
{
    struct pool_ctl *c = container_of(w, struct pool_ctl, w);
    if (rc < 0) {
        pool_ctl_fail(c, rc, "pool '%s': upgrading the metadata to version %u failed", c->p->name, PF_VERSION);
        return;
    }
    if (++c->idx < 2) {
        pool_commit(c->p, &c->w);
        return;
    }
    pool_ctl_done(c, 0);
}

static void upgrade_msg(void *arg)
{
    struct pool_ctl *c = arg;
    c->w.cb = upgrade_committed;
    pool_commit(c->p, &c->w);
}

/* Step 3b: a version 1 slot is rewritten as version 2 into both slots (the
 * older first, as any commit): a crash in between imports the v1 or the v2
 * state, and once both are v2 a version 1 reader refuses the pool. */
static int import_upgrade(struct pool *p, uint32_t version)
{
    if (version >= PF_VERSION || pf_write_version < PF_VERSION) {
        p->version = version < pf_write_version ? version : pf_write_version;
        return 0;
    }
    uint32_t max2 = pf_max_records(PF_VERSION, p->slot_size, p->total_clusters);
    if (p->nreplicas > max2) {
        /* Its version 2 table might not fit the slot once every cluster is
         * mapped: it stays version 1 (no snapshots); new records up to the
         * version 1 limit (p->max_records, from meta_load). */
        p->version = 1;
        return 0;
    }
    p->version = PF_VERSION;
    p->max_records = max2;
    struct pool_ctl c = { 0 };
    return pool_ctl_run(&c, p, upgrade_msg);
}

/* Step 1 helper: disk i's label against the reference label (that of the
 * first disk naming this pool) and against the disks before it. */
static int import_check_label(struct pool *p, const struct pf_label *lab, uint32_t i, int ref)
{
    const char *uri = p->disks[i].uri;
    const struct pf_label *l = &lab[i], *r = &lab[ref];
    char ru[37], u[37];
    dp_uuid_format(r->pool_uuid, ru);
    dp_uuid_format(l->pool_uuid, u);
    if (memcmp(l->pool_uuid, r->pool_uuid, 16)) {
        dp_set_error("pool '%s': disk '%s' belongs to another pool '%s' (uuid %s), not to this one (uuid %s)", p->name,
                     uri, l->pool_name, u, ru);
        return -EINVAL;
    }
    if (l->ndisks != r->ndisks || l->cluster_size != r->cluster_size || l->total_clusters != r->total_clusters ||
        l->meta_slot_size != r->meta_slot_size || memcmp(l->members, r->members, sizeof l->members) ||
        strcmp(l->pool_name, r->pool_name)) {
        dp_set_error("pool '%s': disk '%s': its label disagrees with disk '%s' about the pool's geometry", p->name, uri,
                     p->disks[ref].uri);
        return -EINVAL;
    }
    for (uint32_t j = 0; j < i; j++)
        if (lab[j].disk_index == l->disk_index) {
            dp_set_error("pool '%s': disks '%s' and '%s' both claim to be member %u (copies of one disk?)", p->name,
                         p->disks[j].uri, uri, l->disk_index);
            return -EINVAL;
        }
    return 0;
}

/* Step 1: read every disk's label; all must be intact and agree. Returns
 * the index of the reference label, or -errno with the error set. */
static int import_read_labels(struct pool *p, struct pf_label *lab, uint8_t *buf)
{
    int st[PF_MAX_DISKS];
    char errs[PF_MAX_DISKS][256];
    int ref = -1;
    for (uint32_t i = 0; i < p->ndisks; i++) {
        st[i] = pool_read_label(p->disks[i].bdev, buf, &lab[i], errs[i], sizeof errs[i]);
        if (st[i] == 0 && ref < 0 && !strcmp(lab[i].pool_name, p->name))
            ref = (int)i;
    }
    for (uint32_t i = 0; i < p->ndisks; i++) {
        const char *uri = p->disks[i].uri;
        if (st[i] == 1) {
            dp_set_error("pool '%s': disk '%s' carries no pool label (not a member of any pool)", p->name, uri);
            return -EINVAL;
        }
        if (st[i] < 0) {
            dp_set_error("pool '%s': disk '%s': %s", p->name, uri, errs[i]);
            return st[i] == -EINVAL ? -EINVAL : st[i];
        }
        if (ref < 0) {
            dp_set_error("pool '%s': disk '%s' belongs to pool '%s', not to pool '%s'", p->name, uri, lab[i].pool_name,
                         p->name);
            return -EINVAL;
        }
        int ret = import_check_label(p, lab, i, ref);
        if (ret < 0)
            return ret;
    }
    return ref;
}

/* Step 2: every member present, the disks in member order, their cluster
 * ranges contiguous and inside the disks; then the pool's geometry. */
static int import_order_disks(struct pool *p, const struct pf_label *lab, int ref)
{
    uint32_t ndisks = p->ndisks, want = lab[ref].ndisks;
    for (uint32_t k = 0; ndisks < want && k < want; k++) {
        bool have = false;
        for (uint32_t i = 0; i < ndisks; i++)
            have |= lab[i].disk_index == k;
        if (!have) {
            char u[37];
            dp_uuid_format(lab[ref].members[k], u);
            dp_set_error("pool '%s': member disk %u of %u (disk uuid %s) is missing", p->name, k, want, u);
            return -ENODEV;
        }
    }
    struct pool_disk sorted[PF_MAX_DISKS];
    for (uint32_t i = 0; i < ndisks; i++)
        sorted[lab[i].disk_index] = p->disks[i];
    uint64_t next = 0;
    for (uint32_t k = 0; k < want; k++) {
        const struct pf_label *l = NULL;
        for (uint32_t i = 0; i < ndisks; i++)
            if (lab[i].disk_index == k)
                l = &lab[i];
        struct pool_disk *d = &sorted[k];
        if (l->first_cluster != next) {
            dp_set_error("pool '%s': disk '%s': cluster range does not follow member %u", p->name, d->uri, k - 1);
            return -EINVAL;
        }
        if (d->bdev->size < l->data_start + (l->data_clusters << __builtin_ctzll(l->cluster_size))) {
            dp_set_error("pool '%s': disk '%s' is %" PRIu64 " bytes, smaller than the pool needs (%" PRIu64 ")",
                         p->name, d->uri, d->bdev->size, l->data_start + l->data_clusters * l->cluster_size);
            return -EINVAL;
        }
        memcpy(d->uuid, l->disk_uuid, 16);
        d->data_start = l->data_start;
        d->first_cluster = l->first_cluster;
        d->nclusters = l->data_clusters;
        next += l->data_clusters;
    }
    if (next != lab[ref].total_clusters) {
        dp_set_error("pool '%s': member cluster counts do not add up to the pool's %" PRIu64, p->name,
                     lab[ref].total_clusters);
        return -EINVAL;
    }
    memcpy(p->disks, sorted, sizeof(struct pool_disk) * want);
    memcpy(p->uuid, lab[ref].pool_uuid, 16);
    dp_uuid_format(p->uuid, p->uuid_str);
    p->cluster_size = lab[ref].cluster_size;
    p->total_clusters = lab[ref].total_clusters;
    p->slot_size = lab[ref].meta_slot_size;
    return 0;
}

/* Step 3: read both slots from disk 0; the valid one with the higher
 * sequence wins and rebuilds the replicas and the cluster bitmap. */
static int import_load_meta(struct pool *p)
{
    uint8_t *slot_b = dp_buf_alloc(p->slot_size);
    if (!slot_b) {
        dp_set_error("pool '%s': out of memory", p->name);
        return -ENOMEM;
    }
    uint8_t *slots[2] = { p->slot_buf, slot_b };
    struct pf_meta_hdr h[2];
    int ok[2], ret = 0;
    char serr[2][256];
    for (int k = 0; k < 2 && ret == 0; k++) {
        ret = dp_bdev_rw_sync(p->disks[0].bdev, DP_IO_READ, slots[k], PF_META_OFFSET + (uint64_t)k * p->slot_size,
                              p->slot_size);
        if (ret < 0)
            pool_error_wrap("pool '%s': reading metadata slot %c", p->name, 'A' + k);
        else
            ok[k] = pf_meta_check(slots[k], p->slot_size, p->uuid, &h[k], serr[k], sizeof serr[k]) == 0;
    }
    if (ret == 0 && !ok[0] && !ok[1]) {
        dp_set_error("pool '%s': no valid metadata on disk '%s' (slot A: %s; slot B: %s)", p->name, p->disks[0].uri,
                     serr[0], serr[1]);
        ret = -EIO;
    }
    if (ret == 0) {
        int cur = ok[0] && (!ok[1] || h[0].seq > h[1].seq) ? 0 : 1;
        char lerr[256];
        ret = meta_load(p, slots[cur], &h[cur], lerr, sizeof lerr);
        if (ret < 0) {
            dp_set_error("pool '%s': metadata slot %c (seq %" PRIu64 ") is inconsistent: %s", p->name, 'A' + cur,
                         h[cur].seq, lerr);
        } else {
            p->seq = h[cur].seq;
            p->cur_slot = cur;
            /* Either slot still v1 (a crash mid-upgrade left one): upgrade. */
            ret = import_upgrade(p, ok[!cur] && h[!cur].version < h[cur].version ? h[!cur].version : h[cur].version);
        }
    }
    dp_buf_free(slot_b);
    return ret;
}

/* Step 4: the replicas become devices. */
static int import_register(struct pool *p)
{
    for (uint32_t i = 0; i < p->nreplicas; i++) {
        int ret = replica_register(p->replicas[i]);
        if (ret < 0) {
            pool_error_wrap("pool '%s': replica %s", p->name, p->replicas[i]->bdev.name);
            return ret;
        }
    }
    return 0;
}

DP_EXPORT int dp_pool_import(const char *name, const char *const *disks, uint32_t ndisks, char *uuid_out)
{
    dp_clear_error();
    int ret = pool_check_name("pool name", name);
    if (ret < 0)
        return ret;
    struct pool *p = calloc(1, sizeof *p);
    struct pf_label *lab = calloc(PF_MAX_DISKS, sizeof *lab);
    uint8_t *buf = dp_buf_alloc(PF_LABEL_SIZE);
    if (!p || !lab || !buf) {
        free(p);
        free(lab);
        dp_buf_free(buf);
        dp_set_error("pool '%s': out of memory", name);
        return -ENOMEM;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    pool_lock();
    int ref = -1;
    if (pool_find(name)) {
        dp_set_error("pool '%s' already exists (imported)", name);
        ret = -EEXIST;
    } else if ((ret = pool_open_disks(p, "import:", disks, ndisks)) == 0 &&
               (ret = ref = import_read_labels(p, lab, buf)) >= 0 && (ret = import_order_disks(p, lab, ref)) == 0 &&
               (ret = pool_alloc_state(p)) == 0 && (ret = import_load_meta(p)) == 0) {
        ret = import_register(p);
    }
    ret = pool_setup_end(p, ret, uuid_out);
    free(lab);
    dp_buf_free(buf);
    return ret;
}
