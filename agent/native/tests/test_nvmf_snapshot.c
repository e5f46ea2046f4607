/*
 * test_nvmf_snapshot: the vendor snapshot admin commands (proto_admin.h)
 * end to end, our initiator against our target in one process: an nvmf://
 * child's snapshot_create/destroy reach the served device's ops (a fake
 * device here that copies its bytes, checked by checksum against what was
 * written through the child), the device's errno comes back as is, bad
 * uuids and a dead peer are errors naming the field or the peer, bad
 * payloads sent raw get error statuses; and a
 * read-only device: Identify reports it write protected, so the child is
 * read_only, and a write that reaches the target anyway gets "Namespace is
 * Write Protected" (-EROFS), as do its snapshot create and destroy. And the
 * writer lease (target/export.h): once another host NQN labelled the export
 * as its nexus's child, our writes and snapshot commands get Reservation
 * Conflict (-EPERM) while reads go on; once the lease is ours, our snapshots
 * go through. One vendor command runs per controller: a second one sent
 * meanwhile on the same admin queue gets Command Interrupted (EBUSY). Last, a pool replica
 * snapshotted through its nvmf:// child, its bytes checked; and one that
 * grows, announced by an Asynchronous Event.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "datapath.h"
#include "nexus/nexus.h"
#include "nvmf/host.h"
#include "target/export.h"
#include "testlib.h"

#define U1 "2e6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a11"
#define NQN "nqn.2019-05.io.openebs:" U1
#define NQN_RO "nqn.2019-05.io.openebs:2e6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a22"
#define NQN_PLAIN "nqn.2019-05.io.openebs:2e6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a33"
#define SNAP "7a1b2c3d-0000-4000-8000-00000000000a"
#define GROUP "7a1b2c3d-0000-4000-8000-0000000000ff"
#define FAKE_SIZE (1u << 20)

/* A device with snapshot ops: a snapshot is a copy of its bytes. */
struct fake {
    struct dp_bdev b;
    uint8_t *data, *snap;
    char snap_uuid[64], group[64];
    bool reject_writes; /* -EROFS from the device though not marked read_only */
    int creates, destroys;
    atomic_bool hold, in_create; /* hold: a create waits (in_create) until it is cleared */
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void fake_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct fake *f = bdev->ctx;
    uint8_t *p = f->data + io->offset;
    int st = 0;
    if (io->type == DP_IO_READ)
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
    else if (io->type == DP_IO_WRITE && f->reject_writes)
        st = -EROFS;
    else if (io->type == DP_IO_WRITE)
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
    dp_bdev_io_complete_deferred(io, st);
}

static int fake_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group)
{
    struct fake *f = bdev->ctx;
    atomic_store(&f->in_create, true);
    while (atomic_load(&f->hold))
        usleep(1000);
    if (f->snap) {
        dp_set_error("fake: snapshot %s exists", f->snap_uuid);
        return -EEXIST;
    }
    if (!strcmp(group, "00000000-0000-4000-8000-000000000000")) { /* stands for a full pool */
        dp_set_error("fake: no space");
        return -ENOSPC;
    }
    f->snap = malloc(FAKE_SIZE);
    memcpy(f->snap, f->data, FAKE_SIZE);
    snprintf(f->snap_uuid, sizeof f->snap_uuid, "%s", snap_uuid);
    snprintf(f->group, sizeof f->group, "%s", group);
    f->creates++;
    return 0;
}

static int fake_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid)
{
    struct fake *f = bdev->ctx;
    if (!f->snap || strcmp(snap_uuid, f->snap_uuid)) {
        dp_set_error("fake: no snapshot %s", snap_uuid);
        return -ENOENT;
    }
    free(f->snap);
    f->snap = NULL;
    f->destroys++;
    return 0;
}

static void fake_destroy(struct dp_bdev *bdev)
{
    struct fake *f = bdev->ctx;
    free(f->data);
    free(f->snap);
    free(f);
}

static const struct dp_bdev_ops fake_ops = { .submit = fake_submit,
                                             .destroy = fake_destroy,
                                             .snapshot_create = fake_snapshot_create,
                                             .snapshot_destroy = fake_snapshot_destroy };

static struct fake *fake_new(const char *name, bool read_only)
{
    struct fake *f = calloc(1, sizeof *f);
    f->data = calloc(1, FAKE_SIZE);
    snprintf(f->b.name, sizeof f->b.name, "%s", name);
    f->b.size = FAKE_SIZE;
    f->b.block_size = 512;
    f->b.read_only = read_only;
    f->b.ops = &fake_ops;
    f->b.ctx = f;
    f->b.reactor = dp_reactor_next();
    CHECK_EQ(dp_bdev_register(&f->b), 0);
    return f;
}

static char uri[256], uri_ro[256], uri_plain[256];
static struct fake *g_fake, *g_ro;

TEST(snapshot_through_the_protocol)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK(!b->read_only);
    uint8_t *w = dp_buf_alloc(65536), *r = dp_buf_alloc(65536);
    for (int i = 0; i < 65536; i++)
        w[i] = (uint8_t)(i * 31 + (i >> 9));
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w, 131072, 65536), 0);
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), 0);
    CHECK_EQ(g_fake->creates, 1);
    CHECK(!strcmp(g_fake->snap_uuid, SNAP));
    CHECK(!strcmp(g_fake->group, GROUP));
    CHECK_EQ(fnv(g_fake->snap + 131072, 65536), fnv(w, 65536)); /* the bytes written before it */
    /* writes after it change the device, not the snapshot */
    memset(r, 0x5a, 65536);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, r, 131072, 65536), 0);
    CHECK_EQ(fnv(g_fake->snap + 131072, 65536), fnv(w, 65536));
    /* the device's errno comes back as is, its message in the target's log */
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), -EEXIST);
    CHECK(strstr(dp_get_error(), "refused by the target"));
    CHECK(strstr(dp_get_error(), NQN));
    CHECK_EQ(dp_bdev_snapshot_destroy(b, "7a1b2c3d-0000-4000-8000-0000000000bb"), -ENOENT);
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), 0);
    CHECK_EQ(g_fake->destroys, 1);
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, "00000000-0000-4000-8000-000000000000"), -ENOSPC);
    /* no group: a snapshot of this device alone */
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, ""), 0);
    CHECK(!strcmp(g_fake->group, ""));
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), 0);
    /* bad uuids name the field, nothing is sent */
    CHECK_EQ(dp_bdev_snapshot_create(b, "not-a-uuid", GROUP), -EINVAL);
    CHECK(strstr(dp_get_error(), "snapshot uuid 'not-a-uuid'"));
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, "bad-group"), -EINVAL);
    CHECK(strstr(dp_get_error(), "group 'bad-group'"));
    CHECK_EQ(dp_bdev_snapshot_create(b, "00000000-0000-0000-0000-000000000000", GROUP), -EINVAL);
    CHECK_EQ(g_fake->creates, 2);
    /* I/O still flows on the child's own queues */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 131072, 65536), 0);
    for (int i = 0; i < 65536; i++)
        CHECK_EQ(r[i], 0x5a);
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

/* One vendor command with `len` bytes of payload on a controller of its own; its status. */
static uint16_t vs_raw(const char *u, uint8_t opc, uint32_t nsid, const void *payload, uint32_t len, uint32_t *cdw0)
{
    struct nvmfh_uri pu;
    char err[512];
    CHECK_EQ(nvmfh_uri_parse(u, &pu, err, sizeof err), 0);
    struct sockaddr_storage addr;
    uint32_t alen;
    CHECK_EQ(nvmfh_resolve(&pu, &addr, &alen, err, sizeof err), 0);
    struct nvmfh_conn c;
    CHECK_EQ(nvmfh_setup(&pu, &addr, alen, &c, err, sizeof err), 0);
    struct nvme_sqe sqe = { .opc = opc, .nsid = nsid };
    struct nvme_cqe cqe;
    nvmfh_sync_admin(&c, &sqe, payload, len, NULL, 0, &cqe, 5000, err, sizeof err);
    nvmfh_conn_close(&c);
    if (cdw0)
        *cdw0 = cqe.cdw0;
    return cqe.status;
}

/* Bad payloads straight on the wire (the child checks its own): each gets an error status, nothing runs. */
TEST(vendor_command_bad_payloads)
{
    struct nvmf_vs_snapshot p = { .nsid = 1 };
    memset(p.snap_uuid, 0x11, 16);
    uint32_t cdw0;
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_CREATE, 1, &p, 10, NULL)),
             NVME_SC_DATA_SGL_LENGTH_INVALID); /* short */
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_CREATE, 1, NULL, 0, NULL)),
             NVME_SC_DATA_SGL_LENGTH_INVALID); /* none */
    p.nsid = 2;
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_CREATE, 1, &p, sizeof p, NULL)), NVME_SC_INVALID_FIELD);
    p.nsid = 1;
    memset(p.snap_uuid, 0, 16); /* nil */
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_CREATE, 1, &p, sizeof p, NULL)), NVME_SC_INVALID_FIELD);
    memset(p.snap_uuid, 0x11, 16);
    memset(p.group_uuid, 0x22, 16); /* destroy takes no group */
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_DESTROY, 1, &p, sizeof p, NULL)), NVME_SC_INVALID_FIELD);
    /* a destroy of an unknown snapshot: the device's ENOENT in cdw0 */
    memset(p.group_uuid, 0, 16);
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, NVMF_ADM_VS_SNAPSHOT_DESTROY, 1, &p, sizeof p, &cdw0)), NVME_SC_INVALID_FIELD);
    CHECK_EQ(cdw0, ENOENT);
    /* the opcode next to ours is no command (C2h would be controller-to-host data) */
    CHECK_EQ(NVME_STATUS_SC(vs_raw(uri, 0xc2, 1, NULL, 0, NULL)), NVME_SC_INVALID_OPCODE);
    CHECK_EQ(g_fake->creates, 0);
    CHECK_EQ(g_fake->destroys, 0);
}

/* Capsule `cid` of a vendor snapshot create with its payload, as sync_exec builds it. */
static void vs_capsule(uint8_t *pdu, uint16_t cid, const struct nvmf_vs_snapshot *p)
{
    struct nvme_tcp_cmd *c = (void *)pdu;
    memset(c, 0, sizeof *c);
    c->sqe.opc = NVMF_ADM_VS_SNAPSHOT_CREATE;
    c->sqe.nsid = 1;
    c->sqe.cid = cid;
    c->sqe.flags = NVME_CMD_PSDT_SGL;
    c->sqe.sgl1 = (struct nvme_sgl_desc){ .address = 0, .length = sizeof *p, .id = NVME_TCP_SGL_INCAPSULE };
    c->ch.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
    c->ch.hlen = NVME_TCP_CMD_HLEN;
    c->ch.pdo = NVME_TCP_CMD_HLEN;
    c->ch.plen = NVME_TCP_CMD_HLEN + sizeof *p;
    memcpy(pdu + NVME_TCP_CMD_HLEN, p, sizeof *p);
}

/* The next CapsuleResp on fd (non-blocking), waiting at most 10 s (a hang fails the test). */
static struct nvme_cqe vs_response(int fd)
{
    struct nvme_tcp_rsp r;
    size_t got = 0;
    while (got < sizeof r) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&pfd, 1, 10000), 1);
        ssize_t n = read(fd, (uint8_t *)&r + got, sizeof r - got);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK_EQ(r.ch.pdu_type, NVME_TCP_PDU_CAPSULE_RESP);
    return r.cqe;
}

/* One vendor command per controller at a time: a second one while the first runs is Command Interrupted
 * (EBUSY, retryable) and runs nothing; the first completes as usual. */
TEST(one_vendor_command_per_controller)
{
    struct nvmfh_uri pu;
    char err[512];
    CHECK_EQ(nvmfh_uri_parse(uri, &pu, err, sizeof err), 0);
    struct sockaddr_storage addr;
    uint32_t alen;
    CHECK_EQ(nvmfh_resolve(&pu, &addr, &alen, err, sizeof err), 0);
    struct nvmfh_conn c;
    CHECK_EQ(nvmfh_setup(&pu, &addr, alen, &c, err, sizeof err), 0);
    struct nvmf_vs_snapshot p = { .nsid = 1 };
    CHECK_EQ(dp_uuid_parse(SNAP, p.snap_uuid), 0);
    static uint8_t pdu[2][NVME_TCP_CMD_HLEN + sizeof p];
    vs_capsule(pdu[0], 0x101, &p);
    vs_capsule(pdu[1], 0x102, &p);
    int creates = g_fake->creates;
    atomic_store(&g_fake->hold, true);
    atomic_store(&g_fake->in_create, false);
    CHECK_EQ(write(c.afd, pdu[0], sizeof pdu[0]), (ssize_t)sizeof pdu[0]);
    while (!atomic_load(&g_fake->in_create)) /* the first one runs (and waits) */
        usleep(1000);
    CHECK_EQ(write(c.afd, pdu[1], sizeof pdu[1]), (ssize_t)sizeof pdu[1]);
    struct nvme_cqe q = vs_response(c.afd);
    CHECK_EQ(q.cid, 0x102);
    CHECK_EQ(NVME_STATUS_SC(q.status), NVME_SC_COMMAND_INTERRUPTED);
    CHECK(!(q.status & NVME_STATUS_DNR));
    CHECK_EQ(q.cdw0, EBUSY);
    atomic_store(&g_fake->hold, false);
    q = vs_response(c.afd);
    CHECK_EQ(q.cid, 0x101);
    CHECK_EQ(q.status, 0);
    CHECK_EQ(g_fake->creates, creates + 1);
    nvmfh_conn_close(&c);
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), 0);
    dp_bdev_put(b);
}

TEST(device_without_snapshots)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri_plain, &b), 0);
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), -ENOTSUP);
    CHECK(strstr(dp_get_error(), NQN_PLAIN));
    dp_bdev_put(b);
}

TEST(read_only_namespace)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri_ro, &b), 0);
    CHECK(b->read_only); /* Identify Namespace NSATTR bit 0 */
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 1, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 0, 4096), -EROFS);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 0, 4096), 0);
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), -EROFS); /* Namespace is Write Protected */
    CHECK_EQ(g_ro->creates, 0);
    /* nor destroy: through a snapshot's export no host removes a snapshot of its parent chain */
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), -EROFS);
    CHECK(strstr(dp_get_error(), "refused by the target"));
    CHECK_EQ(g_ro->destroys, 0);
    dp_bdev_put(b);
    /* a device that fails a write -EROFS without saying so up front: the status maps the same */
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    g_fake->reject_writes = true;
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 0, 4096), -EROFS);
    g_fake->reject_writes = false;
    dp_buf_free(buf);
    dp_bdev_put(b);
}

/* The real thing: a pool replica shared over NVMe/TCP, snapshotted by its
 * nvmf:// child: the pool records the snapshot (its group, its source) and
 * its bytes are the replica's at that time, while the replica moves on. */
#define PR "2e6a0c3e-0000-4000-8000-0000000000a1"
#define PS "2e6a0c3e-0000-4000-8000-0000000000a2"
#define NQN_POOL "nqn.2019-05.io.openebs:" PR
TEST(pool_replica_snapshot)
{
    char disk[300], puri[300];
    snprintf(disk, sizeof disk, "%s/pool.img", test_tmpdir());
    test_make_file(disk, 64ull << 20);
    const char *disks[] = { disk };
    char puuid[40];
    CHECK_EQ(dp_pool_create("nvsp", disks, 1, 1 << 20, puuid), 0);
    CHECK_EQ(dp_replica_create("nvsp", PR, 8 << 20, 1), 0);
    CHECK_EQ(dp_nvmf_share(PR, NQN_POOL, PR, NULL), 0);
    snprintf(puri, sizeof puri, "nvmf://127.0.0.1:%d/%s", dp_nvmf_port(), NQN_POOL);
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(puri, &b), 0);
    size_t len = 2u << 20;
    uint8_t *a = dp_buf_alloc(len), *c = dp_buf_alloc(len), *r = dp_buf_alloc(len);
    for (size_t i = 0; i < len; i++) {
        a[i] = (uint8_t)(i * 131 + (i >> 12));
        c[i] = (uint8_t)(i * 7 + 99);
    }
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, a, 1u << 20, len), 0);
    CHECK_EQ(dp_bdev_snapshot_create(b, PS, GROUP), 0);
    dp_snapshot_info si;
    CHECK_EQ(dp_snapshot_stat(PS, &si), 0);
    CHECK(!strcmp(si.source, PR));
    CHECK(!strcmp(si.group, GROUP));
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, c, 1u << 20, len), 0); /* the replica moves on */
    struct dp_bdev *snap = NULL;
    CHECK_EQ(dp_bdev_open_uri("bdev:///" PS, &snap), 0);
    CHECK(snap->read_only);
    CHECK_EQ(dp_bdev_rw_sync(snap, DP_IO_READ, r, 1u << 20, len), 0);
    CHECK_EQ(fnv(r, len), fnv(a, len));
    dp_bdev_put(snap);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 1u << 20, len), 0);
    CHECK_EQ(fnv(r, len), fnv(c, len));
    /* again with the same uuid: the pool's refusal comes back through the protocol */
    CHECK(dp_bdev_snapshot_create(b, PS, GROUP) < 0);
    printf("    %s\n", dp_get_error());
    CHECK_EQ(dp_bdev_snapshot_destroy(b, PS), 0);
    CHECK_EQ(dp_snapshot_stat(PS, &si), -ENOENT);
    dp_buf_free(a);
    dp_buf_free(c);
    dp_buf_free(r);
    dp_bdev_put(b);
    CHECK_EQ(dp_nvmf_unshare(NQN_POOL), 0);
}

/* A replica that grows: the host that enabled namespace attribute notices
 * gets its AER completed, the changed namespace log lists nsid 1 once, and
 * Identify gives the new size. */
#define PG "2e6a0c3e-0000-4000-8000-0000000000a3"
TEST(size_change_event)
{
    char u[300], err[512];
    CHECK_EQ(dp_replica_create("nvsp", PG, 4 << 20, 1), 0);
    CHECK_EQ(dp_nvmf_share(PG, "nqn.2019-05.io.openebs:" PG, PG, NULL), 0);
    snprintf(u, sizeof u, "nvmf://127.0.0.1:%d/nqn.2019-05.io.openebs:%s", dp_nvmf_port(), PG);
    struct nvmfh_uri pu;
    CHECK_EQ(nvmfh_uri_parse(u, &pu, err, sizeof err), 0);
    struct sockaddr_storage addr;
    uint32_t alen;
    CHECK_EQ(nvmfh_resolve(&pu, &addr, &alen, err, sizeof err), 0);
    struct nvmfh_conn c;
    CHECK_EQ(nvmfh_setup(&pu, &addr, alen, &c, err, sizeof err), 0);
    CHECK_EQ(c.size, 4u << 20);
    struct nvme_cqe cqe;
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_ASYNC_EVENT, .cdw11 = NVME_AEN_CFG_NS_ATTR };
    CHECK_EQ(nvmfh_sync_admin(&c, &s, NULL, 0, NULL, 0, &cqe, 5000, err, sizeof err), 0);
    CHECK_EQ(dp_replica_resize(PG, 8 << 20), 0);
    s = (struct nvme_sqe){ .opc = NVME_ADM_ASYNC_EVENT_REQUEST };
    CHECK_EQ(nvmfh_sync_admin(&c, &s, NULL, 0, NULL, 0, &cqe, 5000, err, sizeof err), 0);
    CHECK_EQ(cqe.cdw0, NVME_AER_CDW0(NVME_AER_TYPE_NOTICE, NVME_AER_NOTICE_NS_CHANGED, NVME_LOG_CHANGED_NS));
    uint32_t *log = calloc(1, 4096);
    for (int i = 0; i < 2; i++) { /* listed once: reading clears it */
        s = (struct nvme_sqe){ .opc = NVME_ADM_GET_LOG_PAGE,
                               .nsid = 0xffffffffu,
                               .cdw10 = NVME_LOG_CHANGED_NS | ((4096 / 4 - 1) << 16) };
        CHECK_EQ(nvmfh_sync_admin(&c, &s, NULL, 0, log, 4096, &cqe, 5000, err, sizeof err), 0);
        CHECK_EQ(log[0], i == 0 ? 1u : 0u);
    }
    s = (struct nvme_sqe){ .opc = NVME_ADM_IDENTIFY, .nsid = 1, .cdw10 = NVME_ID_CNS_NS };
    CHECK_EQ(nvmfh_sync_admin(&c, &s, NULL, 0, log, 4096, &cqe, 5000, err, sizeof err), 0);
    CHECK_EQ(((struct nvme_id_ns *)log)->nsze, (8u << 20) / 512);
    free(log);
    nvmfh_conn_close(&c);
    CHECK_EQ(dp_nvmf_unshare("nqn.2019-05.io.openebs:" PG), 0);
}

TEST(dead_peer)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    dp_nvmf_shutdown(); /* the target goes away */
    int rc = dp_bdev_snapshot_create(b, SNAP, GROUP);
    CHECK(rc == -ENOTCONN || rc == -ETIMEDOUT);
    CHECK(strstr(dp_get_error(), NQN));
    dp_bdev_put(b);
}

extern struct dp_export_registry g_nvmf_exports; /* nvmf/target.h (its RX_ names clash with host.h's) */

/* A label of a nexus in the export's label area, written as host `nqn` would. */
static int label_as(const char *nqn, uint32_t flags)
{
    static uint8_t blk[NX_LABEL_BLOCK];
    struct nx_label l = { .seq = 2,
                          .generation = 1,
                          .data_offset = NX_HDR_SIZE,
                          .data_size = 1 << 19,
                          .flags = flags,
                          .block_size = 512,
                          .nmembers = 1 };
    l.nexus_uuid[0] = 0x42;
    l.child_id[0] = 1;
    l.members[0][0] = 1;
    nx_label_encode(&l, blk);
    struct dp_export_client cl = { .peer = "test" };
    snprintf(cl.host, sizeof cl.host, "%s", nqn);
    pthread_mutex_lock(&g_nvmf_exports.lock);
    struct dp_export *e = dp_export_named_locked(&g_nvmf_exports, NQN);
    pthread_mutex_unlock(&g_nvmf_exports.lock);
    struct iovec v = { blk, sizeof blk };
    return dp_export_writer_check(e, &cl, 0, &v, 1, sizeof blk);
}

TEST(writer_lease_of_another_host)
{
    const char *other = "nqn.2014-08.org.nvmexpress:uuid:2e6a0c3e-0000-4000-8000-0000000000ee";
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK_EQ(label_as(other, NX_LABEL_SYNCED), 0); /* the export now serves other's nexus */
    dp_writer_lease l; /* as the agent sees it before a revert: other's, with no connection (in its grace) */
    CHECK_EQ(dp_export_writer_lease("fake-snap", &l), 1);
    CHECK(!strcmp(l.host, other) && !strcmp(l.proto, "nvmf"));
    CHECK_EQ(l.connected, 0u);
    CHECK(l.grace_left_ms > 0);
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 7, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 65536, 4096), -EPERM); /* Reservation Conflict */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 65536, 4096), -EPERM);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 65536, 4096), -EPERM);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 65536, 4096), 0);
    /* snapshots change what the export serves as writes do: refused to us, nothing ran */
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), -EPERM);
    CHECK(strstr(dp_get_error(), "refused by the target"));
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), -EPERM);
    CHECK_EQ(g_fake->creates, 3);
    CHECK_EQ(g_fake->destroys, 3);
    CHECK_EQ(label_as(other, NX_LABEL_SYNCED | NX_LABEL_RELEASED), 0); /* its nexus let go */
    memset(buf, 7, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 65536, 4096), 0);
    memset(buf, 0, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 65536, 4096), 0);
    for (int i = 0; i < 4096; i++)
        CHECK_EQ(buf[i], 7);
    /* the lease is ours now: our snapshots go through (the bytes are the device's) */
    CHECK_EQ(label_as(dp_nvmf_host_nqn(), NX_LABEL_SYNCED), 0);
    CHECK_EQ(dp_bdev_snapshot_create(b, SNAP, GROUP), 0);
    CHECK_EQ(g_fake->creates, 4);
    CHECK_EQ(fnv(g_fake->snap, FAKE_SIZE), fnv(g_fake->data, FAKE_SIZE));
    CHECK_EQ(dp_bdev_snapshot_destroy(b, SNAP), 0);
    CHECK_EQ(g_fake->destroys, 4);
    CHECK_EQ(label_as(dp_nvmf_host_nqn(), NX_LABEL_SYNCED | NX_LABEL_RELEASED), 0);
    dp_buf_free(buf);
    dp_bdev_put(b);
}

int main(void)
{
    printf("test_nvmf_snapshot\n");
    setenv("MAYASTOR_NVMF_HOSTNQN", "nqn.2014-08.org.nvmexpress:uuid:2e6a0c3e-0000-4000-8000-000000000001", 1);
    CHECK_EQ(dp_init(2), 0);
    CHECK_EQ(dp_nvmf_listen("127.0.0.1", 0, NULL), 0);
    g_fake = fake_new("fake-snap", false);
    g_ro = fake_new("fake-ro", true);
    CHECK_EQ(dp_nvmf_share("fake-snap", NQN, U1, NULL), 0);
    CHECK_EQ(dp_nvmf_share("fake-ro", NQN_RO, NULL, NULL), 0);
    CHECK_EQ(dp_nvmf_share("malloc:///plain?size_mb=1", NQN_PLAIN, NULL, NULL), 0);
    int port = dp_nvmf_port();
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/%s?io_timeout_ms=3000&connect_timeout_ms=2000", port, NQN);
    snprintf(uri_ro, sizeof uri_ro, "nvmf://127.0.0.1:%d/%s", port, NQN_RO);
    snprintf(uri_plain, sizeof uri_plain, "nvmf://127.0.0.1:%d/%s", port, NQN_PLAIN);
    RUN(vendor_command_bad_payloads);
    RUN(snapshot_through_the_protocol);
    RUN(one_vendor_command_per_controller);
    RUN(device_without_snapshots);
    RUN(read_only_namespace);
    RUN(writer_lease_of_another_host);
    RUN(pool_replica_snapshot);
    RUN(size_change_event);
    RUN(dead_peer);
    dp_bdev_unregister(&g_fake->b);
    dp_bdev_unregister(&g_ro->b);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
