/*
 * writer.c - the writer lease of an export (target/export.h): an export that
 * serves a nexus child is writable only by that nexus's host.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "target/export.h"
#include "target/limits.h"
#include "util/error.h"
#include "util/uuid.h"

#define LABEL_AREA (2ull * NX_LABEL_BLOCK)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Under w.lock: a connection of host is attached. */
static bool host_connected_locked(const struct dp_export_writer *w, const char *host)
{
    for (const struct dp_export_client *k = w->clients; k; k = k->next)
        if (!strcmp(k->host, host))
            return true;
    return false;
}

static void lease_end_locked(struct dp_export *e, const char *why)
{
    char u[DP_UUID_TEXT];
    dp_uuid_format(e->w.nexus, u);
    fprintf(stderr, "%s: export '%s': writer lease of host %s (nexus %s) ended: %s; any host may write\n", e->proto,
            e->name, e->w.host, u, why);
    e->w.host[0] = 0;
    e->w.idle_since_ns = 0;
    __atomic_store_n(&e->w.gen, e->w.gen + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&e->w.held, false, __ATOMIC_RELEASE);
    dp_target_lease_count(-1);
}

/* Under w.lock: end a lease whose host has been gone for longer than the grace. */
static void lease_expire_locked(struct dp_export *e)
{
    struct dp_export_writer *w = &e->w;
    if (!w->held || !w->idle_since_ns)
        return;
    uint64_t grace = (uint64_t)dp_target_writer_grace_ms() * 1000000ull;
    if (now_ns() - w->idle_since_ns >= grace)
        lease_end_locked(e, "its host has had no connection for the writer grace (--writer-grace-ms)");
}

void dp_export_client_attach(struct dp_export *e, struct dp_export_client *cl)
{
    if (cl->attached)
        return;
    pthread_mutex_lock(&e->w.lock);
    cl->next = e->w.clients;
    e->w.clients = cl;
    cl->attached = true;
    if (e->w.held && !strcmp(e->w.host, cl->host))
        e->w.idle_since_ns = 0; /* the nexus is back within the grace */
    pthread_mutex_unlock(&e->w.lock);
}

void dp_export_client_detach(struct dp_export *e, struct dp_export_client *cl)
{
    if (!cl->attached)
        return;
    pthread_mutex_lock(&e->w.lock);
    for (struct dp_export_client **p = &e->w.clients; *p; p = &(*p)->next)
        if (*p == cl) {
            *p = cl->next;
            break;
        }
    cl->attached = false;
    cl->next = NULL;
    if (e->w.held && !strcmp(e->w.host, cl->host) && !host_connected_locked(&e->w, cl->host))
        e->w.idle_since_ns = now_ns() | 1; /* never 0 */
    pthread_mutex_unlock(&e->w.lock);
}

/* Copy n bytes at byte `at` of the payload (iov, iovcnt) into out. */
static bool iov_copy(const struct iovec *iov, int iovcnt, uint64_t at, uint8_t *out, size_t n)
{
    for (int i = 0; i < iovcnt && n; i++) {
        if (at >= iov[i].iov_len) {
            at -= iov[i].iov_len;
            continue;
        }
        size_t take = iov[i].iov_len - at < n ? iov[i].iov_len - at : n;
        memcpy(out, (const uint8_t *)iov[i].iov_base + at, take);
        out += take;
        n -= take;
        at = 0;
    }
    return n == 0;
}

/*
 * The newest valid label among the slots this write covers in full (its
 * first NX_LABEL_SIZE bytes, seq parity matching the slot, as the nexus
 * reads them): true with *out.
 */
static bool written_label(uint64_t offset, const struct iovec *iov, int iovcnt, uint64_t len, struct nx_label *out)
{
    bool found = false;
    for (uint64_t slot = 0; slot < 2; slot++) {
        uint64_t so = slot * NX_LABEL_BLOCK;
        if (offset > so || offset + len < so + NX_LABEL_SIZE)
            continue;
        uint8_t buf[NX_LABEL_SIZE];
        struct nx_label l;
        char why[128];
        if (!iov_copy(iov, iovcnt, so - offset, buf, sizeof buf) || nx_label_decode(buf, &l, why, sizeof why) < 0 ||
            (l.seq & 1) != slot)
            continue;
        if (!found || l.seq > out->seq)
            *out = l;
        found = true;
    }
    return found;
}

/* Under w.lock, cl's host may write: a label write takes, moves or ends the lease. */
static void label_written_locked(struct dp_export *e, struct dp_export_client *cl, const struct nx_label *l)
{
    struct dp_export_writer *w = &e->w;
    char u[DP_UUID_TEXT];
    dp_uuid_format(l->nexus_uuid, u);
    if (l->flags & NX_LABEL_RELEASED) {
        if (w->held) {
            char why[96];
            snprintf(why, sizeof why, "nexus %s released the child", u);
            lease_end_locked(e, why);
        }
        return;
    }
    if (w->held && !memcmp(w->nexus, l->nexus_uuid, 16))
        return;
    memcpy(w->nexus, l->nexus_uuid, 16);
    __atomic_store_n(&w->gen, w->gen + 1, __ATOMIC_RELEASE);
    if (w->held) {
        fprintf(stderr, "%s: export '%s': writer lease of host %s moves to nexus %s\n", e->proto, e->name, w->host, u);
        return;
    }
    snprintf(w->host, sizeof w->host, "%s", cl->host);
    w->idle_since_ns = host_connected_locked(w, cl->host) ? 0 : now_ns() | 1;
    __atomic_store_n(&w->held, true, __ATOMIC_RELEASE);
    dp_target_lease_count(1);
    fprintf(stderr, "%s: export '%s' serves a child of nexus %s: only host %s (peer %s) may write it from now on\n",
            e->proto, e->name, u, w->host, cl->peer ? cl->peer : cl->host);
}

int dp_export_writer_check(struct dp_export *e, struct dp_export_client *cl, uint64_t offset, const struct iovec *iov,
                           int iovcnt, uint64_t len)
{
    bool label = iov && offset < LABEL_AREA;
    /* cl may be shared by queues on several reactors (NVMe/TCP): its cache is atomic. */
    uint64_t cached = __atomic_load_n(&cl->allowed_gen, __ATOMIC_RELAXED);
    /* The common cases take no lock: no lease, or the lease is this host's and has not changed since
     * (a lease that expired meanwhile left no other holder: the host may still write). */
    if (!label && (!__atomic_load_n(&e->w.held, __ATOMIC_ACQUIRE) ||
                   (cached && cached == __atomic_load_n(&e->w.gen, __ATOMIC_ACQUIRE))))
        return 0;
    int rc = 0;
    pthread_mutex_lock(&e->w.lock);
    lease_expire_locked(e);
    if (e->w.held && strcmp(e->w.host, cl->host)) {
        rc = -EPERM;
        dp_target_write_refused();
        if (!cl->refusal_logged) {
            cl->refusal_logged = true;
            char u[DP_UUID_TEXT];
            dp_uuid_format(e->w.nexus, u);
            fprintf(stderr,
                    "%s: peer %s (host %s), export '%s': writes refused (EPERM): the export serves a child of nexus "
                    "%s, writable only by host %s; reads stay allowed (logged once per connection)\n",
                    e->proto, cl->peer ? cl->peer : cl->host, cl->host, e->name, u, e->w.host);
        }
    } else if (label) {
        struct nx_label l;
        if (written_label(offset, iov, iovcnt, len, &l))
            label_written_locked(e, cl, &l);
    }
    if (rc == 0 && e->w.held && !strcmp(e->w.host, cl->host))
        __atomic_store_n(&cl->allowed_gen, e->w.gen, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&e->w.lock);
    return rc;
}

bool dp_export_writer_host(struct dp_export *e, char *host, size_t cap)
{
    pthread_mutex_lock(&e->w.lock);
    lease_expire_locked(e);
    bool held = e->w.held;
    if (held)
        snprintf(host, cap, "%s", e->w.host);
    pthread_mutex_unlock(&e->w.lock);
    return held;
}

/* The registries of the target protocols (nbd/server.c, nvmf/tcp.c). */
extern struct dp_export_registry g_nbd_exports, g_nvmf_exports;

/* Under reg->lock: the lease of e into out when there is one. */
static bool lease_of_locked(struct dp_export *e, dp_writer_lease *out)
{
    pthread_mutex_lock(&e->w.lock);
    lease_expire_locked(e);
    bool held = e->w.held;
    if (held) {
        snprintf(out->host, sizeof out->host, "%s", e->w.host);
        snprintf(out->proto, sizeof out->proto, "%s", e->proto);
        out->connected = !e->w.idle_since_ns;
        uint64_t grace = (uint64_t)dp_target_writer_grace_ms() * 1000000ull, idle = now_ns() - e->w.idle_since_ns;
        out->grace_left_ms = out->connected || idle >= grace ? 0 : (uint32_t)((grace - idle + 999999) / 1000000);
    }
    pthread_mutex_unlock(&e->w.lock);
    return held;
}

DP_EXPORT int dp_export_writer_lease(const char *bdev_name, dp_writer_lease *out)
{
    if (!bdev_name || !*bdev_name || !out) {
        dp_set_error("writer lease: %s is empty", out ? "device name" : "out");
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    struct dp_export_registry *regs[] = { &g_nbd_exports, &g_nvmf_exports };
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        bool held = false;
        pthread_mutex_lock(&regs[i]->lock);
        for (struct dp_export *e = regs[i]->head; e && !held; e = e->next)
            if (!e->dead && (!strcmp(e->bdev->name, bdev_name) || !strcmp(e->name, bdev_name)))
                held = lease_of_locked(e, out);
        pthread_mutex_unlock(&regs[i]->lock);
        if (held)
            return 1;
    }
    return 0;
}
