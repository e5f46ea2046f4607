/*
 * export.c - the export registry of a target protocol (export.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "target/export.h"
#include "target/limits.h"
#include "util/error.h"

struct dp_export *dp_export_named_locked(struct dp_export_registry *reg, const char *name)
{
    for (struct dp_export *e = reg->head; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

static void export_free(struct dp_export *e)
{
    pthread_mutex_destroy(&e->w.lock);
    free(e->source);
    free(e);
}

/* Under lock: true when name is shared; a re-share of the same device takes the new allowlist. */
static int reshare_locked(struct dp_export_registry *reg, struct dp_export *old, const char *bdev_name,
                          const struct dp_allowlist *al)
{
    /* The same device: by its name, or by the very string (a URI) that opened it. */
    if (strcmp(old->bdev->name, bdev_name) && strcmp(old->source, bdev_name)) {
        dp_set_error("%s share '%s': export already serves device '%s'", reg->proto, old->name, old->bdev->name);
        return -EEXIST;
    }
    old->allowed = *al;
    return 0;
}

int dp_export_share(struct dp_export_registry *reg, const char *bdev_name, const char *export_name,
                    const char *allowed_hosts)
{
    size_t nlen = strlen(export_name);
    struct dp_export *e = calloc(1, sizeof *e + nlen + 1);
    if (e && !(e->source = strdup(bdev_name))) {
        free(e);
        e = NULL;
    }
    if (!e) {
        dp_set_error("%s share '%s': out of memory", reg->proto, export_name);
        return -ENOMEM;
    }
    memcpy(e->name, export_name, nlen + 1);
    e->proto = reg->proto;
    pthread_mutex_init(&e->w.lock, NULL);
    int rc = dp_allowlist_parse(&e->allowed, allowed_hosts, reg->proto, export_name);
    if (rc < 0) {
        export_free(e);
        return rc;
    }
    pthread_mutex_lock(&reg->lock);
    struct dp_export *old = dp_export_named_locked(reg, export_name);
    if (old) {
        rc = reshare_locked(reg, old, bdev_name, &e->allowed);
        pthread_mutex_unlock(&reg->lock);
        export_free(e);
        return rc;
    }
    pthread_mutex_unlock(&reg->lock);
    /* Opening the device may block (a bdev URI): not under the lock. */
    struct dp_bdev *b = dp_bdev_get(bdev_name);
    if (!b && strstr(bdev_name, "://")) {
        rc = dp_bdev_open_uri(bdev_name, &b);
        if (rc < 0) {
            export_free(e);
            return rc;
        }
    }
    if (!b) {
        export_free(e);
        dp_set_error("%s share '%s': no replica or device named '%s'", reg->proto, export_name, bdev_name);
        return -ENOENT;
    }
    e->bdev = b;
    pthread_mutex_lock(&reg->lock);
    if (dp_export_named_locked(reg, export_name)) { /* raced with another share */
        pthread_mutex_unlock(&reg->lock);
        dp_bdev_put(b);
        export_free(e);
        dp_set_error("%s share '%s': shared concurrently", reg->proto, export_name);
        return -EBUSY;
    }
    e->next = reg->head;
    reg->head = e;
    pthread_mutex_unlock(&reg->lock);
    return 0;
}

/* Free e (already unlinked and marked dead) once its connections are gone. */
static void drain_and_free(struct dp_export_registry *reg, struct dp_export *e)
{
    pthread_mutex_lock(&reg->lock);
    reg->kill_conns_locked(reg, e);
    while (e->nconns > 0)
        pthread_cond_wait(&reg->cond, &reg->lock);
    pthread_mutex_unlock(&reg->lock);
    dp_bdev_put(e->bdev);
    if (e->w.held) /* unshare ends the lease */
        dp_target_lease_count(-1);
    export_free(e);
}

int dp_export_unshare(struct dp_export_registry *reg, const char *export_name)
{
    if (!export_name) {
        dp_set_error("%s unshare: export name is empty", reg->proto);
        return -EINVAL;
    }
    pthread_mutex_lock(&reg->lock);
    struct dp_export **p = &reg->head, *e = NULL;
    for (; *p; p = &(*p)->next)
        if (!strcmp((*p)->name, export_name)) {
            e = *p;
            *p = e->next;
            break;
        }
    if (e)
        e->dead = true;
    pthread_mutex_unlock(&reg->lock);
    if (!e) {
        dp_set_error("%s unshare '%s': no such export", reg->proto, export_name);
        return -ENOENT;
    }
    drain_and_free(reg, e);
    return 0;
}

void dp_export_unshare_all(struct dp_export_registry *reg)
{
    for (;;) {
        pthread_mutex_lock(&reg->lock);
        struct dp_export *e = reg->head;
        if (e) {
            reg->head = e->next;
            e->dead = true;
        }
        pthread_mutex_unlock(&reg->lock);
        if (!e)
            break;
        drain_and_free(reg, e);
    }
}

int dp_export_connections(struct dp_export_registry *reg, const char *export_name)
{
    int n = -ENOENT;
    pthread_mutex_lock(&reg->lock);
    for (struct dp_export *e = reg->head; e; e = e->next)
        if (export_name && !strcmp(e->name, export_name))
            n = e->nconns;
    pthread_mutex_unlock(&reg->lock);
    if (n < 0)
        dp_set_error("%s export '%s': no such export", reg->proto, export_name ? export_name : "");
    return n;
}

bool dp_export_attach_locked(struct dp_export_registry *reg, struct dp_export *e, const char *peer)
{
    if (dp_target_export_full(e->nconns, reg->proto, peer, e->name))
        return false;
    e->nconns++;
    return true;
}

void dp_export_detach_locked(struct dp_export_registry *reg, struct dp_export *e)
{
    e->nconns--;
    pthread_cond_broadcast(&reg->cond);
}

void dp_export_conn_add_locked(struct dp_export_registry *reg, struct dp_export_conn *k)
{
    k->prev = NULL;
    k->next = reg->conns;
    if (reg->conns)
        reg->conns->prev = k;
    reg->conns = k;
    reg->nconns++;
}

void dp_export_conn_remove_locked(struct dp_export_registry *reg, struct dp_export_conn *k, struct dp_export *e)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        reg->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    reg->nconns--;
    if (e)
        e->nconns--;
    pthread_cond_broadcast(&reg->cond);
}
