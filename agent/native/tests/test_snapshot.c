/*
 * test_snapshot.c - pool format v2: snapshots, clones, revert, merge on
 * delete, accounting and the v1 upgrade, on real files through the bdev
 * layer. Every data check compares every byte with a shadow copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "pool/format.h"
#include "pool/pool.h"
#include "pool_testlib.h"

#define CS MiB
#define RSIZE (8 * MiB)

static char disk[512];
static const char *disks[1] = { disk };
static char puuid[37];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static const char *R = "11111111-1111-4111-8111-111111111111";
static const char *S1 = "51515151-0000-4000-8000-000000000001";
static const char *S2 = "51515151-0000-4000-8000-000000000002";
static const char *S3 = "51515151-0000-4000-8000-000000000003";
static const char *C1 = "c1c1c1c1-0000-4000-8000-000000000001";
static const char *C2 = "c1c1c1c1-0000-4000-8000-000000000002";
static const char *G = "99999999-0000-4000-8000-000000000009";
static const char *MISSING = "deadbeef-0000-4000-8000-000000000000";

static uint64_t rnd(void)
{
    return xorshift(&rng);
}

static void fresh_pool_cs(uint64_t size, uint64_t cs);

/* A fresh pool "sp" on a 64 MiB file full of garbage that must never leak. */
static void fresh_pool(uint64_t size)
{
    fresh_pool_cs(size, CS);
}

static void fresh_pool_cs(uint64_t size, uint64_t cs)
{
    pool_disk(disk, sizeof disk, "snap.img", size);
    int fd = open(disk, O_RDWR);
    CHECK(fd >= 0);
    char *b = malloc(MiB);
    memset(b, 0xa7, MiB);
    for (uint64_t off = 0; off < size; off += MiB)
        CHECK(pwrite(fd, b, MiB, (off_t)off) == (ssize_t)MiB);
    free(b);
    close(fd);
    CHECK_EQ(dp_pool_create("sp", disks, 1, cs, puuid), 0);
}

/* Write random bytes at [off, off+len) of uuid and of its shadow. */
static void put(const char *uuid, uint8_t *shadow, uint64_t off, uint64_t len)
{
    uint8_t *buf = dp_buf_alloc(len);
    for (uint64_t k = 0; k < len; k++)
        buf[k] = (uint8_t)rnd();
    CHECK_EQ(rw(uuid, DP_IO_WRITE, buf, off, len), 0);
    memcpy(shadow + off, buf, len);
    dp_buf_free(buf);
}

/* The whole device equals its shadow, read at once and in odd pieces. */
static void same(const char *uuid, const uint8_t *shadow, uint64_t size)
{
    uint8_t *buf = dp_buf_alloc(size);
    CHECK_EQ(rw(uuid, DP_IO_READ, buf, 0, size), 0);
    for (uint64_t k = 0; k < size; k++)
        if (buf[k] != shadow[k]) {
            fprintf(stderr, "%s differs at byte %llu: %02x, want %02x\n", uuid, (unsigned long long)k, buf[k],
                    shadow[k]);
            exit(1);
        }
    for (int i = 0; i < 16; i++) {
        uint64_t len = (1 + rnd() % 600) * 512, off = (rnd() % ((size - len) / 512 + 1)) * 512;
        CHECK_EQ(rw(uuid, DP_IO_READ, buf, off, len), 0);
        CHECK(memcmp(buf, shadow + off, len) == 0);
    }
    dp_buf_free(buf);
}

static dp_snapshot_info sstat(const char *uuid)
{
    dp_snapshot_info si;
    CHECK_EQ(dp_snapshot_stat(uuid, &si), 0);
    return si;
}

static uint64_t used(void)
{
    return pool_used("sp");
}

/* Hole map of a device, one char per cluster ('.' hole, 'D' data). */
static void holes(const char *uuid, char *out, uint64_t size)
{
    struct dp_bdev *b = dp_bdev_get(uuid);
    CHECK(b);
    uint64_t off = 0;
    while (off < size) {
        uint64_t len;
        uint32_t st;
        CHECK_EQ(b->ops->block_status(b, off, size - off, &len, &st), 0);
        for (uint64_t k = off / CS; k < (off + len) / CS; k++)
            out[k] = st == DP_BS_HOLE ? '.' : 'D';
        off += len;
    }
    out[size / CS] = 0;
    dp_bdev_put(b);
}

static void reimport(void)
{
    pool_reimport("sp", disks, puuid);
}

/* Write A, snapshot, write B: the snapshot reads A, the replica B; a clone
 * reads A and takes writes without touching either; holes survive. */
TEST(snapshot_and_clone)
{
    fresh_pool(64 * MiB);
    uint8_t *a = calloc(1, RSIZE), *r = calloc(1, RSIZE), *c = calloc(1, RSIZE);
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    dp_replica_info ri = rstat(R);
    CHECK(strlen(ri.incarnation) == 36);
    CHECK_EQ(ri.parent[0], 0);
    char inc[37];
    memcpy(inc, ri.incarnation, 37);
    put(R, a, 0, 3 * MiB + 4096); /* clusters 0..3; 4.. stay holes */
    put(R, a, 6 * MiB + 512, 1024);
    memcpy(r, a, RSIZE);
    uint64_t base = used();
    CHECK_EQ(base, 5 * MiB);

    CHECK_EQ(dp_snapshot_create(R, S1, G), 0);
    dp_snapshot_info si = sstat(S1);
    CHECK(!strcmp(si.source, R) && !strcmp(si.group, G) && !strcmp(si.pool, "sp") && si.parent[0] == 0);
    CHECK_EQ(si.referenced_bytes, 5 * MiB);
    CHECK_EQ(si.size_bytes, RSIZE);
    CHECK_EQ(si.nchildren, 1);
    CHECK(!strcmp(si.children, R));
    CHECK(si.create_time > 1600000000);
    ri = rstat(R);
    CHECK(!strcmp(ri.parent, S1) && !strcmp(ri.incarnation, inc));
    CHECK_EQ(ri.allocated_bytes, 0);
    CHECK_EQ(ri.snapshot_bytes, 5 * MiB);
    CHECK_EQ(used(), base); /* metadata only */
    same(R, a, RSIZE);
    same(S1, a, RSIZE);

    /* B: partial writes (copy-on-first-write), a whole cluster, a hole. */
    put(R, r, MiB + 4096, 8192);
    put(R, r, 2 * MiB, MiB);
    put(R, r, 5 * MiB + 100 * 512, 512);
    CHECK_EQ(rstat(R).allocated_bytes, 3 * MiB);
    CHECK_EQ(used(), base + 3 * MiB);
    same(R, r, RSIZE);
    same(S1, a, RSIZE);

    CHECK_EQ(dp_replica_clone(C1, S1), 0);
    ri = rstat(C1);
    CHECK(!strcmp(ri.parent, S1) && ri.thin && ri.size_bytes == RSIZE && strcmp(ri.incarnation, inc));
    memcpy(c, a, RSIZE);
    same(C1, c, RSIZE);
    put(C1, c, 4096, 4096);
    put(C1, c, 7 * MiB, 4096);
    same(C1, c, RSIZE);
    same(R, r, RSIZE);
    same(S1, a, RSIZE);
    char map[16];
    holes(C1, map, RSIZE);
    CHECK(!strcmp(map, "DDDD..DD"));
    holes(S1, map, RSIZE);
    CHECK(!strcmp(map, "DDDD..D."));
    CHECK_EQ(sstat(S1).nchildren, 2);

    /* The same after export/import, and the incarnation stays. */
    reimport();
    same(R, r, RSIZE);
    same(S1, a, RSIZE);
    same(C1, c, RSIZE);
    CHECK(!strcmp(rstat(R).incarnation, inc));
    CHECK(!strcmp(rstat(R).parent, S1));

    /* Lists: replicas and snapshots apart. */
    dp_replica_info li;
    dp_snapshot_info ls;
    CHECK_EQ(dp_pool_replica_at("sp", 0, &li), 0);
    CHECK_EQ(dp_pool_replica_at("sp", 1, &li), 0);
    CHECK_EQ(dp_pool_replica_at("sp", 2, &li), -ENOENT);
    CHECK_EQ(dp_pool_snapshot_at("sp", 0, &ls), 0);
    CHECK(!strcmp(ls.uuid, S1));
    CHECK_EQ(dp_pool_snapshot_at("sp", 1, &ls), -ENOENT);
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("sp", &pi), 0);
    CHECK_EQ(pi.replicas, 2);

    /* Revert R to S1: it reads A again, keeps its uuid and incarnation. */
    CHECK_EQ(dp_replica_revert(R, S1), 0);
    same(R, a, RSIZE);
    CHECK(!strcmp(rstat(R).incarnation, inc));
    CHECK_EQ(rstat(R).allocated_bytes, 0);

    CHECK_EQ(dp_replica_destroy(C1), 0);
    expect_err(dp_pool_destroy("sp"), -EBUSY, "1 replica and 1 snapshot");
    CHECK_EQ(dp_replica_destroy(R), 0);
    /* Re-created under the same uuid: another incarnation (issue 15). */
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    CHECK(strlen(rstat(R).incarnation) == 36 && strcmp(rstat(R).incarnation, inc));
    CHECK_EQ(dp_replica_destroy(R), 0);
    /* The snapshot outlives its last child. */
    same(S1, a, RSIZE);
    CHECK_EQ(sstat(S1).nchildren, 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    free(a);
    free(r);
    free(c);
}

/* Snapshot of a clone of a snapshot: each level reads right; merge on
 * delete keeps every visible byte. */
TEST(chain_and_merge)
{
    fresh_pool(64 * MiB);
    uint8_t *v0 = calloc(1, RSIZE), *v1 = calloc(1, RSIZE), *v2 = calloc(1, RSIZE), *v3 = calloc(1, RSIZE);
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 0), 0); /* thick: stays thick (test_pool_thick.c) */
    put(R, v0, 0, RSIZE);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    CHECK_EQ(rstat(R).thin, 0);
    CHECK_EQ(dp_replica_clone(C1, S1), 0);
    memcpy(v1, v0, RSIZE);
    put(C1, v1, 3 * MiB + 777 * 512, 3 * 512);
    CHECK_EQ(dp_snapshot_create(C1, S2, ""), 0); /* S2 -> S1 */
    memcpy(v2, v1, RSIZE);
    put(C1, v2, 5 * MiB, 2 * MiB);
    CHECK_EQ(dp_replica_clone(C2, S2), 0);
    memcpy(v3, v1, RSIZE);
    put(C2, v3, 0, 4096);
    CHECK_EQ(dp_snapshot_create(C2, S3, NULL), 0); /* chain of three: S3 -> S2 -> S1 */
    CHECK(!strcmp(sstat(S3).parent, S2) && !strcmp(sstat(S2).parent, S1));
    same(S1, v0, RSIZE);
    same(S2, v1, RSIZE);
    same(S3, v3, RSIZE);
    same(C1, v2, RSIZE);
    same(C2, v3, RSIZE);
    same(R, v0, RSIZE);
    CHECK_EQ(rstat(C2).snapshot_bytes, sstat(S3).referenced_bytes + sstat(S2).referenced_bytes + RSIZE);

    /* S2 has two children (C1, C2's snapshot S3): refused, naming them. */
    expect_err(dp_snapshot_destroy(S2), -EBUSY, "2 children");
    CHECK(strstr(dp_last_error(), C1) && strstr(dp_last_error(), S3));
    /* S3's one child is C2: merge. Then S2's... still two. */
    uint64_t u = used();
    CHECK_EQ(dp_snapshot_destroy(S3), 0);
    CHECK_EQ(used(), u);
    CHECK(!strcmp(rstat(C2).parent, S2));
    same(C2, v3, RSIZE);
    CHECK_EQ(dp_replica_destroy(C1), 0);
    /* S2 -> only C2: merge; C2's own cluster 0 wins over S2's copy. */
    CHECK_EQ(dp_snapshot_destroy(S2), 0);
    CHECK(!strcmp(rstat(C2).parent, S1));
    same(C2, v3, RSIZE);
    reimport();
    same(C2, v3, RSIZE);
    same(R, v0, RSIZE);
    same(S1, v0, RSIZE);
    CHECK_EQ(dp_replica_destroy(C2), 0);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    free(v0);
    free(v1);
    free(v2);
    free(v3);
}

/* 4 MiB written, snapshot, overwritten: 8 MiB; delete the snapshot: 4. */
static void accounting_check(bool reimport_between)
{
    uint8_t *a = calloc(1, RSIZE);
    uint64_t start = used();
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    put(R, a, 0, 4 * MiB);
    CHECK_EQ(used() - start, 4 * MiB);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    put(R, a, 0, 4 * MiB);
    if (reimport_between)
        reimport();
    CHECK_EQ(used() - start, 8 * MiB);
    CHECK_EQ(rstat(R).allocated_bytes, 4 * MiB);
    CHECK_EQ(rstat(R).snapshot_bytes, 4 * MiB);
    CHECK_EQ(dp_snapshot_destroy(S1), 0); /* merged into R: R maps everything, all freed */
    CHECK_EQ(used() - start, 4 * MiB);
    if (reimport_between)
        reimport();
    CHECK_EQ(used() - start, 4 * MiB);
    same(R, a, RSIZE);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(used(), start);
    free(a);
}

TEST(accounting)
{
    fresh_pool(64 * MiB);
    accounting_check(false);
    accounting_check(true);
    reimport();
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
}

TEST(bad_input)
{
    fresh_pool(64 * MiB);
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    expect_err(dp_snapshot_create(MISSING, S1, NULL), -ENOENT, MISSING);
    expect_err(dp_snapshot_create(R, "nope", NULL), -EINVAL, "snapshot 'nope'");
    expect_err(dp_snapshot_create(R, S1, "group?"), -EINVAL, "snapshot group");
    expect_err(dp_snapshot_create(R, R, NULL), -EEXIST, R);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    expect_err(dp_snapshot_create(R, S1, NULL), -EEXIST, S1);
    expect_err(dp_snapshot_create(S1, S2, NULL), -EINVAL, "is a snapshot");
    expect_err(dp_replica_clone(C1, R), -EINVAL, "not a snapshot");
    expect_err(dp_replica_clone(C1, MISSING), -ENOENT, MISSING);
    expect_err(dp_replica_clone(R, S1), -EEXIST, R);
    expect_err(dp_snapshot_destroy(R), -EINVAL, "not a snapshot");
    expect_err(dp_snapshot_destroy(MISSING), -ENOENT, MISSING);
    expect_err(dp_replica_destroy(S1), -EINVAL, "is a snapshot");
    expect_err(dp_replica_resize(S1, 2 * RSIZE), -EROFS, "snapshot");
    expect_err(dp_replica_stat(S1, &(dp_replica_info){ 0 }), -ENOENT, "is a snapshot");
    expect_err(dp_snapshot_stat(R, &(dp_snapshot_info){ 0 }), -EINVAL, "not a snapshot");
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 1, 4096);
    CHECK_EQ(rw(S1, DP_IO_WRITE, buf, 0, 4096), -EROFS);
    CHECK_EQ(rw(S1, DP_IO_UNMAP, NULL, 0, CS), -EROFS);
    /* Revert: only to an ancestor; not while open. */
    CHECK_EQ(dp_replica_create("sp", C2, RSIZE, 1), 0);
    CHECK_EQ(dp_snapshot_create(C2, S2, NULL), 0);
    expect_err(dp_replica_revert(R, S2), -EINVAL, "not a snapshot of replica");
    expect_err(dp_replica_revert(S1, S1), -EINVAL, "is a snapshot");
    struct dp_bdev *open_r = dp_bdev_get(R);
    expect_err(dp_replica_revert(R, S1), -EBUSY, "is open");
    dp_bdev_put(open_r);
    CHECK_EQ(dp_replica_revert(R, S1), 0);
    /* Two children: 409-style error naming both. */
    CHECK_EQ(dp_replica_clone(C1, S1), 0);
    expect_err(dp_snapshot_destroy(S1), -EBUSY, C1);
    CHECK(strstr(dp_last_error(), R));
    /* The bdev op (what the nexus calls) and its undo. */
    struct dp_bdev *b = dp_bdev_get(C1);
    CHECK_EQ(dp_bdev_snapshot_create(b, S3, G), 0);
    CHECK(!strcmp(sstat(S3).group, G));
    CHECK_EQ(dp_bdev_snapshot_destroy(b, S2), -EINVAL);
    CHECK_EQ(dp_bdev_snapshot_destroy(b, S3), 0);
    CHECK_EQ(rstat(C1).parent[0] ? 0 : 1, 0);
    CHECK(!strcmp(rstat(C1).parent, S1));
    dp_bdev_put(b);
    dp_buf_free(buf);
    CHECK_EQ(dp_replica_destroy(C1), 0);
    CHECK_EQ(dp_replica_destroy(C2), 0);
    CHECK_EQ(dp_snapshot_destroy(S2), 0);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
}

/* A replica grown after its snapshot: the new range reads zeroes (the
 * snapshot is smaller), takes writes, and a revert keeps the size. */
TEST(grow_after_snapshot)
{
    fresh_pool(64 * MiB);
    uint8_t *a = calloc(1, 2 * RSIZE), *r = calloc(1, 2 * RSIZE);
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    put(R, a, RSIZE - 4096, 4096);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    CHECK_EQ(dp_replica_resize(R, 2 * RSIZE), 0);
    memcpy(r, a, 2 * RSIZE);
    same(R, r, 2 * RSIZE);
    put(R, r, RSIZE - 512, 1024); /* across the old end: copy, then zero-fill */
    same(R, r, 2 * RSIZE);
    same(S1, a, RSIZE);
    CHECK_EQ(sstat(S1).size_bytes, RSIZE);
    CHECK_EQ(dp_replica_revert(R, S1), 0);
    CHECK_EQ(rstat(R).size_bytes, 2 * RSIZE);
    same(R, a, 2 * RSIZE);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    free(a);
    free(r);
}

/* A pool full: the first write to a snapshotted cluster fails -ENOSPC,
 * cleanly, and the data stays readable. */
TEST(cow_enospc)
{
    fresh_pool(16 * MiB); /* a few clusters after the metadata */
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("sp", &pi), 0);
    uint64_t n = pi.capacity_bytes / CS;
    CHECK(n >= 2);
    uint8_t *a = calloc(1, n * CS);
    CHECK_EQ(dp_replica_create("sp", R, n * CS, 1), 0);
    put(R, a, 0, n * CS);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 3, 4096);
    expect_err(rw(R, DP_IO_WRITE, buf, 4096, 4096), -ENOSPC, "");
    same(R, a, n * CS);
    same(S1, a, n * CS);
    dp_buf_free(buf);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    free(a);
}

struct aio_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, errors;
};

struct aio {
    struct dp_bdev_io io; /* first: the callback casts back */
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

enum { NAIO = 200 }; /* more than the pool's request slots */

/* Submit NAIO 4 KiB writes (write i: bytes i+1 at offs[i]) without waiting. */
static struct aio *aio_writes(struct dp_bdev *b, struct aio_ctx *ctx, uint8_t *buf, const uint64_t *offs)
{
    struct aio *a = calloc(NAIO, sizeof *a);
    pthread_mutex_init(&ctx->mu, NULL);
    pthread_cond_init(&ctx->cv, NULL);
    ctx->pending = NAIO;
    ctx->errors = 0;
    for (int i = 0; i < NAIO; i++) {
        memset(buf + i * 4096, i + 1, 4096);
        a[i] = (struct aio){ .ctx = ctx, .iov = { buf + i * 4096, 4096 } };
        a[i].io.type = DP_IO_WRITE;
        a[i].io.offset = offs[i];
        a[i].io.length = 4096;
        a[i].io.iov = &a[i].iov;
        a[i].io.iovcnt = 1;
        a[i].io.cb = aio_done;
    }
    for (int i = 0; i < NAIO; i++)
        dp_bdev_submit(b, &a[i].io);
    return a;
}

static void aio_wait(struct aio_ctx *ctx, struct aio *a)
{
    pthread_mutex_lock(&ctx->mu);
    while (ctx->pending)
        pthread_cond_wait(&ctx->cv, &ctx->mu);
    pthread_mutex_unlock(&ctx->mu);
    CHECK_EQ(ctx->errors, 0);
    pthread_cond_destroy(&ctx->cv);
    pthread_mutex_destroy(&ctx->mu);
    free(a);
}

/* Racing first writes to one snapshotted cluster copy it once; a snapshot
 * taken while writes are in flight holds, for each, the old or the new
 * bytes (never a mix), and the replica all of them. */
TEST(concurrent_cow_and_snapshot_under_io)
{
    fresh_pool(64 * MiB);
    uint8_t *a = calloc(1, 16 * MiB), *r = calloc(1, 16 * MiB);
    CHECK_EQ(dp_replica_create("sp", R, 16 * MiB, 1), 0);
    put(R, a, 0, 16 * MiB);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    memcpy(r, a, 16 * MiB);
    uint64_t offs[NAIO];
    for (int i = 0; i < NAIO; i++) /* half race for cluster 2, the rest on 0, 5, 9 */
        offs[i] = i % 2 ? 2 * MiB + (uint64_t)(i / 2) * 4096
                        : (uint64_t)(i % 3 == 0   ? 0
                                     : i % 3 == 1 ? 5
                                                  : 9) *
                                  MiB +
                              (uint64_t)(i / 2) * 4096;
    for (int i = 0; i < NAIO; i++) /* the later write to a block wins: keep offsets unique */
        for (int j = 0; j < i; j++)
            CHECK(offs[i] != offs[j]);
    uint8_t *buf = dp_buf_alloc(NAIO * 4096);
    struct dp_bdev *b = dp_bdev_get(R);
    struct aio_ctx ctx;
    aio_wait(&ctx, aio_writes(b, &ctx, buf, offs));
    for (int i = 0; i < NAIO; i++)
        memcpy(r + offs[i], buf + i * 4096, 4096);
    CHECK_EQ(rstat(R).allocated_bytes, 4 * MiB);
    CHECK_EQ(used(), 20 * MiB);
    same(R, r, 16 * MiB);
    same(S1, a, 16 * MiB);

    /* Now a snapshot while writes to fresh clusters (12..15) are in flight. */
    for (int i = 0; i < NAIO; i++)
        offs[i] = (12 + (uint64_t)(i % 4)) * MiB + (uint64_t)(i / 4) * 4096;
    struct aio *w = aio_writes(b, &ctx, buf, offs);
    CHECK_EQ(dp_snapshot_create(R, S2, NULL), 0);
    aio_wait(&ctx, w);
    uint8_t *before = malloc(16 * MiB);
    memcpy(before, r, 16 * MiB);
    for (int i = 0; i < NAIO; i++)
        memcpy(r + offs[i], buf + i * 4096, 4096);
    same(R, r, 16 * MiB);
    uint8_t *got = dp_buf_alloc(16 * MiB);
    CHECK_EQ(rw(S2, DP_IO_READ, got, 0, 16 * MiB), 0);
    int in_snap = 0;
    for (int i = 0; i < NAIO; i++) {
        bool old = !memcmp(got + offs[i], before + offs[i], 4096), new = !memcmp(got + offs[i], r + offs[i], 4096);
        CHECK(old || new);
        in_snap += new;
        memcpy(before + offs[i], got + offs[i], 4096); /* either is fine; nothing else may differ */
    }
    CHECK(memcmp(got, before, 16 * MiB) == 0);
    printf("    %d of %d in-flight writes landed in the snapshot\n", in_snap, NAIO);
    same(S1, a, 16 * MiB);
    dp_bdev_put(b);
    reimport();
    same(R, r, 16 * MiB);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S2), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    dp_buf_free(buf);
    dp_buf_free(got);
    free(before);
    free(a);
    free(r);
}

/* ---- a random sequence against a model --------------------------------- */

#define MCS (64 * 1024ull) /* cluster */
#define MSIZE (16 * MCS) /* every object's size */
#define MOBJ 12

struct mobj {
    char uuid[37];
    bool live, snap;
    int parent; /* model index, -1 */
    uint8_t *data;
};

static struct mobj mo[MOBJ];

static int m_pick(bool snap)
{
    int c[MOBJ], n = 0;
    for (int i = 0; i < MOBJ; i++)
        if (mo[i].live && mo[i].snap == snap)
            c[n++] = i;
    return n ? c[rnd() % (uint64_t)n] : -1;
}

static int m_free_slot(bool snap)
{
    for (int i = 0; i < MOBJ; i++)
        if (!mo[i].live) {
            mo[i].live = true;
            mo[i].snap = snap;
            snprintf(mo[i].uuid, sizeof mo[i].uuid, "%08x-0000-4000-8000-%012llx",
                     snap ? 0x5a5a0000u + i : 0x0e0e0000u + i, (unsigned long long)(rnd() & 0xffffffffffffull));
            return i;
        }
    return -1;
}

static int m_children(int s, int *only)
{
    int n = 0;
    for (int i = 0; i < MOBJ; i++)
        if (mo[i].live && mo[i].parent == s) {
            n++;
            *only = i;
        }
    return n;
}

static void m_verify(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < MOBJ; i++) {
        if (!mo[i].live)
            continue;
        same(mo[i].uuid, mo[i].data, MSIZE);
        char parent[37];
        if (mo[i].snap) {
            dp_snapshot_info si = sstat(mo[i].uuid);
            sum += si.referenced_bytes;
            memcpy(parent, si.parent, sizeof parent);
            int only;
            CHECK_EQ(si.nchildren, (uint32_t)m_children(i, &only));
        } else {
            dp_replica_info ri = rstat(mo[i].uuid);
            sum += ri.allocated_bytes;
            memcpy(parent, ri.parent, sizeof parent);
        }
        CHECK(!strcmp(parent, mo[i].parent < 0 ? "" : mo[mo[i].parent].uuid));
    }
    CHECK_EQ(used(), sum); /* every cluster counted once, none leaked */
}

/* One random step; returns what it did, for the failure message. */
static const char *m_step(void)
{
    int k = (int)(rnd() % 100), r = m_pick(false), s = m_pick(true), n;
    uint8_t *buf = dp_buf_alloc(MSIZE);
    const char *what = "nothing";
    if (k < 40 && r >= 0) {
        uint64_t len = (1 + rnd() % 40) * 512, off = (rnd() % ((MSIZE - len) / 512 + 1)) * 512;
        put(mo[r].uuid, mo[r].data, off, len);
        what = "write";
    } else if (k < 48 && r >= 0) {
        uint64_t len = (1 + rnd() % 3) * MCS / (1 + rnd() % 2), off = (rnd() % (MSIZE / MCS)) * MCS / (1 + rnd() % 2);
        if (off + len > MSIZE)
            len = MSIZE - off;
        CHECK_EQ(rw(mo[r].uuid, rnd() % 2 ? DP_IO_UNMAP : DP_IO_WRITE_ZEROES, NULL, off, len), 0);
        memset(mo[r].data + off, 0, len);
        what = "unmap";
    } else if (k < 64 && r >= 0 && (n = m_free_slot(true)) >= 0) {
        CHECK_EQ(dp_snapshot_create(mo[r].uuid, mo[n].uuid, NULL), 0);
        mo[n].parent = mo[r].parent;
        mo[r].parent = n;
        mo[n].data = malloc(MSIZE);
        memcpy(mo[n].data, mo[r].data, MSIZE);
        what = "snapshot";
    } else if (k < 74 && s >= 0 && (n = m_free_slot(false)) >= 0) {
        CHECK_EQ(dp_replica_clone(mo[n].uuid, mo[s].uuid), 0);
        mo[n].parent = s;
        mo[n].data = malloc(MSIZE);
        memcpy(mo[n].data, mo[s].data, MSIZE);
        what = "clone";
    } else if (k < 84 && s >= 0) {
        int only = -1, kids;
        for (int t = 0; t < 8 && rnd() % 4 && m_children(s, &only) > 1; t++)
            s = m_pick(true); /* mostly one that can go */
        only = -1;
        kids = m_children(s, &only);
        int ret = dp_snapshot_destroy(mo[s].uuid);
        if (kids > 1) {
            CHECK_EQ(ret, -EBUSY);
        } else {
            CHECK_EQ(ret, 0);
            if (only >= 0)
                mo[only].parent = mo[s].parent;
            mo[s].live = false;
            free(mo[s].data);
        }
        what = kids > 1 ? "snapshot delete refused" : kids ? "snapshot merge" : "snapshot free";
    } else if (k < 90 && r >= 0) {
        int a = mo[r].parent, depth = (int)(rnd() % 3);
        while (a >= 0 && depth-- > 0 && mo[a].parent >= 0)
            a = mo[a].parent;
        if (a >= 0) {
            CHECK_EQ(dp_replica_revert(mo[r].uuid, mo[a].uuid), 0);
            mo[r].parent = a;
            memcpy(mo[r].data, mo[a].data, MSIZE);
            what = "revert";
        }
    } else if (k < 95 && r >= 0) {
        CHECK_EQ(dp_replica_destroy(mo[r].uuid), 0);
        mo[r].live = false;
        free(mo[r].data);
        what = "replica delete";
    } else if (k < 97) {
        reimport();
        what = "reimport";
    } else if ((n = m_free_slot(false)) >= 0) {
        CHECK_EQ(dp_replica_create("sp", mo[n].uuid, MSIZE, rnd() % 2), 0);
        mo[n].parent = -1;
        mo[n].data = calloc(1, MSIZE);
        what = "create";
    }
    dp_buf_free(buf);
    return what;
}

/* Random writes, unmaps, snapshots, clones, deletes, reverts and imports;
 * after each, every object reads what the model says, each parent and
 * child count is right, and pool usage is the sum of what each owns. */
TEST(random_model)
{
    fresh_pool_cs(48 * MiB, MCS);
    memset(mo, 0, sizeof mo);
    if (getenv("DP_TEST_SEED")) /* other sequences: DP_TEST_SEED=n */
        rng = strtoull(getenv("DP_TEST_SEED"), NULL, 0) | 1;
    for (int k = 0; k < 2; k++) {
        int n = m_free_slot(false);
        CHECK_EQ(dp_replica_create("sp", mo[n].uuid, MSIZE, (uint32_t)k), 0);
        mo[n].parent = -1;
        mo[n].data = calloc(1, MSIZE);
    }
    for (int i = 0; i < 300; i++) {
        const char *what = m_step();
        if (getenv("DP_TEST_VERBOSE"))
            printf("    step %d: %s\n", i, what);
        m_verify();
    }
    for (int pass = 0; pass < MOBJ + 1; pass++) /* tear down: replicas first, then snapshots as they free up */
        for (int i = 0; i < MOBJ; i++) {
            int only;
            if (!mo[i].live || (mo[i].snap && m_children(i, &only) > 0))
                continue;
            CHECK_EQ(mo[i].snap ? dp_snapshot_destroy(mo[i].uuid) : dp_replica_destroy(mo[i].uuid), 0);
            mo[i].live = false;
            free(mo[i].data);
        }
    for (int i = 0; i < MOBJ; i++)
        CHECK(!mo[i].live);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Mean latency (us) of one 4 KiB write at 4096 + k*cluster, k = 0..n-1. */
static double lat_4k(const char *uuid, uint64_t cs, int n)
{
    uint8_t *buf = dp_buf_alloc(4096);
    memset(buf, 0x5c, 4096);
    double t0 = now_us();
    for (int k = 0; k < n; k++)
        CHECK_EQ(rw(uuid, DP_IO_WRITE, buf, 4096 + (uint64_t)k * cs, 4096), 0);
    dp_buf_free(buf);
    return (now_us() - t0) / n;
}

/* Not a test: what copy-on-first-write costs (FORMAT.md quotes it). A
 * first 4 KiB write to a thin cluster (zero + commit), to a snapshotted one
 * (copy + commit), and to an owned one, at QD1, for 1 and 4 MiB clusters. */
TEST(cow_cost)
{
    for (uint64_t cs = MiB; cs <= 4 * MiB; cs *= 4) {
        int n = 16;
        fresh_pool_cs(2 * n * cs + 2 * cs + 2 * MiB, cs);
        CHECK_EQ(dp_replica_create("sp", R, n * cs, 1), 0);
        double thin = lat_4k(R, cs, n);
        double owned = lat_4k(R, cs, n);
        CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
        double cow = lat_4k(R, cs, n);
        double after = lat_4k(R, cs, n);
        printf("    cluster %llu MiB: first write thin %.0f us, copy-on-first-write %.0f us, owned %.0f us "
               "(again after the copy %.0f us)\n",
               (unsigned long long)(cs / MiB), thin, cow, owned, after);
        CHECK_EQ(dp_replica_destroy(R), 0);
        CHECK_EQ(dp_snapshot_destroy(S1), 0);
        CHECK_EQ(dp_pool_destroy("sp"), 0);
    }
}

static uint32_t slot_version(int k)
{
    struct pf_label l;
    uint8_t *b = malloc(PF_LABEL_SIZE);
    int fd = open(disk, O_RDONLY);
    CHECK(pread(fd, b, PF_LABEL_SIZE, 0) == PF_LABEL_SIZE);
    char err[256];
    CHECK_EQ(pf_label_decode(b, &l, err, sizeof err), 0);
    CHECK(pread(fd, b, 64, (off_t)(PF_META_OFFSET + k * l.meta_slot_size)) == 64);
    close(fd);
    uint32_t v = dp_get_le32(b + 8);
    free(b);
    return v;
}

/* A version 1 pool imports, upgrades both slots to version 2, keeps its data. */
TEST(v1_upgrade)
{
    pf_write_version = 1;
    fresh_pool(64 * MiB);
    uint8_t *a = calloc(1, RSIZE);
    CHECK_EQ(dp_replica_create("sp", R, RSIZE, 1), 0);
    put(R, a, MiB - 512, 2 * MiB);
    CHECK_EQ(dp_pool_export("sp"), 0);
    CHECK_EQ(slot_version(0), 1);
    pf_write_version = PF_VERSION;
    CHECK_EQ(dp_pool_import("sp", disks, 1, puuid), 0);
    CHECK_EQ(slot_version(0), 2);
    CHECK_EQ(slot_version(1), 2);
    same(R, a, RSIZE);
    char inc[37];
    memcpy(inc, rstat(R).incarnation, 37);
    CHECK(strlen(inc) == 36);
    reimport();
    CHECK(!strcmp(rstat(R).incarnation, inc));
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    same(S1, a, RSIZE);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(dp_snapshot_destroy(S1), 0);
    CHECK_EQ(dp_pool_destroy("sp"), 0);
    free(a);
}

int main(void)
{
    printf("test_snapshot\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(snapshot_and_clone);
    RUN(chain_and_merge);
    RUN(accounting);
    RUN(bad_input);
    RUN(cow_enospc);
    RUN(grow_after_snapshot);
    RUN(v1_upgrade);
    RUN(concurrent_cow_and_snapshot_under_io);
    RUN(random_model);
    RUN(cow_cost);
    dp_fini();
    CHECK_EQ(dp_init(2), 0);
    RUN(snapshot_and_clone); /* two reactors */
    RUN(concurrent_cow_and_snapshot_under_io);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
