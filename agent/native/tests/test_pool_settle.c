/*
 * test_pool_settle.c - snapshot create and delete (merge) of a replica
 * under a steady stream of first writes (pool/snapshot.c wait_settled).
 *
 * The stream lives on the pool's reactor: NSLOT 4 KiB writes in flight,
 * each re-submitted from its completion, each aimed at a cluster the
 * replica does not own yet (a first write: allocate, copy from the
 * snapshot, commit) whenever there is one. An op freezes the replica: new
 * requests park, so at most the NSLOT writes in flight at the freeze
 * complete before the op runs. The test counts first writes completed
 * while the replica is frozen (on the reactor, no clocks) and checks every
 * byte against a shadow at the end; the pool has little spare room, so the
 * clusters the merges free must come back under the load (else ENOSPC).
 * The same through a 3-child nexus over local replicas, and unmapped space
 * returning under load; and snapshots under writes to owned clusters
 * (no write in flight at the swap: snapshot bytes never change after).
 * alarm() is only a hang guard.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "nexus/nexus.h"
#include "pool/pool.h"
#include "pool_testlib.h"

#define CS (64 * 1024ull)
#define NCL 1024u
#define RSIZE (NCL * CS)
#define BS 4096u
#define NBLK (RSIZE / BS)
#define MAXSLOT 200 /* more than the pool's request slots */

static const char *R = "5e771e00-0000-4000-8000-000000000001";
static const char *NX = "5e771e00-0000-4000-8000-0000000000aa";
static const char *NXC[3] = { "bdev:///5e771e00-0000-4000-8000-0000000000c1",
                              "bdev:///5e771e00-0000-4000-8000-0000000000c2",
                              "bdev:///5e771e00-0000-4000-8000-0000000000c3" };

struct slot {
    struct dp_bdev_io io; /* first: the callback casts back */
    struct iovec iov;
    uint8_t *buf;
    uint64_t off;
    bool fresh; /* aimed at a cluster the replica did not own */
    bool fz; /* the replica was frozen at the submit (the write may park) */
    const struct replica *par; /* the replica's parent at the submit */
};

/* Reactor-owned while the stream runs; the control thread reads the
 * counters under mu. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dp_bdev *b;
    struct replica *r; /* whose map tells first writes; frozen by the ops */
    uint64_t base, size; /* the device's byte 0 in r (a nexus: its header); bytes */
    uint32_t ncl; /* the stream writes to clusters of r wholly in [base, ncl * CS) */
    struct slot s[MAXSLOT];
    uint64_t k, rng; /* next cluster to try; data */
    uint8_t *shadow, *busy; /* expected bytes; blocks with a write in flight */
    bool stop;
    int live, errors;
    uint64_t done, wake_at; /* completions; signal cv when done reaches it */
    uint64_t frozen_done; /* first writes completed with the replica frozen */
    uint64_t first; /* writes aimed at a cluster the replica did not own */
    bool strict; /* every write starts at its submit (fewer than the pool's reqs, no nexus) */
    uint64_t crossed; /* writes started before a freeze, completed after its swap */
} st;

static uint64_t rnd(void)
{
    return xorshift(&st.rng);
}

static void slot_done(struct dp_bdev_io *io, int status);

/* Reactor: the next write of slot s, to a cluster the replica does not own
 * (map entry unallocated: not even an allocation in flight) if any. */
static void slot_submit(struct slot *s)
{
    struct replica *r = st.r;
    uint32_t c0 = (uint32_t)((st.base + CS - 1) / CS), n = st.ncl - c0, c = c0;
    bool fresh = false;
    for (uint32_t t = 0; t < n && !fresh; t++) {
        c = c0 + (uint32_t)(st.k++ % n);
        fresh = r->map[c] == MAP_UNALLOC;
    }
    uint64_t blk;
    do /* a block with no write in flight (the order of two would be unknown) */
        blk = ((uint64_t)c * CS - st.base) / BS + rnd() % (CS / BS);
    while (st.busy[blk] && (c = c0 + (uint32_t)(rnd() % n), true));
    st.busy[blk] = 1;
    st.first += fresh;
    s->fresh = fresh;
    s->off = blk * BS;
    for (uint32_t i = 0; i < BS; i += 8) {
        uint64_t v = rnd();
        memcpy(s->buf + i, &v, 8);
    }
    s->iov = (struct iovec){ s->buf, BS };
    s->io = (struct dp_bdev_io){ .type = DP_IO_WRITE, .offset = s->off, .length = BS, .iov = &s->iov, .iovcnt = 1 };
    s->io.cb = slot_done;
    s->fz = r->frozen;
    s->par = r->parent;
    dp_bdev_submit(st.b, &s->io);
}

static void slot_done(struct dp_bdev_io *io, int status)
{
    struct slot *s = (struct slot *)io;
    bool frozen = st.r->frozen;
    st.busy[s->off / BS] = 0;
    pthread_mutex_lock(&st.mu);
    if (status)
        st.errors++;
    else
        memcpy(st.shadow + s->off, s->buf, BS);
    st.done++;
    st.frozen_done += frozen && s->fresh;
    /* Started before any freeze, so it must complete before the swap (or
     * merge, revert) that changes the parent: else it lands in a cluster the
     * snapshot took. */
    st.crossed += st.strict && !s->fz && st.r->parent != s->par;
    bool stop = st.stop || status; /* like fio: an error ends the stream */
    if (stop)
        st.live--;
    if (stop || st.done >= st.wake_at)
        pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    if (!stop)
        slot_submit(s);
}

static void start_msg(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        slot_submit(&st.s[i]);
}

/* Control thread: wait until n more writes completed (or the stream ended). */
static void wait_done(uint64_t n)
{
    pthread_mutex_lock(&st.mu);
    st.wake_at = st.done + n;
    while (st.done < st.wake_at && st.live)
        pthread_cond_wait(&st.cv, &st.mu);
    pthread_mutex_unlock(&st.mu);
}

static uint64_t frozen_done(void)
{
    pthread_mutex_lock(&st.mu);
    uint64_t v = st.frozen_done;
    st.frozen_done = 0;
    pthread_mutex_unlock(&st.mu);
    return v;
}

static int st_rw(enum dp_bdev_io_type t, void *buf, uint64_t off, uint64_t len)
{
    return dp_bdev_rw_sync(st.b, t, buf, off, len);
}

/* Run op under the hang guard. While the replica is frozen only the first
 * writes in flight at the freeze may complete (at most nslot): new ones
 * park. Writes to clusters it owns go on and are not counted. */
#define OP(call, nslot, maxf) \
    do { \
        frozen_done(); \
        alarm(300); \
        CHECK_EQ(call, 0); \
        alarm(0); \
        uint64_t f = frozen_done(); \
        if (f > (uint64_t)(nslot)) { \
            fprintf(stderr, "%s: %llu first writes completed while frozen, at most %d expected\n", #call, \
                    (unsigned long long)f, nslot); \
            exit(1); \
        } \
        if (f > *(maxf)) \
            *(maxf) = f; \
    } while (0)

static char disk[512];
static uint8_t *big;

/* A pool "st" with room for the replicas and two full snapshots of each,
 * little more: the clusters each merge frees must come back while the
 * writes go on. */
static void pool_up(int nrep)
{
    char puuid[37];
    pool_disk(disk, sizeof disk, "settle.img", (uint64_t)nrep * 4 * RSIZE + 64 * CS);
    const char *disks[1] = { disk };
    CHECK_EQ(dp_pool_create("st", disks, 1, CS, puuid), 0);
}

/* Fill device b (every cluster of r owned), then start the stream. */
static void stream_start(int nslot, struct dp_bdev *b, struct replica *r, uint64_t base)
{
    st.b = b;
    st.r = r;
    st.base = base;
    st.size = RSIZE - base;
    st.ncl = st.ncl ? st.ncl : NCL;
    st.shadow = calloc(1, RSIZE);
    st.busy = calloc(1, NBLK);
    test_fill(st.shadow, st.size, 0, 7);
    big = dp_buf_alloc(RSIZE);
    memcpy(big, st.shadow, st.size);
    CHECK_EQ(st_rw(DP_IO_WRITE, big, 0, st.size), 0);
    for (int i = 0; i < nslot; i++)
        st.s[i].buf = dp_buf_alloc(BS);
    st.live = nslot;
    st.stop = false;
    st.done = st.first = st.k = 0;
    st.errors = 0;
    st.crossed = 0;
    st.strict = base == 0 && nslot < POOL_REQS / 2;
    static int n;
    n = nslot;
    dp_reactor_send(b->reactor, start_msg, &n);
}

/* Stop the stream; the device holds exactly what was acknowledged. */
static void stream_end(int nslot, int rounds, uint64_t maxf)
{
    pthread_mutex_lock(&st.mu);
    st.stop = true;
    while (st.live)
        pthread_cond_wait(&st.cv, &st.mu);
    uint64_t done = st.done, first = st.first;
    CHECK_EQ(st.errors, 0);
    CHECK_EQ(st.crossed, 0);
    pthread_mutex_unlock(&st.mu);
    printf(
        "    %d in flight, %d rounds: %llu writes (%llu first writes), at most %llu first writes completed while frozen\n",
        nslot, rounds, (unsigned long long)done, (unsigned long long)first, (unsigned long long)maxf);
    CHECK(rounds == 0 || first > (uint64_t)rounds * nslot); /* the load really was first writes */
    CHECK_EQ(st_rw(DP_IO_READ, big, 0, st.size), 0);
    for (uint64_t k = 0; k < st.size; k++)
        if (big[k] != st.shadow[k]) {
            fprintf(stderr, "%s differs at byte %llu: %02x, want %02x\n", st.b->name, (unsigned long long)k, big[k],
                    st.shadow[k]);
            exit(1);
        }
    for (int i = 0; i < nslot; i++)
        dp_buf_free(st.s[i].buf);
    dp_buf_free(big);
    free(st.shadow);
    free(st.busy);
    st.ncl = 0;
}

static void pool_down(uint64_t want_used)
{
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("st", &pi), 0);
    CHECK_EQ(pi.used_bytes, want_used); /* the merges left nothing behind */
    CHECK_EQ(dp_pool_destroy("st"), 0);
    unlink(disk);
}

static void stream_run(int nslot, int rounds)
{
    pool_up(1);
    CHECK_EQ(dp_replica_create("st", R, RSIZE, 1), 0);
    struct dp_bdev *b = dp_bdev_get(R);
    CHECK(b);
    stream_start(nslot, b, b->ctx, 0);
    uint64_t maxf = 0;
    char sa[37], sb[37];
    for (int i = 0; i < rounds; i++) {
        snprintf(sa, sizeof sa, "5e771e00-0000-4000-8000-0000000a%04u", (unsigned)i % 10000u);
        snprintf(sb, sizeof sb, "5e771e00-0000-4000-8000-0000000b%04u", (unsigned)i % 10000u);
        OP(dp_snapshot_create(R, sa, NULL), nslot, &maxf); /* owns all: nothing to wait for */
        wait_done(2 * (uint64_t)nslot);
        OP(dp_snapshot_create(R, sb, NULL), nslot, &maxf); /* first writes in flight */
        wait_done(2 * (uint64_t)nslot);
        OP(dp_snapshot_destroy(sb), nslot, &maxf); /* merge into R under first writes */
        wait_done(2 * (uint64_t)nslot);
        OP(dp_snapshot_destroy(sa), nslot, &maxf);
        wait_done(2 * (uint64_t)nslot);
    }
    stream_end(nslot, rounds, maxf);
    dp_replica_info ri;
    CHECK_EQ(dp_replica_stat(R, &ri), 0);
    CHECK_EQ(ri.allocated_bytes, RSIZE);
    dp_bdev_put(b);
    CHECK_EQ(dp_replica_destroy(R), 0);
    pool_down(0);
}

/* Clusters a thin replica unmaps come back to the pool while writes to its
 * other clusters go on without a pause (the stream never lets the pool go
 * idle): within a bounded number of completions, checked by count. */
TEST(unmapped_space_returns_under_load)
{
    int nslot = 96;
    pool_up(1);
    CHECK_EQ(dp_replica_create("st", R, RSIZE, 1), 0);
    struct dp_bdev *b = dp_bdev_get(R);
    CHECK(b);
    st.ncl = NCL - 16; /* the last 16 clusters are the test's */
    stream_start(nslot, b, b->ctx, 0);
    wait_done(2 * (uint64_t)nslot);
    dp_pool_info pi;
    CHECK_EQ(dp_pool_stat("st", &pi), 0);
    CHECK_EQ(pi.used_bytes, RSIZE);
    uint64_t off = (uint64_t)(NCL - 16) * CS;
    CHECK_EQ(st_rw(DP_IO_UNMAP, NULL, off, 16 * CS), 0);
    pthread_mutex_lock(&st.mu);
    memset(st.shadow + off, 0, 16 * CS); /* a thin replica without a parent reads zeroes there */
    pthread_mutex_unlock(&st.mu);
    int waits = 0;
    for (; waits < 64; waits++) { /* the requests older than the unmap: at most nslot + 1 */
        CHECK_EQ(dp_pool_stat("st", &pi), 0);
        if (pi.used_bytes == RSIZE - 16 * CS)
            break;
        wait_done((uint64_t)nslot);
    }
    printf("    released after %d x %d completions\n", waits, nslot);
    CHECK_EQ(pi.used_bytes, RSIZE - 16 * CS);
    stream_end(nslot, 0, 0);
    dp_bdev_put(b);
    CHECK_EQ(dp_replica_destroy(R), 0);
    pool_down(0);
}

/* 0: a nexus snapshot of all children (the nexus pauses for it) returned 3. */
static int nx_snap(const char *g, dp_nexus_snap_child *out)
{
    int rc = dp_nexus_snapshot(NX, g, 60000, 0, out, 3);
    return rc == 3 ? 0 : rc < 0 ? rc : -1;
}

/* The case of the report: a 3-child nexus over local replicas under the
 * stream; its snapshot's parts are merged one by one straight at the
 * replicas (no nexus pause) or through dp_nexus_snapshot_destroy. */
static void nexus_run(int nslot, int rounds)
{
    pool_up(3);
    const char *uris[3] = { NXC[0], NXC[1], NXC[2] };
    for (int i = 0; i < 3; i++)
        CHECK_EQ(dp_replica_create("st", NXC[i] + 8, RSIZE, 1), 0);
    CHECK_EQ(dp_nexus_create(NX, RSIZE - NX_HDR_SIZE, uris, 3, 0), 0);
    struct dp_bdev *b = dp_bdev_get(NX), *r0 = dp_bdev_get(NXC[0] + 8);
    CHECK(b && r0);
    CHECK(b->reactor == r0->reactor); /* the stream reads r0's map on its reactor */
    stream_start(nslot, b, r0->ctx, NX_HDR_SIZE);
    uint64_t maxf = 0;
    char g[37];
    dp_nexus_snap_child out[3];
    for (int i = 0; i < rounds; i++) {
        snprintf(g, sizeof g, "6a6a6a6a-0000-4000-8000-00000000%04u", (unsigned)i % 10000u);
        OP(nx_snap(g, out), nslot, &maxf);
        wait_done(2 * (uint64_t)nslot);
        if (i % 2 == 0) {
            for (int k = 0; k < 3; k++)
                OP(dp_snapshot_destroy(out[k].snapshot), nslot, &maxf);
        } else {
            OP(dp_nexus_snapshot_destroy(NX, g, NULL, 0) - 3, nslot, &maxf);
        }
        wait_done(2 * (uint64_t)nslot);
    }
    stream_end(nslot, rounds, maxf);
    dp_bdev_put(r0);
    dp_bdev_put(b);
    CHECK_EQ(dp_nexus_destroy(NX, DP_NEXUS_RELEASE), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(dp_replica_destroy(NXC[i] + 8), 0);
    pool_down(0);
}

static uint64_t fnv(const uint8_t *b, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Checksum of the first n bytes of device name. */
static uint64_t dev_sum(const char *name, uint8_t *buf, uint64_t n)
{
    struct dp_bdev *d = dp_bdev_get(name);
    CHECK(d);
    CHECK_EQ(dp_bdev_rw_sync(d, DP_IO_READ, buf, 0, n), 0);
    dp_bdev_put(d);
    return fnv(buf, n);
}

#define OWNED_NCL 16u
#define NSNAP 8

/* Snapshots taken straight at the replica (no nexus pause, like PUT
 * /v1/replicas/{r}/snapshots/{s}) while partial writes to clusters it
 * already owns are in flight, several per cluster: a write sent before the
 * swap must land before it (else it lands in the snapshot's cluster after
 * a later write of the replica copied that cluster away). Each snapshot's
 * bytes, checksummed right after it was made, are the same at the end, and
 * every acknowledged write is in the replica (stream_end). */
static void owned_run(int nslot)
{
    pool_up(1);
    CHECK_EQ(dp_replica_create("st", R, RSIZE, 1), 0);
    struct dp_bdev *b = dp_bdev_get(R);
    CHECK(b);
    st.ncl = OWNED_NCL;
    stream_start(nslot, b, b->ctx, 0);
    wait_done(4 * (uint64_t)nslot);
    uint8_t *tmp = dp_buf_alloc(OWNED_NCL * CS);
    char su[NSNAP][37];
    uint64_t sum[NSNAP], maxf = 0;
    for (int i = 0; i < NSNAP; i++) {
        snprintf(su[i], sizeof su[i], "5e771e00-0000-4000-8000-0000000c%04u", (unsigned)i % 10000u);
        OP(dp_snapshot_create(R, su[i], NULL), nslot, &maxf);
        sum[i] = dev_sum(su[i], tmp, OWNED_NCL * CS);
        wait_done(4 * (uint64_t)nslot); /* the replica owns the clusters again */
    }
    for (int i = 0; i < NSNAP; i++)
        if (dev_sum(su[i], tmp, OWNED_NCL * CS) != sum[i]) {
            fprintf(stderr, "snapshot %s changed after it was made\n", su[i]);
            exit(1);
        }
    dp_buf_free(tmp);
    stream_end(nslot, 0, maxf);
    for (int i = 0; i < NSNAP; i++)
        CHECK_EQ(dp_snapshot_destroy(su[i]), 0);
    dp_bdev_put(b);
    CHECK_EQ(dp_replica_destroy(R), 0);
    pool_down(0);
}

TEST(snapshot_under_owned_cluster_writes)
{
    owned_run(32);
    owned_run(MAXSLOT);
}

TEST(create_and_merge_under_first_writes)
{
    stream_run(32, 6);
    stream_run(96, 6);
}

TEST(more_writes_than_request_slots)
{
    stream_run(MAXSLOT, 4);
}

TEST(nexus_snapshot_and_merge_under_first_writes)
{
    nexus_run(32, 6);
    nexus_run(96, 4);
}

int main(void)
{
    printf("test_pool_settle\n");
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    st.rng = 0x9E3779B97F4A7C15ull;
    CHECK_EQ(dp_init(1), 0);
    RUN(create_and_merge_under_first_writes);
    RUN(more_writes_than_request_slots);
    RUN(nexus_snapshot_and_merge_under_first_writes);
    RUN(unmapped_space_returns_under_load);
    RUN(snapshot_under_owned_cluster_writes);
    dp_fini();
    CHECK_EQ(dp_init(2), 0);
    RUN(create_and_merge_under_first_writes); /* two reactors */
    RUN(snapshot_under_owned_cluster_writes);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
