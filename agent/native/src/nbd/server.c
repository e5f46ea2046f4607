/*
 * server.c - the NBD target: connections, the export registry glue and the
 * public dp_nbd_* API. The target framework (target/) provides the
 * listener, the export registry, allowlists and limits; the fixed-newstyle
 * negotiation lives in handshake.c, the transmission phase in
 * transmission.c.
 *
 * One listener (on reactor 0) accepts connections and runs the fixed-newstyle
 * handshake there. After NBD_OPT_GO / EXPORT_NAME the connection migrates to
 * the reactor that owns the export's bdev, so the transmission phase submits
 * bdev I/O directly on its own thread.
 *
 *
 * Teardown: conn_close() shuts the socket down; the pending recv/send
 * complete, outstanding bdev I/O completes, and only then is the connection
 * freed (nbd_conn_maybe_free), so a client vanishing mid-request leaks nothing
 * and nothing is touched after free.
 *
 * Limits against abuse (target/limits.h): connections are admitted against
 * the per-agent cap and the fd headroom at accept, against the per-export
 * cap when they pick an export (NBD_REP_ERR_POLICY naming the limit), and the
 * whole handshake runs under one deadline; accept errors for lack of fds or
 * memory back off on a timer.
 *
 * Cross-thread control (share/unshare/shutdown) goes through the export
 * registry's lock (g_nbd_exports.lock): a connection is killed by a message
 * to its reactor, counted in msg_refs so the connection outlives the message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/export.h"
#include "bdev/bdev.h"
#include "datapath.h"
#include "nbd/proto.h"
#include "nbd/server.h"
#include "reactor/reactor.h"
#include "target/allowlist.h"
#include "target/export.h"
#include "target/limits.h"
#include "target/listener.h"
#include "util/container.h"

static void kill_export_conns_locked(struct dp_export_registry *reg, struct dp_export *e);
struct dp_export_registry g_nbd_exports = DP_EXPORT_REGISTRY_INIT("nbd", kill_export_conns_locked);
/* Every connection, handshake included (under g_nbd_exports.lock). */

static void noop_cb(struct dp_uring_op *op, int res, uint32_t flags) {}
struct dp_uring_op g_nbd_noop = { noop_cb };

static void conn_close(struct nbd_conn *c);

/* ---- connection lifetime ------------------------------------------------ */

static void conn_free(struct nbd_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    nbd_tx_free_slots(c);
    dp_target_conn_release(&c->tc); /* every charge, and the connection itself */
    free(c->rbuf);
    free(c->hbuf);
    free(c->neg);
    free(c);
}

void nbd_conn_maybe_free(struct nbd_conn *c)
{
    if (!c->closing || c->recv_inflight || c->send_inflight || c->io_inflight || c->kick_queued ||
        c->mem_timer_inflight)
        return;
    pthread_mutex_lock(&g_nbd_exports.lock);
    if (c->msg_refs > 0) { /* a kill message is on its way: it frees */
        pthread_mutex_unlock(&g_nbd_exports.lock);
        return;
    }
    if (c->exp) /* before the export may go (unshare waits for conn_remove); w.lock nests inside */
        dp_export_client_detach(c->exp, &c->wc);
    dp_export_conn_remove_locked(&g_nbd_exports, &c->link, c->exp);
    pthread_mutex_unlock(&g_nbd_exports.lock);
    conn_free(c);
}

void nbd_conn_drop(struct nbd_conn *c)
{
    conn_close(c);
    nbd_conn_maybe_free(c);
}

static void conn_close(struct nbd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    /* Wakes the pending recv (returns 0) and fails a blocked send. */
    shutdown(c->fd, SHUT_RDWR);
    nbd_tx_close(c);
}

static void kill_msg(void *arg)
{
    struct nbd_conn *c = arg;
    pthread_mutex_lock(&g_nbd_exports.lock);
    c->msg_refs--;
    pthread_mutex_unlock(&g_nbd_exports.lock);
    nbd_conn_drop(c);
}

/* Under g_nbd_exports.lock: make c close on its own reactor. */
static void conn_kill_locked(struct nbd_conn *c)
{
    if (c->migrating) {
        c->kill_pending = true; /* nbd_tx_start sees it */
        return;
    }
    c->msg_refs++;
    dp_reactor_send(c->r, kill_msg, c);
}

/* ---- accepting ----------------------------------------------------------- */

static struct dp_listener g_lis = DP_LISTENER_INIT;

/* The writer lease's identity of an NBD client: its IP address (IPv4 for v4-mapped). */
static void peer_host(const struct in6_addr *a, char *out, size_t cap)
{
    if (IN6_IS_ADDR_V4MAPPED(a))
        inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)cap);
}

/* An admitted connection (target/listener.h): the handshake starts on l->r. */
static void new_conn(struct dp_listener *l, int fd, const struct dp_peer *peer, const struct dp_target_conn *tc)
{
    struct nbd_conn *c = calloc(1, sizeof *c);
    uint8_t *hbuf = malloc(NBD_MAX_OPT_LEN + NBD_NEG_OUT_MAX);
    struct nbd_neg *neg = malloc(sizeof *neg);
    if (!c || !hbuf || !neg) {
        free(c);
        free(hbuf);
        free(neg);
        dp_listener_refuse(fd, tc);
        return;
    }
    c->fd = fd;
    c->r = l->r;
    c->tc = *tc;
    c->peer = peer->addr;
    memcpy(c->peer_str, peer->str, sizeof c->peer_str);
    peer_host(&c->peer, c->wc.host, sizeof c->wc.host);
    c->wc.peer = c->peer_str;
    c->hbuf = hbuf;
    c->neg = neg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&g_nbd_exports.lock);
    dp_export_conn_add_locked(&g_nbd_exports, &c->link);
    pthread_mutex_unlock(&g_nbd_exports.lock);
    nbd_hs_start(c);
}

DP_EXPORT int dp_nbd_listen(const char *host, uint16_t port)
{
    dp_clear_error();
    return dp_listener_start(&g_lis, "nbd", host, port, new_conn);
}

DP_EXPORT int dp_nbd_port(void)
{
    return dp_listener_port(&g_lis);
}

/* ---- shares -------------------------------------------------------------- */

static bool valid_export_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > NBD_MAX_NAME)
        return false;
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f)
            return false;
    return true;
}

DP_EXPORT int dp_nbd_share(const char *bdev_name, const char *export_name, const char *allowed_hosts)
{
    dp_clear_error();
    if (!bdev_name || !*bdev_name) {
        dp_set_error("nbd share: device name is empty");
        return -EINVAL;
    }
    if (!export_name || !*export_name)
        export_name = bdev_name;
    if (!valid_export_name(export_name)) {
        dp_set_error("nbd share '%.64s': export name must be 1..%d printable bytes", export_name, NBD_MAX_NAME);
        return -EINVAL;
    }
    return dp_export_share(&g_nbd_exports, bdev_name, export_name, allowed_hosts);
}

/* Registry callback (dp_export_unshare): close every connection attached to e. */
static void kill_export_conns_locked(struct dp_export_registry *reg, struct dp_export *e)
{
    struct nbd_conn *c;
    dp_export_conn_each(reg, c, struct nbd_conn, link) if (c->exp == e) conn_kill_locked(c);
}

DP_EXPORT int dp_nbd_unshare(const char *export_name)
{
    dp_clear_error();
    return dp_export_unshare(&g_nbd_exports, export_name);
}

DP_EXPORT int dp_nbd_export_connections(const char *export_name)
{
    return dp_export_connections(&g_nbd_exports, export_name);
}

DP_EXPORT void dp_nbd_shutdown(void)
{
    dp_listener_stop(&g_lis);
    dp_export_unshare_all(&g_nbd_exports);
    /* Connections still in the handshake. */
    pthread_mutex_lock(&g_nbd_exports.lock);
    struct nbd_conn *c;
    dp_export_conn_each(&g_nbd_exports, c, struct nbd_conn, link) conn_kill_locked(c);
    while (g_nbd_exports.nconns > 0)
        pthread_cond_wait(&g_nbd_exports.cond, &g_nbd_exports.lock);
    pthread_mutex_unlock(&g_nbd_exports.lock);
}
