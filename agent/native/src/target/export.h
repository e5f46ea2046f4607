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
 *
 * Writer lease (issue 10, "an export for a replica that is a nexus child is
 * read-write only for that nexus's host"): an export learns that it serves a
 * nexus child when a client writes a valid nexus child label that is not
 * RELEASED into the label area (nexus/LABEL.md: slots at 0 and 4 KiB). From
 * then on only that client's host (NBD: its IP address; NVMe/TCP: its host
 * NQN) may write: writes, unmaps and write-zeroes from other hosts fail with
 * -EPERM (counted, logged once per connection naming both hosts); reads stay
 * allowed. The lease lasts while the host has a connection to the export
 * and dp_target_writer_grace_ms() after its last one drops, so a nexus that
 * reconnects wins over a stranger. A RELEASED label from the host (the nexus
 * was deleted) ends it; a label of another nexus from the same host moves
 * it. Unshare ends it (an idempotent re-share keeps it). The lease is learnt
 * from writes only: after the exporting agent restarts it is learnt again
 * when the nexus's child reconnects (the nbd:// child writes the label it
 * verified back before any I/O, nbd/client_ident.c) or at its next label
 * write.
 * Snapshots change what an export serves as writes do: the NVMe/TCP vendor
 * snapshot commands are checked like an unmap (nvmf/vendor.c). The agent
 * asks dp_export_writer_lease (datapath.h) before it reverts a replica, so a
 * nexus that may come back within the grace does not find it rolled back.
 * Locking: e->w.lock guards the lease and the export's client list; it is
 * taken after reg->lock when both are held.
 */
#ifndef DP_TARGET_EXPORT_H
#define DP_TARGET_EXPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bdev/bdev.h"
#include "target/allowlist.h"
#include "util/container.h"

/* An identity: an IP address (NBD) or a host NQN (NVMe/TCP, at most 223 bytes). */
#define DP_EXPORT_HOST_MAX 256

/*
 * One connection as the writer lease sees it; embed it in the protocol's
 * connection, fill host and peer, and attach it once the connection holds
 * the export (dp_export_client_attach), detach before it lets go.
 */
struct dp_export_client {
    struct dp_export_client *next; /* in e->w.clients while attached */
    char host[DP_EXPORT_HOST_MAX]; /* the identity the lease compares */
    const char *peer; /* "ip:port" for logs (the connection's own string) */
    bool attached;
    bool refusal_logged; /* one log line per connection */
    uint64_t allowed_gen; /* the lease generation at which this client's host held it (lock-free path) */
};

struct dp_export_writer {
    pthread_mutex_t lock;
    bool held; /* written under lock; read without it as a hint for the fast path */
    uint64_t gen; /* bumped under lock whenever the lease is taken, moved or ends (never 0) */
    char host[DP_EXPORT_HOST_MAX]; /* the nexus's host */
    uint8_t nexus[16]; /* the nexus uuid in the label that took the lease */
    uint64_t idle_since_ns; /* CLOCK_MONOTONIC: the host's last connection left (0: it has one) */
    struct dp_export_client *clients; /* attached connections */
};

struct dp_export {
    struct dp_export *next; /* under lock */
    const char *proto; /* the registry's, for logs */
    struct dp_export_writer w; /* the writer lease (above) */
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
/* ---- writer lease ---- */
/* cl (host and peer filled) now uses e: counted for the lease. Any thread, not under reg->lock. */
void dp_export_client_attach(struct dp_export *e, struct dp_export_client *cl);
/* cl lets go of e (no-op unless attached); its host's last connection starts the grace. */
void dp_export_client_detach(struct dp_export *e, struct dp_export_client *cl);
/*
 * Before a write (iov: its payload, iovcnt entries) or an unmap/write-zeroes
 * (iov NULL) of len bytes at offset reaches the device: 0 when cl may do it,
 * -EPERM when another host holds the lease (counted; logged once per
 * connection naming the peer and the owning host). A write to the label area
 * is decoded here and may take, move or end the lease (see above).
 */
int dp_export_writer_check(struct dp_export *e, struct dp_export_client *cl, uint64_t offset, const struct iovec *iov,
                           int iovcnt, uint64_t len);
/* The host holding e's lease into host (cap bytes): true when there is one (tests, logs). */
bool dp_export_writer_host(struct dp_export *e, char *host, size_t cap);

/* Iterate the connections of reg (under lock) as T through its member m. */
#define dp_export_conn_each(reg, c, T, m) \
    for (struct dp_export_conn *k_ = (reg)->conns; k_ && ((c) = container_of(k_, T, m), 1); k_ = k_->next)

#endif /* DP_TARGET_EXPORT_H */
