/*
 * test_nvmf_host_target: our initiator (the nvmf:// child) against our own
 * NVMe/TCP target (dp_nvmf_listen/share) in one process over 127.0.0.1:
 * checksummed data in every transfer size (in-capsule, R2T, MDTS splits),
 * reconnect after the target's unshare and re-share of the same device, a
 * device shared again under the same NQN with another namespace uuid is
 * "replaced" (ENODEV), so is the same uuid on a fresh device (the label
 * bytes we wrote are gone), and a host NQN outside the allowlist is refused at
 * Connect with an error naming the peer, the subsystem and our host NQN;
 * ?queues=4 opens four I/O queues that threads write through at once.
 * (The interop proof against Linux nvmet is dp-nvmf-check in the guest test.)
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "datapath.h"
#include "nvmf/host.h"
#include "target/limits.h"
#include "testlib.h"

#define U1 "1d6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a11"
#define U2 "1d6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a22"
#define NQN "nqn.2019-05.io.openebs:" U1
#define DEV "malloc:///tgt0?size_mb=16"

static char uri[256];
static struct dp_bdev *local; /* the device the target serves, opened here too */

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until a read gives `want`, accepting only transient errors on the way. */
static int read_until(struct dp_bdev *b, uint8_t *r, int want)
{
    int rc = -1;
    for (int tries = 0; tries < 300; tries++) {
        rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096);
        if (rc == want)
            return rc;
        CHECK(rc == 0 || rc == -EIO || rc == -ENOTCONN || rc == -ETIMEDOUT);
        sleep_ms(50);
    }
    return rc;
}

TEST(data_all_sizes)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK(!strcmp(dp_bdev_ident(b), U1));
    CHECK_EQ(b->size, 16u << 20);
    size_t len = 4u << 20;
    uint8_t *w = dp_buf_alloc(len), *r = dp_buf_alloc(len);
    static const uint32_t sizes[] = { 512, 4096, 65536, 131072, 1 << 20 };
    for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (size_t i = 0; i < len; i++)
            w[i] = (uint8_t)(i * 97 + k * 31 + (i >> 12));
        for (size_t o = 0; o < len; o += sizes[k])
            CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w + o, 4u << 20 | o, sizes[k]), 0);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
        memset(r, 0, len);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 4u << 20, len), 0);
        CHECK_EQ(fnv(r, len), fnv(w, len));
        printf("    %7u-byte writes: checksum %016llx\n", sizes[k], (unsigned long long)fnv(r, len));
    }
    /* the target's own view of the same bytes (through another path) */
    memset(r, 0, len);
    CHECK_EQ(dp_bdev_rw_sync(local, DP_IO_READ, r, 4u << 20, len), 0);
    CHECK_EQ(fnv(r, len), fnv(w, len));
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 4u << 20, 65536), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, (4u << 20) + 65536, 65536), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 4u << 20, 131072), 0);
    memset(w, 0, 131072);
    CHECK_EQ(fnv(r, 131072), fnv(w, 131072));
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(reshare_reconnects)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *w = dp_buf_alloc(4096), *r = dp_buf_alloc(4096);
    memset(w, 0x3c, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w, 0, 4096), 0);
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    int rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096);
    CHECK(rc == -EIO || rc == -ENOTCONN);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, NULL), 0);
    CHECK_EQ(read_until(b, r, 0), 0);
    CHECK_EQ(fnv(r, 4096), fnv(w, 4096));
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(other_namespace_is_replaced)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *r = dp_buf_alloc(4096);
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share("malloc:///tgt1?size_mb=16", NQN, U2, NULL), 0);
    CHECK_EQ(read_until(b, r, -ENODEV), -ENODEV);
    dp_bdev_put(b);
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, NULL), 0);
    dp_buf_free(r);
}

/* The same uuid on a fresh device (a replica deleted and created again while we were
 * away): same NGUID, but the label bytes we wrote are gone: replaced. */
TEST(recreated_device_is_replaced)
{
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *w = dp_buf_alloc(4096), *r = dp_buf_alloc(4096);
    memset(w, 0x7e, 4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w, 4096, 4096), 0); /* inside the label bytes */
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share("malloc:///tgt2?size_mb=16", NQN, U1, NULL), 0);
    CHECK_EQ(read_until(b, r, -ENODEV), -ENODEV);
    dp_bdev_put(b);
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, NULL), 0);
    dp_buf_free(w);
    dp_buf_free(r);
}

static int desc_rw(const char *target, uint32_t op, void *buf, uint64_t off, uint64_t len)
{
    dp_desc *d;
    CHECK_EQ(dp_desc_open(target, &d), 0);
    dp_cq *cq = dp_cq_create();
    int rc = dp_io_submit(d, cq, op, buf, off, len, 1);
    uint64_t tag;
    int32_t res = rc;
    if (rc == 0)
        CHECK_EQ(dp_cq_wait(cq, &tag, &res, 1, 30000), 1);
    dp_cq_destroy(cq);
    dp_desc_close(d);
    return res;
}

/* A nexus child, as nbd:// is: data through the nexus lands on the remote device;
 * when the remote side goes the child faults and the nexus keeps serving. */
TEST(nexus_child)
{
    const char *nx = "1d6a0c3e-5b7f-4e21-9a3d-2c4b6e8f0a33";
    const char *ch[2] = { "malloc:///nxlocal?size_mb=16", uri };
    CHECK_EQ(dp_nexus_create(nx, 8u << 20, ch, 2, DP_NEXUS_FORCE), 0);
    size_t len = 1u << 20;
    uint8_t *w = dp_buf_alloc(len), *r = dp_buf_alloc(len);
    for (size_t i = 0; i < len; i++)
        w[i] = (uint8_t)(i * 7 + 5);
    CHECK_EQ(desc_rw(nx, DP_OP_WRITE, w, 2u << 20, len), 0);
    CHECK_EQ(desc_rw(nx, DP_OP_READ, r, 2u << 20, len), 0);
    CHECK_EQ(fnv(r, len), fnv(w, len));
    dp_nexus_child_info ci;
    CHECK_EQ(dp_nexus_child_at(nx, 1, &ci), 0);
    CHECK_EQ(ci.state, DP_CHILD_ONLINE);
    CHECK(ci.writes > 0);
    /* the remote device holds the bytes too, behind the nexus's 1 MiB header */
    memset(r, 0, len);
    CHECK_EQ(dp_bdev_rw_sync(local, DP_IO_READ, r, 3u << 20, len), 0);
    CHECK_EQ(fnv(r, len), fnv(w, len));
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(desc_rw(nx, DP_OP_WRITE, w, 0, 65536), 0);
    CHECK_EQ(dp_nexus_child_at(nx, 1, &ci), 0);
    printf("    remote child after unshare: state %u (%s)\n", ci.state, ci.reason);
    CHECK_EQ(ci.state, DP_CHILD_FAULTED);
    CHECK_EQ(dp_nexus_destroy(nx, DP_NEXUS_RELEASE), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, NULL), 0);
    dp_buf_free(w);
    dp_buf_free(r);
}

struct writer {
    struct dp_bdev *b;
    int id, rc;
    uint8_t *w;
};

/* A submitting thread: 1 MiB of its own pattern in 64 KiB writes, then read back. */
static void *writer_main(void *arg)
{
    struct writer *t = arg;
    uint64_t base = (8u << 20) + ((uint64_t)t->id << 20);
    for (uint32_t o = 0; o < (1u << 20) && !t->rc; o += 65536)
        t->rc = dp_bdev_rw_sync(t->b, DP_IO_WRITE, t->w + o, base + o, 65536);
    return NULL;
}

/* ?queues=4: four I/O queues (the target puts each on another reactor); four
 * threads write at once, the bytes read back by checksum through the child
 * and through the device itself. */
TEST(several_io_queues)
{
    char u4[300];
    snprintf(u4, sizeof u4, "%s&queues=4", uri);
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(u4, &b), 0);
    CHECK(dp_nvmf_export_connections(NQN) >= 5); /* admin + 4 I/O queues (an earlier child may still be closing) */
    struct writer t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct writer){ .b = b, .id = i, .w = dp_buf_alloc(1u << 20) };
        for (uint32_t k = 0; k < (1u << 20); k++)
            t[i].w[k] = (uint8_t)(k * 7 + i * 13 + (k >> 11));
        CHECK_EQ(pthread_create(&th[i], NULL, writer_main, &t[i]), 0);
    }
    uint8_t *r = dp_buf_alloc(1u << 20);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(t[i].rc, 0);
    }
    for (int i = 0; i < 4; i++) {
        uint64_t base = (8u << 20) + ((uint64_t)i << 20);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, base, 1u << 20), 0);
        CHECK_EQ(fnv(r, 1u << 20), fnv(t[i].w, 1u << 20));
        CHECK_EQ(dp_bdev_rw_sync(local, DP_IO_READ, r, base, 1u << 20), 0);
        CHECK_EQ(fnv(r, 1u << 20), fnv(t[i].w, 1u << 20));
        dp_buf_free(t[i].w);
    }
    dp_buf_free(r);
    dp_bdev_put(b);
}

struct burst {
    pthread_mutex_t m;
    pthread_cond_t c;
    int left, failed;
};

static void burst_done(struct dp_bdev_io *io, int status)
{
    struct burst *b = io->cb_arg;
    pthread_mutex_lock(&b->m);
    b->failed += status != 0;
    if (--b->left == 0)
        pthread_cond_signal(&b->c);
    pthread_mutex_unlock(&b->m);
}

/* 112 in-capsule 128 KiB writes at once while the target may hold only 1 MiB
 * per connection: its sockets back up, so our sends go out in part and the
 * rest is queued (send_direct's fallback; here a few sends go out in part
 * and dozens queue behind them), and the target resumes a capsule that
 * waited for memory where it stopped; every byte reads back. */
TEST(writes_against_back_pressure)
{
    dp_target_limits saved, l;
    dp_target_limits_now(&saved);
    l = saved;
    l.conn_memory_budget = 1u << 20;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    enum { N = 112, SZ = 131072 };
    uint8_t *w = dp_buf_alloc((size_t)N * SZ), *r = dp_buf_alloc((size_t)N * SZ);
    for (size_t k = 0; k < (size_t)N * SZ; k++)
        w[k] = (uint8_t)(k * 31 + (k >> 13));
    struct burst bu = { .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER, .left = N };
    static struct dp_bdev_io io[N];
    static struct iovec v[N];
    for (int i = 0; i < N; i++) {
        v[i] = (struct iovec){ w + (size_t)i * SZ, SZ };
        io[i] = (struct dp_bdev_io){ .type = DP_IO_WRITE,
                                     .offset = (size_t)i * SZ,
                                     .length = SZ,
                                     .iov = &v[i],
                                     .iovcnt = 1,
                                     .cb = burst_done,
                                     .cb_arg = &bu };
        dp_bdev_submit(b, &io[i]); /* from this thread: hops to the child's reactor */
    }
    pthread_mutex_lock(&bu.m);
    while (bu.left)
        pthread_cond_wait(&bu.c, &bu.m);
    pthread_mutex_unlock(&bu.m);
    CHECK_EQ(bu.failed, 0);
    CHECK_EQ(dp_target_set_limits(&saved), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 0, (size_t)N * SZ), 0);
    CHECK_EQ(fnv(r, (size_t)N * SZ), fnv(w, (size_t)N * SZ));
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(host_not_allowed)
{
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000000"), 0);
    struct dp_bdev *b = NULL;
    CHECK(dp_bdev_open_uri(uri, &b) < 0);
    const char *e = dp_last_error();
    printf("    %s\n", e);
    CHECK(strstr(e, NQN) && strstr(e, "Connect") && strstr(e, nvmfh_host_nqn(NULL)) && strstr(e, "not allowed"));
    char csv[300];
    snprintf(csv, sizeof csv, "%s", nvmfh_host_nqn(NULL));
    CHECK_EQ(dp_nvmf_unshare(NQN), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, csv), 0);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    dp_bdev_put(b);
}

int main(void)
{
    printf("test_nvmf_host_target\n");
    CHECK_EQ(dp_init(2), 0);
    CHECK_EQ(dp_bdev_open_uri(DEV, &local), 0);
    CHECK_EQ(dp_nvmf_listen("127.0.0.1", 0, NULL), 0);
    CHECK_EQ(dp_nvmf_share(DEV, NQN, U1, NULL), 0);
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/" NQN "?io_timeout_ms=3000&connect_timeout_ms=2000", dp_nvmf_port());
    RUN(data_all_sizes);
    RUN(several_io_queues);
    RUN(writes_against_back_pressure);
    RUN(reshare_reconnects);
    RUN(other_namespace_is_replaced);
    RUN(nexus_child);
    RUN(recreated_device_is_replaced);
    RUN(host_not_allowed);
    dp_nvmf_shutdown();
    dp_bdev_put(local);
    dp_fini();
    printf("ok\n");
    return 0;
}
