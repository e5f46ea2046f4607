/*
 * create.c - dp_pool_create: format new disks into a pool, as named steps
 * (refuse disks that belong to something, lay out the geometry, write the
 * metadata and the labels). Runs on the control thread under the registry
 * lock; the pool is published only once its labels are durable.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "pool/pool.h"

/*
 * A disk that carries a nexus child label holds a volume's data (a child
 * whose nexus is down, or another agent's): a pool must not format it.
 * Labels of a nexus that released its children (DELETE) do not count.
 */
static int refuse_nexus_child(struct pool *p, struct dp_bdev *b, const char *disk)
{
    uint8_t *two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!two) {
        dp_set_error("pool '%s': out of memory", p->name);
        return -ENOMEM;
    }
    struct nx_label l;
    char why[128];
    int rc = b->size >= 2 * NX_LABEL_BLOCK ? dp_bdev_rw_sync(b, DP_IO_READ, two, 0, 2 * NX_LABEL_BLOCK) : -1;
    if (rc == 0 && nx_label_read_slots(two, &l, why, sizeof why) == 0 && !(l.flags & NX_LABEL_RELEASED)) {
        char u[37];
        dp_uuid_format(l.nexus_uuid, u);
        dp_set_error("pool '%s': disk '%s' holds the label of a child of nexus '%s' (its data would be "
                     "destroyed); remove it from that nexus, or wipe its first 8 KiB if the volume is gone",
                     p->name, disk, u);
        rc = -EBUSY;
    } else {
        rc = 0;
    }
    dp_buf_free(two);
    return rc;
}

/* Step 1: every disk must be free: no pool label (intact or damaged), no
 * nexus child label. buf is a PF_LABEL_SIZE scratch buffer. */
static int create_check_disks(struct pool *p, uint8_t *buf)
{
    for (uint32_t i = 0; i < p->ndisks; i++) {
        const char *uri = p->disks[i].uri;
        struct pf_label l;
        char err[256];
        int ret = pool_read_label(p->disks[i].bdev, buf, &l, err, sizeof err);
        if (ret == 0) {
            char u[37];
            dp_uuid_format(l.pool_uuid, u);
            dp_set_error("pool '%s': disk '%s' already belongs to pool '%s' (uuid %s)", p->name, uri, l.pool_name, u);
            return -EEXIST;
        }
        if (ret == -EINVAL) {
            dp_set_error("pool '%s': disk '%s' carries a damaged pool label (%s); wipe it first", p->name, uri, err);
            return -EEXIST;
        }
        if (ret < 0) {
            dp_set_error("pool '%s': disk '%s': %s", p->name, uri, err);
            return ret;
        }
        ret = refuse_nexus_child(p, p->disks[i].bdev, uri);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/*
 * Step 2: geometry. The slot is sized for an upper bound of the cluster
 * count (disk 0's data start assumed minimal), then disk 0 loses what the
 * slots take. Generates the pool and disk uuids, allocates the state.
 */
static int create_geometry(struct pool *p)
{
    uint64_t cs = p->cluster_size, bound = 0;
    for (uint32_t i = 0; i < p->ndisks; i++) {
        uint64_t sz = p->disks[i].bdev->size;
        if (sz > PF_DATA_ALIGN)
            bound += (sz - PF_DATA_ALIGN) / cs;
    }
    if (bound > PF_MAX_CLUSTERS)
        bound = PF_MAX_CLUSTERS;
    p->slot_size = pf_meta_slot_size_v(pf_write_version, bound);
    uint64_t total = 0;
    for (uint32_t i = 0; i < p->ndisks; i++) {
        struct pool_disk *d = &p->disks[i];
        uint64_t sz = d->bdev->size;
        d->data_start = pf_data_start(i, p->slot_size);
        d->nclusters = sz > d->data_start ? (sz - d->data_start) / cs : 0;
        if (d->nclusters == 0) {
            dp_set_error("pool '%s': disk '%s' is too small: %" PRIu64 " bytes, it needs at least %" PRIu64
                         " (metadata and one %" PRIu64 "-byte cluster)",
                         p->name, d->uri, sz, d->data_start + cs, cs);
            return -EINVAL;
        }
        d->first_cluster = total;
        total += d->nclusters;
        dp_uuid_generate(d->uuid);
    }
    if (total > PF_MAX_CLUSTERS) {
        dp_set_error("pool '%s': %" PRIu64 " clusters exceed the limit of %u; use a larger cluster_size", p->name,
                     total, PF_MAX_CLUSTERS);
        return -EINVAL;
    }
    p->total_clusters = total;
    dp_uuid_generate(p->uuid);
    dp_uuid_format(p->uuid, p->uuid_str);
    return pool_alloc_state(p);
}

/* The label of member i, as step 3 writes it. */
static void create_label(struct pool *p, uint32_t i, struct pf_label *l)
{
    struct pool_disk *d = &p->disks[i];
    *l = (struct pf_label){ .version = pf_write_version,
                            .disk_index = i,
                            .ndisks = p->ndisks,
                            .cluster_size = p->cluster_size,
                            .disk_size = d->bdev->size,
                            .data_start = d->data_start,
                            .data_clusters = d->nclusters,
                            .first_cluster = d->first_cluster,
                            .total_clusters = p->total_clusters,
                            .meta_offset = PF_META_OFFSET,
                            .meta_slot_size = p->slot_size,
                            .create_time = (uint64_t)time(NULL) };
    memcpy(l->pool_uuid, p->uuid, 16);
    memcpy(l->disk_uuid, d->uuid, 16);
    snprintf(l->pool_name, sizeof l->pool_name, "%s", p->name);
    for (uint32_t j = 0; j < p->ndisks; j++)
        memcpy(l->members[j], p->disks[j].uuid, 16);
}

/*
 * Step 3, on disk: slot A (seq 1, empty), slot B cleared, then the labels,
 * disk 0's last, each flushed: a disk without label is no member yet, and
 * the pool imports only once disk 0's label is down.
 */
static int create_write(struct pool *p, uint8_t *buf)
{
    p->seq = 0;
    uint64_t used = pool_meta_serialize(p);
    struct dp_bdev *b0 = p->disks[0].bdev;
    int ret = dp_bdev_rw_sync(b0, DP_IO_WRITE, p->slot_buf, PF_META_OFFSET, (used + 4095) & ~4095ull);
    memset(buf, 0, PF_LABEL_SIZE);
    if (ret == 0)
        ret = dp_bdev_rw_sync(b0, DP_IO_WRITE, buf, PF_META_OFFSET + p->slot_size, PF_LABEL_SIZE);
    if (ret == 0)
        ret = dp_bdev_rw_sync(b0, DP_IO_FLUSH, NULL, 0, 0);
    p->seq = 1;
    p->cur_slot = 0;
    for (uint32_t k = 0; ret == 0 && k < p->ndisks; k++) {
        uint32_t i = p->ndisks - 1 - k;
        struct pf_label l;
        create_label(p, i, &l);
        pf_label_encode(&l, buf);
        ret = dp_bdev_rw_sync(p->disks[i].bdev, DP_IO_WRITE, buf, 0, PF_LABEL_SIZE);
        if (ret == 0)
            ret = dp_bdev_rw_sync(p->disks[i].bdev, DP_IO_FLUSH, NULL, 0, 0);
    }
    if (ret < 0)
        pool_error_wrap("pool '%s': writing labels and metadata", p->name);
    return ret;
}

DP_EXPORT int dp_pool_create(const char *name, const char *const *disks, uint32_t ndisks, uint64_t cluster_size,
                             char *uuid_out)
{
    dp_clear_error();
    int ret = pool_check_name("pool name", name);
    if (ret < 0)
        return ret;
    if (cluster_size == 0)
        cluster_size = PF_DEFAULT_CLUSTER;
    if (cluster_size < PF_MIN_CLUSTER || cluster_size > PF_MAX_CLUSTER || (cluster_size & (cluster_size - 1))) {
        dp_set_error("pool '%s': cluster_size %" PRIu64 " must be a power of two from %u to %u bytes", name,
                     cluster_size, PF_MIN_CLUSTER, PF_MAX_CLUSTER);
        return -EINVAL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (!p) {
        dp_set_error("pool '%s': out of memory", name);
        return -ENOMEM;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->cluster_size = cluster_size;
    uint8_t *buf = dp_buf_alloc(PF_LABEL_SIZE);
    pool_lock();
    if (pool_find(name)) {
        dp_set_error("pool '%s' already exists", name);
        ret = -EEXIST;
    } else if ((ret = pool_open_disks(p, "create:", disks, ndisks)) == 0 && (ret = create_check_disks(p, buf)) == 0 &&
               (ret = create_geometry(p)) == 0) {
        ret = create_write(p, buf);
    }
    ret = pool_setup_end(p, ret, uuid_out);
    dp_buf_free(buf);
    return ret;
}
