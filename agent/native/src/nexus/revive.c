/*
 * revive.c - a replaced child is rebuilt by the nexus itself (issue 15).
 *
 * A remote child (nbd://, nvmf://) keeps the first bytes it verified; after a
 * reconnect to a different device (a replica deleted and re-created under
 * the same uuid) its I/O fails with ENODEV for good and the nexus faults it.
 * Such a child is marked replaced and queued here. One reviver thread
 * (started at the first need, woken by a condition variable: no polling)
 * reopens it as a new child and starts a rebuild from a healthy child, as
 * `online` does (child.c, nx_child_revive). Every fence of `online` holds:
 * no healthy source, a label of another nexus, a size that does not fit:
 * the child stays faulted with the reason, and force stays manual. While
 * the device cannot be opened (not re-created yet) it tries again with
 * backoff, NX_REVIVE_TRIES times. A child the operator faulted or offlined
 * is never revived.
 *
 * The queue names nexus and child by uuid and URI, never by pointer: each
 * attempt looks them up under nx_ctl_lock, so a nexus or child removed
 * meanwhile is simply not found. An attempt does not hold nx_ctl_lock while
 * it reopens the device (nbd:// and nvmf:// connect over the network, up to
 * their connect timeout): it closes the old device and stamps the child
 * under the lock, opens unlocked, then under the lock again finds the same
 * child (by its stamp) still replaced and faulted, or drops what it opened
 * (a nexus destroyed, a child removed, onlined, offlined or faulted by hand
 * meanwhile wins). See nx_child_revive in child.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nexus/nexus.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define RV_QUEUE 64u

struct rv_entry {
    char uuid[37];
    char uri[NX_URI_MAX];
    uint32_t attempt;
    uint64_t due_ms;
};

static pthread_mutex_t rv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rv_cond; /* CLOCK_MONOTONIC, set up with the thread */
static struct rv_entry rv_q[RV_QUEUE];
static uint32_t rv_n;
static bool rv_started, rv_stop;
static pthread_t rv_thread;
uint32_t nx_revive_tries = NX_REVIVE_TRIES;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t backoff_ms(uint32_t attempt)
{
    uint64_t ms = (uint64_t)NX_REVIVE_FIRST_MS << (attempt < 16 ? attempt : 16);
    return ms > NX_REVIVE_MAX_MS ? NX_REVIVE_MAX_MS : (uint32_t)ms;
}

/* Under rv_lock: add (uuid, uri) unless queued already. */
static bool rv_push(const char *uuid, const char *uri, uint32_t attempt, uint64_t due)
{
    for (uint32_t i = 0; i < rv_n; i++)
        if (!strcmp(rv_q[i].uuid, uuid) && !strcmp(rv_q[i].uri, uri))
            return true;
    if (rv_n == RV_QUEUE)
        return false;
    struct rv_entry *e = &rv_q[rv_n++];
    snprintf(e->uuid, sizeof e->uuid, "%s", uuid);
    snprintf(e->uri, sizeof e->uri, "%s", uri);
    e->attempt = attempt;
    e->due_ms = due;
    return true;
}

static void *rv_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rv_lock);
    while (!rv_stop) {
        uint32_t k = 0;
        for (uint32_t i = 1; i < rv_n; i++)
            if (rv_q[i].due_ms < rv_q[k].due_ms)
                k = i;
        if (rv_n == 0) {
            pthread_cond_wait(&rv_cond, &rv_lock);
            continue;
        }
        uint64_t now = now_ms();
        if (rv_q[k].due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (rv_q[k].due_ms - now) * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&rv_cond, &rv_lock, &ts);
            continue;
        }
        struct rv_entry e = rv_q[k];
        rv_q[k] = rv_q[--rv_n];
        pthread_mutex_unlock(&rv_lock);
        uint32_t next = backoff_ms(e.attempt);
        int again =
            nx_child_revive(e.uuid, e.uri, e.attempt, __atomic_load_n(&nx_revive_tries, __ATOMIC_RELAXED), next);
        pthread_mutex_lock(&rv_lock);
        if (again && !rv_stop)
            rv_push(e.uuid, e.uri, e.attempt + 1, now_ms() + next);
    }
    pthread_mutex_unlock(&rv_lock);
    return NULL;
}

/* Under rv_lock. */
static int rv_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rv_cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&rv_thread, NULL, rv_main, NULL);
    if (rc) {
        pthread_cond_destroy(&rv_cond);
        return -rc;
    }
    pthread_setname_np(rv_thread, "nx-revive");
    rv_started = true;
    return 0;
}

void nx_child_io_error(struct nx_child *c, int status)
{
    struct nexus *nx = c->nx;
    if (status != -ENODEV || c->state != NXC_FAULTED || c->by_hand || c->replaced || nx->destroying)
        return;
    c->replaced = true;
    pthread_mutex_lock(&rv_lock);
    bool ok = !rv_stop && (rv_started || rv_start() == 0) && rv_push(nx->uuid, c->uri, 0, now_ms());
    if (ok)
        pthread_cond_signal(&rv_cond);
    pthread_mutex_unlock(&rv_lock);
    if (!ok) {
        c->replaced = false;
        snprintf(c->reason, sizeof c->reason, "replaced (%s); could not queue its rebuild: online it by hand",
                 strerror(-status));
        return;
    }
    snprintf(c->reason, sizeof c->reason, "replaced (%s): reopening it to rebuild it", strerror(-status));
}

void nx_revive_shutdown(void)
{
    pthread_mutex_lock(&rv_lock);
    rv_stop = true; /* kicks while the nexuses close are ignored, until nx_revive_reset */
    bool join = rv_started;
    rv_started = false;
    rv_n = 0;
    if (join)
        pthread_cond_signal(&rv_cond);
    pthread_mutex_unlock(&rv_lock);
    if (join) {
        pthread_join(rv_thread, NULL);
        pthread_cond_destroy(&rv_cond);
    }
}

bool nx_revive_stopping(void)
{
    pthread_mutex_lock(&rv_lock);
    bool stop = rv_stop;
    pthread_mutex_unlock(&rv_lock);
    return stop;
}

/* dp_fini, every nexus closed: a later dp_init in this process may revive again. */
void nx_revive_reset(void)
{
    pthread_mutex_lock(&rv_lock);
    rv_stop = false;
    pthread_mutex_unlock(&rv_lock);
}
