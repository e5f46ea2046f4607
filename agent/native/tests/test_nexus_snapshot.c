/*
 * test_nexus_snapshot.c - pausing a nexus and its consistent snapshot
 * (nexus/pause.c, nexus/snapshot.c).
 *
 * Children are a test-only "sb" bdev: RAM, with the snapshot ops (a
 * snapshot is a copy of the data at that moment), an injectable snapshot
 * failure and a slow snapshot (for the deadline). Two reactors, so the
 * nexus and its children sit on different threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "testlib.h"

#define MiB (1024ull * 1024)
#define NXSIZE (4 * MiB)
#define CHSIZE (NXSIZE + NX_HDR_SIZE)
#define SB_MAXSNAP 4

struct sb {
    struct dp_bdev bdev;
    uint8_t *data;
    pthread_mutex_t lock; /* snapshots (control threads) */
    char snap_uuid[SB_MAXSNAP][37];
    char snap_group[SB_MAXSNAP][37];
    uint8_t *snap_data[SB_MAXSNAP];
    atomic_int fail_snap; /* snapshot_create fails with -EIO */
    atomic_int lost_answer; /* snapshot_create makes it, then answers -ETIMEDOUT (the reply was lost) */
    atomic_int snap_delay_ms; /* snapshot_create sleeps this long after copying */
    atomic_ulong writes, flushes;
    atomic_int park_writes; /* data-region writes wait for sb_release (a child that does not answer) */
    struct dp_bdev_io *parked[64]; /* reactor thread only */
    int nparked;
};

static void sb_do(struct sb *t, struct dp_bdev_io *io);

static void sb_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct sb *t = bdev->ctx;
    if (io->type == DP_IO_WRITE && io->offset >= NX_HDR_SIZE && atomic_load(&t->park_writes)) {
        CHECK(t->nparked < 64);
        t->parked[t->nparked++] = io;
        return;
    }
    sb_do(t, io);
}

static void sb_release_msg(void *a)
{
    struct sb *t = a;
    atomic_store(&t->park_writes, 0);
    for (int i = 0; i < t->nparked; i++)
        sb_do(t, t->parked[i]);
    t->nparked = 0;
}

static void sb_do(struct sb *t, struct dp_bdev_io *io)
{
    uint8_t *p = t->data + io->offset;
    switch (io->type) {
    case DP_IO_READ:
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
        break;
    case DP_IO_WRITE:
        atomic_fetch_add(&t->writes, 1);
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
        break;
    case DP_IO_FLUSH: atomic_fetch_add(&t->flushes, 1); break;
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES: memset(p, 0, io->length); break;
    }
    dp_bdev_io_complete_deferred(io, 0);
}

static int sb_count(struct sb *t)
{
    pthread_mutex_lock(&t->lock);
    int n = 0;
    for (int i = 0; i < SB_MAXSNAP; i++)
        n += t->snap_data[i] != NULL;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static int sb_snap_create(struct dp_bdev *bdev, const char *uuid, const char *group)
{
    struct sb *t = bdev->ctx;
    if (atomic_load(&t->fail_snap)) {
        dp_set_error("'%s': injected snapshot failure", bdev->name);
        return -EIO;
    }
    pthread_mutex_lock(&t->lock);
    int slot = -1;
    for (int i = 0; i < SB_MAXSNAP; i++) {
        if (t->snap_data[i] && !strcmp(t->snap_uuid[i], uuid)) {
            pthread_mutex_unlock(&t->lock);
            dp_set_error("'%s': snapshot '%s' exists", bdev->name, uuid);
            return -EEXIST;
        }
        if (!t->snap_data[i] && slot < 0)
            slot = i;
    }
    CHECK(slot >= 0);
    t->snap_data[slot] = malloc(bdev->size);
    CHECK(t->snap_data[slot]);
    memcpy(t->snap_data[slot], t->data, bdev->size); /* writers are quiesced by the caller */
    snprintf(t->snap_uuid[slot], 37, "%s", uuid);
    snprintf(t->snap_group[slot], 37, "%s", group);
    pthread_mutex_unlock(&t->lock);
    int delay = atomic_load(&t->snap_delay_ms);
    if (delay)
        usleep((useconds_t)delay * 1000);
    if (atomic_load(&t->lost_answer)) {
        dp_set_error("'%s': no answer from the target (injected)", bdev->name);
        return -ETIMEDOUT;
    }
    return 0;
}

static int sb_snap_destroy(struct dp_bdev *bdev, const char *uuid)
{
    struct sb *t = bdev->ctx;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < SB_MAXSNAP; i++)
        if (t->snap_data[i] && !strcmp(t->snap_uuid[i], uuid)) {
            free(t->snap_data[i]);
            t->snap_data[i] = NULL;
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
    pthread_mutex_unlock(&t->lock);
    dp_set_error("'%s': no snapshot '%s'", bdev->name, uuid);
    return -ENOENT;
}

/* The data of snapshot `uuid` (NULL if none). */
static const uint8_t *sb_snap(struct sb *t, const char *uuid)
{
    const uint8_t *d = NULL;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < SB_MAXSNAP; i++)
        if (t->snap_data[i] && !strcmp(t->snap_uuid[i], uuid))
            d = t->snap_data[i];
    pthread_mutex_unlock(&t->lock);
    return d;
}

static void sb_destroy(struct dp_bdev *bdev)
{
    struct sb *t = bdev->ctx;
    for (int i = 0; i < SB_MAXSNAP; i++)
        free(t->snap_data[i]);
    munmap(t->data, bdev->size);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static const struct dp_bdev_ops sb_ops = {
    .submit = sb_submit, .destroy = sb_destroy, .snapshot_create = sb_snap_create, .snapshot_destroy = sb_snap_destroy
};

static struct sb *sb_new(const char *name, const char *ident, uint32_t reactor)
{
    struct sb *t = calloc(1, sizeof *t);
    CHECK(t);
    t->data = mmap(NULL, CHSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(t->data != MAP_FAILED);
    pthread_mutex_init(&t->lock, NULL);
    snprintf(t->bdev.name, sizeof t->bdev.name, "%s", name);
    snprintf(t->bdev.ident, sizeof t->bdev.ident, "%s", ident);
    t->bdev.size = CHSIZE;
    t->bdev.block_size = 512;
    t->bdev.ops = &sb_ops;
    t->bdev.ctx = t;
    t->bdev.reactor = dp_reactor_get(reactor % dp_reactor_count());
    CHECK_EQ(dp_bdev_register(&t->bdev), 0);
    return t;
}

/* ---- helpers ------------------------------------------------------------------------ */

static const char *NX = "51515151-2222-4333-8444-555555555555";
static const char *G1 = "6a6a6a6a-1111-4222-8333-444444444444";
static const char *G2 = "6a6a6a6a-1111-4222-8333-444444444445";
static const char *NAMES[3] = { "sb-a", "sb-b", "sb-c" };
static const char *URIS[3] = { "bdev:///sb-a", "bdev:///sb-b", "bdev:///sb-c" };
static const char *IDENTS[3] = { "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002",
                                 "aaaaaaaa-0000-4000-8000-000000000003" };
static struct sb *kids[3];

static void setup(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        kids[i] = sb_new(NAMES[i], IDENTS[i], 1 + i);
    int rc = dp_nexus_create(NX, NXSIZE, URIS, n, 0);
    if (rc)
        fprintf(stderr, "create: %s\n", dp_last_error());
    CHECK_EQ(rc, 0);
}

static void teardown(uint32_t n)
{
    CHECK_EQ(dp_nexus_destroy(NX, DP_NEXUS_RELEASE), 0);
    for (uint32_t i = 0; i < n; i++)
        dp_bdev_unregister(&kids[i]->bdev);
}

static void fill(uint8_t *buf, uint64_t len, uint64_t off, uint32_t seed)
{
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t v = ((off + i) * 0x9E3779B97F4A7C15ull) ^ seed;
        memcpy(buf + i, &v, 8);
    }
}

static int nx_write(struct dp_bdev *b, uint64_t off, uint64_t len, uint32_t seed)
{
    uint8_t *buf = dp_buf_alloc(len);
    fill(buf, len, off, seed);
    int rc = dp_bdev_rw_sync(b, DP_IO_WRITE, buf, off, len);
    dp_buf_free(buf);
    return rc;
}

static int nx_check(struct dp_bdev *b, uint64_t off, uint64_t len, uint32_t seed)
{
    uint8_t *buf = dp_buf_alloc(len), *want = dp_buf_alloc(len);
    fill(want, len, off, seed);
    int rc = dp_bdev_rw_sync(b, DP_IO_READ, buf, off, len);
    if (rc == 0 && memcmp(buf, want, len))
        rc = 1;
    dp_buf_free(buf);
    dp_buf_free(want);
    return rc;
}

/* An asynchronous write to the nexus: submitted from this thread, completion flags `done`. */
struct awrite {
    struct dp_bdev_io io;
    struct iovec iov;
    uint8_t *buf;
    atomic_int done;
    int status;
};

static void awrite_cb(struct dp_bdev_io *io, int status)
{
    struct awrite *w = (struct awrite *)io;
    w->status = status;
    atomic_store(&w->done, 1);
}

static void awrite_submit(struct awrite *w, struct dp_bdev *b, uint64_t off, uint64_t len, uint32_t seed)
{
    memset(w, 0, sizeof *w);
    w->buf = dp_buf_alloc(len);
    fill(w->buf, len, off, seed);
    w->iov.iov_base = w->buf;
    w->iov.iov_len = len;
    w->io.type = DP_IO_WRITE;
    w->io.offset = off;
    w->io.length = len;
    w->io.iov = &w->iov;
    w->io.iovcnt = 1;
    w->io.cb = awrite_cb;
    dp_bdev_submit(b, &w->io);
}

static void awrite_wait(struct awrite *w)
{
    while (!atomic_load(&w->done))
        usleep(1000);
    CHECK_EQ(w->status, 0);
    dp_buf_free(w->buf);
}

static int pause_nx(uint32_t deadline_ms)
{
    pthread_mutex_lock(&nx_ctl_lock);
    int rc = nx_pause(nx_find(NX), deadline_ms);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

static int resume_nx(void)
{
    pthread_mutex_lock(&nx_ctl_lock);
    int rc = nx_resume(nx_find(NX));
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

static void expect_err(int rc, int want, const char *needle)
{
    if (rc != want || !strstr(dp_last_error(), needle)) {
        fprintf(stderr, "want %d with '%s', got %d: %s\n", want, needle, rc, dp_last_error());
        exit(1);
    }
}

/* ---- tests ----------------------------------------------------------------------------- */

/* I/O submitted while paused waits, then completes in order after resume with the right bytes. */
TEST(pause_holds_io_and_resume_releases_in_order)
{
    setup(2);
    struct dp_bdev *b = dp_bdev_get(NX);
    CHECK(b);
    CHECK_EQ(nx_write(b, 0, 64 * 1024, 1), 0);
    unsigned long flushes = atomic_load(&kids[0]->flushes);
    CHECK_EQ(pause_nx(60000), 0);
    CHECK(atomic_load(&kids[0]->flushes) > flushes); /* the pause flushed the children */
    unsigned long w0 = atomic_load(&kids[0]->writes), w1 = atomic_load(&kids[1]->writes);
    static struct awrite a, c;
    awrite_submit(&a, b, 0, 64 * 1024, 2);
    awrite_submit(&c, b, 0, 64 * 1024, 3); /* same range, later: must land last */
    usleep(100 * 1000);
    CHECK(!atomic_load(&a.done) && !atomic_load(&c.done));
    CHECK_EQ(atomic_load(&kids[0]->writes), w0); /* nothing reached a child */
    CHECK_EQ(atomic_load(&kids[1]->writes), w1);
    CHECK_EQ(resume_nx(), 0);
    awrite_wait(&a);
    awrite_wait(&c);
    CHECK_EQ(nx_check(b, 0, 64 * 1024, 3), 0);
    /* both children hold the last write */
    uint8_t *want = malloc(64 * 1024);
    fill(want, 64 * 1024, 0, 3);
    CHECK(!memcmp(kids[0]->data + NX_HDR_SIZE, want, 64 * 1024));
    CHECK(!memcmp(kids[1]->data + NX_HDR_SIZE, want, 64 * 1024));
    free(want);
    dp_bdev_put(b);
    teardown(2);
}

/* The deadline resumes the nexus by itself; a late resume says so. */
TEST(deadline_resumes_by_itself)
{
    setup(2);
    struct dp_bdev *b = dp_bdev_get(NX);
    CHECK_EQ(pause_nx(50), 0);
    static struct awrite a;
    awrite_submit(&a, b, 4096, 4096, 7);
    awrite_wait(&a); /* completes with no resume: the reactor's timer did it */
    CHECK_EQ(resume_nx(), -ETIMEDOUT);
    CHECK_EQ(nx_check(b, 4096, 4096, 7), 0);
    dp_bdev_put(b);

    /* a snapshot slower than the deadline fails and keeps nothing */
    atomic_store(&kids[1]->snap_delay_ms, 300);
    dp_nexus_snap_child out[3];
    expect_err(dp_nexus_snapshot(NX, G1, 50, 0, out, 3), -ETIMEDOUT, "deadline");
    CHECK_EQ(sb_count(kids[0]), 0);
    CHECK_EQ(sb_count(kids[1]), 0);
    atomic_store(&kids[1]->snap_delay_ms, 0);
    teardown(2);
}

/* A child that never completes a write: the drain cannot end, the deadline resumes the volume, nothing is made. */
TEST(drain_past_the_deadline)
{
    setup(2);
    struct dp_bdev *b = dp_bdev_get(NX);
    atomic_store(&kids[1]->park_writes, 1);
    static struct awrite a, c;
    awrite_submit(&a, b, 0, 4096, 11); /* reaches sb-b and stays there */
    while (!atomic_load(&kids[0]->writes))
        usleep(1000);
    dp_nexus_snap_child out[2];
    expect_err(dp_nexus_snapshot(NX, G1, 50, 0, out, 2), -ETIMEDOUT, "did not drain");
    CHECK_EQ(sb_count(kids[0]), 0);
    CHECK_EQ(sb_count(kids[1]), 0);
    awrite_submit(&c, b, 8192, 4096, 12); /* the volume resumed: new writes are not held (they park at sb-b too) */
    dp_reactor_call(kids[1]->bdev.reactor, sb_release_msg, kids[1]);
    awrite_wait(&a);
    awrite_wait(&c);
    CHECK_EQ(nx_check(b, 0, 4096, 11), 0);
    CHECK_EQ(nx_check(b, 8192, 4096, 12), 0);
    dp_bdev_put(b);
    teardown(2);
}

struct loader {
    struct dp_bdev *b;
    atomic_int stop;
    uint32_t seed;
    int err;
};

static void *load_main(void *a)
{
    struct loader *l = a;
    while (!atomic_load(&l->stop)) {
        uint32_t s = ++l->seed;
        for (uint64_t off = 0; off < 256 * 1024; off += 64 * 1024)
            if (nx_write(l->b, off, 64 * 1024, s))
                l->err++;
    }
    return NULL;
}

/* Under a writer, every child's snapshot holds the same bytes; uuids are the derived ones. */
TEST(snapshot_under_writes_is_consistent)
{
    setup(3);
    struct loader l = { .b = dp_bdev_get(NX) };
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, load_main, &l), 0);
    usleep(20 * 1000);
    dp_nexus_snap_child out[3];
    CHECK_EQ(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3), 3);
    usleep(20 * 1000);
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    CHECK_EQ(l.err, 0);
    for (int i = 0; i < 3; i++) {
        char want[37];
        CHECK_EQ(dp_nexus_snapshot_uuid(G1, IDENTS[i], want), 0);
        CHECK(!strcmp(out[i].snapshot, want));
        CHECK(!strcmp(out[i].uri, URIS[i]));
        CHECK(!strcmp(out[i].replica, IDENTS[i]));
        CHECK_EQ(out[i].status, 0);
        CHECK_EQ(out[i].skipped, 0);
        CHECK(sb_snap(kids[i], want));
        CHECK(!strcmp(kids[i]->snap_group[0], G1));
        CHECK(want[14] == '5'); /* version 5 */
    }
    /* the same bytes in every part, from the nexus header on */
    for (int i = 1; i < 3; i++)
        CHECK(!memcmp(sb_snap(kids[0], out[0].snapshot) + NX_HDR_SIZE, sb_snap(kids[i], out[i].snapshot) + NX_HDR_SIZE,
                      NXSIZE));
    /* a deterministic uuid: another group gives others, the same inputs the same */
    char x[37], y[37];
    CHECK_EQ(dp_nexus_snapshot_uuid(G2, IDENTS[0], x), 0);
    CHECK_EQ(dp_nexus_snapshot_uuid(G1, IDENTS[0], y), 0);
    CHECK(strcmp(x, out[0].snapshot) != 0 && !strcmp(y, out[0].snapshot));
    /* the same group again: the children refuse (exists), nothing else is made */
    CHECK(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3) < 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 1);
    /* destroy through the nexus; again is fine (parts already gone) */
    CHECK_EQ(dp_nexus_snapshot_destroy(NX, G1, out, 3), 3);
    CHECK_EQ(dp_nexus_snapshot_destroy(NX, G1, NULL, 0), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 0);
    dp_bdev_put(l.b);
    teardown(3);
}

/* A failure on the 2nd child leaves no snapshot on the 1st; the nexus keeps working. */
TEST(failure_on_second_child_undoes_the_first)
{
    setup(3);
    atomic_store(&kids[1]->fail_snap, 1);
    dp_nexus_snap_child out[3];
    expect_err(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3), -EIO, "child 'bdev:///sb-b'");
    CHECK(strstr(dp_last_error(), "injected snapshot failure"));
    CHECK_EQ(out[1].status, -EIO);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 0);
    struct dp_bdev *b = dp_bdev_get(NX);
    CHECK_EQ(nx_write(b, 0, 4096, 9), 0); /* resumed */
    CHECK_EQ(nx_check(b, 0, 4096, 9), 0);
    dp_bdev_put(b);
    atomic_store(&kids[1]->fail_snap, 0);
    teardown(3);
}

/* A create whose answer was lost (it happened) is undone too: no orphan part
 * makes a retry of the same volume snapshot fail with -EEXIST. */
TEST(lost_answer_is_undone_and_the_retry_works)
{
    setup(3);
    atomic_store(&kids[1]->lost_answer, 1);
    dp_nexus_snap_child out[3];
    expect_err(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3), -ETIMEDOUT, "child 'bdev:///sb-b'");
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 0);
    atomic_store(&kids[1]->lost_answer, 0);
    CHECK_EQ(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 1);
    CHECK_EQ(dp_nexus_snapshot_destroy(NX, G1, NULL, 0), 3);
    teardown(3);
}

/* A faulted child fails the snapshot naming it, or is skipped when asked. */
TEST(unhealthy_child_fails_or_is_skipped)
{
    setup(3);
    CHECK_EQ(dp_nexus_child_fault(NX, URIS[2]), 0);
    dp_nexus_snap_child out[3];
    expect_err(dp_nexus_snapshot(NX, G1, 10000, 0, out, 3), -ENODEV, "child 'bdev:///sb-c' is faulted");
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sb_count(kids[i]), 0);
    CHECK_EQ(dp_nexus_snapshot(NX, G1, 10000, DP_NEXUS_SNAP_SKIP_UNHEALTHY, out, 3), 3);
    CHECK_EQ(out[2].skipped, 1);
    CHECK_EQ(out[0].skipped, 0);
    CHECK_EQ(sb_count(kids[0]), 1);
    CHECK_EQ(sb_count(kids[1]), 1);
    CHECK_EQ(sb_count(kids[2]), 0);
    CHECK_EQ(dp_nexus_snapshot_destroy(NX, G1, NULL, 0), 3); /* the faulted child is still open: its part is gone */
    CHECK_EQ(sb_count(kids[0]), 0);
    teardown(3);
}

/* A child without the op (malloc://) is refused before any pause; bad arguments name the field. */
TEST(refusals)
{
    kids[0] = sb_new(NAMES[0], IDENTS[0], 1);
    const char *ch[2] = { URIS[0], "malloc:///nxsnap-m?size_mb=5" };
    CHECK_EQ(dp_nexus_create(NX, NXSIZE, ch, 2, 0), 0);
    expect_err(dp_nexus_snapshot(NX, G1, 10000, 0, NULL, 0), -ENOTSUP, "child 'malloc:///nxsnap-m?size_mb=5'");
    CHECK_EQ(sb_count(kids[0]), 0);
    struct nexus *nx = nx_find(NX);
    CHECK_EQ(nx->pauses, 0); /* refused before pausing */
    expect_err(dp_nexus_snapshot(NX, "nope", 10000, 0, NULL, 0), -EINVAL, "group");
    expect_err(dp_nexus_snapshot(NX, G1, 0, 0, NULL, 0), -EINVAL, "deadline_ms");
    expect_err(dp_nexus_snapshot(NX, G1, 1000, 0x80, NULL, 0), -EINVAL, "flags");
    expect_err(dp_nexus_snapshot("00000000-0000-4000-8000-000000000000", G1, 1000, 0, NULL, 0), -ENOENT, "not found");
    expect_err(dp_nexus_snapshot_uuid("x", IDENTS[0], (char[37]){ 0 }), -EINVAL, "group");
    CHECK_EQ(dp_nexus_destroy(NX, DP_NEXUS_RELEASE), 0);
    dp_bdev_unregister(&kids[0]->bdev);
}

/* A copy of a child's label (a clone's) is released so another nexus takes it without force. */
TEST(label_release)
{
    setup(2);
    CHECK_EQ(dp_nexus_destroy(NX, 0), 0); /* shut down, not released: the labels still name NX */
    const char *NX2 = "52525252-2222-4333-8444-555555555555";
    expect_err(dp_nexus_create(NX2, NXSIZE, &URIS[0], 1, 0), -EBUSY, "belongs to nexus");
    CHECK_EQ(dp_nexus_label_release(URIS[0]), 1);
    CHECK_EQ(dp_nexus_label_release(URIS[0]), 0); /* released already */
    CHECK_EQ(dp_nexus_create(NX2, NXSIZE, &URIS[0], 1, 0), 0);
    expect_err(dp_nexus_label_release(URIS[0]), -EBUSY, "in use by nexus");
    expect_err(dp_nexus_label_release(""), -EINVAL, "uri");
    CHECK(dp_nexus_label_release("bdev:///nope") < 0);
    CHECK_EQ(dp_nexus_destroy(NX2, DP_NEXUS_RELEASE), 0);
    for (uint32_t i = 0; i < 2; i++)
        dp_bdev_unregister(&kids[i]->bdev);
}

/* Pool replicas as children (pool/lvol.c's snapshot op): the parts read what was written before, clones read it too. */
TEST(pool_children)
{
    char disk[512];
    snprintf(disk, sizeof disk, "%s/nxsnap-disk", test_tmpdir());
    test_make_file(disk, 64 * MiB);
    const char *disks[] = { disk };
    char puuid[DP_UUID_STR_LEN];
    CHECK_EQ(dp_pool_create("nxsnap", disks, 1, MiB, puuid), 0);
    const char *R[2] = { "cccccccc-0000-4000-8000-000000000001", "cccccccc-0000-4000-8000-000000000002" };
    const char *ch[2] = { "bdev:///cccccccc-0000-4000-8000-000000000001",
                          "bdev:///cccccccc-0000-4000-8000-000000000002" };
    for (int i = 0; i < 2; i++)
        CHECK_EQ(dp_replica_create("nxsnap", R[i], CHSIZE, 1), 0);
    CHECK_EQ(dp_nexus_create(NX, NXSIZE, ch, 2, 0), 0);
    struct dp_bdev *b = dp_bdev_get(NX);
    CHECK_EQ(nx_write(b, 0, MiB, 21), 0);
    dp_nexus_snap_child out[2];
    CHECK_EQ(dp_nexus_snapshot(NX, G1, 10000, 0, out, 2), 2);
    CHECK_EQ(nx_write(b, 0, MiB, 22), 0); /* after: the parts keep seed 21 */
    CHECK_EQ(nx_check(b, 0, MiB, 22), 0);
    for (int i = 0; i < 2; i++) {
        CHECK(!strcmp(out[i].replica, R[i]));
        dp_snapshot_info si;
        CHECK_EQ(dp_snapshot_stat(out[i].snapshot, &si), 0);
        CHECK(!strcmp(si.source, R[i]) && !strcmp(si.group, G1));
        struct dp_bdev *sb = dp_bdev_get(out[i].snapshot);
        CHECK(sb);
        uint8_t *buf = dp_buf_alloc(MiB), *want = dp_buf_alloc(MiB);
        fill(want, MiB, 0, 21);
        CHECK_EQ(dp_bdev_rw_sync(sb, DP_IO_READ, buf, NX_HDR_SIZE, MiB), 0);
        CHECK(!memcmp(buf, want, MiB));
        dp_buf_free(buf);
        dp_buf_free(want);
        dp_bdev_put(sb);
    }
    /* a clone of a part carries the child's label; released, a new nexus takes it without force */
    const char *CL = "cccccccc-0000-4000-8000-000000000009";
    const char *CLU = "bdev:///cccccccc-0000-4000-8000-000000000009";
    const char *NX2 = "53535353-2222-4333-8444-555555555555";
    CHECK_EQ(dp_replica_clone(CL, out[0].snapshot), 0);
    expect_err(dp_nexus_create(NX2, NXSIZE, &CLU, 1, 0), -EBUSY, "belongs to nexus");
    CHECK_EQ(dp_nexus_label_release(CLU), 1);
    CHECK_EQ(dp_nexus_create(NX2, NXSIZE, &CLU, 1, 0), 0);
    struct dp_bdev *b2 = dp_bdev_get(NX2);
    CHECK_EQ(nx_check(b2, 0, MiB, 21), 0);
    dp_bdev_put(b2);
    CHECK_EQ(dp_nexus_destroy(NX2, DP_NEXUS_RELEASE), 0);
    CHECK_EQ(dp_replica_destroy(CL), 0);
    CHECK_EQ(dp_nexus_snapshot_destroy(NX, G1, NULL, 0), 2);
    CHECK_EQ(dp_snapshot_stat(out[0].snapshot, &(dp_snapshot_info){ 0 }), -ENOENT);
    CHECK_EQ(nx_check(b, 0, MiB, 22), 0);
    dp_bdev_put(b);
    CHECK_EQ(dp_nexus_destroy(NX, DP_NEXUS_RELEASE), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(dp_replica_destroy(R[i]), 0);
    CHECK_EQ(dp_pool_destroy("nxsnap"), 0);
}

int main(void)
{
    printf("test_nexus_snapshot\n");
    CHECK_EQ(dp_init(3), 0);
    RUN(pause_holds_io_and_resume_releases_in_order);
    RUN(deadline_resumes_by_itself);
    RUN(drain_past_the_deadline);
    RUN(snapshot_under_writes_is_consistent);
    RUN(failure_on_second_child_undoes_the_first);
    RUN(lost_answer_is_undone_and_the_retry_works);
    RUN(unhealthy_child_fails_or_is_skipped);
    RUN(refusals);
    RUN(label_release);
    RUN(pool_children);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
