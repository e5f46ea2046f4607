/* pool_testlib.h - helpers shared by the pool tests (test_pool*.c,
 * test_snapshot.c): a disk file for a pool, error checks, synchronous I/O
 * through the bdev layer, byte checks and the pattern generator. */
#ifndef DP_POOL_TESTLIB_H
#define DP_POOL_TESTLIB_H

#include "bdev/bdev.h"
#include "datapath.h"
#include "testlib.h"

#define MiB (1ull << 20)

/* A fresh, sparse file of size bytes named file in the test's tmpdir. */
static inline void pool_disk(char *path, size_t cap, const char *file, uint64_t size)
{
    snprintf(path, cap, "%s/%s", test_tmpdir(), file);
    test_make_file(path, size);
}

/* ret is code and the last error contains needle; else the test fails. */
static inline void expect_err(int ret, int code, const char *needle)
{
    const char *e = dp_last_error();
    if (ret != code || !strstr(e, needle)) {
        fprintf(stderr, "expected %d containing '%s', got %d: '%s'\n", code, needle, ret, e);
        exit(1);
    }
}

/* One synchronous read or write of the device named uuid (it must exist). */
static inline int rw(const char *uuid, enum dp_bdev_io_type t, void *buf, uint64_t off, uint64_t len)
{
    struct dp_bdev *b = dp_bdev_get(uuid);
    CHECK(b);
    int ret = dp_bdev_rw_sync(b, t, buf, off, len);
    dp_bdev_put(b);
    return ret;
}

/* Bytes [0, size) of device uuid equal want. */
static inline void same_bytes(const char *uuid, const uint8_t *want, uint64_t size)
{
    uint8_t *buf = dp_buf_alloc(size);
    CHECK_EQ(rw(uuid, DP_IO_READ, buf, 0, size), 0);
    CHECK(memcmp(buf, want, size) == 0);
    dp_buf_free(buf);
}

/* xorshift64: the tests' reproducible data and offsets. */
static inline uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline dp_replica_info rstat(const char *uuid)
{
    dp_replica_info ri;
    CHECK_EQ(dp_replica_stat(uuid, &ri), 0);
    return ri;
}

static inline uint64_t pool_used(const char *pool)
{
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat(pool, &pi), 0);
    return pi.used_bytes;
}

/* Export the pool and import it again from its one disk. */
static inline void pool_reimport(const char *pool, const char **disks, char uuid[37])
{
    CHECK_EQ(dp_pool_export(pool), 0);
    CHECK_EQ(dp_pool_import(pool, disks, 1, uuid), 0);
}

#endif
