/*
 * vendor.c - our vendor-specific admin commands (see proto_admin.h):
 * snapshot create (C1h) and destroy (C5h) of the subsystem's device, for a
 * nexus that snapshots a remote child through the protocol (issue 13).
 *
 * The device's snapshot op may block (a pool writes its metadata): it runs
 * on a thread of its own, and the completion goes back to the admin queue's
 * reactor. The request counts as I/O in flight, so the connection (and
 * with it the export and its device) outlives the thread.
 *
 * A snapshot changes what the export serves as much as a write does, so the
 * writes' rules apply (target/export.h): while another host holds the
 * export's writer lease the command gets Reservation Conflict (cdw0 EPERM),
 * and a read-only namespace (a snapshot's export) refuses both create and
 * destroy (Namespace is Write Protected, cdw0 EROFS): through snapshot S2's
 * export no host may destroy S1 of its parent chain. One vendor command runs
 * per controller at a time: another one meanwhile gets Command Interrupted
 * (cdw0 EBUSY, retryable), so a host cannot pile up threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf/target.h"
#include "util/error.h"
#include "util/uuid.h"

#define ST(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

struct snap_job {
    struct nvmf_req *q;
    struct dp_bdev *b; /* a reference of its own */
    bool create;
    char snap[DP_UUID_TEXT], group[DP_UUID_TEXT];
    int rc;
    char msg[256];
    pthread_t thread;
};

/* The NVMe status for a device's -errno. */
static uint16_t snap_status(int rc)
{
    switch (rc) {
    case 0: return 0;
    case -EROFS: return ST(NVME_SC_NS_WRITE_PROTECTED);
    case -EINVAL:
    case -ENOENT:
    case -EEXIST:
    case -ENOTSUP:
    case -EBUSY: return ST(NVME_SC_INVALID_FIELD);
    case -ENOSPC: return ST(NVME_SC_CAPACITY_EXCEEDED);
    }
    return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
}

/* Back on the admin queue's reactor. */
static void snap_done(void *arg)
{
    struct snap_job *j = arg;
    struct nvmf_req *q = j->q;
    struct nvmf_conn *c = q->c;
    pthread_join(j->thread, NULL); /* it only returns after sending this */
    c->io_inflight--;
    if (j->rc < 0)
        fprintf(stderr, "nvmf: host %s on %s: snapshot %s %s failed: %s\n", c->hostnqn, c->subnqn, j->snap,
                j->create ? "create" : "destroy", j->msg);
    else
        fprintf(stderr, "nvmf: host %s on %s: snapshot %s %s\n", c->hostnqn, c->subnqn, j->snap,
                j->create ? "created" : "destroyed");
    if (c->closing)
        nvmf_conn_close(c, NULL);
    else
        nvmf_req_complete(q, snap_status(j->rc), j->rc < 0 ? (uint32_t)-j->rc : 0);
    free(j);
}

static void *snap_thread(void *arg)
{
    struct snap_job *j = arg;
    j->rc = j->create ? dp_bdev_snapshot_create(j->b, j->snap, j->group) : dp_bdev_snapshot_destroy(j->b, j->snap);
    if (j->rc < 0)
        snprintf(j->msg, sizeof j->msg, "%s", dp_get_error());
    dp_bdev_put(j->b);
    dp_reactor_send(j->q->c->r, snap_done, j);
    return NULL;
}

/* Checks the payload; 0, or the status to answer with (the reason logged). */
static uint16_t snap_parse(struct nvmf_req *q, struct snap_job *j)
{
    struct nvmf_conn *c = q->c;
    struct nvmf_vs_snapshot p;
    const char *bad = NULL;
    if (q->len != NVMF_VS_SNAPSHOT_LEN || !q->buf) {
        fprintf(stderr, "nvmf: peer %s: vendor snapshot command with %u bytes of data, not %u\n", c->peer.str, q->len,
                NVMF_VS_SNAPSHOT_LEN);
        return ST(NVME_SC_DATA_SGL_LENGTH_INVALID);
    }
    memcpy(&p, q->buf, sizeof p);
    if (p.nsid != 1)
        bad = "nsid (only namespace 1 exists)";
    else if (dp_uuid_is_nil(p.snap_uuid))
        bad = "snapshot uuid (nil)";
    else if (!j->create && !dp_uuid_is_nil(p.group_uuid))
        bad = "group uuid (destroy takes none)";
    if (bad) {
        fprintf(stderr, "nvmf: peer %s: vendor snapshot command: invalid %s\n", c->peer.str, bad);
        return ST(NVME_SC_INVALID_FIELD);
    }
    dp_uuid_format(p.snap_uuid, j->snap);
    if (!dp_uuid_is_nil(p.group_uuid))
        dp_uuid_format(p.group_uuid, j->group);
    return 0;
}

/* May c's host change the export's snapshots now? 0, or the status (cdw0 in *err), logged. */
static uint16_t snap_allowed(struct nvmf_conn *c, struct snap_job *j, uint32_t *err)
{
    struct dp_export *e = c->ctrlr->exp;
    const char *what = j->create ? "create" : "destroy";
    /* Only vendor commands count as I/O in flight on an admin queue (I/O commands run on I/O queues). */
    if (c->io_inflight > 0) {
        fprintf(stderr,
                "nvmf: host %s on %s: snapshot %s %s refused: another vendor command of this controller is running\n",
                c->hostnqn, c->subnqn, j->snap, what);
        *err = EBUSY;
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_COMMAND_INTERRUPTED);
    }
    if (e->bdev->read_only) {
        fprintf(stderr, "nvmf: host %s on %s: snapshot %s %s refused: the namespace is read-only\n", c->hostnqn,
                c->subnqn, j->snap, what);
        *err = EROFS;
        return ST(NVME_SC_NS_WRITE_PROTECTED);
    }
    /* Checked as an unmap past the label area would be: refused (counted, and logged once per connection
     * naming the lease's host) when another host holds the lease. */
    if (dp_export_writer_check(e, &c->wc, UINT64_MAX, NULL, 0, 0) < 0) {
        fprintf(stderr,
                "nvmf: host %s on %s: snapshot %s %s refused (EPERM): the export serves a child of another host's "
                "nexus (its writer lease), only that host may snapshot it\n",
                c->hostnqn, c->subnqn, j->snap, what);
        *err = EPERM;
        return ST(NVME_SC_RESERVATION_CONFLICT);
    }
    return 0;
}

void nvmf_vendor_cmd(struct nvmf_req *q)
{
    struct nvmf_conn *c = q->c;
    struct nvmf_ctrlr *k = c->ctrlr;
    struct snap_job *j = calloc(1, sizeof *j);
    if (!j) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
        return;
    }
    j->q = q;
    j->create = q->sqe.opc == NVMF_ADM_VS_SNAPSHOT_CREATE;
    uint32_t err = 0;
    uint16_t st = k->discovery ? ST(NVME_SC_INVALID_OPCODE) : snap_parse(q, j);
    if (!st)
        st = snap_allowed(c, j, &err);
    if (!st && !(j->b = dp_bdev_get(k->exp->bdev->name)))
        st = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
    if (!st) {
        c->io_inflight++; /* the connection waits for the thread */
        if (pthread_create(&j->thread, NULL, snap_thread, j) != 0) {
            c->io_inflight--;
            dp_bdev_put(j->b);
            st = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
        }
    }
    if (st) {
        free(j);
        nvmf_req_complete(q, st, err);
    }
}
