/*
 * test_uring_cache.c - uring bdev cache modes (?cache=direct|buffered) and the
 * inline paths: tmpfs reads/writes and buffered writes done on the reactor.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "reactor/reactor.h"
#include "testlib.h"

#define MiB (1024ull * 1024)

static char path_disk[300], path_shm[300];

/* One I/O submitted on the bdev's reactor; its completion must come later. */
static int run_io(struct dp_bdev *b, struct dp_bdev_io *io)
{
    int st;
    test_run_ios(b, io, 1, &st);
    return st;
}

/* Vectored FUA and plain writes from unaligned memory, read back vectored. */
static void rw_checks(const char *uri)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *mem = dp_buf_alloc(1 * MiB);
    uint64_t len = 512 + 8192 + 1536 + 131072;
    uint8_t *pat = dp_buf_alloc(len);
    for (int fua = 0; fua < 2; fua++) {
        uint64_t off = (3 + (uint64_t)fua) * MiB + 4096;
        test_fill(pat, len, off, 5 + (uint32_t)fua);
        struct iovec wv[4] = { { mem + 3, 512 }, { mem + 1000, 8192 }, { mem + 20000, 1536 }, { mem + 30001, 131072 } };
        const uint8_t *p = pat;
        for (int i = 0; i < 4; i++) {
            memcpy(wv[i].iov_base, p, wv[i].iov_len);
            p += wv[i].iov_len;
        }
        struct dp_bdev_io io = {
            .type = DP_IO_WRITE, .flags = fua ? DP_IO_FUA : 0, .offset = off, .length = len, .iov = wv, .iovcnt = 4
        };
        CHECK_EQ(run_io(b, &io), 0);
        uint8_t *rd = mem + 600001;
        memset(rd, 0xee, len + 7);
        struct iovec rv[2] = { { rd, 4096 }, { rd + 4096 + 7, len - 4096 } };
        io = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = off, .length = len, .iov = rv, .iovcnt = 2 };
        CHECK_EQ(run_io(b, &io), 0);
        CHECK(!memcmp(rd, pat, 4096));
        CHECK(!memcmp(rd + 4096 + 7, pat + 4096, len - 4096));
        /* and through the synchronous path (one aligned buffer) */
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, mem, off, len), 0);
        CHECK(!memcmp(mem, pat, len));
    }
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
    /* The data is in the file itself (read with plain pread). */
    const char *path = strstr(uri, ":///") ? strstr(uri, ":///") + 3 : uri;
    char plain[300];
    snprintf(plain, sizeof plain, "%.*s", (int)strcspn(path, "?"), path);
    int fd = open(plain, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, mem, len, (off_t)(4 * MiB + 4096)), (long long)len);
    close(fd);
    CHECK(!memcmp(mem, pat, len));
    dp_buf_free(pat);
    dp_buf_free(mem);
    dp_bdev_put(b);
}

TEST(buffered_file)
{
    char uri[400];
    snprintf(uri, sizeof uri, "uring://%s?cache=buffered", path_disk);
    rw_checks(uri);
}

TEST(direct_file)
{
    char uri[400];
    snprintf(uri, sizeof uri, "aio://%s?cache=direct", path_disk);
    rw_checks(uri);
}

TEST(tmpfs_inline)
{
    char uri[400];
    snprintf(uri, sizeof uri, "uring://%s", path_shm);
    rw_checks(uri);
    /* cache=direct is accepted on tmpfs (memory is the store either way) */
    snprintf(uri, sizeof uri, "uring://%s?cache=direct", path_shm);
    rw_checks(uri);
}

/* The file shrinks under an open device: reads past its new end fail. */
static void shrunk(const char *uri, const char *path)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK_EQ(truncate(path, 1 * MiB), 0);
    uint8_t *buf = dp_buf_alloc(8192);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 2 * MiB, 8192), -EIO);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 1 * MiB - 4096, 8192), -EIO); /* partly there */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 0, 4096), 0);
    dp_buf_free(buf);
    dp_bdev_put(b);
    test_make_file(path, 16 * MiB);
}

TEST(shrunk_file_reads_fail)
{
    char uri[400];
    snprintf(uri, sizeof uri, "uring://%s", path_shm);
    shrunk(uri, path_shm);
    snprintf(uri, sizeof uri, "uring://%s?cache=buffered", path_disk);
    shrunk(uri, path_disk);
}

TEST(bad_options)
{
    struct dp_bdev *b;
    char uri[400];
    snprintf(uri, sizeof uri, "uring://%s?cache=writeback", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "cache='writeback'"));
    CHECK(strstr(dp_get_error(), "'direct' or 'buffered'"));
    snprintf(uri, sizeof uri, "uring://%s?cache=", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -EINVAL);
    snprintf(uri, sizeof uri, "uring://%s?cache=buffered&color=red", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "unknown option 'color=red'"));
    snprintf(uri, sizeof uri, "uring://%s?cachee=direct", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "unknown option"));
    /* an empty query and empty items are fine */
    snprintf(uri, sizeof uri, "uring://%s?", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    dp_bdev_put(b);
    snprintf(uri, sizeof uri, "uring://%s?&cache=direct&", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    dp_bdev_put(b);
    snprintf(uri, sizeof uri, "uring://%s/nope?cache=direct", test_tmpdir());
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -ENOENT);
}

TEST(one_file_one_mode)
{
    struct dp_bdev *a, *b;
    char uri[400];
    snprintf(uri, sizeof uri, "uring://%s?cache=buffered", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &a), 0);
    /* the same file, mode unsaid: the open device */
    CHECK_EQ(dp_bdev_open_uri(path_disk, &b), 0);
    CHECK(a == b);
    dp_bdev_put(b);
    /* the same file in the other mode: refused, naming both */
    snprintf(uri, sizeof uri, "aio://%s?cache=direct", path_disk);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -EBUSY);
    CHECK(strstr(dp_get_error(), "already open with cache=buffered"));
    CHECK_EQ(a->refs, 2); /* registry + a: the refused open took nothing */
    dp_bdev_put(a);
}

int main(void)
{
    printf("test_uring_cache\n");
    CHECK_EQ(dp_init(1), 0);
    snprintf(path_disk, sizeof path_disk, "%s/disk.img", test_tmpdir());
    snprintf(path_shm, sizeof path_shm, "/dev/shm/dp-test-cache-%d.img", (int)getpid());
    test_make_file(path_disk, 16 * MiB);
    test_make_file(path_shm, 16 * MiB);

    RUN(buffered_file);
    RUN(direct_file);
    RUN(tmpfs_inline);
    RUN(shrunk_file_reads_fail);
    RUN(bad_options);
    RUN(one_file_one_mode);

    dp_fini();
    unlink(path_disk);
    unlink(path_shm);
    CHECK_EQ(rmdir(test_tmpdir()), 0);
    return 0;
}
