/* test_target_export.c - the export registry every target keeps (target/export.h): share and
 * re-share, errors naming the protocol and export, attach within the per-export cap, and an
 * unshare that waits until the protocol's connections are gone. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
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

int main(void)
{
    printf("test_target_export\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(share_and_reshare);
    RUN(attach_within_the_export_cap);
    RUN(unshare_waits_for_the_connections);
    dp_fini();
    return 0;
}
