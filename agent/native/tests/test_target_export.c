/* test_target_export.c - the export registry every target keeps (target/export.h): share and
 * re-share, errors naming the protocol and export, attach within the per-export cap, an
 * unshare that waits until the protocol's connections are gone, and the writer lease (an export
 * serving a nexus child is writable only by the nexus's host), also as dp_export_writer_lease
 * reports it. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "target/export.h"
#include "target/limits.h"
#include "testlib.h"

static atomic_int g_kills;
static void kill_conns_locked(struct dp_export_registry *reg, struct dp_export *e)
{
    CHECK(e->dead);
    atomic_fetch_add(&g_kills, 1);
}
static struct dp_export_registry g_reg = DP_EXPORT_REGISTRY_INIT("test", kill_conns_locked);

static struct in6_addr v4(const char *s)
{
    struct in_addr a4;
    struct in6_addr a;
    CHECK_EQ(inet_pton(AF_INET, s, &a4), 1);
    dp_in6_from_v4(&a, &a4);
    return a;
}

static struct dp_export *named(const char *name)
{
    pthread_mutex_lock(&g_reg.lock);
    struct dp_export *e = dp_export_named_locked(&g_reg, name);
    pthread_mutex_unlock(&g_reg.lock);
    return e;
}

TEST(share_and_reshare)
{
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///exp1?size_mb=1", "vol1", "10.0.0.0/8"), 0);
    struct dp_export *e = named("vol1");
    CHECK(e && e->bdev && !e->dead);
    CHECK_EQ(dp_export_connections(&g_reg, "vol1"), 0);
    struct in6_addr in = v4("10.1.1.1"), out = v4("11.1.1.1");
    CHECK(dp_allowlist_allows_addr(&e->allowed, &in));
    CHECK(!dp_allowlist_allows_addr(&e->allowed, &out));
    /* the same device again: the allowlist is replaced */
    CHECK_EQ(dp_export_share(&g_reg, e->bdev->name, "vol1", "*"), 0);
    CHECK(named("vol1") == e);
    CHECK(dp_allowlist_allows_addr(&e->allowed, &out));
    /* ... also when named by the URI that opened it */
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///exp1?size_mb=1", "vol1", "10.0.0.0/8"), 0);
    CHECK(named("vol1") == e);
    CHECK(!dp_allowlist_allows_addr(&e->allowed, &out));
    /* errors name the protocol, the export and what is wrong */
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///exp2?size_mb=1", "vol1", NULL), -EEXIST);
    CHECK(strstr(dp_last_error(), "test share 'vol1': export already serves device"));
    CHECK_EQ(dp_export_share(&g_reg, "nope", "vol2", NULL), -ENOENT);
    CHECK(!strcmp(dp_last_error(), "test share 'vol2': no replica or device named 'nope'"));
    CHECK_EQ(dp_export_share(&g_reg, "nope", "vol2", "1.2.3.4/33"), -EINVAL);
    CHECK(!strcmp(dp_last_error(), "test export 'vol2': allowedHosts entry '1.2.3.4/33': prefix above 32"));
    CHECK(!named("vol2"));
    CHECK_EQ(dp_export_connections(&g_reg, "vol2"), -ENOENT);
    CHECK(!strcmp(dp_last_error(), "test export 'vol2': no such export"));
    CHECK_EQ(dp_export_unshare(&g_reg, "vol2"), -ENOENT);
    CHECK(!strcmp(dp_last_error(), "test unshare 'vol2': no such export"));
    CHECK_EQ(dp_export_unshare(&g_reg, NULL), -EINVAL);
}

TEST(attach_within_the_export_cap)
{
    dp_target_limits l, saved;
    CHECK_EQ(dp_target_get_limits(&saved), 0);
    l = saved;
    l.max_connections_per_export = 2;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    struct dp_export *e = named("vol1");
    pthread_mutex_lock(&g_reg.lock);
    CHECK(dp_export_attach_locked(&g_reg, e, "peer:1"));
    CHECK(dp_export_attach_locked(&g_reg, e, "peer:2"));
    CHECK(!dp_export_attach_locked(&g_reg, e, "peer:3"));
    pthread_mutex_unlock(&g_reg.lock);
    CHECK_EQ(dp_export_connections(&g_reg, "vol1"), 2);
    CHECK_EQ(dp_target_set_limits(&saved), 0);
}

/* The protocol's side: connections go away some time after they were told to. */
static void *conns_close(void *arg)
{
    struct dp_export *e = arg;
    while (atomic_load(&g_kills) == 0)
        usleep(1000);
    usleep(20000);
    pthread_mutex_lock(&g_reg.lock);
    dp_export_detach_locked(&g_reg, e);
    dp_export_detach_locked(&g_reg, e);
    pthread_mutex_unlock(&g_reg.lock);
    return NULL;
}

TEST(unshare_waits_for_the_connections)
{
    struct dp_export *e = named("vol1");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, conns_close, e), 0);
    CHECK_EQ(dp_export_unshare(&g_reg, "vol1"), 0); /* returns once both detached */
    CHECK_EQ(atomic_load(&g_kills), 1);
    pthread_join(t, NULL);
    CHECK(!named("vol1"));
    /* shutdown unshares whatever is left */
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///exp3?size_mb=1", "vol3", NULL), 0);
    dp_export_unshare_all(&g_reg);
    CHECK(!named("vol3"));
    CHECK_EQ(atomic_load(&g_kills), 2);
}

/* ---- writer lease ---- */

static dp_target_stats tstats(void)
{
    dp_target_stats s;
    CHECK_EQ(dp_target_stats_get(&s), 0);
    return s;
}

static void set_grace(uint32_t ms)
{
    dp_target_limits l;
    CHECK_EQ(dp_target_get_limits(&l), 0);
    l.writer_grace_ms = ms;
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

static void client(struct dp_export_client *cl, const char *host, const char *peer)
{
    memset(cl, 0, sizeof *cl);
    snprintf(cl->host, sizeof cl->host, "%s", host);
    cl->peer = peer;
}

/* A label block of nexus `id` (first byte of its uuid) at seq, flags. */
static void label(uint8_t *block, uint8_t id, uint64_t seq, uint32_t flags)
{
    struct nx_label l = { .seq = seq,
                          .generation = 1,
                          .data_offset = NX_HDR_SIZE,
                          .data_size = 1 << 20,
                          .flags = flags,
                          .block_size = 4096,
                          .nmembers = 1 };
    l.nexus_uuid[0] = id;
    l.child_id[0] = 1;
    l.members[0][0] = 1;
    nx_label_encode(&l, block);
}

static int wr(struct dp_export *e, struct dp_export_client *cl, uint64_t off, void *buf, size_t len)
{
    struct iovec v = { buf, len };
    return dp_export_writer_check(e, cl, off, &v, 1, len);
}

static bool held_by(struct dp_export *e, const char *host)
{
    char h[DP_EXPORT_HOST_MAX];
    if (!dp_export_writer_host(e, h, sizeof h))
        return host == NULL;
    return host && !strcmp(h, host);
}

static uint8_t g_blk[2 * NX_LABEL_BLOCK], g_data[4096];

TEST(writer_lease_taken_and_refused)
{
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///lease1?size_mb=4", "lease", NULL), 0);
    struct dp_export *e = named("lease");
    struct dp_export_client a, b;
    client(&a, "10.0.0.1", "10.0.0.1:1000");
    client(&b, "10.0.0.2", "10.0.0.2:2000");
    dp_export_client_attach(e, &a);
    dp_export_client_attach(e, &b);
    dp_target_stats s0 = tstats();
    /* no lease: anyone writes, also zeros or a damaged label into the label area */
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), 0);
    CHECK_EQ(wr(e, &b, 0, g_data, sizeof g_data), 0);
    label(g_blk, 0x11, 2, NX_LABEL_SYNCED);
    g_blk[100] ^= 1; /* crc mismatch */
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), 0);
    label(g_blk, 0x11, 3, NX_LABEL_SYNCED); /* odd seq in slot 0: not how the nexus writes */
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK_EQ(wr(e, &b, 0, g_blk, 256), 0); /* a partial label */
    label(g_blk, 0x11, 2, NX_LABEL_SYNCED | NX_LABEL_RELEASED); /* released: free for anyone */
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, NULL));
    /* a valid label from a: a's host is the writer */
    label(g_blk, 0x11, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, "10.0.0.1"));
    CHECK_EQ(tstats().writer_leases, s0.writer_leases + 1);
    /* b: writes, unmaps, labels refused; reads are not checked at all */
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), -EPERM);
    CHECK(b.refusal_logged);
    CHECK_EQ(dp_export_writer_check(e, &b, 8192, NULL, 0, 4096), -EPERM);
    label(g_blk, 0x22, 4, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), -EPERM);
    CHECK(held_by(e, "10.0.0.1"));
    CHECK_EQ(tstats().writes_refused, s0.writes_refused + 3);
    /* a keeps writing, unmapping, labelling */
    CHECK_EQ(wr(e, &a, 1 << 20, g_data, sizeof g_data), 0);
    CHECK_EQ(dp_export_writer_check(e, &a, 1 << 20, NULL, 0, 4096), 0);
    label(g_blk, 0x11, 3, NX_LABEL_SYNCED); /* slot 1 */
    CHECK_EQ(wr(e, &a, NX_LABEL_BLOCK, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, "10.0.0.1"));
    dp_export_client_detach(e, &a);
    dp_export_client_detach(e, &b);
}

TEST(writer_lease_grace_release_move)
{
    struct dp_export *e = named("lease");
    struct dp_export_client a, a2, b;
    client(&a, "10.0.0.1", "10.0.0.1:1001");
    client(&a2, "10.0.0.1", "10.0.0.1:1002");
    client(&b, "10.0.0.2", "10.0.0.2:2001");
    dp_export_client_attach(e, &b);
    dp_target_stats s0 = tstats();
    /* within the grace after the writer's last connection: still a's */
    set_grace(3600000);
    CHECK(held_by(e, "10.0.0.1"));
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), -EPERM);
    /* a reconnects (another connection of the same host): keeps it, also with no grace */
    dp_export_client_attach(e, &a2);
    set_grace(0);
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), -EPERM);
    CHECK(held_by(e, "10.0.0.1"));
    /* its last connection gone and the grace over: anyone may write */
    dp_export_client_detach(e, &a2);
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), 0);
    CHECK(held_by(e, NULL));
    CHECK_EQ(tstats().writer_leases, s0.writer_leases - 1);
    set_grace(DP_TARGET_DEF_WRITER_GRACE_MS);
    /* a takes it again with a label spanning both slots in two uneven iovecs */
    dp_export_client_attach(e, &a);
    label(g_blk, 0x11, 4, NX_LABEL_SYNCED);
    label(g_blk + NX_LABEL_BLOCK, 0x11, 5, NX_LABEL_SYNCED);
    struct iovec v[2] = { { g_blk, 300 }, { g_blk + 300, sizeof g_blk - 300 } };
    CHECK_EQ(dp_export_writer_check(e, &a, 0, v, 2, sizeof g_blk), 0);
    CHECK(held_by(e, "10.0.0.1"));
    /* the same host labels it for another nexus: the lease moves with it */
    label(g_blk, 0x33, 8, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, "10.0.0.1"));
    CHECK(e->w.nexus[0] == 0x33);
    /* the nexus is deleted (RELEASED): anyone may write, at once */
    label(g_blk, 0x33, 9, NX_LABEL_SYNCED | NX_LABEL_CLEAN | NX_LABEL_RELEASED);
    CHECK_EQ(wr(e, &a, NX_LABEL_BLOCK, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, NULL));
    CHECK_EQ(wr(e, &b, 1 << 20, g_data, sizeof g_data), 0);
    /* b's own nexus now takes it; an idempotent re-share keeps it, unshare ends it */
    label(g_blk, 0x44, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, "10.0.0.2"));
    CHECK_EQ(wr(e, &a, 1 << 20, g_data, sizeof g_data), -EPERM);
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///lease1?size_mb=4", "lease", NULL), 0);
    CHECK(held_by(e, "10.0.0.2"));
    dp_export_client_detach(e, &a);
    dp_export_client_detach(e, &b);
    CHECK_EQ(tstats().writer_leases, s0.writer_leases);
    CHECK_EQ(dp_export_unshare(&g_reg, "lease"), 0);
    CHECK_EQ(tstats().writer_leases, s0.writer_leases - 1);
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///lease1?size_mb=4", "lease", NULL), 0);
    e = named("lease");
    CHECK(held_by(e, NULL));
    CHECK_EQ(dp_export_unshare(&g_reg, "lease"), 0);
}

/* The holder's lock-free path: a lease that changed hands is checked again. */
TEST(writer_lease_cache_follows_changes)
{
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///lease2?size_mb=4", "lease2", NULL), 0);
    struct dp_export *e = named("lease2");
    struct dp_export_client a, b;
    client(&a, "10.0.0.1", "10.0.0.1:1003");
    client(&b, "10.0.0.2", "10.0.0.2:2003");
    dp_export_client_attach(e, &a);
    dp_export_client_attach(e, &b);
    label(g_blk, 0x55, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK_EQ(wr(e, &a, 1 << 20, g_data, sizeof g_data), 0); /* cached from here */
    CHECK(a.allowed_gen != 0);
    CHECK_EQ(wr(e, &a, 1 << 20, g_data, sizeof g_data), 0);
    /* a's host gone past the grace; b's nexus takes the export */
    set_grace(0);
    dp_export_client_detach(e, &a);
    label(g_blk, 0x66, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &b, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK(held_by(e, "10.0.0.2"));
    dp_export_client_attach(e, &a);
    CHECK_EQ(wr(e, &a, 1 << 20, g_data, sizeof g_data), -EPERM);
    CHECK_EQ(dp_export_writer_check(e, &a, 1 << 20, NULL, 0, 4096), -EPERM);
    set_grace(DP_TARGET_DEF_WRITER_GRACE_MS);
    dp_export_client_detach(e, &a);
    dp_export_client_detach(e, &b);
    CHECK_EQ(dp_export_unshare(&g_reg, "lease2"), 0);
}

static double mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* What the check costs per write, printed (never asserted; meaningful in the rel build without
 * valgrind: make build/rel/tests/test_target_export && build/rel/tests/test_target_export). */
TEST(writer_check_cost)
{
    CHECK_EQ(dp_export_share(&g_reg, "malloc:///lease3?size_mb=4", "lease3", NULL), 0);
    struct dp_export *e = named("lease3");
    struct dp_export_client a, b;
    client(&a, "10.0.0.1", "10.0.0.1:1004");
    client(&b, "10.0.0.2", "10.0.0.2:2004");
    dp_export_client_attach(e, &a);
    dp_export_client_attach(e, &b);
    const int n = 200000;
    int bad = 0;
    double t = mono_ns();
    for (int i = 0; i < n; i++)
        bad += wr(e, &a, 1 << 20, g_data, sizeof g_data) != 0;
    printf("    no lease, a data write: %.1f ns/check\n", (mono_ns() - t) / n);
    label(g_blk, 0x77, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    t = mono_ns();
    for (int i = 0; i < n; i++)
        bad += wr(e, &a, 1 << 20, g_data, sizeof g_data) != 0;
    printf("    lease held, the holder's data write: %.1f ns/check\n", (mono_ns() - t) / n);
    t = mono_ns();
    for (int i = 0; i < n / 10; i++)
        bad += wr(e, &a, 0, g_blk, NX_LABEL_BLOCK) != 0;
    printf("    lease held, the holder's label write (decoded): %.1f ns/check\n", (mono_ns() - t) / (n / 10));
    t = mono_ns();
    for (int i = 0; i < n / 10; i++)
        bad += wr(e, &b, 1 << 20, g_data, sizeof g_data) != -EPERM;
    printf("    lease held, another host's write (refused): %.1f ns/check\n", (mono_ns() - t) / (n / 10));
    CHECK_EQ(bad, 0);
    dp_export_client_detach(e, &a);
    dp_export_client_detach(e, &b);
    CHECK_EQ(dp_export_unshare(&g_reg, "lease3"), 0);
}

extern struct dp_export_registry g_nbd_exports; /* nbd/server.h */

/* The public view (dp_export_writer_lease): found by device or export name, over the protocols' registries. */
TEST(writer_lease_public)
{
    dp_writer_lease l;
    CHECK_EQ(dp_export_writer_lease(NULL, &l), -EINVAL);
    CHECK_EQ(dp_export_writer_lease("", &l), -EINVAL);
    CHECK_EQ(dp_export_writer_lease("pubexp", NULL), -EINVAL);
    CHECK_EQ(dp_export_writer_lease("pubexp", &l), 0); /* not exported */
    CHECK_EQ(dp_nbd_share("malloc:///leasepub?size_mb=4", "pubexp", NULL), 0);
    pthread_mutex_lock(&g_nbd_exports.lock);
    struct dp_export *e = dp_export_named_locked(&g_nbd_exports, "pubexp");
    pthread_mutex_unlock(&g_nbd_exports.lock);
    char dev[sizeof e->bdev->name];
    snprintf(dev, sizeof dev, "%s", e->bdev->name);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 0); /* exported, no lease */
    struct dp_export_client a, b;
    client(&a, "10.0.0.7", "10.0.0.7:1007");
    client(&b, "10.0.0.8", "10.0.0.8:2008");
    dp_export_client_attach(e, &a);
    dp_export_client_attach(e, &b);
    label(g_blk, 0x66, 2, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    /* by the device's name and by the export's, while the host is connected */
    CHECK_EQ(dp_export_writer_lease(dev, &l), 1);
    CHECK(!strcmp(l.host, "10.0.0.7") && !strcmp(l.proto, "nbd"));
    CHECK_EQ(l.connected, 1u);
    CHECK_EQ(l.grace_left_ms, 0u);
    CHECK_EQ(dp_export_writer_lease("pubexp", &l), 1);
    /* the host's connection drops: the grace runs (another host's connection does not count) */
    set_grace(3600000);
    dp_export_client_detach(e, &a);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 1);
    CHECK_EQ(l.connected, 0u);
    CHECK(l.grace_left_ms > 0 && l.grace_left_ms <= 3600000);
    /* the grace is over: no lease */
    set_grace(0);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 0);
    CHECK(!l.host[0]);
    /* taken again, released by its nexus: no lease */
    set_grace(DP_TARGET_DEF_WRITER_GRACE_MS);
    dp_export_client_attach(e, &a);
    label(g_blk, 0x66, 4, NX_LABEL_SYNCED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 1);
    label(g_blk, 0x66, 6, NX_LABEL_SYNCED | NX_LABEL_RELEASED);
    CHECK_EQ(wr(e, &a, 0, g_blk, NX_LABEL_BLOCK), 0);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 0);
    dp_export_client_detach(e, &a);
    dp_export_client_detach(e, &b);
    CHECK_EQ(dp_nbd_unshare("pubexp"), 0);
    CHECK_EQ(dp_export_writer_lease(dev, &l), 0);
}

int main(void)
{
    printf("test_target_export\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(share_and_reshare);
    RUN(attach_within_the_export_cap);
    RUN(unshare_waits_for_the_connections);
    RUN(writer_lease_taken_and_refused);
    RUN(writer_lease_grace_release_move);
    RUN(writer_lease_cache_follows_changes);
    RUN(writer_check_cost);
    RUN(writer_lease_public);
    dp_fini();
    return 0;
}
