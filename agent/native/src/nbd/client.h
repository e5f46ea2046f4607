/*
 * client.h - what the nbd:// child's files share (internal): the child's
 * state (client.c: connection, commands, reconnects) and its identity
 * checks across reconnects (client_ident.c).
 */
#ifndef DP_NBD_CLIENT_H
#define DP_NBD_CLIENT_H

#include <libnbd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "reactor/reactor.h"

#define NBDC_CMDS 256
#define IDENT_BYTES 8192u /* the two nexus label slots; the pool label is in the first 4 KiB */

/* ST_VERIFY: connected again, reading the identity bytes before any I/O. */
enum nbdc_state { ST_UP, ST_CONNECTING, ST_VERIFY, ST_CLOSING, ST_DOWN };

struct nbdc_cmd {
    struct nbdc *n;
    struct dp_bdev_io *io; /* NULL once completed (timeout/abort): orphan */
    void *bounce;
    uint64_t start_ms;
    bool active;
    struct nbdc_cmd *next_free;
};

struct nbdc {
    struct dp_bdev bdev;
    char host[256], port[16], export[256], peer[600];
    uint32_t io_timeout_ms, connect_timeout_ms;
    struct nbd_handle *h;
    int fd;
    /* The peer's address from the first connect: reconnects (on the reactor)
     * use it, because nbd_aio_connect_tcp resolves the host name with a
     * blocking getaddrinfo that would stall the reactor while DNS is slow. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum nbdc_state state;
    uint64_t deadline_ms; /* connect deadline / next retry */
    uint32_t backoff_ms;
    struct dp_uring_op pin_op, pout_op, tick_op;
    bool pin, pout, tick;
    struct __kernel_timespec tick_ts;
    bool destroying, in_call, logged_down;
    int active;
    int running_done; /* >0 while completions run: destroy must wait */
    /* Completions libnbd reported: run only after the libnbd call returns,
     * because a completion may submit again and libnbd holds its handle
     * lock while it calls us back. */
    struct dp_bdev_io *done_head, *done_tail;
    struct nbdc_cmd cmds[NBDC_CMDS];
    struct nbdc_cmd *free_cmds;
    struct dp_bdev_io *wait_head, *wait_tail;
    /* identity (see the top): ident NULL when the export is too small to carry a label */
    uint8_t *ident, *verify_buf;
    bool ident_lost; /* a write to the identity bytes failed: they cannot be vouched for */
    int verify_result; /* ST_VERIFY: 0 pending, 1 same device, 2 same, label to write back, -1 not, -2 refused */
    bool replaced;
};

/* ---- client_ident.c ---- */
/* A write, zeroing or trim reached the identity bytes (status: its result): keep the copy equal. */
void nbdc_ident_track(struct nbdc *n, const struct dp_bdev_io *io, const void *bounce, int status);
/* Connected again: read the identity bytes before any I/O passes (ST_VERIFY, verify_result). */
void nbdc_verify_start(struct nbdc *n);
/* verify_result 2: write the label back unchanged (verify_result becomes 1, or -2 when refused: EPERM). */
void nbdc_reassert_start(struct nbdc *n);

#endif /* DP_NBD_CLIENT_H */
