/*
 * limits.c - limits against abuse shared by the target protocols (limits.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "api/export.h"
#include "bdev/bdev.h"
#include "target/limits.h"

#define LOG_EVERY_NS (10ull * 1000000000ull) /* one line per kind every 10 s at most */
#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u

static struct {
    uint32_t max_conns, max_conns_export, hs_timeout_ms, fd_headroom;
    uint64_t conn_budget, budget;
    uint32_t writer_grace_ms;
} g_lim = { DP_TARGET_DEF_MAX_CONNS,      DP_TARGET_DEF_MAX_CONNS_EXPORT, DP_TARGET_DEF_HS_TIMEOUT_MS,
            DP_TARGET_DEF_FD_HEADROOM,    DP_TARGET_DEF_CONN_BUDGET,      DP_TARGET_DEF_BUDGET,
            DP_TARGET_DEF_WRITER_GRACE_MS };

static struct {
    uint64_t conns, handshakes, accepted, refused[DP_REFUSED__N], hs_timeouts, backoffs, mem, mem_waits;
    uint64_t leases, writes_refused;
} g_st;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define SUB(x, n) __atomic_sub_fetch(&(x), (n), __ATOMIC_RELAXED)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- rate-limited log -------------------------------------------------- */

enum log_kind { LOG_REFUSED_BASE = 0, LOG_HS_TIMEOUT = DP_REFUSED__N, LOG_BACKOFF, LOG__N };

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t last_ns;
    uint64_t suppressed;
} g_log[LOG__N];

/* Print the line unless one of this kind went out in the last 10 s; the next
 * line that goes out says how many were left out meanwhile. */
static void log_limited(enum log_kind k, const char *line)
{
    uint64_t now = now_ns(), skipped = 0;
    bool print = false;
    pthread_mutex_lock(&g_log_lock);
    if (!g_log[k].last_ns || now - g_log[k].last_ns >= LOG_EVERY_NS) {
        print = true;
        skipped = g_log[k].suppressed;
        g_log[k].suppressed = 0;
        g_log[k].last_ns = now;
    } else {
        g_log[k].suppressed++;
    }
    pthread_mutex_unlock(&g_log_lock);
    if (!print)
        return;
    if (skipped)
        fprintf(stderr, "%s (and %" PRIu64 " more like it in the last 10 s)\n", line, skipped);
    else
        fprintf(stderr, "%s\n", line);
}

/* ---- configuration and stats ------------------------------------------- */

void dp_target_limits_now(dp_target_limits *o)
{
    o->max_connections = LOAD(g_lim.max_conns);
    o->max_connections_per_export = LOAD(g_lim.max_conns_export);
    o->handshake_timeout_ms = LOAD(g_lim.hs_timeout_ms);
    o->fd_headroom = LOAD(g_lim.fd_headroom);
    o->conn_memory_budget = LOAD(g_lim.conn_budget);
    o->memory_budget = LOAD(g_lim.budget);
    o->writer_grace_ms = LOAD(g_lim.writer_grace_ms);
    o->pad = 0;
}

DP_EXPORT int dp_target_set_limits(const dp_target_limits *l)
{
    dp_clear_error();
    if (!l) {
        dp_set_error("target limits: none given");
        return -EINVAL;
    }
    if (l->max_connections < 1) {
        dp_set_error("target limits: max_connections must be at least 1");
        return -EINVAL;
    }
    if (l->max_connections_per_export < 1) {
        dp_set_error("target limits: max_connections_per_export must be at least 1");
        return -EINVAL;
    }
    if (l->handshake_timeout_ms < 1) {
        dp_set_error("target limits: handshake_timeout_ms must be at least 1");
        return -EINVAL;
    }
    if (l->conn_memory_budget < DP_TARGET_MIN_CONN_BUDGET) {
        dp_set_error("target limits: conn_memory_budget %" PRIu64 " is below the minimum of %llu bytes (1 MiB)",
                     l->conn_memory_budget, DP_TARGET_MIN_CONN_BUDGET);
        return -EINVAL;
    }
    if (l->memory_budget < l->conn_memory_budget) {
        dp_set_error("target limits: memory_budget %" PRIu64 " is below conn_memory_budget %" PRIu64, l->memory_budget,
                     l->conn_memory_budget);
        return -EINVAL;
    }
    if (l->writer_grace_ms > DP_TARGET_MAX_WRITER_GRACE_MS) {
        dp_set_error("target limits: writer_grace_ms %u is above the maximum of %u (24 h)", l->writer_grace_ms,
                     DP_TARGET_MAX_WRITER_GRACE_MS);
        return -EINVAL;
    }
    __atomic_store_n(&g_lim.max_conns, l->max_connections, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.max_conns_export, l->max_connections_per_export, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.hs_timeout_ms, l->handshake_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.fd_headroom, l->fd_headroom, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.conn_budget, l->conn_memory_budget, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.budget, l->memory_budget, __ATOMIC_RELAXED);
    __atomic_store_n(&g_lim.writer_grace_ms, l->writer_grace_ms, __ATOMIC_RELAXED);
    return 0;
}

DP_EXPORT int dp_target_get_limits(dp_target_limits *out)
{
    dp_clear_error();
    if (!out) {
        dp_set_error("target limits: no output");
        return -EINVAL;
    }
    dp_target_limits_now(out);
    return 0;
}

DP_EXPORT int dp_target_stats_get(dp_target_stats *o)
{
    dp_clear_error();
    if (!o) {
        dp_set_error("target stats: no output");
        return -EINVAL;
    }
    memset(o, 0, sizeof *o);
    o->connections = LOAD(g_st.conns);
    o->handshakes = LOAD(g_st.handshakes);
    o->accepted = LOAD(g_st.accepted);
    o->refused_max_connections = LOAD(g_st.refused[DP_REFUSED_MAX_CONNS]);
    o->refused_max_connections_per_export = LOAD(g_st.refused[DP_REFUSED_MAX_CONNS_EXPORT]);
    o->refused_fd_headroom = LOAD(g_st.refused[DP_REFUSED_FD_HEADROOM]);
    o->handshake_timeouts = LOAD(g_st.hs_timeouts);
    o->accept_backoffs = LOAD(g_st.backoffs);
    o->memory_bytes = LOAD(g_st.mem);
    o->memory_waits = LOAD(g_st.mem_waits);
    o->writer_leases = LOAD(g_st.leases);
    o->writes_refused = LOAD(g_st.writes_refused);
    return 0;
}

/* ---- writer lease (export.c) -------------------------------------------- */

uint32_t dp_target_writer_grace_ms(void)
{
    return LOAD(g_lim.writer_grace_ms);
}

void dp_target_lease_count(int delta)
{
    if (delta > 0)
        ADD(g_st.leases, 1);
    else
        SUB(g_st.leases, 1);
}

void dp_target_write_refused(void)
{
    ADD(g_st.writes_refused, 1);
}

/* ---- admission --------------------------------------------------------- */

static void refused(enum dp_target_refusal why, const char *proto, const char *peer, const char *detail)
{
    ADD(g_st.refused[why], 1);
    char line[512];
    snprintf(line, sizeof line, "%s: peer %s: connection refused: %s; closed", proto, peer, detail);
    log_limited((enum log_kind)(LOG_REFUSED_BASE + why), line);
}

int dp_target_conn_admit(struct dp_target_conn *tc, int fd, const char *proto, const char *peer)
{
    memset(tc, 0, sizeof *tc);
    char detail[192];
    uint32_t headroom = LOAD(g_lim.fd_headroom);
    struct rlimit rl;
    if (headroom && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)fd + headroom >= (uint64_t)rl.rlim_cur) {
        /* fd is the lowest free one: fds 0..fd-1 are all open. */
        snprintf(detail, sizeof detail,
                 "at least %d of %llu file descriptors are open; the last %u are kept for the control plane "
                 "(--fd-headroom)",
                 fd + 1, (unsigned long long)rl.rlim_cur, headroom);
        refused(DP_REFUSED_FD_HEADROOM, proto, peer, detail);
        return DP_REFUSED_FD_HEADROOM + 1;
    }
    uint32_t cap = LOAD(g_lim.max_conns);
    uint64_t n = ADD(g_st.conns, 1);
    if (n > cap) {
        SUB(g_st.conns, 1);
        snprintf(detail, sizeof detail, "%u connections are open, the limit of the agent (--max-connections)", cap);
        refused(DP_REFUSED_MAX_CONNS, proto, peer, detail);
        return DP_REFUSED_MAX_CONNS + 1;
    }
    ADD(g_st.accepted, 1);
    ADD(g_st.handshakes, 1);
    tc->admitted = true;
    tc->in_handshake = true;
    tc->hs_deadline_ns = now_ns() + (uint64_t)LOAD(g_lim.hs_timeout_ms) * 1000000ull;
    return 0;
}

void dp_target_conn_release(struct dp_target_conn *tc)
{
    if (tc->mem)
        dp_target_mem_release(tc, tc->mem);
    if (tc->in_handshake) {
        tc->in_handshake = false;
        SUB(g_st.handshakes, 1);
    }
    if (tc->admitted) {
        tc->admitted = false;
        SUB(g_st.conns, 1);
    }
}

bool dp_target_export_full(int nconns, const char *proto, const char *peer, const char *export_name)
{
    uint32_t cap = LOAD(g_lim.max_conns_export);
    if (nconns < 0 || (uint32_t)nconns < cap)
        return false;
    char detail[192];
    snprintf(detail, sizeof detail, "export '%.64s' has %d connections, its limit (--max-connections-per-export)",
             export_name, nconns);
    refused(DP_REFUSED_MAX_CONNS_EXPORT, proto, peer, detail);
    return true;
}

/* ---- handshake deadline ------------------------------------------------- */

bool dp_target_handshake_left(const struct dp_target_conn *tc, struct __kernel_timespec *ts)
{
    uint64_t now = now_ns();
    if (now >= tc->hs_deadline_ns)
        return false;
    uint64_t left = tc->hs_deadline_ns - now;
    ts->tv_sec = (long long)(left / 1000000000ull);
    ts->tv_nsec = (long long)(left % 1000000000ull);
    return true;
}

void dp_target_handshake_expired(struct dp_target_conn *tc, const char *proto, const char *peer)
{
    ADD(g_st.hs_timeouts, 1);
    char line[256];
    snprintf(line, sizeof line, "%s: peer %s: handshake not finished within %u ms (--handshake-timeout-ms); closing",
             proto, peer, LOAD(g_lim.hs_timeout_ms));
    log_limited(LOG_HS_TIMEOUT, line);
}

void dp_target_handshake_done(struct dp_target_conn *tc)
{
    if (tc->in_handshake) {
        tc->in_handshake = false;
        SUB(g_st.handshakes, 1);
    }
}

/* ---- memory ------------------------------------------------------------- */

uint64_t dp_target_conn_budget(void)
{
    return LOAD(g_lim.conn_budget);
}

int dp_target_mem_charge(struct dp_target_conn *tc, uint64_t n)
{
    if (n == 0)
        return 0; /* nothing new (a kept slot and buffer): no shared counter touched */
    uint64_t cb = LOAD(g_lim.conn_budget);
    if (n > cb)
        return -EOVERFLOW;
    if (tc->mem + n > cb)
        return -EAGAIN;
    if (tc->mem + n <= DP_TARGET_MEM_FLOOR) {
        /* The floor every connection keeps, whatever the others hold. */
        ADD(g_st.mem, n);
    } else {
        uint64_t budget = LOAD(g_lim.budget);
        uint64_t cur = LOAD(g_st.mem);
        do {
            if (cur + n > budget)
                return -ENOBUFS;
        } while (!__atomic_compare_exchange_n(&g_st.mem, &cur, cur + n, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    }
    tc->mem += n;
    return 0;
}

void dp_target_mem_release(struct dp_target_conn *tc, uint64_t n)
{
    if (n > tc->mem)
        n = tc->mem; /* never below zero, whatever a caller does */
    tc->mem -= n;
    SUB(g_st.mem, n);
}

void dp_target_mem_waited(void)
{
    ADD(g_st.mem_waits, 1);
}

/* ---- accept backoff ----------------------------------------------------- */

static void backoff_timer_cb(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct dp_target_listener *l = (struct dp_target_listener *)op;
    l->timer_inflight = false;
    l->resume(l);
}

void dp_target_listener_init(struct dp_target_listener *l, struct dp_reactor *r, const char *proto,
                             void (*resume)(struct dp_target_listener *l))
{
    memset(l, 0, sizeof *l);
    l->timer_op.cb = backoff_timer_cb;
    l->r = r;
    l->proto = proto;
    l->resume = resume;
    l->delay_ms = BACKOFF_MIN_MS;
}

bool dp_target_accept_failed(struct dp_target_listener *l, int res)
{
    if (res != -EMFILE && res != -ENFILE && res != -ENOBUFS && res != -ENOMEM)
        return false;
    ADD(g_st.backoffs, 1);
    char line[256];
    snprintf(line, sizeof line,
             "%s: accept: %s; not accepting new connections for %u ms (limits: ulimit -n, "
             "--max-connections)",
             l->proto, strerror(-res), l->delay_ms);
    log_limited(LOG_BACKOFF, line);
    l->ts.tv_sec = l->delay_ms / 1000;
    l->ts.tv_nsec = (long long)(l->delay_ms % 1000) * 1000000;
    struct io_uring_sqe *sqe = dp_reactor_sqe(l->r);
    io_uring_prep_timeout(sqe, &l->ts, 0, 0);
    io_uring_sqe_set_data(sqe, &l->timer_op);
    l->timer_inflight = true;
    l->delay_ms = l->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->delay_ms * 2;
    return true;
}

void dp_target_accept_ok(struct dp_target_listener *l)
{
    l->delay_ms = BACKOFF_MIN_MS;
}

void dp_target_listener_cancel(struct dp_target_listener *l)
{
    if (!l->timer_inflight)
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(l->r);
    io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&l->timer_op, 0);
    io_uring_sqe_set_data(sqe, NULL);
}
