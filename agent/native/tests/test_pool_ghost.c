/*
 * test_pool_ghost.c - a snapshot or clone whose device name is taken by
 * another device between the call's checks and its registration (the name
 * is not guarded by the pool lock) fails with -EEXIST naming it and leaves
 * nothing: no record in the pool (also after re-import), the replica's
 * bytes, parent and the pool's used bytes as before.
 */
#include <errno.h>
#include <unistd.h>

#include "pool/pool.h"
#include "pool_testlib.h"

#define RSIZE (8 * MiB)

static char disk[512];
static const char *disks[1] = { disk };
static char puuid[37];
static const char *R = "6a057000-0000-4000-8000-000000000001";
static const char *S = "6a057000-0000-4000-8000-0000000000a1";
static const char *C = "6a057000-0000-4000-8000-0000000000c1";
static const char *taken; /* the name the hook takes */
static const struct dp_bdev_ops no_ops;
static struct dp_bdev other = { .ops = &no_ops }; /* registered by name only */

static void take_name(void)
{
    snprintf(other.name, sizeof other.name, "%s", taken);
    CHECK_EQ(dp_bdev_register(&other), 0);
}

static uint64_t used(void)
{
    return pool_used("gh");
}

/* Nothing named name in the pool; R is as before. */
static void nothing_left(const char *name, const uint8_t *want, uint64_t u)
{
    dp_snapshot_info si;
    dp_replica_info ri;
    CHECK_EQ(dp_snapshot_stat(name, &si), -ENOENT);
    CHECK_EQ(dp_replica_stat(name, &ri), -ENOENT);
    CHECK_EQ(dp_pool_snapshot_at("gh", 0, &si), -ENOENT);
    CHECK_EQ(dp_replica_stat(R, &ri), 0);
    CHECK_EQ(ri.parent[0], 0);
    CHECK_EQ(ri.allocated_bytes, RSIZE);
    CHECK_EQ(used(), u);
    same_bytes(R, want, RSIZE);
}

static void reimport(void)
{
    pool_reimport("gh", disks, puuid);
}

TEST(name_taken_before_registration)
{
    pool_disk(disk, sizeof disk, "ghost.img", 64 * MiB);
    CHECK_EQ(dp_pool_create("gh", disks, 1, MiB, puuid), 0);
    CHECK_EQ(dp_replica_create("gh", R, RSIZE, 1), 0);
    uint8_t *v = dp_buf_alloc(RSIZE);
    test_fill(v, RSIZE, 0, 9);
    struct dp_bdev *b = dp_bdev_get(R);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, v, 0, RSIZE), 0);
    dp_bdev_put(b);
    uint64_t u = used();

    taken = S;
    pool_ctl_test_hook = take_name;
    int ret = dp_snapshot_create(R, S, NULL);
    CHECK_EQ(ret, -EEXIST);
    CHECK(strstr(dp_last_error(), S) && strstr(dp_last_error(), "nothing was created"));
    dp_bdev_unregister(&other);
    nothing_left(S, v, u);
    reimport();
    nothing_left(S, v, u);

    /* The clone of a real snapshot, its name taken the same way. */
    CHECK_EQ(dp_snapshot_create(R, S, NULL), 0);
    taken = C;
    pool_ctl_test_hook = take_name;
    ret = dp_replica_clone(C, S);
    CHECK_EQ(ret, -EEXIST);
    CHECK(strstr(dp_last_error(), C) && strstr(dp_last_error(), "nothing was created"));
    dp_bdev_unregister(&other);
    dp_snapshot_info si;
    CHECK_EQ(dp_snapshot_stat(S, &si), 0);
    CHECK_EQ(si.nchildren, 1); /* R only */
    reimport();
    dp_replica_info ri;
    CHECK_EQ(dp_replica_stat(C, &ri), -ENOENT);
    CHECK_EQ(dp_snapshot_destroy(S), 0);
    nothing_left(S, v, u);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("gh"), 0);
    unlink(disk);
    dp_buf_free(v);
}

int main(void)
{
    printf("test_pool_ghost\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(name_taken_before_registration);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
