/*
 * test_pool_thick.c - a thick replica stays thick (its spec) through
 * snapshot, copy-on-first-write, merge, revert, grow and export/import:
 * stat reports thin=0 throughout, every byte checked against a shadow, the
 * pool's used bytes accounted.
 */
#include <errno.h>
#include <unistd.h>

#include "pool_testlib.h"

#define CS MiB
#define RSIZE (8 * MiB)

static char disk[512];
static const char *disks[1] = { disk };
static char puuid[37];
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static const char *R = "7a1c7a1c-0000-4000-8000-000000000001";
static const char *S1 = "7a1c7a1c-0000-4000-8000-0000000000a1";
static const char *S2 = "7a1c7a1c-0000-4000-8000-0000000000a2";

static void put(const char *uuid, uint8_t *shadow, uint64_t off, uint64_t len)
{
    uint8_t *buf = dp_buf_alloc(len);
    for (uint64_t k = 0; k < len; k++)
        buf[k] = (uint8_t)xorshift(&rng);
    CHECK_EQ(rw(uuid, DP_IO_WRITE, buf, off, len), 0);
    memcpy(shadow + off, buf, len);
    dp_buf_free(buf);
}

static uint64_t used(void)
{
    return pool_used("tk");
}

static void reimport(void)
{
    pool_reimport("tk", disks, puuid);
}

TEST(thick_stays_thick)
{
    pool_disk(disk, sizeof disk, "thick.img", 64 * MiB);
    CHECK_EQ(dp_pool_create("tk", disks, 1, CS, puuid), 0);
    uint8_t *v0 = calloc(1, 2 * RSIZE), *v1 = calloc(1, 2 * RSIZE);
    CHECK_EQ(dp_replica_create("tk", R, RSIZE, 0), 0);
    put(R, v0, 0, RSIZE);
    CHECK_EQ(dp_snapshot_create(R, S1, NULL), 0);
    dp_replica_info ri = rstat(R);
    CHECK_EQ(ri.thin, 0);
    CHECK(!strcmp(ri.parent, S1));
    CHECK_EQ(ri.allocated_bytes, 0);
    memcpy(v1, v0, RSIZE);
    put(R, v1, 3 * MiB + 512, 4096); /* copy-on-first-write of a thick replica */
    put(R, v1, 5 * MiB, MiB);
    CHECK_EQ(rstat(R).allocated_bytes, 2 * MiB);
    CHECK_EQ(used(), RSIZE + 2 * MiB);
    reimport(); /* a thick record with a parent and 2 of 8 clusters mapped */
    CHECK_EQ(rstat(R).thin, 0);
    same_bytes(R, v1, RSIZE);
    same_bytes(S1, v0, RSIZE);
    CHECK_EQ(dp_replica_resize(R, 2 * RSIZE), 0); /* the growth is thick: zeroed and reserved */
    CHECK_EQ(rstat(R).allocated_bytes, 2 * MiB + RSIZE);
    same_bytes(R, v1, 2 * RSIZE);
    CHECK_EQ(dp_snapshot_destroy(S1), 0); /* merge: R maps every cluster again */
    ri = rstat(R);
    CHECK_EQ(ri.thin, 0);
    CHECK_EQ(ri.parent[0], 0);
    CHECK_EQ(ri.allocated_bytes, 2 * RSIZE);
    CHECK_EQ(used(), 2 * RSIZE);
    reimport();
    CHECK_EQ(rstat(R).thin, 0);
    same_bytes(R, v1, 2 * RSIZE);

    /* Revert: back to the snapshot, still thick; merged again on delete. */
    CHECK_EQ(dp_snapshot_create(R, S2, NULL), 0);
    memcpy(v0, v1, 2 * RSIZE);
    put(R, v1, 0, 3 * MiB);
    CHECK_EQ(dp_replica_revert(R, S2), 0);
    CHECK_EQ(rstat(R).thin, 0);
    same_bytes(R, v0, 2 * RSIZE);
    reimport();
    CHECK_EQ(rstat(R).thin, 0);
    CHECK_EQ(dp_snapshot_destroy(S2), 0);
    ri = rstat(R);
    CHECK_EQ(ri.thin, 0);
    CHECK_EQ(ri.allocated_bytes, 2 * RSIZE);
    same_bytes(R, v0, 2 * RSIZE);
    CHECK_EQ(dp_replica_destroy(R), 0);
    CHECK_EQ(used(), 0);
    CHECK_EQ(dp_pool_destroy("tk"), 0);
    unlink(disk);
    free(v0);
    free(v1);
}

int main(void)
{
    printf("test_pool_thick\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(thick_stays_thick);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
