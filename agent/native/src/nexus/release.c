/*
 * release.c - dp_nexus_label_release: mark the nexus label a device carries
 * as released, so a new nexus may take the device without force.
 *
 * A clone of a snapshot of a nexus child starts with a copy of that child's
 * label (the first DP_NEXUS_HEADER_BYTES are the nexus header): it names the
 * source nexus, which has not released it, so the ownership check (LABEL.md,
 * "Ownership") would refuse the clone to any other nexus. The clone is a new
 * device that the source nexus never uses (it opens its own children), so
 * the copy is released: the label is written again, newest slot, with
 * NX_LABEL_RELEASED. A device without a valid label is left as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"

DP_EXPORT int dp_nexus_label_release(const char *uri)
{
    dp_clear_error();
    if (!nx_valid_uri(uri)) {
        dp_set_error("uri: empty or longer than %u bytes", NX_URI_MAX - 1);
        return -EINVAL;
    }
    struct dp_bdev *b;
    int rc = dp_bdev_open_uri(uri, &b);
    if (rc < 0)
        return rc;
    char owner[96];
    dp_bdev_claim_owner(b, owner, sizeof owner);
    uint8_t *two = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    if (!two) {
        dp_bdev_put(b);
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    struct nx_label l;
    char why[128];
    if (owner[0]) {
        dp_set_error("'%s' is in use by %s: its label is not ours to release", uri, owner);
        rc = -EBUSY;
    } else if (b->size < 2 * NX_LABEL_BLOCK) {
        rc = 0; /* too small to carry a label */
    } else if ((rc = dp_bdev_rw_sync(b, DP_IO_READ, two, 0, 2 * NX_LABEL_BLOCK)) == 0) {
        if (nx_label_read_slots(two, &l, why, sizeof why) != 0 || (l.flags & NX_LABEL_RELEASED)) {
            rc = 0; /* no label (or a damaged one), or released already */
        } else {
            l.flags |= NX_LABEL_RELEASED;
            l.seq++;
            uint8_t *slot = two + nx_label_slot_offset(l.seq);
            nx_label_encode(&l, slot);
            rc = dp_bdev_rw_sync(b, DP_IO_WRITE, slot, nx_label_slot_offset(l.seq), NX_LABEL_BLOCK);
            if (rc == 0)
                rc = dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0);
            if (rc == 0)
                rc = 1;
        }
    }
    dp_buf_free(two);
    dp_bdev_put(b);
    return rc;
}
