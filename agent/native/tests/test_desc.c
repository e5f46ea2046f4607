/* test_desc.c - the public descriptor API: open, submit, completion queues, stats, errors. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "reactor/reactor.h"
#include "testlib.h"

#define MiB (1024ull * 1024)
#define NREQ 64
#define BLK 4096

static char path[300], uri[320];

static uint8_t pat(uint64_t pos, uint32_t seed)
{
    return (uint8_t)(pos * 13 + seed + (pos >> 12));
}

/* Reap exactly n completions; every result must be 0; tags are marked in seen. */
static void reap(dp_cq *cq, int n, uint8_t *seen)
{
    uint64_t tags[16];
    int32_t res[16];
    while (n > 0) {
        int got = dp_cq_wait(cq, tags, res, 16, -1);
        CHECK(got > 0);
        for (int i = 0; i < got; i++) {
            CHECK_EQ(res[i], 0);
            CHECK_EQ(seen[tags[i]], 0);
            seen[tags[i]] = 1;
        }
        n -= got;
    }
}

/* Many concurrent writes at scattered offsets, then reads, with byte checks. */
static void concurrent_rw(const char *target)
{
    dp_desc *d;
    CHECK_EQ(dp_desc_open(target, &d), 0);
    uint64_t size = dp_desc_size(d);
    CHECK(size >= 16 * MiB);
    CHECK(dp_desc_block_size(d) == 512 || dp_desc_block_size(d) == 4096);
    dp_cq *cq = dp_cq_create();
    CHECK(cq);
    uint8_t *bufs = malloc(NREQ * (BLK * 2) + 1); /* plain malloc: like a JS Buffer, not page-aligned */
    uint8_t *base = bufs + 1;
    uint8_t seen[NREQ];
    uint64_t offs[NREQ];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NREQ; i++) {
            offs[i] = ((uint64_t)(i * 7919 + round * 104729) % (size / BLK - 2)) * BLK;
            offs[i] = offs[i] / (2 * BLK) * (2 * BLK); /* no overlaps */
        }
        /* distinct offsets only */
        for (int i = 0; i < NREQ; i++)
            for (int j = 0; j < i; j++)
                if (offs[j] == offs[i])
                    offs[i] = (uint64_t)-1;
        memset(seen, 0, sizeof seen);
        int n = 0;
        for (int i = 0; i < NREQ; i++) {
            if (offs[i] == (uint64_t)-1) {
                seen[i] = 1;
                continue;
            }
            uint8_t *b = base + (size_t)i * BLK * 2;
            for (int k = 0; k < BLK * 2; k++)
                b[k] = pat(offs[i] + (uint64_t)k, (uint32_t)round);
            CHECK_EQ(dp_io_submit(d, cq, DP_OP_WRITE, b, offs[i], BLK * 2, (uint64_t)i), 0);
            n++;
        }
        reap(cq, n, seen);
        CHECK_EQ(dp_io_submit(d, cq, DP_OP_FLUSH, NULL, 0, 0, 0), 0);
        uint8_t one[1] = { 0 };
        reap(cq, 1, one);
        memset(base, 0, NREQ * BLK * 2);
        memset(seen, 0, sizeof seen);
        n = 0;
        for (int i = 0; i < NREQ; i++) {
            if (offs[i] == (uint64_t)-1) {
                seen[i] = 1;
                continue;
            }
            CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, base + (size_t)i * BLK * 2, offs[i], BLK * 2, (uint64_t)i), 0);
            n++;
        }
        reap(cq, n, seen);
        for (int i = 0; i < NREQ; i++) {
            if (offs[i] == (uint64_t)-1)
                continue;
            uint8_t *b = base + (size_t)i * BLK * 2;
            for (int k = 0; k < BLK * 2; k++)
                if (b[k] != pat(offs[i] + (uint64_t)k, (uint32_t)round)) {
                    fprintf(stderr, "mismatch round %d req %d offset %llu byte %d\n", round, i,
                            (unsigned long long)offs[i], k);
                    exit(1);
                }
        }
    }
    /* unmap and write-zeroes read back as zeros */
    uint64_t o = offs[0] == (uint64_t)-1 ? 0 : offs[0];
    uint8_t s2[2] = { 0, 0 };
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_UNMAP, NULL, o, BLK, 0), 0);
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_WRITE_ZEROES, NULL, o + BLK, BLK, 1), 0);
    reap(cq, 2, s2);
    memset(base, 0xff, BLK * 2);
    s2[0] = 0;
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, base, o, BLK * 2, 0), 0);
    reap(cq, 1, s2);
    for (int k = 0; k < BLK * 2; k++)
        CHECK_EQ(base[k], 0);
    free(bufs);
    dp_desc_close(d);
    dp_cq_destroy(cq);
}

TEST(file_by_uri)
{
    concurrent_rw(uri);
}

TEST(file_by_plain_path)
{
    concurrent_rw(path);
}

TEST(malloc_by_uri)
{
    concurrent_rw("malloc:///desc?size_mb=32");
}

/* A bdev registered under a uuid, as the pool module does with replicas. */
TEST(registered_name)
{
    struct dp_bdev *m;
    CHECK_EQ(dp_bdev_open_uri("malloc:///backing?size_mb=16", &m), 0);
    /* register the same device a second time under a uuid-like name */
    CHECK(dp_bdev_get("6f1c0d3e-9a55-4c4e-8b1e-2f9d1b7a0c11") == NULL);
    struct dp_bdev alias = *m;
    memset(alias.name, 0, sizeof alias.name);
    strcpy(alias.name, "6f1c0d3e-9a55-4c4e-8b1e-2f9d1b7a0c11");
    alias.refs = 0;
    alias.registered = false;
    alias.auto_release = false;
    alias.reg_next = NULL;
    struct dp_bdev_ops ops = *m->ops;
    ops.destroy = NULL; /* the alias shares m's memory */
    alias.ops = &ops;
    CHECK_EQ(dp_bdev_register(&alias), 0);
    concurrent_rw(alias.name);
    concurrent_rw("bdev:///6f1c0d3e-9a55-4c4e-8b1e-2f9d1b7a0c11");
    dp_io_stats st;
    CHECK_EQ(dp_io_stat(alias.name, &st), 0);
    CHECK(st.writes > 0 && st.reads > 0 && st.flushes == 6 && st.unmaps == 4);
    CHECK_EQ(st.errors, 0);
    CHECK_EQ(st.bytes_written, st.writes * BLK * 2);
    dp_bdev_unregister(&alias);
    dp_bdev_put(m);
}

TEST(submit_rejects)
{
    dp_desc *d;
    CHECK_EQ(dp_desc_open("malloc:///rej?size_mb=1", &d), 0);
    dp_cq *cq = dp_cq_create();
    uint8_t buf[1024];
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, buf, 100, 512, 1), -EINVAL);
    CHECK(strstr(dp_last_error(), "multiples of the block size 512"));
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_WRITE, buf, 0, 700, 1), -EINVAL);
    CHECK(strstr(dp_last_error(), "malloc:///rej"));
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, buf, MiB, 512, 1), -ERANGE);
    CHECK(strstr(dp_last_error(), "beyond the device size 1048576"));
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, buf, MiB - 512, 1024, 1), -ERANGE);
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_UNMAP, NULL, UINT64_MAX - 511, 1024, 1), -ERANGE);
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, NULL, 0, 512, 1), -EINVAL);
    CHECK(strstr(dp_last_error(), "buffer"));
    CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, buf, 0, 0, 1), -EINVAL);
    CHECK(strstr(dp_last_error(), "length is 0"));
    CHECK_EQ(dp_io_submit(d, cq, 9, buf, 0, 512, 1), -EINVAL);
    CHECK(strstr(dp_last_error(), "op 9"));
    CHECK_EQ(dp_io_submit(NULL, cq, DP_OP_READ, buf, 0, 512, 1), -EINVAL);
    CHECK_EQ(dp_io_submit(d, NULL, DP_OP_READ, buf, 0, 512, 1), -EINVAL);
    /* nothing was queued */
    uint64_t tag;
    int32_t res;
    CHECK_EQ(dp_cq_wait(cq, &tag, &res, 1, 0), 0);
    CHECK_EQ(dp_cq_wait(cq, &tag, &res, 1, 20), 0); /* timeout: 0 reaped */
    CHECK_EQ(dp_cq_wait(NULL, &tag, &res, 1, 0), -EINVAL);
    CHECK_EQ(dp_cq_wait(cq, &tag, &res, 0, 0), -EINVAL);
    dp_io_stats st;
    CHECK_EQ(dp_io_stat("malloc:///rej?size_mb=1", &st), 0);
    CHECK_EQ(st.reads + st.writes + st.errors, 0);
    dp_desc_close(d);
    dp_cq_destroy(cq);
}

TEST(open_errors)
{
    dp_desc *d = (dp_desc *)1;
    CHECK_EQ(dp_desc_open("no-such-replica", &d), -ENOENT);
    CHECK(d == NULL);
    CHECK(strstr(dp_last_error(), "no-such-replica"));
    CHECK_EQ(dp_desc_open("", &d), -EINVAL);
    CHECK_EQ(dp_desc_open(NULL, &d), -EINVAL);
    CHECK_EQ(dp_desc_open("uring:///definitely/not/here", &d), -ENOENT);
    CHECK(strstr(dp_last_error(), "/definitely/not/here"));
    CHECK_EQ(dp_desc_open("malloc:///x?size_mb=zero", &d), -EINVAL);
    CHECK(strstr(dp_last_error(), "size_mb"));
    CHECK_EQ(dp_desc_open("gopher://x", &d), -EINVAL);
    CHECK(strstr(dp_last_error(), "gopher"));
    dp_io_stats st;
    CHECK_EQ(dp_io_stat("nothing-here", &st), -ENOENT);
    CHECK(strstr(dp_last_error(), "nothing-here"));
    CHECK_EQ(dp_desc_size(NULL), 0);
    CHECK_EQ(dp_desc_block_size(NULL), 0);
    dp_desc_close(NULL);
    dp_cq_destroy(NULL);
    dp_cq_wake(NULL);
}

/* Errors set on another thread (koffi's .async workers) reach dp_last_error(). */
static void *fail_elsewhere(void *arg)
{
    dp_desc *d;
    CHECK_EQ(dp_desc_open("missing-on-worker", &d), -ENOENT);
    return NULL;
}

TEST(last_error_across_threads)
{
    CHECK(strlen(dp_last_error()) > 0); /* consumed, from open_errors */
    pthread_t t;
    pthread_create(&t, NULL, fail_elsewhere, NULL);
    pthread_join(t, NULL);
    CHECK(strstr(dp_last_error(), "missing-on-worker"));
}

struct waiter_arg {
    dp_cq *cq;
    int ret;
};

static void *blocked_waiter(void *p)
{
    struct waiter_arg *w = p;
    uint64_t tag;
    int32_t res;
    w->ret = dp_cq_wait(w->cq, &tag, &res, 1, -1);
    return NULL;
}

TEST(cq_wake_interrupts_wait)
{
    dp_cq *cq = dp_cq_create();
    struct waiter_arg w = { cq, 1 };
    pthread_t t;
    pthread_create(&t, NULL, blocked_waiter, &w);
    dp_cq_wake(cq);
    pthread_join(t, NULL);
    CHECK_EQ(w.ret, -EINTR);
    /* a wake before the wait is not lost either */
    dp_cq_wake(cq);
    uint64_t tag;
    int32_t res;
    CHECK_EQ(dp_cq_wait(cq, &tag, &res, 1, -1), -EINTR);
    CHECK_EQ(dp_cq_wait(cq, &tag, &res, 1, 0), 0);
    dp_cq_destroy(cq);
}

/* close waits for outstanding I/O; the cq grows past its first size. */
TEST(close_waits_for_outstanding)
{
    dp_desc *d;
    CHECK_EQ(dp_desc_open(uri, &d), 0);
    dp_cq *cq = dp_cq_create();
    enum { N = 1000 };
    uint8_t *buf = dp_buf_alloc(4096);
    for (int i = 0; i < N; i++)
        CHECK_EQ(dp_io_submit(d, cq, DP_OP_READ, buf, (uint64_t)(i % 64) * 4096, 4096, (uint64_t)i), 0);
    dp_desc_close(d);
    uint64_t tags[N];
    int32_t res[N];
    CHECK_EQ(dp_cq_wait(cq, tags, res, N, 0), N);
    for (int i = 0; i < N; i++)
        CHECK_EQ(res[i], 0);
    dp_buf_free(buf);
    dp_cq_destroy(cq);
}

int main(void)
{
    printf("test_desc\n");
    dp_desc *d;
    CHECK_EQ(dp_desc_open("malloc:///early?size_mb=1", &d), -ENODEV);
    CHECK(strstr(dp_last_error(), "dp_init"));
    CHECK_EQ(dp_init(2), 0);
    snprintf(path, sizeof path, "%s/desc.img", test_tmpdir());
    snprintf(uri, sizeof uri, "uring://%s", path);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 32 * MiB), 0);
    close(fd);

    RUN(file_by_uri);
    RUN(file_by_plain_path);
    RUN(malloc_by_uri);
    RUN(registered_name);
    RUN(submit_rejects);
    RUN(open_errors);
    RUN(last_error_across_threads);
    RUN(cq_wake_interrupts_wait);
    RUN(close_waits_for_outstanding);

    dp_fini();
    unlink(path);
    CHECK_EQ(rmdir(test_tmpdir()), 0);
    return 0;
}
