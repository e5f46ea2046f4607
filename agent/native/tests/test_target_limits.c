/* test_target_limits.c - the limits every target applies to its clients (target/limits.h):
 * bounds of dp_target_set_limits, admission (agent cap, fd headroom), the per-export cap,
 * the whole-handshake deadline, the memory budgets, and accept backoff on a reactor. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "reactor/reactor.h"
#include "target/limits.h"
#include "testlib.h"

static dp_target_limits defaults(void)
{
    return (dp_target_limits){ .max_connections = DP_TARGET_DEF_MAX_CONNS,
                               .max_connections_per_export = DP_TARGET_DEF_MAX_CONNS_EXPORT,
                               .handshake_timeout_ms = DP_TARGET_DEF_HS_TIMEOUT_MS,
                               .fd_headroom = DP_TARGET_DEF_FD_HEADROOM,
                               .conn_memory_budget = DP_TARGET_DEF_CONN_BUDGET,
                               .memory_budget = DP_TARGET_DEF_BUDGET,
                               .writer_grace_ms = DP_TARGET_DEF_WRITER_GRACE_MS };
}

static dp_target_stats stats(void)
{
    dp_target_stats s;
    CHECK_EQ(dp_target_stats_get(&s), 0);
    return s;
}

TEST(defaults_and_bounds)
{
    dp_target_limits l, d = defaults();
    CHECK_EQ(dp_target_get_limits(&l), 0);
    CHECK(!memcmp(&l, &d, sizeof l));
    struct {
        dp_target_limits l;
        const char *field;
    } bad[] = {
        { d, "max_connections" },      { d, "max_connections_per_export" },
        { d, "handshake_timeout_ms" }, { d, "conn_memory_budget" },
        { d, "memory_budget" },        { d, "writer_grace_ms" },
    };
    bad[0].l.max_connections = 0;
    bad[1].l.max_connections_per_export = 0;
    bad[2].l.handshake_timeout_ms = 0;
    bad[3].l.conn_memory_budget = 1000;
    bad[4].l.memory_budget = d.conn_memory_budget - 1;
    bad[5].l.writer_grace_ms = DP_TARGET_MAX_WRITER_GRACE_MS + 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(dp_target_set_limits(&bad[i].l), -EINVAL);
        CHECK(strstr(dp_last_error(), bad[i].field));
    }
    CHECK_EQ(dp_target_set_limits(NULL), -EINVAL);
    CHECK_EQ(dp_target_get_limits(&l), 0);
    CHECK(!memcmp(&l, &d, sizeof l)); /* a refused set changes nothing */
}

TEST(agent_cap)
{
    dp_target_limits l = defaults();
    l.max_connections = 2;
    l.fd_headroom = 0;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    dp_target_stats s0 = stats();
    struct dp_target_conn a, b, c;
    CHECK_EQ(dp_target_conn_admit(&a, 3, "test", "10.0.0.1:1"), 0);
    CHECK_EQ(dp_target_conn_admit(&b, 4, "test", "10.0.0.1:2"), 0);
    CHECK_EQ(dp_target_conn_admit(&c, 5, "test", "10.0.0.1:3"), DP_REFUSED_MAX_CONNS + 1);
    dp_target_stats s1 = stats();
    CHECK_EQ(s1.connections, s0.connections + 2);
    CHECK_EQ(s1.handshakes, s0.handshakes + 2);
    CHECK_EQ(s1.refused_max_connections, s0.refused_max_connections + 1);
    dp_target_handshake_done(&a);
    CHECK_EQ(stats().handshakes, s0.handshakes + 1);
    dp_target_conn_release(&b);
    CHECK_EQ(dp_target_conn_admit(&c, 5, "test", "10.0.0.1:3"), 0); /* room again */
    dp_target_conn_release(&a);
    dp_target_conn_release(&c);
    dp_target_conn_release(&c); /* twice: nothing more */
    CHECK_EQ(stats().connections, s0.connections);
    CHECK_EQ(stats().handshakes, s0.handshakes);
    l = defaults();
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

TEST(fd_headroom)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30))
        return;
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    dp_target_limits l = defaults();
    /* fd is the lowest free one, so fds 0..fd are open: headroom that reaches it refuses. */
    l.fd_headroom = (uint32_t)(rl.rlim_cur - (rlim_t)fd);
    CHECK_EQ(dp_target_set_limits(&l), 0);
    uint64_t before = stats().refused_fd_headroom;
    struct dp_target_conn tc;
    CHECK_EQ(dp_target_conn_admit(&tc, fd, "test", "10.0.0.2:1"), DP_REFUSED_FD_HEADROOM + 1);
    CHECK_EQ(stats().refused_fd_headroom, before + 1);
    l.fd_headroom = (uint32_t)(rl.rlim_cur - (rlim_t)fd - 1);
    CHECK_EQ(dp_target_set_limits(&l), 0);
    CHECK_EQ(dp_target_conn_admit(&tc, fd, "test", "10.0.0.2:1"), 0);
    dp_target_conn_release(&tc);
    close(fd);
    l = defaults();
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

TEST(export_cap)
{
    dp_target_limits l = defaults();
    l.max_connections_per_export = 3;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    uint64_t before = stats().refused_max_connections_per_export;
    CHECK(!dp_target_export_full(0, "test", "p", "e"));
    CHECK(!dp_target_export_full(2, "test", "p", "e"));
    CHECK(dp_target_export_full(3, "test", "p", "e"));
    CHECK(dp_target_export_full(4, "test", "p", "e"));
    CHECK_EQ(stats().refused_max_connections_per_export, before + 2);
    l = defaults();
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

TEST(handshake_deadline_is_for_the_whole_handshake)
{
    dp_target_limits l = defaults();
    l.handshake_timeout_ms = 100;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    struct dp_target_conn tc;
    CHECK_EQ(dp_target_conn_admit(&tc, 3, "test", "10.0.0.3:1"), 0);
    struct __kernel_timespec ts;
    CHECK(dp_target_handshake_left(&tc, &ts));
    CHECK(ts.tv_sec == 0 && ts.tv_nsec > 0 && ts.tv_nsec <= 100 * 1000000ll);
    /* each "receive" gets only what is left, not a fresh timeout */
    usleep(60 * 1000);
    struct __kernel_timespec ts2;
    CHECK(dp_target_handshake_left(&tc, &ts2));
    CHECK(ts2.tv_nsec < ts.tv_nsec);
    usleep(60 * 1000);
    CHECK(!dp_target_handshake_left(&tc, &ts2));
    uint64_t before = stats().handshake_timeouts;
    dp_target_handshake_expired(&tc, "test", "10.0.0.3:1");
    CHECK_EQ(stats().handshake_timeouts, before + 1);
    dp_target_conn_release(&tc);
    l = defaults();
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

TEST(memory_budgets)
{
    const uint64_t MiB = 1 << 20;
    dp_target_limits l = defaults();
    l.conn_memory_budget = 4 * MiB;
    l.memory_budget = 6 * MiB;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    uint64_t base = stats().memory_bytes;
    struct dp_target_conn a, b, c;
    CHECK_EQ(dp_target_conn_admit(&a, 3, "test", "a"), 0);
    CHECK_EQ(dp_target_conn_admit(&b, 4, "test", "b"), 0);
    CHECK_EQ(dp_target_conn_admit(&c, 5, "test", "c"), 0);
    CHECK_EQ(dp_target_mem_charge(&a, 5 * MiB), -EOVERFLOW); /* never fits one connection */
    CHECK_EQ(dp_target_mem_charge(&a, 3 * MiB), 0);
    CHECK_EQ(dp_target_mem_charge(&a, 2 * MiB), -EAGAIN); /* a's own budget */
    CHECK_EQ(dp_target_mem_charge(&b, 3 * MiB), 0);
    CHECK_EQ(dp_target_mem_charge(&b, 1 * MiB), -ENOBUFS); /* the agent's: 6 MiB held */
    CHECK_EQ(stats().memory_bytes, base + 6 * MiB);
    /* the floor: a connection holding nothing still gets DP_TARGET_MEM_FLOOR */
    CHECK_EQ(dp_target_mem_charge(&c, DP_TARGET_MEM_FLOOR), 0);
    CHECK_EQ(dp_target_mem_charge(&c, 1), -ENOBUFS);
    dp_target_mem_release(&a, 3 * MiB);
    CHECK_EQ(dp_target_mem_charge(&b, 1 * MiB), 0);
    CHECK_EQ(b.mem, 4 * MiB);
    dp_target_mem_release(&b, 8 * MiB); /* more than held: clamps */
    CHECK_EQ(b.mem, 0);
    dp_target_conn_release(&c); /* releases what c still holds */
    dp_target_conn_release(&a);
    dp_target_conn_release(&b);
    CHECK_EQ(stats().memory_bytes, base);
    l = defaults();
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

/* ---- accept backoff on a reactor ---- */

static struct dp_target_listener g_l;
static atomic_int g_resumed;
static atomic_int g_failed_ret;

static void resume(struct dp_target_listener *l)
{
    (void)l;
    atomic_fetch_add(&g_resumed, 1);
}

static void fail_emfile(void *arg)
{
    atomic_store(&g_failed_ret, dp_target_accept_failed(&g_l, (int)(intptr_t)arg));
}

static void cancel_msg(void *arg)
{
    (void)arg;
    dp_target_listener_cancel(&g_l);
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

TEST(accept_backoff_waits_on_a_timer)
{
    struct dp_reactor *r = dp_reactor_get(0);
    dp_target_listener_init(&g_l, r, "test", resume);
    uint64_t before = stats().accept_backoffs;
    /* other errors are not the backoff's business */
    dp_reactor_call(r, fail_emfile, (void *)(intptr_t)-ECONNABORTED);
    CHECK_EQ(atomic_load(&g_failed_ret), 0);
    CHECK_EQ(stats().accept_backoffs, before);
    /* EMFILE: resume runs once, later (50 ms), then 100 ms */
    int errs[] = { -EMFILE, -ENFILE };
    for (int i = 0; i < 2; i++) {
        int want = atomic_load(&g_resumed) + 1;
        uint64_t t0 = ms_now();
        dp_reactor_call(r, fail_emfile, (void *)(intptr_t)errs[i]);
        CHECK_EQ(atomic_load(&g_failed_ret), 1);
        CHECK_EQ(atomic_load(&g_resumed), want - 1);
        while (atomic_load(&g_resumed) < want)
            usleep(1000);
        CHECK(ms_now() - t0 >= (uint64_t)(i == 0 ? 45 : 95));
    }
    CHECK_EQ(stats().accept_backoffs, before + 2);
    /* a success starts over from the shortest delay */
    dp_target_accept_ok(&g_l);
    CHECK_EQ(g_l.delay_ms, 50);
    /* cancel at shutdown: resume still runs, at once */
    int want = atomic_load(&g_resumed) + 1;
    g_l.delay_ms = 2000; /* a long wait */
    dp_reactor_call(r, fail_emfile, (void *)(intptr_t)-ENOBUFS);
    uint64_t t0 = ms_now();
    dp_reactor_call(r, cancel_msg, NULL);
    while (atomic_load(&g_resumed) < want)
        usleep(1000);
    CHECK(ms_now() - t0 < 1500);
    CHECK(!g_l.timer_inflight);
}

int main(void)
{
    printf("test_target_limits\n");
    CHECK_EQ(dp_init(1), 0);
    RUN(defaults_and_bounds);
    RUN(agent_cap);
    RUN(fd_headroom);
    RUN(export_cap);
    RUN(handshake_deadline_is_for_the_whole_handshake);
    RUN(memory_budgets);
    RUN(accept_backoff_waits_on_a_timer);
    dp_fini();
    return 0;
}
