/*
 * test_pool.c - pools and replicas on real files: one- and two-disk pools,
 * thick and thin replicas, random pattern I/O through the bdev layer,
 * export/import, accounting, grow, unmap, destroy, and the error cases.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "pool/pool.h"
#include "pool_testlib.h"

#define CS MiB /* cluster size of most test pools */

static char disk[4][512];
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    return xorshift(&rng);
}

static void make_file(int i, uint64_t size)
{
    snprintf(disk[i], sizeof disk[i], "%s/disk%d.img", test_tmpdir(), i);
    test_make_file(disk[i], size);
}

/* Write random garbage over a whole file (old data that must never leak). */
static void fill_file(int i, uint64_t size)
{
    int fd = open(disk[i], O_RDWR);
    CHECK(fd >= 0);
    char *b = malloc(MiB);
    for (uint64_t off = 0; off < size; off += MiB) {
        for (size_t k = 0; k < MiB; k++)
            b[k] = (char)(0x80 | (k % 127));
        CHECK(pwrite(fd, b, MiB, (off_t)off) == (ssize_t)MiB);
    }
    free(b);
    close(fd);
}

/* Pool `name` on disk 0: 64 MiB of old garbage that must never leak. */
static void garbage_pool(const char *name, char uuid[37])
{
    make_file(0, 64 * MiB);
    fill_file(0, 64 * MiB);
    const char *d0[] = { disk[0] };
    CHECK_EQ(dp_pool_create(name, d0, 1, CS, uuid), 0);
}

/* ---- I/O helpers through the bdev layer -------------------------------- */

struct shadow {
    char uuid[37];
    uint64_t size;
    uint8_t *data;
};

static void shadow_init(struct shadow *s, const char *uuid, uint64_t size)
{
    snprintf(s->uuid, sizeof s->uuid, "%s", uuid);
    s->size = size;
    s->data = calloc(1, size);
}

static void pattern_writes(struct shadow *s, int n)
{
    uint8_t *buf = dp_buf_alloc(3 * CS);
    for (int i = 0; i < n; i++) {
        uint64_t len = (1 + rnd() % (3 * CS / 4096)) * 4096;
        if (len > s->size)
            len = s->size;
        uint64_t off = (rnd() % ((s->size - len) / 4096 + 1)) * 4096;
        for (uint64_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rnd();
        CHECK_EQ(rw(s->uuid, DP_IO_WRITE, buf, off, len), 0);
        memcpy(s->data + off, buf, len);
    }
    dp_buf_free(buf);
}

static void verify(struct shadow *s)
{
    uint8_t *buf = dp_buf_alloc(s->size);
    CHECK_EQ(rw(s->uuid, DP_IO_READ, buf, 0, s->size), 0);
    if (memcmp(buf, s->data, s->size)) {
        for (uint64_t k = 0; k < s->size; k++)
            if (buf[k] != s->data[k]) {
                fprintf(stderr, "replica %s differs at byte %llu\n", s->uuid, (unsigned long long)k);
                break;
            }
        exit(1);
    }
    /* And in random unaligned-to-cluster pieces. */
    for (int i = 0; i < 20; i++) {
        uint64_t len = (1 + rnd() % 64) * 4096;
        if (len > s->size)
            len = s->size;
        uint64_t off = (rnd() % ((s->size - len) / 4096 + 1)) * 4096;
        CHECK_EQ(rw(s->uuid, DP_IO_READ, buf, off, len), 0);
        CHECK(memcmp(buf, s->data + off, len) == 0);
    }
    dp_buf_free(buf);
}

static dp_pool_info pstat(const char *name)
{
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat(name, &pi), 0);
    return pi;
}

static const char *U1 = "11111111-1111-4111-8111-111111111111";
static const char *U2 = "22222222-2222-4222-8222-222222222222";
static const char *U3 = "33333333-3333-4333-8333-333333333333";
static const char *U4 = "44444444-4444-4444-8444-444444444444";

TEST(bad_input)
{
    char uuid[37];
    make_file(0, 64 * MiB);
    const char *d0[] = { disk[0] };
    expect_err(dp_pool_create("a/b", d0, 1, CS, uuid), -EINVAL, "pool name 'a/b'");
    expect_err(dp_pool_create("", d0, 1, CS, uuid), -EINVAL, "pool name");
    expect_err(dp_pool_create("..", d0, 1, CS, uuid), -EINVAL, "pool name");
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    expect_err(dp_pool_create(longname, d0, 1, CS, uuid), -EINVAL, "longer than");
    expect_err(dp_pool_create("p", d0, 1, 3 * MiB, uuid), -EINVAL, "cluster_size");
    expect_err(dp_pool_create("p", d0, 1, 32 << 10, uuid), -EINVAL, "cluster_size");
    expect_err(dp_pool_create("p", d0, 0, CS, uuid), -EINVAL, "disks");
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.img", test_tmpdir());
    const char *dm[] = { missing };
    expect_err(dp_pool_create("p", dm, 1, CS, uuid), -ENOENT, "nope.img");
    char alias[600];
    snprintf(alias, sizeof alias, "uring://%s", disk[0]);
    const char *dd[] = { disk[0], alias };
    expect_err(dp_pool_create("p", dd, 2, CS, uuid), -EINVAL, "same disk");
    make_file(3, 1 * MiB);
    const char *small[] = { disk[3] };
    expect_err(dp_pool_create("p", small, 1, CS, uuid), -EINVAL, "too small");
    /* Nothing above touched the disk. */
    dp_pool_info pi;
    CHECK_EQ(dp_disk_probe(disk[0], &pi), 0);

    CHECK_EQ(dp_pool_create("p", d0, 1, CS, uuid), 0);
    expect_err(dp_pool_create("p", d0, 1, CS, uuid), -EEXIST, "already exists");
    expect_err(dp_replica_create("nopool", U1, MiB, 0), -ENOENT, "pool 'nopool' not found");
    expect_err(dp_replica_create("p", "not-a-uuid", MiB, 0), -EINVAL, "replica uuid");
    expect_err(dp_replica_create("p", "11111111-1111-4111-8111-11111111111g", MiB, 0), -EINVAL, "uuid");
    expect_err(dp_replica_create("p", "00000000-0000-0000-0000-000000000000", MiB, 0), -EINVAL, "nil");
    expect_err(dp_replica_create("p", U1, 0, 0), -EINVAL, "size_bytes 0");
    expect_err(dp_replica_create("p", U1, 1000, 1), -EINVAL, "size_bytes 1000");
    expect_err(dp_replica_create("p", U1, 1ull << 62, 1), -EINVAL, "exceeds the maximum");
    expect_err(dp_replica_create("p", U1, 1ull << 40, 0), -ENOSPC, "pool 'p'");
    CHECK(strstr(dp_last_error(), "bytes free"));
    expect_err(dp_replica_stat(U1, &(dp_replica_info){ 0 }), -ENOENT, "not found");
    expect_err(dp_replica_destroy("zzz"), -EINVAL, "replica uuid");
    CHECK_EQ(pstat("p").used_bytes, 0);
    CHECK_EQ(pstat("p").replicas, 0);
    CHECK_EQ(dp_replica_create("p", U1, MiB, 1), 0);
    expect_err(dp_replica_create("p", U1, MiB, 1), -EEXIST, "already exists");
    expect_err(dp_replica_resize(U1, MiB / 2), -EINVAL, "smaller");
    expect_err(dp_pool_destroy("p"), -EBUSY, "still holds 1 replica");
    expect_err(dp_pool_destroy("nopool"), -ENOENT, "not found");
    CHECK_EQ(dp_replica_destroy(U1), 0);
    CHECK_EQ(dp_pool_destroy("p"), 0);
    CHECK_EQ(dp_disk_probe(disk[0], &pi), 0);
}

TEST(one_disk)
{
    char uuid[37];
    const char *d0[] = { disk[0] };
    garbage_pool("one", uuid);
    dp_pool_info pi = pstat("one");
    CHECK(!strcmp(pi.uuid, uuid));
    CHECK_EQ(pi.cluster_size, CS);
    CHECK_EQ(pi.ndisks, 1);
    CHECK(pi.capacity_bytes >= 60 * MiB && pi.capacity_bytes < 64 * MiB);
    CHECK_EQ(pi.used_bytes, 0);
    dp_pool_info probe;
    CHECK_EQ(dp_disk_probe(disk[0], &probe), 1);
    CHECK(!strcmp(probe.name, "one") && !strcmp(probe.uuid, uuid));

    /* Thick: reserved and zeroed at create although the file held garbage. */
    CHECK_EQ(dp_replica_create("one", U1, 10 * MiB + 4096, 0), 0);
    dp_replica_info ri = rstat(U1);
    CHECK_EQ(ri.size_bytes, 10 * MiB + 4096);
    CHECK_EQ(ri.allocated_bytes, 11 * MiB);
    CHECK_EQ(ri.thin, 0);
    CHECK(!strcmp(ri.pool, "one"));
    CHECK_EQ(pstat("one").used_bytes, 11 * MiB);
    struct shadow s1, s2;
    shadow_init(&s1, U1, 10 * MiB + 4096);
    verify(&s1);
    pattern_writes(&s1, 40);
    verify(&s1);

    /* Thin: nothing allocated until written; unwritten ranges read zero. */
    CHECK_EQ(dp_replica_create("one", U2, 20 * MiB, 1), 0);
    CHECK_EQ(rstat(U2).allocated_bytes, 0);
    shadow_init(&s2, U2, 20 * MiB);
    verify(&s2);
    uint8_t *buf = dp_buf_alloc(CS);
    memset(buf, 0x5a, 4096);
    CHECK_EQ(rw(U2, DP_IO_WRITE, buf, 5 * MiB + 8192, 4096), 0);
    memset(s2.data + 5 * MiB + 8192, 0x5a, 4096);
    CHECK_EQ(rstat(U2).allocated_bytes, CS);
    verify(&s2); /* the rest of the new cluster reads zero, not old garbage */
    pattern_writes(&s2, 30);
    verify(&s2);
    uint64_t alloc = rstat(U2).allocated_bytes;
    CHECK(alloc > CS && alloc <= 20 * MiB);
    CHECK_EQ(pstat("one").used_bytes, 11 * MiB + alloc);
    CHECK_EQ(pstat("one").replicas, 2);

    /* block_status: holes where nothing is allocated. */
    struct dp_bdev *b = dp_bdev_get(U2);
    CHECK(b && b->ops->block_status);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 0, 20 * MiB), 0);
    memset(s2.data, 0, 20 * MiB);
    CHECK_EQ(rstat(U2).allocated_bytes, 0);
    CHECK_EQ(pstat("one").used_bytes, 11 * MiB);
    verify(&s2);
    memset(buf, 0x77, CS);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 3 * MiB, CS), 0);
    memset(s2.data + 3 * MiB, 0x77, CS);
    uint64_t l;
    uint32_t st;
    CHECK_EQ(b->ops->block_status(b, 0, 20 * MiB, &l, &st), 0);
    CHECK_EQ(st, DP_BS_HOLE);
    CHECK_EQ(l, 3 * MiB);
    CHECK_EQ(b->ops->block_status(b, 3 * MiB, 17 * MiB, &l, &st), 0);
    CHECK_EQ(st, DP_BS_ALLOCATED);
    CHECK_EQ(l, CS);
    /* Partial-cluster unmap zeroes; the cluster stays. */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 3 * MiB + 4096, 8192), 0);
    memset(s2.data + 3 * MiB + 4096, 0, 8192);
    CHECK_EQ(rstat(U2).allocated_bytes, CS);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 3 * MiB + 65536, 4096), 0);
    memset(s2.data + 3 * MiB + 65536, 0, 4096);
    verify(&s2);
    /* Thick unmap: reads zero, stays allocated. */
    struct dp_bdev *b1 = dp_bdev_get(U1);
    CHECK_EQ(dp_bdev_rw_sync(b1, DP_IO_UNMAP, NULL, 2 * MiB, 3 * MiB), 0);
    memset(s1.data + 2 * MiB, 0, 3 * MiB);
    CHECK_EQ(rstat(U1).allocated_bytes, 11 * MiB);
    CHECK_EQ(dp_bdev_rw_sync(b1, DP_IO_FLUSH, NULL, 0, 0), 0);
    verify(&s1);

    /* Open replicas cannot be destroyed, nor the pool exported. */
    CHECK_EQ(rstat(U1).open_count, 1);
    expect_err(dp_replica_destroy(U1), -EBUSY, "open");
    expect_err(dp_pool_export("one"), -EBUSY, "open");
    dp_bdev_put(b1);
    dp_bdev_put(b);
    CHECK_EQ(rstat(U1).open_count, 0);

    /* Grow online: thick reserves, thin does not; shrink refused. */
    uint64_t used = pstat("one").used_bytes;
    CHECK_EQ(dp_replica_resize(U1, 13 * MiB), 0);
    CHECK_EQ(rstat(U1).size_bytes, 13 * MiB);
    CHECK_EQ(rstat(U1).allocated_bytes, 13 * MiB);
    CHECK_EQ(pstat("one").used_bytes, used + 2 * MiB);
    s1.data = realloc(s1.data, 13 * MiB);
    memset(s1.data + s1.size, 0, 13 * MiB - s1.size);
    s1.size = 13 * MiB;
    verify(&s1);
    pattern_writes(&s1, 10);
    CHECK_EQ(dp_replica_resize(U2, 1000 * MiB), 0);
    CHECK_EQ(rstat(U2).allocated_bytes, CS);
    expect_err(dp_replica_resize(U2, 999 * MiB), -EINVAL, "smaller");
    expect_err(dp_replica_create("one", U3, 1000 * MiB, 0), -ENOSPC, "pool 'one'");
    CHECK_EQ(dp_replica_create("one", U3, 1000 * MiB, 1), 0); /* thin overcommits */

    /* Export and import: data and accounting survive. */
    dp_pool_info before = pstat("one");
    dp_replica_info r1 = rstat(U1), r2 = rstat(U2);
    CHECK_EQ(dp_pool_export("one"), 0);
    expect_err(dp_pool_stat("one", &pi), -ENOENT, "not found");
    CHECK(dp_bdev_get(U1) == NULL);
    expect_err(dp_pool_import("other", d0, 1, uuid), -EINVAL, "belongs to pool 'one'");
    CHECK_EQ(dp_pool_import("one", d0, 1, uuid), 0);
    dp_pool_info after = pstat("one");
    CHECK(!memcmp(&before, &after, sizeof before));
    dp_replica_info q1 = rstat(U1), q2 = rstat(U2);
    CHECK(!memcmp(&r1, &q1, sizeof r1));
    CHECK(!memcmp(&r2, &q2, sizeof r2));
    CHECK_EQ(rstat(U3).size_bytes, 1000 * MiB);
    s2.size = 20 * MiB; /* verify the part we track */
    verify(&s1);
    verify(&s2);
    dp_replica_info at;
    CHECK_EQ(dp_pool_replica_at("one", 0, &at), 0);
    CHECK_EQ(dp_pool_replica_at("one", 2, &at), 0);
    CHECK_EQ(dp_pool_replica_at("one", 3, &at), -ENOENT);

    /* Destroy returns the clusters; old data never shows through. */
    CHECK_EQ(dp_replica_destroy(U1), 0);
    CHECK_EQ(pstat("one").used_bytes, after.used_bytes - 13 * MiB);
    CHECK_EQ(dp_replica_create("one", U4, 13 * MiB, 1), 0);
    struct shadow s4;
    shadow_init(&s4, U4, 13 * MiB);
    memset(buf, 0x33, 4096);
    for (uint64_t c = 0; c < 13; c++) {
        CHECK_EQ(rw(U4, DP_IO_WRITE, buf, c * MiB + 12288, 4096), 0);
        memset(s4.data + c * MiB + 12288, 0x33, 4096);
    }
    verify(&s4);
    CHECK_EQ(dp_replica_destroy(U4), 0);
    CHECK_EQ(dp_replica_destroy(U2), 0);
    CHECK_EQ(dp_replica_destroy(U3), 0);
    CHECK_EQ(pstat("one").used_bytes, 0);
    CHECK_EQ(dp_pool_destroy("one"), 0);
    CHECK_EQ(dp_disk_probe(disk[0], &probe), 0);
    expect_err(dp_pool_import("one", d0, 1, uuid), -EINVAL, "no pool label");
    dp_buf_free(buf);
    free(s1.data);
    free(s2.data);
    free(s4.data);
}

TEST(two_disks)
{
    char uuid[37], u2[37];
    make_file(0, 40 * MiB);
    make_file(1, 24 * MiB);
    make_file(2, 32 * MiB);
    const char *dd[] = { disk[0], disk[1] };
    CHECK_EQ(dp_pool_create("two", dd, 2, CS, uuid), 0);
    dp_pool_info pi = pstat("two");
    CHECK_EQ(pi.ndisks, 2);
    CHECK(pi.capacity_bytes > 40 * MiB); /* more than either disk */
    /* A disk of a live pool cannot join another. */
    const char *d1[] = { disk[1] };
    expect_err(dp_pool_create("three", d1, 1, CS, u2), -EBUSY, "in use by pool 'two'");
    const char *d2[] = { disk[2] };
    CHECK_EQ(dp_pool_create("solo", d2, 1, CS, u2), 0);

    /* A thick replica bigger than either disk spans both. */
    uint64_t sz = pi.capacity_bytes - 10 * MiB;
    CHECK_EQ(dp_replica_create("two", U1, sz, 0), 0);
    CHECK_EQ(dp_replica_create("two", U2, 8 * MiB, 1), 0);
    expect_err(dp_replica_create("two", U3, 12 * MiB, 0), -ENOSPC, "pool 'two'");
    struct shadow s1, s2;
    shadow_init(&s1, U1, sz);
    shadow_init(&s2, U2, 8 * MiB);
    pattern_writes(&s1, 60);
    pattern_writes(&s2, 20);
    verify(&s1);
    verify(&s2);
    dp_pool_info before = pstat("two");

    CHECK_EQ(dp_pool_export("two"), 0);
    /* Missing member, foreign member, wrong name. */
    const char *only0[] = { disk[0] };
    expect_err(dp_pool_import("two", only0, 1, uuid), -ENODEV, "member disk 1 of 2");
    CHECK(strstr(dp_last_error(), "missing"));
    const char *foreign[] = { disk[0], disk[2] };
    /* a disk of a live pool is claimed; once that pool is exported, its label still says whose it is */
    expect_err(dp_pool_import("two", foreign, 2, uuid), -EBUSY, "in use by pool 'solo'");
    CHECK_EQ(dp_pool_export("solo"), 0);
    expect_err(dp_pool_import("two", foreign, 2, uuid), -EINVAL, "belongs to another pool 'solo'");
    CHECK_EQ(dp_pool_import("solo", d2, 1, u2), 0);
    const char *dup[] = { disk[0], disk[0] };
    expect_err(dp_pool_import("two", dup, 2, uuid), -EINVAL, "same disk");
    /* Any order of the disks imports. */
    const char *rev[] = { disk[1], disk[0] };
    CHECK_EQ(dp_pool_import("two", rev, 2, uuid), 0);
    dp_pool_info after = pstat("two");
    CHECK(!memcmp(&before, &after, sizeof before));
    verify(&s1);
    verify(&s2);

    /* Thin overcommit runs out: the write fails with ENOSPC. */
    CHECK_EQ(dp_replica_resize(U2, 64 * MiB), 0);
    uint8_t *buf = dp_buf_alloc(4096);
    int ret = 0;
    uint64_t c;
    for (c = 0; c < 64 && ret == 0; c++)
        ret = rw(U2, DP_IO_WRITE, buf, c * MiB, 4096);
    CHECK_EQ(ret, -ENOSPC);
    CHECK_EQ(pstat("two").used_bytes, pstat("two").capacity_bytes);
    dp_buf_free(buf);

    CHECK_EQ(dp_replica_destroy(U1), 0);
    CHECK_EQ(dp_replica_destroy(U2), 0);
    CHECK_EQ(dp_pool_destroy("two"), 0);
    CHECK_EQ(dp_pool_destroy("solo"), 0);
    free(s1.data);
    free(s2.data);
}

/* ---- concurrent first writes to one thin cluster ------------------------ */

struct aio_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, errors;
};

struct aio {
    struct dp_bdev_io io;
    struct iovec iov;
    struct aio_ctx *ctx;
};

static void aio_done(struct dp_bdev_io *io, int status)
{
    struct aio *a = (struct aio *)io;
    pthread_mutex_lock(&a->ctx->mu);
    if (status)
        a->ctx->errors++;
    if (--a->ctx->pending == 0)
        pthread_cond_signal(&a->ctx->cv);
    pthread_mutex_unlock(&a->ctx->mu);
}

TEST(concurrent_allocation)
{
    char uuid[37];
    const char *d0[] = { disk[0] };
    garbage_pool("cc", uuid);
    CHECK_EQ(dp_replica_create("cc", U1, 16 * MiB, 1), 0);
    struct dp_bdev *b = dp_bdev_get(U1);
    enum { N = 200 }; /* more than the pool's request slots */
    struct aio *a = calloc(N, sizeof *a);
    uint8_t *buf = dp_buf_alloc(N * 4096);
    struct aio_ctx ctx = { .pending = N };
    pthread_mutex_init(&ctx.mu, NULL);
    pthread_cond_init(&ctx.cv, NULL);
    struct shadow s;
    shadow_init(&s, U1, 16 * MiB);
    for (int i = 0; i < N; i++) {
        /* Half hit cluster 2 (all racing to allocate it), the rest spread. */
        uint64_t off = i % 2 ? 2 * MiB + (uint64_t)(i / 2) * 4096
                             : (uint64_t)(i / 2 % 16) * MiB + 512 * 1024 + (uint64_t)(i / 2) * 4096;
        memset(buf + i * 4096, i + 1, 4096);
        memcpy(s.data + off, buf + i * 4096, 4096);
        a[i].ctx = &ctx;
        a[i].iov.iov_base = buf + i * 4096;
        a[i].iov.iov_len = 4096;
        a[i].io.type = DP_IO_WRITE;
        a[i].io.offset = off;
        a[i].io.length = 4096;
        a[i].io.iov = &a[i].iov;
        a[i].io.iovcnt = 1;
        a[i].io.cb = aio_done;
    }
    for (int i = 0; i < N; i++)
        dp_bdev_submit(b, &a[i].io);
    pthread_mutex_lock(&ctx.mu);
    while (ctx.pending)
        pthread_cond_wait(&ctx.cv, &ctx.mu);
    pthread_mutex_unlock(&ctx.mu);
    CHECK_EQ(ctx.errors, 0);
    CHECK_EQ(rstat(U1).allocated_bytes, 16 * MiB);
    CHECK_EQ(pstat("cc").used_bytes, 16 * MiB);
    verify(&s);
    /* Across an export/import too (every allocation was committed). */
    dp_bdev_put(b);
    CHECK_EQ(dp_pool_export("cc"), 0);
    CHECK_EQ(dp_pool_import("cc", d0, 1, uuid), 0);
    verify(&s);
    CHECK_EQ(dp_replica_destroy(U1), 0);
    CHECK_EQ(dp_pool_destroy("cc"), 0);
    pthread_cond_destroy(&ctx.cv);
    pthread_mutex_destroy(&ctx.mu);
    free(a);
    free(s.data);
    dp_buf_free(buf);
}

TEST(fini_closes_pools)
{
    char uuid[37];
    make_file(3, 16 * MiB);
    const char *d0[] = { disk[3] };
    CHECK_EQ(dp_pool_create("fin", d0, 1, CS, uuid), 0);
    CHECK_EQ(dp_replica_create("fin", U1, 2 * MiB, 1), 0);
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 9, 4096);
    CHECK_EQ(rw(U1, DP_IO_WRITE, buf, MiB, 4096), 0);
    dp_fini();
    CHECK_EQ(dp_init(2), 0);
    CHECK_EQ(dp_pool_import("fin", d0, 1, uuid), 0);
    memset(buf, 0, 4096);
    CHECK_EQ(rw(U1, DP_IO_READ, buf, MiB, 4096), 0);
    CHECK_EQ(buf[0], 9);
    CHECK_EQ(buf[4095], 9);
    dp_buf_free(buf);
    CHECK_EQ(dp_replica_destroy(U1), 0);
    CHECK_EQ(dp_pool_destroy("fin"), 0);
}

int main(void)
{
    printf("test_pool\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(bad_input);
    RUN(one_disk);
    RUN(two_disks);
    RUN(concurrent_allocation);
    RUN(fini_closes_pools);
    RUN(two_disks); /* again, now with two reactors */
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
