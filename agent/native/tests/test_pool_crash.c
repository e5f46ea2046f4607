/*
 * test_pool_crash.c - pool metadata is crash-safe.
 *
 * A sequence of operations (replica create thin/thick, thin allocations,
 * resize thin/thick, unmap, destroy; snapshot, copy-on-first-write, clone,
 * revert, snapshot delete by merge and by free) runs once to record the state after
 * each step. Then, for every metadata write point n and every crash mode
 * (write dropped, torn to its first half, tail scrambled, written but not
 * flushed), the sequence runs
 * on a fresh pool with the writer stopped at write n; the pool is exported
 * and re-imported from the disk files, and its state must be exactly the
 * one before or after the interrupted operation - never anything else.
 * A version 1 pool's upgrade at import is crashed at both of its writes.
 * Also: a flipped byte in the newest slot makes the older one win, and with
 * both slots damaged import fails with a clear error (no silent empty pool).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "pool/format.h"
#include "pool/pool.h"
#include "testlib.h"

#define KiB 1024ull
#define MiB (1ull << 20)
#define CS (64 * KiB)
#define DIGEST_SPAN MiB /* bytes of each replica the data digest covers */

static char disk[2][512];
static const char *disks[2] = { disk[0], disk[1] };
static const char *UA = "aaaaaaaa-0000-4000-8000-00000000000a";
static const char *UB = "bbbbbbbb-0000-4000-8000-00000000000b";
static const char *UC = "cccccccc-0000-4000-8000-00000000000c";
static const char *UT = "dddddddd-0000-4000-8000-00000000000d";
static const char *CL = "c1000000-0000-4000-8000-0000000000c1";
static const char *S1 = "51000000-0000-4000-8000-000000000051";
static const char *S2 = "52000000-0000-4000-8000-000000000052";
static const char *S3 = "53000000-0000-4000-8000-000000000053";

static void fresh_files(void)
{
    for (int i = 0; i < 2; i++) {
        snprintf(disk[i], sizeof disk[i], "%s/crash%d.img", test_tmpdir(), i);
        test_make_file(disk[i], 64 * MiB);
    }
}

static int rw(const char *uuid, enum dp_bdev_io_type t, void *buf, uint64_t off, uint64_t len)
{
    struct dp_bdev *b = dp_bdev_get(uuid);
    if (!b)
        return -ENOENT;
    int ret = dp_bdev_rw_sync(b, t, buf, off, len);
    dp_bdev_put(b);
    return ret;
}

static int write_pattern(const char *uuid, uint64_t off, uint64_t len, int seed)
{
    uint8_t *buf = dp_buf_alloc(len);
    for (uint64_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 31 + i * 7 + 1);
    int ret = rw(uuid, DP_IO_WRITE, buf, off, len);
    dp_buf_free(buf);
    return ret;
}

/* The operation sequence; returns the index of the first failing op. */
#define NOPS 24
static int run_op(int k)
{
    switch (k) {
    case 0: return dp_replica_create("crash", UA, 4 * MiB, 1);
    case 1: return dp_replica_create("crash", UB, 80 * MiB, 0); /* slot > 8 KiB: tearable */
    case 2: return write_pattern(UA, CS, 8 * KiB, 2); /* thin allocation */
    case 3: return write_pattern(UA, 5 * CS + 4 * KiB, 4 * KiB, 3);
    case 4: return write_pattern(UB, 0, 16 * KiB, 4); /* no metadata */
    case 5: return dp_replica_resize(UA, 6 * MiB);
    case 6: return dp_replica_resize(UB, 84 * MiB); /* thick grow */
    case 7: return rw(UA, DP_IO_UNMAP, NULL, CS, CS); /* frees cluster 1 */
    case 8: return dp_replica_destroy(UB);
    case 9: return dp_replica_create("crash", UC, 1 * MiB, 1);
    case 10: return write_pattern(UC, 0, 4 * KiB, 10);
    case 11: return dp_snapshot_create(UA, S1, NULL);
    case 12: return write_pattern(UA, CS + 4 * KiB, 4 * KiB, 12); /* copy-on-first-write */
    case 13: return dp_replica_clone(CL, S1);
    case 14: return write_pattern(CL, 5 * CS + 512, 1024, 14);
    case 15: return dp_snapshot_create(CL, S2, "99999999-0000-4000-8000-000000000009");
    case 16: return write_pattern(CL, 0, 4 * KiB, 16); /* a hole everywhere in the chain */
    case 17: return dp_replica_revert(UA, S1);
    case 18: return dp_snapshot_destroy(S2); /* merge into CL */
    case 19: return dp_replica_destroy(CL);
    case 20: return dp_snapshot_destroy(S1); /* merge into UA */
    case 21: return dp_snapshot_create(UC, S3, NULL);
    case 22: return dp_replica_destroy(UC); /* S3 stays, without children */
    case 23: return dp_snapshot_destroy(S3); /* no children: freed */
    }
    return -EINVAL;
}
static const bool op_is_write[NOPS] = {
    [2] = true, [3] = true, [4] = true, [10] = true, [12] = true, [14] = true, [16] = true
};

static bool state_inc; /* with incarnations (random: only within one run) */

/* Metadata state: replicas and snapshots (sorted by uuid: the table order
 * may differ), their parents and usage. */
static void state(char *out, size_t len)
{
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("crash", &pi), 0);
    char lines[16][512];
    uint32_t n = 0, k = 0;
    dp_replica_info ri;
    while (n < 8 && dp_pool_replica_at("crash", n, &ri) == 0) {
        snprintf(lines[n], sizeof lines[n], "%s size=%llu thin=%u alloc=%llu parent=%s snap=%llu inc=%s;", ri.uuid,
                 (unsigned long long)ri.size_bytes, ri.thin, (unsigned long long)ri.allocated_bytes, ri.parent,
                 (unsigned long long)ri.snapshot_bytes, state_inc ? ri.incarnation : "-");
        n++;
    }
    CHECK_EQ(n, pi.replicas);
    dp_snapshot_info si;
    while (k < 8 && dp_pool_snapshot_at("crash", k, &si) == 0) {
        snprintf(lines[n + k], sizeof lines[n + k], "%s snapshot size=%llu ref=%llu parent=%s group=%s kids=%s;",
                 si.uuid, (unsigned long long)si.size_bytes, (unsigned long long)si.referenced_bytes, si.parent,
                 si.group, si.children);
        k++;
    }
    n += k;
    qsort(lines, n, sizeof lines[0], (int (*)(const void *, const void *))strcmp);
    size_t o = (size_t)snprintf(out, len, "used=%llu cap=%llu;", (unsigned long long)pi.used_bytes,
                                (unsigned long long)pi.capacity_bytes);
    for (uint32_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, len - o, "%s", lines[i]);
}

/* Data: crc of the first DIGEST_SPAN bytes of each replica and snapshot. */
static uint32_t digest(void)
{
    const char *u[] = { UA, UB, UC, CL, S1, S2, S3 };
    uint32_t crc = 0;
    uint8_t *buf = dp_buf_alloc(DIGEST_SPAN);
    for (int i = 0; i < 7; i++) {
        dp_replica_info ri;
        dp_snapshot_info si;
        uint64_t size;
        if (dp_replica_stat(u[i], &ri) == 0)
            size = ri.size_bytes;
        else if (dp_snapshot_stat(u[i], &si) == 0)
            size = si.size_bytes;
        else
            continue;
        uint64_t len = size < DIGEST_SPAN ? size : DIGEST_SPAN;
        CHECK_EQ(rw(u[i], DP_IO_READ, buf, 0, len), 0);
        crc = dp_crc32c(crc, u[i], 36);
        crc = dp_crc32c(crc, buf, len);
    }
    dp_buf_free(buf);
    return crc;
}

static void create_pool(void)
{
    char uuid[37];
    fresh_files();
    CHECK_EQ(dp_pool_create("crash", disks, 2, CS, uuid), 0);
}

static void reimport(void)
{
    char uuid[37];
    CHECK_EQ(dp_pool_export("crash"), 0);
    if (dp_pool_import("crash", disks, 2, uuid) != 0) {
        fprintf(stderr, "import failed: %s\n", dp_last_error());
        exit(1);
    }
}

static char ref_state[NOPS + 1][4096];
static uint32_t ref_digest[NOPS + 1];

TEST(reference_run)
{
    create_pool();
    state(ref_state[0], sizeof ref_state[0]);
    ref_digest[0] = digest();
    for (int k = 0; k < NOPS; k++) {
        CHECK_EQ(run_op(k), 0);
        state(ref_state[k + 1], sizeof ref_state[k + 1]);
        ref_digest[k + 1] = digest();
    }
    /* The recorded states are what import finds, too. */
    reimport();
    dp_pool_info oi;
    CHECK_EQ(dp_pool_stat("crash", &oi), 0);
    CHECK_EQ(oi.state, DP_POOL_ONLINE);
    CHECK_EQ(oi.reason[0], 0);
    char s[4096];
    state(s, sizeof s);
    CHECK(!strcmp(s, ref_state[NOPS]));
    CHECK_EQ(digest(), ref_digest[NOPS]);
    CHECK_EQ(dp_pool_export("crash"), 0);
}

static void crash_at(int mode, int n, bool *done)
{
    create_pool();
    int hit0 = dp_pool_fault_hit;
    dp_pool_fault_mode = mode;
    dp_pool_fault_after_writes = n;
    int j = 0;
    while (j < NOPS && run_op(j) == 0)
        j++;
    dp_pool_fault_after_writes = -1;
    if (dp_pool_fault_hit == hit0) {
        /* Past the last write point: the whole sequence ran. */
        CHECK_EQ(j, NOPS);
        CHECK_EQ(dp_pool_export("crash"), 0);
        *done = true;
        return;
    }
    CHECK(j < NOPS);
    CHECK(strlen(dp_last_error()) > 0);
    /* The failure is the pool's state in the data path, with the reason. */
    dp_pool_info fi;
    CHECK_EQ(dp_pool_stat("crash", &fi), 0);
    CHECK_EQ(fi.state, DP_POOL_FAILED);
    CHECK(strstr(fi.reason, "metadata"));
    reimport();
    char s[4096];
    state(s, sizeof s);
    uint32_t d = digest();
    const char *which;
    if (!strcmp(s, ref_state[j])) {
        which = "old";
        CHECK_EQ(d, ref_digest[j]);
    } else if (!strcmp(s, ref_state[j + 1])) {
        which = "new";
        /* An interrupted write may leave its cluster allocated but unwritten
         * (zeroes): then the data is the old data. */
        CHECK(d == ref_digest[j + 1] || (op_is_write[j] && d == ref_digest[j]));
    } else {
        fprintf(stderr, "mode %d write %d op %d: state after import is neither\n  %s\nnor\n  %s\nbut\n  %s\n", mode, n,
                j, ref_state[j], ref_state[j + 1], s);
        exit(1);
    }
    printf("    mode %d, crash at metadata write %d (op %d): %s state\n", mode, n, j, which);
    /* The re-imported pool commits again, and that survives too. */
    CHECK_EQ(dp_replica_create("crash", UT, 2 * MiB, 1), 0);
    CHECK_EQ(write_pattern(UT, CS, 4096, 9), 0);
    CHECK_EQ(dp_replica_destroy(UT), 0);
    reimport();
    char s2[4096];
    state(s2, sizeof s2);
    CHECK(!strcmp(s, s2));
    CHECK_EQ(dp_pool_export("crash"), 0);
}

TEST(crash_at_every_write)
{
    for (int mode = 0; mode < 4; mode++) {
        bool done = false;
        int n;
        for (n = 0; !done && n < 100; n++)
            crash_at(mode, n, &done);
        CHECK(done);
        CHECK(n >= 20); /* every op but the data-only one wrote metadata */
    }
}

/* Sequence numbers and offsets of the two slots on disk 0. */
static void slots(uint64_t off[2], uint64_t seq[2])
{
    int fd = open(disk[0], O_RDONLY);
    CHECK(fd >= 0);
    uint8_t lb[PF_LABEL_SIZE];
    CHECK(pread(fd, lb, sizeof lb, 0) == (ssize_t)sizeof lb);
    struct pf_label l;
    char err[256];
    CHECK_EQ(pf_label_decode(lb, &l, err, sizeof err), 0);
    for (int k = 0; k < 2; k++) {
        off[k] = l.meta_offset + (uint64_t)k * l.meta_slot_size;
        uint8_t h[PF_META_HDR_SIZE];
        CHECK(pread(fd, h, sizeof h, (off_t)off[k]) == (ssize_t)sizeof h);
        seq[k] = dp_get_le64(h + 16);
    }
    close(fd);
}

static void flip(uint64_t off)
{
    int fd = open(disk[0], O_RDWR);
    CHECK(fd >= 0);
    uint8_t b;
    CHECK(pread(fd, &b, 1, (off_t)off) == 1);
    b ^= 0x10;
    CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
    close(fd);
}

TEST(damaged_slots)
{
    char uuid[37];
    create_pool();
    for (int k = 0; k < 3; k++)
        CHECK_EQ(run_op(k), 0); /* three commits: A, B, A's allocation */
    CHECK_EQ(dp_pool_export("crash"), 0);
    uint64_t off[2], seq[2];
    slots(off, seq);
    int newest = seq[0] > seq[1] ? 0 : 1;
    CHECK_EQ(seq[newest], seq[!newest] + 1);

    /* The older slot damaged: nothing changes. */
    flip(off[!newest] + 100);
    CHECK_EQ(dp_pool_import("crash", disks, 2, uuid), 0);
    char s[4096];
    state(s, sizeof s);
    CHECK(!strcmp(s, ref_state[3]));
    CHECK_EQ(dp_pool_export("crash"), 0);
    flip(off[!newest] + 100);

    /* The newest damaged (a flipped byte deep in the map): the older wins. */
    flip(off[newest] + PF_META_HDR_SIZE + 3 * PF_META_REC_SIZE + 500);
    CHECK_EQ(dp_pool_import("crash", disks, 2, uuid), 0);
    state(s, sizeof s);
    CHECK(!strcmp(s, ref_state[2]));
    CHECK_EQ(digest(), ref_digest[2]);
    /* ... and the next commit goes over the damaged slot. */
    CHECK_EQ(write_pattern(UA, CS, 8 * KiB, 2), 0);
    state(s, sizeof s);
    CHECK(!strcmp(s, ref_state[3]));
    CHECK_EQ(dp_pool_export("crash"), 0);
    CHECK_EQ(dp_pool_import("crash", disks, 2, uuid), 0);
    state(s, sizeof s);
    CHECK(!strcmp(s, ref_state[3]));
    CHECK_EQ(digest(), ref_digest[3]);
    CHECK_EQ(dp_pool_export("crash"), 0);

    /* Both damaged: import refuses, naming both slots; nothing is created. */
    slots(off, seq);
    flip(off[0] + 20);
    flip(off[1] + 70);
    int ret = dp_pool_import("crash", disks, 2, uuid);
    CHECK_EQ(ret, -EIO);
    const char *e = dp_last_error();
    CHECK(strstr(e, "no valid metadata") && strstr(e, "slot A") && strstr(e, "slot B"));
    CHECK(strstr(e, "checksum"));
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("crash", &pi), -ENOENT);
    /* A damaged label is reported as such. */
    flip(300);
    ret = dp_pool_import("crash", disks, 2, uuid);
    CHECK_EQ(ret, -EINVAL);
    CHECK(strstr(dp_last_error(), "checksum"));
    CHECK(strstr(dp_last_error(), "crash0.img"));
}

static uint32_t slot_version(int k)
{
    uint64_t off[2], seq[2];
    slots(off, seq);
    int fd = open(disk[0], O_RDONLY);
    uint8_t h[16];
    CHECK(pread(fd, h, sizeof h, (off_t)off[k]) == (ssize_t)sizeof h);
    close(fd);
    return dp_get_le32(h + 8);
}

/* A version 1 pool, its import (the upgrade) crashed at each write: the next
 * import finds the same replicas and data, and ends with both slots v2. */
TEST(upgrade_crash)
{
    char uuid[37], s0[4096], s[4096];
    state_inc = true;
    for (int mode = 0; mode < 4; mode++)
        for (int n = 0; n < 3; n++) {
            pf_write_version = 1;
            create_pool();
            for (int k = 0; k < 4; k++)
                CHECK_EQ(run_op(k), 0);
            uint32_t d0 = digest();
            CHECK_EQ(dp_pool_export("crash"), 0);
            CHECK(slot_version(0) == 1 && slot_version(1) == 1);
            pf_write_version = PF_VERSION;
            dp_pool_fault_mode = mode;
            dp_pool_fault_after_writes = n;
            int hit0 = dp_pool_fault_hit;
            int ret = dp_pool_import("crash", disks, 2, uuid);
            dp_pool_fault_after_writes = -1;
            if (dp_pool_fault_hit == hit0) {
                CHECK_EQ(ret, 0); /* n past the upgrade's two writes */
                CHECK_EQ(dp_pool_export("crash"), 0);
            } else {
                CHECK_EQ(ret, -EIO);
                CHECK(strstr(dp_last_error(), "upgrading"));
            }
            CHECK_EQ(dp_pool_import("crash", disks, 2, uuid), 0);
            CHECK(slot_version(0) == 2 && slot_version(1) == 2);
            CHECK_EQ(digest(), d0);
            state(s0, sizeof s0);
            reimport();
            state(s, sizeof s);
            CHECK(!strcmp(s, s0)); /* incarnations were made durable by the upgrade */
            CHECK(strstr(s, UA) && strstr(s, UB));
            printf("    mode %d, crash at upgrade write %d: %s\n", mode, n, dp_pool_fault_hit == hit0 ? "none" : "ok");
            CHECK_EQ(dp_pool_export("crash"), 0);
        }
}

int main(void)
{
    printf("test_pool_crash\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(reference_run);
    RUN(crash_at_every_write);
    RUN(damaged_slots);
    RUN(upgrade_crash);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
