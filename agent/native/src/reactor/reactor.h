/*
 * reactor.h - event loop threads of the data path.
 *
 * Each reactor is one thread with one io_uring. It sleeps (poll() on the
 * ring fd, see reactor.c) when idle (no busy polling: an idle agent costs ~0%
 * CPU). Work reaches a reactor in two ways:
 *  - io_uring operations whose user_data is a struct dp_uring_op: when the
 *    CQE arrives, op->cb(op, cqe->res) runs on the reactor thread;
 *  - messages (dp_reactor_send) from any thread, delivered through an
 *    eventfd that the reactor keeps a read posted on.
 *
 * Threading rule for the whole data path: an object (bdev, pool, NBD
 * connection) belongs to one reactor; its state is touched only on that
 * reactor's thread. Other threads send it a message.
 */
#ifndef DP_REACTOR_H
#define DP_REACTOR_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct dp_reactor;

/* An in-flight io_uring operation. Embed it in the request's own struct. */
struct dp_uring_op {
    void (*cb)(struct dp_uring_op *op, int res, uint32_t cqe_flags);
};

typedef void (*dp_msg_fn)(void *arg);

int dp_reactors_start(uint32_t count);
void dp_reactors_stop(void);
uint32_t dp_reactor_count(void);
struct dp_reactor *dp_reactor_get(uint32_t index);
/* The reactor running on this thread, or NULL. */
struct dp_reactor *dp_reactor_self(void);
/* Reactors are handed out round-robin to new objects. */
struct dp_reactor *dp_reactor_next(void);

/* Queue fn(arg) to run on `r`. Thread-safe; never blocks on the reactor. */
void dp_reactor_send(struct dp_reactor *r, dp_msg_fn fn, void *arg);
/*
 * Run fn(arg) on `r` and wait for it to return; runs inline when called
 * on `r` itself. For control paths only (never from another reactor).
 */
void dp_reactor_call(struct dp_reactor *r, dp_msg_fn fn, void *arg);

/*
 * Get an SQE on the calling reactor's ring (must be on a reactor thread).
 * Never NULL: submits pending SQEs to make room when the ring is full.
 * The caller sets it up and stores `op` with io_uring_sqe_set_data(). SQEs
 * are submitted when the reactor next goes to sleep or reaps, in batches.
 */
struct io_uring_sqe *dp_reactor_sqe(struct dp_reactor *r);

/* One-shot timer: op->cb runs with res == -ETIME after `ms`. */
void dp_reactor_timer(struct dp_reactor *r, struct dp_uring_op *op, struct __kernel_timespec *ts);

#endif /* DP_REACTOR_H */
