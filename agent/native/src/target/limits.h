/*
 * limits.h - limits against abuse, shared by every target protocol (NBD
 * today; NVMe/TCP and iSCSI get the same). Clients are unauthenticated until
 * a protocol says otherwise, so none of them may exhaust the agent:
 *
 *  - admission: a per-agent connection cap, and fd headroom for the control
 *    plane (a connection whose fd lies within `fd_headroom` of RLIMIT_NOFILE
 *    is closed at once: the kernel hands out the lowest free fd, so fd N
 *    means fds 0..N-1 are all open, and the target never keeps an fd in the
 *    top `fd_headroom`; node's HTTP server and state.json writes use those);
 *    the per-export cap is checked by the protocol when a client picks an
 *    export (dp_target_export_full);
 *  - a whole-handshake deadline, from accept to the end of negotiation
 *    (dp_target_handshake_left gives the time left for the next transfer);
 *  - accept backoff: EMFILE/ENFILE/ENOBUFS/ENOMEM stop accepting, warn (rate
 *    limited) and retry after a timer with a growing delay, never a spin;
 *  - bounded memory: request slots and payload buffers are charged to the
 *    connection (per-connection budget) and to the agent (global budget)
 *    before they are allocated; a charge that does not fit makes the
 *    protocol stop reading requests from that client until its own replies
 *    have gone out (back-pressure). Each connection may always hold
 *    DP_TARGET_MEM_FLOOR bytes whatever the others hold, so no client can
 *    starve another entirely.
 *
 * Counters for /metrics: dp_target_stats (datapath.h).
 * Everything here is thread-safe (atomics, one mutex for the log limiter).
 */
#ifndef DP_TARGET_LIMITS_H
#define DP_TARGET_LIMITS_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"
#include "reactor/reactor.h"

/* Defaults (the agent passes its flags, which default to the same). */
#define DP_TARGET_DEF_MAX_CONNS 1024u
#define DP_TARGET_DEF_MAX_CONNS_EXPORT 128u
#define DP_TARGET_DEF_HS_TIMEOUT_MS 10000u
#define DP_TARGET_DEF_FD_HEADROOM 64u
#define DP_TARGET_DEF_CONN_BUDGET (64ull << 20)
#define DP_TARGET_DEF_BUDGET (1ull << 30)
/* The nexus's reconnect window: a reconnecting nexus wins over a stranger. */
#define DP_TARGET_DEF_WRITER_GRACE_MS 30000u
#define DP_TARGET_MAX_WRITER_GRACE_MS 86400000u
/* Bounds of dp_target_set_limits. */
#define DP_TARGET_MIN_CONN_BUDGET (1ull << 20)
/* What every connection may hold regardless of the global budget. */
#define DP_TARGET_MEM_FLOOR (256u * 1024)
/* A request slot keeps a data buffer up to this size for the next request
 * (charged while kept): no allocation, zeroing or page faults per request. */
#define DP_TARGET_KEPT_BUF (128u * 1024)

enum dp_target_refusal {
    DP_REFUSED_MAX_CONNS, /* --max-connections reached */
    DP_REFUSED_MAX_CONNS_EXPORT, /* --max-connections-per-export reached */
    DP_REFUSED_FD_HEADROOM, /* open fds within --fd-headroom of RLIMIT_NOFILE */
    DP_REFUSED__N
};

/* Target state of one connection; embed it in the protocol's connection. */
struct dp_target_conn {
    uint64_t hs_deadline_ns; /* CLOCK_MONOTONIC end of the handshake */
    uint64_t mem; /* bytes charged (slots and payload buffers) */
    bool admitted; /* counted in the per-agent connections */
    bool in_handshake;
};

/* The limits in force (defaults until dp_target_set_limits). */
void dp_target_limits_now(dp_target_limits *out);

/*
 * A connection was accepted on `fd`: 0 when it may stay (counted until
 * dp_target_conn_release; its handshake deadline starts now), or the
 * refusal (> 0 is enum dp_target_refusal + 1): the caller closes fd at once.
 * A refusal is counted and logged (rate limited) naming `peer`.
 */
int dp_target_conn_admit(struct dp_target_conn *tc, int fd, const char *proto, const char *peer);
/* The connection is gone (after every charge was released). */
void dp_target_conn_release(struct dp_target_conn *tc);

/*
 * The per-export cap: true when an export that already has `nconns`
 * connections must refuse one more (counted and logged naming peer and
 * export). The protocol holds its own lock around nconns.
 */
bool dp_target_export_full(int nconns, const char *proto, const char *peer, const char *export_name);

/* Time left to the handshake deadline in *ts; false once it has passed. */
bool dp_target_handshake_left(const struct dp_target_conn *tc, struct __kernel_timespec *ts);
/* The handshake missed its deadline: counted, logged naming the peer. */
void dp_target_handshake_expired(struct dp_target_conn *tc, const char *proto, const char *peer);
/* The handshake finished: the connection is in its data phase. */
void dp_target_handshake_done(struct dp_target_conn *tc);

/* ---- memory ---- */
/* The per-connection budget in bytes. */
uint64_t dp_target_conn_budget(void);
/*
 * Charge n bytes to tc before allocating them: 0; -EAGAIN when they do not
 * fit in the connection's budget now, -ENOBUFS when they do not fit in the
 * agent's (wait for memory to come back, do not read more requests);
 * -EOVERFLOW when n can never fit in one connection's budget.
 */
int dp_target_mem_charge(struct dp_target_conn *tc, uint64_t n);
void dp_target_mem_release(struct dp_target_conn *tc, uint64_t n);
/* A request had to wait for memory (counted for /metrics). */
void dp_target_mem_waited(void);

/* ---- writer lease (target/export.h) ---- */
/* How long a lease outlives its host's last connection. */
uint32_t dp_target_writer_grace_ms(void);
/* A lease was taken (+1) or ended (-1): the writer_leases gauge. */
void dp_target_lease_count(int delta);
/* A write was refused for another host's lease (counted for /metrics). */
void dp_target_write_refused(void);

/* ---- accept backoff ---- */
struct dp_target_listener {
    struct dp_uring_op timer_op; /* first: the timer's completion */
    struct dp_reactor *r;
    const char *proto;
    /* Runs on r when accepting may resume (also when the timer was cancelled). */
    void (*resume)(struct dp_target_listener *l);
    struct __kernel_timespec ts;
    uint32_t delay_ms;
    bool timer_inflight;
};

void dp_target_listener_init(struct dp_target_listener *l, struct dp_reactor *r, const char *proto,
                             void (*resume)(struct dp_target_listener *l));
/*
 * An accept failed with res (< 0), on l->r. True when it is a resource
 * error (EMFILE, ENFILE, ENOBUFS, ENOMEM): accepting stops, a warning is
 * logged (rate limited) and resume() runs after a growing delay (50 ms
 * doubling to 2 s). False for other errors (the caller decides).
 */
bool dp_target_accept_failed(struct dp_target_listener *l, int res);
/* An accept succeeded: the next backoff starts from the shortest delay. */
void dp_target_accept_ok(struct dp_target_listener *l);
/* On l->r: cancel a pending backoff timer (resume() still runs, once). */
void dp_target_listener_cancel(struct dp_target_listener *l);

#endif /* DP_TARGET_LIMITS_H */
