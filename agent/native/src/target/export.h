/*
 * export.h - the export registry of a target protocol: exports keyed by
 * name (a replica or nexus uuid, or the device name), each holding a
 * reference on its bdev, the allowlist of its peers and the count of
 * connections attached to it. NBD has one registry; NVMe/TCP and iSCSI will
 * each have theirs, with their own naming rules checked before share.
 *
 * Unshare is clean: the export leaves the registry (no new client finds
 * it), is marked dead, the protocol is asked to close every connection
 * holding it (kill_conns_locked), and unshare returns only when the last one
 * has detached, so the bdev reference is dropped after the last I/O on it.
 *
 * Locking: reg->lock guards the registry, each export's allowlist, dead and
 * nconns. The protocol guards its connection list with the same lock (a
 * connection attaches and the list is walked to kill in one critical
 * section) and waits on reg->cond for its own counts; detaching broadcasts.
 */
#ifndef DP_TARGET_EXPORT_H
#define DP_TARGET_EXPORT_H

#include <pthread.h>
#include <stdbool.h>

#include "bdev/bdev.h"
#include "target/allowlist.h"
#include "util/container.h"

struct dp_export {
    struct dp_export *next; /* under lock */
    struct dp_bdev *bdev; /* referenced until the export is freed */
    struct dp_allowlist allowed; /* under lock: a re-share replaces it */
    bool dead; /* under lock: unshared, draining */
    int nconns; /* under lock: connections attached (attached or migrating) */
    char *source; /* what dp_export_share was given (a name or a URI): a re-share by it is the same device */
    char name[];
};

/* A protocol connection's place in its registry's connection list (under lock). */
struct dp_export_conn {
    struct dp_export_conn *prev, *next;
};

struct dp_export_registry {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct dp_export *head;
    struct dp_export_conn *conns; /* every connection of the protocol, attached or not */
    int nconns; /* in conns */
    const char *proto; /* names the protocol in errors and logs */
    /* Under lock: make every connection attached to e close; each detaches when gone. */
    void (*kill_conns_locked)(struct dp_export_registry *reg, struct dp_export *e);
};

#define DP_EXPORT_REGISTRY_INIT(proto_, kill_) \
    { \
        .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .proto = (proto_), \
        .kill_conns_locked = (kill_) \
    }

/* Under lock: the live or draining export called name, or NULL. */
struct dp_export *dp_export_named_locked(struct dp_export_registry *reg, const char *name);

/*
 * Share bdev_name (a device name, or a bdev URI opened here) as export_name
 * (already checked against the protocol's naming rules) to the peers in
 * allowed_hosts (target/allowlist.h). Sharing the same device again under
 * the same name replaces the allowlist (idempotent). 0 or -errno with
 * dp_last_error(): -EINVAL (allowlist), -EEXIST (the name serves another
 * device), -ENOENT (no such device), -EBUSY (raced with another share).
 */
int dp_export_share(struct dp_export_registry *reg, const char *bdev_name, const char *export_name,
                    const char *allowed_hosts);

/* Remove the export, close its connections and wait for them: 0 or -ENOENT/-EINVAL. */
int dp_export_unshare(struct dp_export_registry *reg, const char *export_name);

/* Unshare every export (shutdown). */
void dp_export_unshare_all(struct dp_export_registry *reg);

/* Connections attached to the export, or -ENOENT (with dp_last_error()). */
int dp_export_connections(struct dp_export_registry *reg, const char *export_name);

/*
 * Under lock: attach one more connection of peer to e, within the
 * per-export cap (target/limits.h). False when the cap refuses it (counted
 * and logged); the protocol tells the client why when it can.
 */
bool dp_export_attach_locked(struct dp_export_registry *reg, struct dp_export *e, const char *peer);
/* Under lock: a connection attached to e is gone (wakes a draining unshare). */
void dp_export_detach_locked(struct dp_export_registry *reg, struct dp_export *e);
/* Under lock: a new connection joins the protocol's list. */
void dp_export_conn_add_locked(struct dp_export_registry *reg, struct dp_export_conn *k);
/* Under lock: a connection leaves the list, detaching from e (NULL: none); wakes waiters. */
void dp_export_conn_remove_locked(struct dp_export_registry *reg, struct dp_export_conn *k, struct dp_export *e);
/* Iterate the connections of reg (under lock) as T through its member m. */
#define dp_export_conn_each(reg, c, T, m) \
    for (struct dp_export_conn *k_ = (reg)->conns; k_ && ((c) = container_of(k_, T, m), 1); k_ = k_->next)

#endif /* DP_TARGET_EXPORT_H */
