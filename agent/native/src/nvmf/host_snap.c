/*
 * host_snap.c - snapshots of the replica behind an nvmf:// child, asked of
 * the target that serves it (issue 13): our vendor admin commands C1h/C5h
 * (proto_admin.h). Control thread, blocking. Like refresh_size, the command
 * goes over a controller of its own (setup, identity check, command, close),
 * so the reactor's queues and their keep-alive are not involved; connect
 * and command are bounded by connect_timeout_ms and io_timeout_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nvmf/host.h"
#include "util/error.h"
#include "util/uuid.h"

/* The -errno for a failed vendor command: the target's errno in cdw0 when
 * it sent one, else from the status. */
static int vs_errno(const struct nvme_cqe *cqe)
{
    if (cqe->cdw0 > 0 && cqe->cdw0 < 4096)
        return -(int)cqe->cdw0;
    if (NVME_STATUS_SCT(cqe->status) != NVME_SCT_GENERIC)
        return -EIO;
    switch (NVME_STATUS_SC(cqe->status)) {
    case NVME_SC_NS_WRITE_PROTECTED: return -EROFS;
    case NVME_SC_INVALID_FIELD: return -EINVAL;
    case NVME_SC_INVALID_OPCODE: return -ENOTSUP; /* a target without our vendor commands */
    case NVME_SC_CAPACITY_EXCEEDED: return -ENOSPC;
    }
    return -EIO;
}

static int vs_snapshot(struct nvmfh *n, uint8_t opc, const char *snap_uuid, const char *group)
{
    const char *what = opc == NVMF_ADM_VS_SNAPSHOT_CREATE ? "create" : "destroy";
    struct nvmf_vs_snapshot p = { .nsid = 0 };
    if (!snap_uuid || dp_uuid_parse(snap_uuid, p.snap_uuid) < 0 || dp_uuid_is_nil(p.snap_uuid)) {
        dp_set_error("%s: snapshot %s: snapshot uuid '%.64s' is not a uuid", n->peer, what, snap_uuid ? snap_uuid : "");
        return -EINVAL;
    }
    if (group && *group && dp_uuid_parse(group, p.group_uuid) < 0) {
        dp_set_error("%s: snapshot %s: group '%.64s' is not a uuid", n->peer, what, group);
        return -EINVAL;
    }
    struct nvmfh_conn c;
    char err[512];
    struct nvmfh_uri u1 = n->u;
    u1.queues = 1; /* an admin command: one I/O queue is enough */
    int rc = nvmfh_setup(&u1, &n->addr, n->addrlen, &c, err, sizeof err);
    if (rc < 0) { /* a dead or unreachable peer */
        dp_set_error("snapshot %s %s: %s", snap_uuid, what, err);
        return rc == -ETIMEDOUT || rc == -EACCES ? rc : -ENOTCONN;
    }
    if (memcmp(c.nsid_bytes, n->c.nsid_bytes, sizeof c.nsid_bytes)) {
        dp_set_error("%s: snapshot %s %s: replaced: the namespace is not the one we had", n->peer, snap_uuid, what);
        rc = -ENODEV;
        goto out;
    }
    p.nsid = c.nsid;
    struct nvme_sqe sqe = { .opc = opc, .nsid = c.nsid };
    struct nvme_cqe cqe;
    rc = nvmfh_sync_admin(&c, &sqe, &p, sizeof p, NULL, 0, &cqe, n->u.io_timeout_ms, err, sizeof err);
    if (rc == -EIO && (NVME_STATUS_SC(cqe.status) || NVME_STATUS_SCT(cqe.status))) {
        rc = vs_errno(&cqe);
        dp_set_error("%s: snapshot %s %s refused by the target: %s (%s; the target's log says why)", n->peer, snap_uuid,
                     what, strerror(-rc), err);
    } else if (rc < 0) {
        dp_set_error("%s: snapshot %s %s: %s", n->peer, snap_uuid, what, err);
        rc = rc == -ETIMEDOUT ? rc : -ENOTCONN;
    }
out:
    nvmfh_conn_close(&c);
    return rc;
}

int nvmfh_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group)
{
    return vs_snapshot(bdev->ctx, NVMF_ADM_VS_SNAPSHOT_CREATE, snap_uuid, group);
}

int nvmfh_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid)
{
    return vs_snapshot(bdev->ctx, NVMF_ADM_VS_SNAPSHOT_DESTROY, snap_uuid, NULL);
}
