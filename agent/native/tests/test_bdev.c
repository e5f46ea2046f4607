/* test_bdev.c - the bdev layer: uring files, malloc disks, URIs, registry, validation. */
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

static char path_a[300], path_shm[300], uri_a[320];

static int all_zero(const uint8_t *buf, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (buf[i])
            return 0;
    return 1;
}

/* Write patterns at many offsets and sizes, then read them all back. */
static void pattern_test(struct dp_bdev *b, bool aligned_mem)
{
    static const uint64_t offs[] = { 0, 512, 4096, 65536 - 512, 1 * MiB + 1536, 3 * MiB, 8 * MiB - 8192 };
    static const uint64_t lens[] = { 512, 4096, 1536, 131072, 4096, 1 * MiB, 8192 };
    uint8_t *mem = dp_buf_alloc(1 * MiB + 4096);
    uint8_t *buf = aligned_mem ? mem : mem + 8; /* a JS Buffer is not page-aligned */
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        test_fill(buf, lens[i], offs[i], 7);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, offs[i], lens[i]), 0);
    }
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memset(buf, 0xee, lens[i]);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, offs[i], lens[i]), 0);
        CHECK(test_check_fill(buf, lens[i], offs[i], 7));
    }
    /* Untouched space between them reads as zeros. */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 2 * MiB, 4096), 0);
    CHECK(all_zero(buf, 4096));
    dp_buf_free(mem);
}

TEST(uring_file_patterns)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri_a, &b), 0);
    CHECK_EQ(b->size, 16 * MiB);
    CHECK(b->block_size == 512 || b->block_size == 4096);
    printf("    %s: block size %u\n", b->name, b->block_size);
    pattern_test(b, true);
    pattern_test(b, false);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
    dp_bdev_put(b);
}

TEST(uring_tmpfs_falls_back_to_buffered)
{
    struct dp_bdev *b;
    char uri[400];
    snprintf(uri, sizeof uri, "aio://%s", path_shm);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK_EQ(b->block_size, 512);
    pattern_test(b, false);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
    dp_bdev_put(b);
}

static void unmap_and_zeroes(const char *uri)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *buf = dp_buf_alloc(2 * MiB);
    test_fill(buf, 2 * MiB, 0, 3);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 4 * MiB, 2 * MiB), 0);
    /* unmap an unaligned-to-page middle piece, write zeroes over another */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 4 * MiB + 512, 8192 + 1024), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 5 * MiB, 1 * MiB - 4096), 0);
    /* twice: the second time takes the remembered path */
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 5 * MiB, 4096), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 5 * MiB + 8192, 4096), 0);
    memset(buf, 0xee, 2 * MiB);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, 4 * MiB, 2 * MiB), 0);
    CHECK(test_check_fill(buf, 512, 0, 3));
    CHECK(all_zero(buf + 512, 8192 + 1024));
    CHECK(test_check_fill(buf + 512 + 9216, 1 * MiB - 512 - 9216, 512 + 9216, 3));
    CHECK(all_zero(buf + 1 * MiB, 1 * MiB - 4096));
    CHECK(test_check_fill(buf + 2 * MiB - 4096, 4096, 2 * MiB - 4096, 3));
    dp_buf_free(buf);
    dp_io_stats st;
    CHECK_EQ(dp_io_stat(uri, &st), 0);
    CHECK(st.unmaps >= 4);
    dp_bdev_put(b);
}

TEST(uring_unmap_and_write_zeroes)
{
    unmap_and_zeroes(uri_a);
}

TEST(tmpfs_unmap_and_write_zeroes)
{
    unmap_and_zeroes(path_shm); /* tmpfs refuses ZERO_RANGE: a hole is punched instead */
}

TEST(malloc_unmap_and_write_zeroes)
{
    unmap_and_zeroes("malloc:///zeroes?size_mb=8");
}

TEST(same_file_same_bdev)
{
    struct dp_bdev *a, *b, *c;
    char uri[400], dotted[400];
    snprintf(uri, sizeof uri, "aio://%s", path_a);
    CHECK_EQ(dp_bdev_open_uri(uri_a, &a), 0);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    CHECK_EQ(dp_bdev_open_uri(path_a, &c), 0);
    CHECK(a == b && b == c);
    CHECK_EQ(a->refs, 4); /* registry + three openers */
    snprintf(dotted, sizeof dotted, "%s/../%s", test_tmpdir(), strrchr(test_tmpdir(), '/') + 1);
    strcat(dotted, strrchr(path_a, '/'));
    struct dp_bdev *d;
    CHECK_EQ(dp_bdev_open_uri(dotted, &d), 0);
    CHECK(d == a);
    dp_bdev_put(d);
    dp_bdev_put(c);
    dp_bdev_put(b);
    CHECK_EQ(a->refs, 2);
    CHECK(dp_bdev_get(a->name) == a);
    dp_bdev_put(a);
    dp_bdev_put(a); /* the last opener: unregistered and closed */
    CHECK(dp_bdev_get(uri_a) == NULL);
}

TEST(bad_uris)
{
    struct dp_bdev *b;
    char missing[400];
    snprintf(missing, sizeof missing, "uring://%s/nope", test_tmpdir());
    CHECK_EQ(dp_bdev_open_uri(missing, &b), -ENOENT);
    CHECK(strstr(dp_get_error(), "/nope"));
    CHECK(access(missing + 8, F_OK) != 0); /* not created */

    CHECK_EQ(dp_bdev_open_uri("uring://relative/path", &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "absolute"));
    CHECK_EQ(dp_bdev_open_uri("relative/path", &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "absolute path"));
    CHECK_EQ(dp_bdev_open_uri("", &b), -EINVAL);
    CHECK_EQ(dp_bdev_open_uri("ftp://x/y", &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "unknown URI scheme 'ftp'"));
    CHECK_EQ(dp_bdev_open_uri(test_tmpdir(), &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "not a regular file or block device"));
    CHECK_EQ(dp_bdev_open_uri("/dev/null", &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "/dev/null"));

    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty", test_tmpdir());
    test_make_file(empty, 100);
    CHECK_EQ(dp_bdev_open_uri(empty, &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "smaller than one block"));
    unlink(empty);

    static const char *bad_malloc[] = {
        "malloc:///m",
        "malloc:///m?size_mb=0",
        "malloc:///m?size_mb=abc",
        "malloc:///m?size_mb=",
        "malloc:///m?size_mb=-1",
        "malloc:///m?size_mb=99999999999999999999999",
        "malloc:///m?size_mb=999999999",
        "malloc:///m?size_mb",
        "malloc:///m?size_mb=1x",
    };
    for (size_t i = 0; i < sizeof bad_malloc / sizeof bad_malloc[0]; i++) {
        CHECK_EQ(dp_bdev_open_uri(bad_malloc[i], &b), -EINVAL);
        if (!strstr(dp_get_error(), "size_mb"))
            fprintf(stderr, "%s: %s\n", bad_malloc[i], dp_get_error());
        CHECK(strstr(dp_get_error(), "size_mb"));
    }
    CHECK_EQ(dp_bdev_open_uri("malloc:///m?size_mb=1&color=red", &b), -EINVAL);
    CHECK(strstr(dp_get_error(), "color"));
    CHECK_EQ(dp_bdev_open_uri("malloc:///?size_mb=1", &b), -EINVAL);
    CHECK_EQ(dp_bdev_open_uri("malloc:///a/b?size_mb=1", &b), -EINVAL);
    CHECK_EQ(dp_bdev_open_uri("malloc://host/m?size_mb=1", &b), -EINVAL);
    CHECK_EQ(dp_bdev_open_uri("bdev:///no-such-replica", &b), -ENOENT);
    CHECK(strstr(dp_get_error(), "no-such-replica"));
}

TEST(malloc_bdev)
{
    struct dp_bdev *a, *b;
    CHECK_EQ(dp_bdev_open_uri("malloc:///m0?size_mb=16", &a), 0);
    CHECK_EQ(a->size, 16 * MiB);
    CHECK_EQ(a->block_size, 512);
    CHECK(!strcmp(a->name, "malloc:///m0"));
    pattern_test(a, false);
    CHECK_EQ(dp_bdev_open_uri("malloc:///m0?size_mb=16", &b), 0);
    CHECK(a == b);
    dp_bdev_put(b);
    CHECK_EQ(dp_bdev_open_uri("malloc:///m0?size_mb=8", &b), -EEXIST);
    CHECK(strstr(dp_get_error(), "size_mb=16"));
    /* bdev:///name reaches any registered bdev by its name */
    CHECK_EQ(dp_bdev_open_uri("bdev:///malloc:///m0", &b), 0);
    CHECK(a == b);
    dp_bdev_put(b);
    dp_bdev_put(a);
    CHECK(dp_bdev_get("malloc:///m0") == NULL);
}

/* ---- asynchronous submission on the reactor -------------------------------- */

static void vectored_and_rejects(const char *uri)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    uint8_t *mem = dp_buf_alloc(64 * 1024);
    struct iovec wv[3] = { { mem + 3, 512 }, { mem + 1000, 8192 }, { mem + 20000, 1536 } };
    uint64_t off = 5 * MiB + 4096, len = 512 + 8192 + 1536;
    uint8_t *pat = dp_buf_alloc(len);
    test_fill(pat, len, off, 9);
    memcpy(wv[0].iov_base, pat, 512);
    memcpy(wv[1].iov_base, pat + 512, 8192);
    memcpy(wv[2].iov_base, pat + 512 + 8192, 1536);
    struct dp_bdev_io ios[8];
    int st[8];
    memset(ios, 0, sizeof ios);
    ios[0] = (struct dp_bdev_io){
        .type = DP_IO_WRITE, .flags = DP_IO_FUA, .offset = off, .length = len, .iov = wv, .iovcnt = 3
    };
    test_run_ios(b, ios, 1, st);
    CHECK_EQ(st[0], 0);

    uint8_t *rd = mem + 32768 + 1;
    struct iovec rv[2] = { { rd, 4096 }, { rd + 4096 + 7, len - 4096 } };
    memset(ios, 0, sizeof ios);
    ios[0] = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = off, .length = len, .iov = rv, .iovcnt = 2 };
    test_run_ios(b, ios, 1, st);
    CHECK_EQ(st[0], 0);
    CHECK(!memcmp(rd, pat, 4096));
    CHECK(!memcmp(rd + 4096 + 7, pat + 4096, len - 4096));

    /* Rejected by the generic layer, completed later, never inline. */
    struct iovec one = { mem, 4096 };
    memset(ios, 0, sizeof ios);
    ios[0] = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = 100, .length = 4096, .iov = &one, .iovcnt = 1 };
    ios[1] = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = 0, .length = 4000, .iov = &one, .iovcnt = 1 };
    ios[2] = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = b->size, .length = 4096, .iov = &one, .iovcnt = 1 };
    ios[3] = (struct dp_bdev_io){ .type = DP_IO_UNMAP, .offset = b->size - 512, .length = 1024 };
    ios[4] = (struct dp_bdev_io){ .type = DP_IO_READ, .offset = 0, .length = 8192, .iov = &one, .iovcnt = 1 };
    ios[5] = (struct dp_bdev_io){
        .type = DP_IO_WRITE, .offset = UINT64_MAX - 511, .length = 4096, .iov = &one, .iovcnt = 1
    };
    ios[6] = (struct dp_bdev_io){ .type = DP_IO_UNMAP, .offset = 0, .length = 0 };
    ios[7] = (struct dp_bdev_io){ .type = (enum dp_bdev_io_type)42 };
    dp_io_stats before, after;
    CHECK_EQ(dp_io_stat(b->name, &before), 0);
    test_run_ios(b, ios, 8, st);
    /* all are errors of the expected kinds */
    int einval = 0, erange = 0;
    for (int i = 0; i < 8; i++) {
        einval += st[i] == -EINVAL;
        erange += st[i] == -ERANGE;
    }
    CHECK_EQ(einval, 5);
    CHECK_EQ(erange, 3);
    CHECK_EQ(dp_io_stat(b->name, &after), 0);
    CHECK_EQ(after.errors - before.errors, 8);
    CHECK_EQ(after.reads, before.reads);
    dp_buf_free(pat);
    dp_buf_free(mem);
    dp_bdev_put(b);
}

TEST(uring_vectored_fua_and_rejects)
{
    vectored_and_rejects(uri_a);
}

TEST(tmpfs_vectored_fua_and_rejects)
{
    vectored_and_rejects(path_shm);
}

TEST(malloc_vectored_and_rejects)
{
    vectored_and_rejects("malloc:///vec?size_mb=16");
}

TEST(rw_sync_errors_name_the_bdev)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri(uri_a, &b), 0);
    uint8_t *buf = dp_buf_alloc(4096);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, buf, b->size, 4096), -ERANGE);
    CHECK(strstr(dp_get_error(), path_a));
    CHECK(strstr(dp_get_error(), "read"));
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, buf, 1, 512), -EINVAL);
    dp_buf_free(buf);
    dp_bdev_put(b);
}

/* A module's own bdev, registered by name like a replica. */
static int destroyed;
static void fake_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    dp_bdev_io_complete_deferred(io, -EIO);
}
static void fake_destroy(struct dp_bdev *bdev)
{
    destroyed++;
}
static const struct dp_bdev_ops fake_ops = { .submit = fake_submit, .destroy = fake_destroy };

TEST(registry_refcounts)
{
    struct dp_bdev fake = { .name = "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                            .size = MiB,
                            .block_size = 512,
                            .ops = &fake_ops,
                            .reactor = dp_reactor_get(0) };
    CHECK_EQ(dp_bdev_register(&fake), 0);
    struct dp_bdev dup = fake;
    dup.registered = false;
    CHECK_EQ(dp_bdev_register(&dup), -EEXIST);
    CHECK(strstr(dp_get_error(), fake.name));
    struct dp_bdev *g = dp_bdev_get(fake.name), *h;
    CHECK(g == &fake);
    CHECK_EQ(dp_bdev_open_uri("bdev:///1b4e28ba-2fa1-11d2-883f-0016d3cca427", &h), 0);
    CHECK(h == &fake);
    CHECK_EQ(fake.refs, 3);
    uint8_t *buf = dp_buf_alloc(512);
    CHECK_EQ(dp_bdev_rw_sync(g, DP_IO_READ, buf, 0, 512), -EIO);
    dp_buf_free(buf);
    dp_bdev_put(h);
    dp_bdev_unregister(&fake);
    CHECK(dp_bdev_get(fake.name) == NULL);
    CHECK_EQ(destroyed, 0); /* still open */
    dp_bdev_put(g);
    CHECK_EQ(destroyed, 1);
}

static int scheme_create(const char *uri, struct dp_bdev **out)
{
    static struct dp_bdev fk;
    memset(&fk, 0, sizeof fk);
    snprintf(fk.name, sizeof fk.name, "%s", uri);
    fk.size = MiB;
    fk.block_size = 512;
    fk.ops = &fake_ops;
    fk.reactor = dp_reactor_next();
    *out = &fk;
    return 0;
}

static const char *const test_schemes[] = { "test", NULL };
static struct dp_module test_module = { .name = "test", .schemes = test_schemes, .create = scheme_create };
DP_MODULE_REGISTER(test_module)

/* A module registered by its constructor opens its scheme; unknown schemes name the known ones. */
TEST(registered_scheme)
{
    struct dp_bdev *a, *b;
    destroyed = 0;
    CHECK_EQ(dp_bdev_open_uri("nope://x", &a), -EINVAL);
    CHECK(strstr(dp_last_error(), "test://") && strstr(dp_last_error(), "uring://"));
    CHECK_EQ(dp_bdev_open_uri("test://h:1/x", &a), 0);
    CHECK_EQ(dp_bdev_open_uri("test://h:1/x", &b), 0);
    CHECK(a == b);
    CHECK_EQ(a->refs, 3);
    dp_bdev_put(b);
    dp_bdev_put(a);
    CHECK_EQ(destroyed, 1);
}

struct sync_on_reactor {
    struct dp_bdev *b;
    int ret;
};

static void sync_on_reactor(void *p)
{
    struct sync_on_reactor *x = p;
    uint8_t buf[512];
    x->ret = dp_bdev_rw_sync(x->b, DP_IO_READ, buf, 0, 512);
}

TEST(rw_sync_refused_on_reactor)
{
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri("malloc:///r?size_mb=1", &b), 0);
    struct sync_on_reactor a = { b, 0 };
    dp_reactor_call(b->reactor, sync_on_reactor, &a);
    CHECK_EQ(a.ret, -EDEADLK);
    dp_bdev_put(b);
}

/* A real block device: a loop device over a file (needs root; skipped otherwise). */
TEST(block_device)
{
    char img[320], cmd[400], dev[64] = "", uri[100];
    snprintf(img, sizeof img, "%s/loop.img", test_tmpdir());
    test_make_file(img, 16 * MiB);
    snprintf(cmd, sizeof cmd, "losetup --find --show %s 2>/dev/null", img);
    FILE *f = geteuid() == 0 ? popen(cmd, "r") : NULL;
    if (f) {
        if (!fgets(dev, sizeof dev, f))
            dev[0] = 0;
        pclose(f);
    }
    dev[strcspn(dev, "\n")] = 0;
    if (!dev[0]) {
        printf("    skipped: cannot set up a loop device\n");
        unlink(img);
        return;
    }
    struct dp_bdev *b;
    snprintf(uri, sizeof uri, "uring://%s", dev);
    CHECK_EQ(dp_bdev_open_uri(uri, &b), 0);
    printf("    %s: size %llu, block size %u\n", dev, (unsigned long long)b->size, b->block_size);
    CHECK_EQ(b->size, 16 * MiB);
    CHECK_EQ(b->block_size, 512);
    pattern_test(b, false);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
    dp_bdev_put(b);
    unmap_and_zeroes(uri);
    snprintf(cmd, sizeof cmd, "losetup -d %s", dev);
    CHECK_EQ(system(cmd), 0);
    unlink(img);
}

int main(void)
{
    printf("test_bdev\n");
    struct dp_bdev *b;
    CHECK_EQ(dp_bdev_open_uri("malloc:///x?size_mb=1", &b), -ENODEV); /* before dp_init */
    CHECK_EQ(dp_init(2), 0);
    snprintf(path_a, sizeof path_a, "%s/disk-a.img", test_tmpdir());
    snprintf(uri_a, sizeof uri_a, "uring://%s", path_a);
    snprintf(path_shm, sizeof path_shm, "/dev/shm/dp-test-%d.img", (int)getpid());
    test_make_file(path_a, 16 * MiB);
    test_make_file(path_shm, 16 * MiB);

    RUN(uring_file_patterns);
    RUN(uring_tmpfs_falls_back_to_buffered);
    RUN(uring_unmap_and_write_zeroes);
    RUN(tmpfs_unmap_and_write_zeroes);
    RUN(malloc_unmap_and_write_zeroes);
    RUN(same_file_same_bdev);
    RUN(bad_uris);
    RUN(malloc_bdev);
    RUN(uring_vectored_fua_and_rejects);
    RUN(tmpfs_vectored_fua_and_rejects);
    RUN(malloc_vectored_and_rejects);
    RUN(rw_sync_errors_name_the_bdev);
    RUN(registry_refcounts);
    RUN(registered_scheme);
    RUN(rw_sync_refused_on_reactor);
    RUN(block_device);

    dp_fini();
    unlink(path_a);
    unlink(path_shm);
    CHECK_EQ(rmdir(test_tmpdir()), 0);
    return 0;
}
