/*
 * test_pool_v1big.c - a version 1 pool with more replicas than a version 2
 * table holds in its slot (1500 > ~1170) still imports: it stays version 1
 * (snapshots refused naming the counts), takes new replicas up to the
 * version 1 limit, keeps its data; once below the version 2 limit, the
 * next import upgrades it.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "pool/format.h"
#include "pool_testlib.h"

#define NREP 1500u

static char disk[512];
static const char *disks[1] = { disk };
static char puuid[37];

static void uuid_of(uint32_t i, char *out)
{
    snprintf(out, 37, "b1b1b1b1-0000-4000-8000-%012u", i);
}

static struct pf_label label(void)
{
    struct pf_label l;
    uint8_t *b = malloc(PF_LABEL_SIZE);
    int fd = open(disk, O_RDONLY);
    CHECK(pread(fd, b, PF_LABEL_SIZE, 0) == PF_LABEL_SIZE);
    close(fd);
    char err[256];
    CHECK_EQ(pf_label_decode(b, &l, err, sizeof err), 0);
    free(b);
    return l;
}

/* The pool's records that fit its slot in format version v. */
static uint32_t max_records(uint32_t v)
{
    struct pf_label l = label();
    return pf_max_records(v, l.meta_slot_size, l.total_clusters);
}

static uint32_t slot_version(int k)
{
    struct pf_label l = label();
    uint8_t *b = malloc(64);
    int fd = open(disk, O_RDONLY);
    CHECK(pread(fd, b, 64, (off_t)(PF_META_OFFSET + k * l.meta_slot_size)) == 64);
    close(fd);
    uint32_t v = dp_get_le32(b + 8);
    free(b);
    return v;
}

static uint32_t nreplicas(void)
{
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("v1", &pi), 0);
    return pi.replicas;
}

static void reimport(void)
{
    pool_reimport("v1", disks, puuid);
}

TEST(v1_pool_over_the_v2_limit)
{
    pool_disk(disk, sizeof disk, "v1big.img", 64 * MiB);
    pf_write_version = 1;
    CHECK_EQ(dp_pool_create("v1", disks, 1, MiB, puuid), 0);
    char u[37];
    for (uint32_t i = 0; i < NREP; i++) {
        uuid_of(i, u);
        CHECK_EQ(dp_replica_create("v1", u, 4096, 1), 0);
    }
    uuid_of(7, u);
    struct dp_bdev *b = dp_bdev_get(u);
    uint8_t *w = dp_buf_alloc(4096), *rd = dp_buf_alloc(4096);
    test_fill(w, 4096, 0, 3);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w, 0, 4096), 0);
    dp_bdev_put(b);
    CHECK_EQ(dp_pool_export("v1"), 0);
    pf_write_version = PF_VERSION;

    uint32_t max2 = max_records(2);
    printf("    version 1 slot: %u version 1 records, %u version 2\n", max_records(1), max2);
    CHECK(max2 < NREP && max_records(1) > NREP);
    CHECK_EQ(dp_pool_import("v1", disks, 1, puuid), 0); /* refused before the fix */
    CHECK_EQ(nreplicas(), NREP);
    CHECK_EQ(slot_version(0), 1);
    CHECK_EQ(slot_version(1), 1);
    int ret = dp_snapshot_create(u, "b1b1b1b1-0000-4000-8000-5a0000000001", NULL);
    CHECK_EQ(ret, -ENOTSUP);
    CHECK(strstr(dp_last_error(), "1500 replicas") && strstr(dp_last_error(), "version 1"));
    uuid_of(NREP, u);
    CHECK_EQ(dp_replica_create("v1", u, 4096, 1), 0); /* still within the v1 limit */
    reimport();
    CHECK_EQ(nreplicas(), NREP + 1);
    CHECK_EQ(slot_version(0), 1);
    uuid_of(7, u);
    b = dp_bdev_get(u);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, rd, 0, 4096), 0);
    CHECK(memcmp(rd, w, 4096) == 0);
    dp_bdev_put(b);

    /* Down to the version 2 limit: the next import upgrades. */
    for (uint32_t i = max2; i <= NREP; i++) {
        uuid_of(i, u);
        CHECK_EQ(dp_replica_destroy(u), 0);
    }
    reimport();
    CHECK_EQ(nreplicas(), max2);
    CHECK_EQ(slot_version(0), 2);
    CHECK_EQ(slot_version(1), 2);
    uuid_of(7, u);
    b = dp_bdev_get(u);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, rd, 0, 4096), 0);
    CHECK(memcmp(rd, w, 4096) == 0);
    dp_bdev_put(b);
    /* Full at the version 2 limit: a snapshot is refused as a record too many. */
    ret = dp_snapshot_create(u, "b1b1b1b1-0000-4000-8000-5a0000000001", NULL);
    CHECK_EQ(ret, -ENOSPC);
    uuid_of(8, u);
    CHECK_EQ(dp_replica_destroy(u), 0);
    uuid_of(7, u);
    CHECK_EQ(dp_snapshot_create(u, "b1b1b1b1-0000-4000-8000-5a0000000001", NULL), 0);
    dp_buf_free(w);
    dp_buf_free(rd);
    CHECK_EQ(dp_pool_export("v1"), 0);
    unlink(disk);
}

int main(void)
{
    printf("test_pool_v1big\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(v1_pool_over_the_v2_limit);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
