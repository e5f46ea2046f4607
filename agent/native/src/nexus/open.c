/*
 * open.c - dp_nexus_create and dp_nexus_open: children opened, labels read and
 * classified by the rules of LABEL.md ("Opening"), the nexus built, the first
 * labels written, the nexus registered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"
#include "pool/format.h"

/* messages and reasons are truncated on purpose where they would not fit */
#pragma GCC diagnostic ignored "-Wformat-truncation"

enum probe_class { P_NEW, P_STALE, P_SYNCED, P_DOWN };

/* What one given child turned out to be. */
struct probe {
    struct dp_bdev *bdev;
    enum probe_class cls;
    struct nx_label label;
    char why[256];
};

/*
 * One create or open in progress. Each step below returns 0 or a negative
 * errno after dp_set_error; nexus_setup runs them in order and undoes a
 * failure (setup_undo). `open_mode`: dp_nexus_open (recovery: unreachable,
 * foreign or too small children are left out as faulted) rather than create
 * (every child must be usable, and a fresh nexus is possible).
 */
struct setup {
    const char *uuid;
    uint64_t size;
    const char *const *uris;
    uint32_t n;
    bool open_mode;
    uint32_t flags;
    struct probe *pr;
    struct nexus *nx;
    uint8_t *lbuf; /* 2 label blocks */
    bool fresh; /* every child new: generation 1, all in sync */
    int newest; /* index of a child SYNCED at the newest generation, or -1 */
};

/* "children[0] 'uri': why; children[1] ..." for the children passing `which` (NULL: all). */
static void list_children(const struct setup *st, bool (*which)(const struct probe *), char *list, size_t len)
{
    size_t o = 0;
    list[0] = 0;
    for (uint32_t i = 0; i < st->n && o < len; i++)
        if (!which || which(&st->pr[i]))
            o += snprintf(list + o, len - o, "%schildren[%u] '%s': %s", o ? "; " : "", i, st->uris[i], st->pr[i].why);
}

/* The arguments, before anything is opened: uuid, size, children (count, URIs, duplicates), free uuid. */
static int setup_check_args(struct setup *st, uint8_t uuid_bin[16])
{
    const char *uuid = st->uuid;
    if (!uuid || dp_uuid_parse(uuid, uuid_bin) < 0) {
        dp_set_error("nexus %s: uuid '%s' is not a UUID (8-4-4-4-12 hex digits)", st->open_mode ? "open" : "create",
                     uuid ? uuid : "(null)");
        return -EINVAL;
    }
    if (st->size == 0 || st->size % 512) {
        dp_set_error("nexus '%s': size %llu must be a non-zero multiple of 512 bytes", uuid,
                     (unsigned long long)st->size);
        return -EINVAL;
    }
    if (st->n == 0 || !st->uris) {
        dp_set_error("nexus '%s': children: at least one child is needed", uuid);
        return -EINVAL;
    }
    if (st->n > NX_MAX_CHILDREN) {
        dp_set_error("nexus '%s': children: %u children given, at most %u", uuid, st->n, NX_MAX_CHILDREN);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < st->n; i++) {
        if (!nx_valid_uri(st->uris[i])) {
            dp_set_error("nexus '%s': children[%u]: URI is empty or longer than %u bytes", uuid, i, NX_URI_MAX - 1);
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(st->uris[i], st->uris[j])) {
                dp_set_error("nexus '%s': children[%u] '%s' duplicates children[%u]", uuid, i, st->uris[i], j);
                return -EINVAL;
            }
    }
    if (nx_find(uuid)) {
        dp_set_error("nexus '%s' already exists", uuid);
        return -EEXIST;
    }
    struct dp_bdev *clash = dp_bdev_get(uuid);
    if (clash) {
        dp_bdev_put(clash);
        dp_set_error("nexus '%s': a device named '%s' already exists", uuid, uuid);
        return -EEXIST;
    }
    return 0;
}

/* 1. Open and claim every child; sizes and block sizes; one child per device. */
static int setup_open_children(struct setup *st)
{
    struct nexus *nx = st->nx;
    struct probe *pr = st->pr;
    uint32_t reachable = 0;
    for (uint32_t i = 0; i < st->n; i++) {
        const char *uri = st->uris[i];
        char err[256];
        int rc = nx_open_child(nx, uri, &pr[i].bdev, err, sizeof err);
        if (rc < 0) {
            if (!st->open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': %s", st->uuid, i, uri, err);
                return rc;
            }
            pr[i].cls = P_DOWN;
            snprintf(pr[i].why, sizeof pr[i].why, "unreachable: %s", err);
            continue;
        }
        struct dp_bdev *b = pr[i].bdev;
        for (uint32_t j = 0; j < i; j++)
            if (pr[j].bdev && !strcmp(dp_bdev_ident(pr[j].bdev), dp_bdev_ident(b))) {
                dp_set_error("nexus '%s': children[%u] '%s' is the same device as children[%u] '%s' (%s)", st->uuid, i,
                             uri, j, st->uris[j], dp_bdev_ident(b));
                return -EINVAL;
            }
        /* open: a child too small is left out later (the labels may record a larger size anyway) */
        if (!st->open_mode && b->size < st->size + NX_HDR_SIZE) {
            dp_set_error("nexus '%s': children[%u] '%s': size %llu is too small for a nexus of %llu bytes "
                         "(a child needs the size plus %llu bytes for the nexus label)",
                         st->uuid, i, uri, (unsigned long long)b->size, (unsigned long long)st->size,
                         (unsigned long long)NX_HDR_SIZE);
            return -EINVAL;
        }
        if (!st->open_mode && reachable && b->size != pr[0].bdev->size) {
            dp_set_error("nexus '%s': children[%u] '%s' has %llu bytes but children[0] '%s' has %llu: "
                         "children must be the same size",
                         st->uuid, i, uri, (unsigned long long)b->size, st->uris[0],
                         (unsigned long long)pr[0].bdev->size);
            return -EINVAL;
        }
        if (b->block_size > nx->block_size)
            nx->block_size = b->block_size;
        reachable++;
    }
    if (reachable == 0) {
        char list[512];
        list_children(st, NULL, list, sizeof list);
        dp_set_error("nexus '%s': no child can be opened (%s)", st->uuid, list);
        return -ENODEV;
    }
    if (st->size % nx->block_size) {
        dp_set_error("nexus '%s': size %llu is not a multiple of the children's block size %u", st->uuid,
                     (unsigned long long)st->size, nx->block_size);
        return -EINVAL;
    }
    return 0;
}

/*
 * 2. Read each child's label and classify it (LABEL.md, "Opening"): new,
 * stale or synced; a child that is not ours to write (Ownership) fails a
 * create and is left out of an open, untouched.
 */
static int setup_read_labels(struct setup *st)
{
    struct nexus *nx = st->nx;
    for (uint32_t i = 0; i < st->n; i++) {
        struct probe *p = &st->pr[i];
        if (p->cls == P_DOWN)
            continue;
        int rc = dp_bdev_rw_sync(p->bdev, DP_IO_READ, st->lbuf, 0, 2 * NX_LABEL_BLOCK);
        if (rc < 0) {
            if (!st->open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s': reading the label failed: %s", st->uuid, i, st->uris[i],
                             strerror(-rc));
                return rc;
            }
            p->cls = P_DOWN;
            snprintf(p->why, sizeof p->why, "reading the label failed: %s", strerror(-rc));
            continue;
        }
        if (nx_child_owner_check(nx, st->lbuf, st->flags, p->why, sizeof p->why) < 0) {
            if (!st->open_mode) {
                dp_set_error("nexus '%s': children[%u] '%s' %s", st->uuid, i, st->uris[i], p->why);
                return -EBUSY;
            }
            p->cls = P_DOWN; /* never written: its owner may still need it */
            nx_child_bdev_put(nx, p->bdev);
            p->bdev = NULL;
            continue;
        }
        char why[128];
        int lr = nx_label_read_slots(st->lbuf, &p->label, why, sizeof why);
        if (lr < 0 || memcmp(p->label.nexus_uuid, nx->uuid_bin, 16) != 0) {
            p->cls = P_NEW; /* blank, damaged, or another nexus's (released or forced): a new child */
            snprintf(p->why, sizeof p->why, "new child (%s)", lr < 0 ? why : "label of another nexus");
            uint64_t seq = lr == 0 && p->label.seq < UINT64_MAX / 2 ? p->label.seq : 0;
            memset(&p->label, 0, sizeof p->label);
            p->label.seq = seq;
            continue;
        }
        p->cls = (p->label.flags & NX_LABEL_SYNCED) ? P_SYNCED : P_STALE;
        if (p->cls == P_STALE)
            snprintf(p->why, sizeof p->why, "out of sync (label generation %llu not synced)",
                     (unsigned long long)p->label.generation);
    }
    return 0;
}

/* 3a. Who holds the newest generation? None: a fresh create, nothing to open, or only stale data (refused). */
static int setup_pick_newest(struct setup *st)
{
    uint64_t gmax = 0;
    bool any_label = false, all_new = true;
    st->newest = -1;
    for (uint32_t i = 0; i < st->n; i++) {
        const struct probe *p = &st->pr[i];
        any_label |= p->cls == P_STALE || p->cls == P_SYNCED;
        all_new &= p->cls == P_NEW;
        if (p->cls == P_SYNCED && (st->newest < 0 || p->label.generation > gmax)) {
            gmax = p->label.generation;
            st->newest = (int)i;
        }
    }
    if (st->newest >= 0)
        return 0;
    if (!st->open_mode && all_new) {
        st->fresh = true;
        return 0;
    }
    if (!any_label) {
        dp_set_error("nexus '%s': no child carries a label of this nexus (nothing to open)", st->uuid);
        return -ENOENT;
    }
    char list[512];
    list_children(st, NULL, list, sizeof list);
    dp_set_error("nexus '%s': no child holds current data, refusing to serve stale data (%s)", st->uuid, list);
    return -ENODEV;
}

/*
 * 3b. Synced children older than the newest are stale; every member of the
 * newest generation must be present and current (a missing one may hold
 * newer writes).
 */
static int setup_check_members(struct setup *st)
{
    struct probe *pr = st->pr;
    const struct nx_label *nl = &pr[st->newest].label;
    uint64_t gmax = nl->generation;
    for (uint32_t i = 0; i < st->n; i++)
        if (pr[i].cls == P_SYNCED && pr[i].label.generation < gmax) {
            pr[i].cls = P_STALE;
            snprintf(pr[i].why, sizeof pr[i].why, "out of sync (generation %llu, newest %llu)",
                     (unsigned long long)pr[i].label.generation, (unsigned long long)gmax);
        }
    for (uint32_t m = 0; m < nl->nmembers; m++) {
        bool present = false;
        for (uint32_t i = 0; i < st->n; i++)
            present |= pr[i].cls == P_SYNCED && !memcmp(pr[i].label.child_id, nl->members[m], 16);
        if (present)
            continue;
        char idstr[37];
        dp_uuid_format(nl->members[m], idstr);
        const char *uri = NULL;
        for (uint32_t i = 0; i < st->n; i++)
            if (pr[i].cls == P_DOWN)
                uri = st->uris[i];
        dp_set_error("nexus '%s': child %s, in sync at generation %llu, is missing%s%s%s; it may hold "
                     "newer data, refusing to serve possibly stale data",
                     st->uuid, idstr, (unsigned long long)gmax, uri ? " (unreachable: " : "", uri ? uri : "",
                     uri ? ")" : "");
        return -ENODEV;
    }
    return 0;
}

/*
 * 3c. Size (LABEL.md, rule 3): a current child recording less than the
 * requested size is an error; a larger one is a growth that was interrupted
 * or not yet recorded by the agent: roll forward to the largest (the new
 * range was zeroed on every serving child before any label changed). Also
 * the generation to continue from, and whether the last close was clean.
 */
static int setup_adopt_size(struct setup *st)
{
    struct nexus *nx = st->nx;
    uint64_t adopt = st->size;
    for (uint32_t i = 0; i < st->n; i++) {
        const struct probe *p = &st->pr[i];
        if (p->cls != P_SYNCED)
            continue;
        if (p->label.data_size < st->size) {
            dp_set_error("nexus '%s': size %llu is larger than the size %llu recorded in the label of "
                         "children[%u] '%s' (a nexus grows with dp_nexus_resize only)",
                         st->uuid, (unsigned long long)st->size, (unsigned long long)p->label.data_size, i,
                         st->uris[i]);
            return -EINVAL;
        }
        if (p->label.data_size > adopt)
            adopt = p->label.data_size;
        /* dirty if any current child's label says so (a close may have been cut short) */
        if (!(p->label.flags & NX_LABEL_CLEAN))
            nx->was_dirty = true;
    }
    if (adopt % nx->block_size || adopt > UINT64_MAX - NX_HDR_SIZE) {
        dp_set_error("nexus '%s': size %llu recorded in the labels is not usable (not a multiple of the "
                     "children's block size %u, or too large)",
                     st->uuid, (unsigned long long)adopt, nx->block_size);
        return -EINVAL;
    }
    nx->size = nx->label_size = adopt;
    nx->generation = st->pr[st->newest].label.generation;
    return 0;
}

static bool not_synced(const struct probe *p)
{
    return p->cls != P_SYNCED;
}

/*
 * 3d. A child too small for the size (possibly adopted from the labels) can
 * neither serve nor be rebuilt: it is left out as faulted (open) until it is
 * grown and brought online. Membership was checked before, so a current
 * member left out here held nothing the others lack.
 */
static int setup_leave_out_small(struct setup *st)
{
    struct nexus *nx = st->nx;
    if (!st->open_mode && nx->size == st->size)
        return 0;
    uint32_t usable = 0;
    for (uint32_t i = 0; i < st->n; i++) {
        struct probe *p = &st->pr[i];
        if (p->cls == P_DOWN)
            continue;
        uint64_t have = p->bdev->size;
        if (have >= nx->size + NX_HDR_SIZE) {
            usable += p->cls == P_SYNCED;
            continue;
        }
        if (!st->open_mode) {
            dp_set_error("nexus '%s': children[%u] '%s': size %llu is too small for the size %llu recorded in "
                         "the labels (a child needs the size plus %llu bytes)",
                         st->uuid, i, st->uris[i], (unsigned long long)have, (unsigned long long)nx->size,
                         (unsigned long long)NX_HDR_SIZE);
            return -EINVAL;
        }
        snprintf(p->why, sizeof p->why,
                 "size %llu is too small for the nexus size %llu plus %llu bytes of label: grow it, then bring "
                 "it online",
                 (unsigned long long)have, (unsigned long long)nx->size, (unsigned long long)NX_HDR_SIZE);
        p->cls = P_DOWN;
    }
    if (!st->fresh && usable == 0) {
        for (uint32_t i = 0; i < st->n; i++)
            if (st->pr[i].cls != P_DOWN && st->pr[i].cls != P_SYNCED)
                snprintf(st->pr[i].why, sizeof st->pr[i].why, "out of sync");
        char list[512];
        list_children(st, not_synced, list, sizeof list);
        dp_set_error("nexus '%s': no current child can hold the nexus size %llu (%s)", st->uuid,
                     (unsigned long long)nx->size, list);
        return -ENODEV;
    }
    return 0;
}

/* 4. The children in their states; the nexus lives on the reactor of most of them. */
static int setup_build(struct setup *st)
{
    struct nexus *nx = st->nx;
    for (uint32_t i = 0; i < st->n; i++) {
        struct probe *p = &st->pr[i];
        struct nx_child *c = nx_child_new(nx, st->uris[i]);
        if (!c) {
            dp_set_error("nexus '%s': out of memory", st->uuid);
            return -ENOMEM;
        }
        nx->children[nx->nchildren++] = c;
        c->bdev = p->bdev;
        p->bdev = NULL;
        snprintf(c->ident, sizeof c->ident, "%s", c->bdev ? dp_bdev_ident(c->bdev) : st->uris[i]);
        c->label_seq = p->label.seq;
        if (p->cls == P_SYNCED || p->cls == P_STALE)
            memcpy(c->id, p->label.child_id, 16);
        else
            dp_uuid_generate(c->id);
        switch (p->cls) {
        case P_SYNCED: c->state = NXC_ONLINE; break;
        case P_NEW:
            c->state = st->fresh ? NXC_ONLINE : NXC_DEGRADED;
            if (!st->fresh)
                snprintf(c->reason, sizeof c->reason, "%s: rebuilding", p->why);
            break;
        case P_STALE:
            c->state = NXC_DEGRADED;
            snprintf(c->reason, sizeof c->reason, "%s: rebuilding", p->why);
            break;
        case P_DOWN:
            c->state = NXC_FAULTED;
            snprintf(c->reason, sizeof c->reason, "%s", p->why);
            break;
        }
    }
    uint32_t best = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (!c->bdev)
            continue;
        uint32_t k = 0;
        for (uint32_t j = 0; j < nx->nchildren; j++)
            k += nx->children[j]->bdev && nx->children[j]->bdev->reactor == c->bdev->reactor;
        if (k > best) {
            best = k;
            nx->reactor = c->bdev->reactor;
        }
    }
    if (nx_io_init(nx) < 0) {
        dp_set_error("nexus '%s': out of memory", st->uuid);
        return -ENOMEM;
    }
    return 0;
}

/* A child's first label failed: create fails, open faults the child. */
static int label_failed(struct setup *st, uint32_t i, int wr)
{
    struct nx_child *c = st->nx->children[i];
    if (!st->open_mode) {
        dp_set_error("nexus '%s': children[%u] '%s': writing the label failed: %s", st->uuid, i, c->uri, strerror(-wr));
        return wr;
    }
    c->state = NXC_FAULTED;
    snprintf(c->reason, sizeof c->reason, "writing the label failed: %s", strerror(-wr));
    return 0;
}

/*
 * 5. First labels: members get the next generation; rebuild targets are
 * marked out of sync. After an unclean shutdown with more than one current
 * child they may differ in blocks of unacknowledged writes: the labels stay
 * dirty, so that a crash during the resync resyncs again.
 */
static int setup_write_labels(struct setup *st, bool *resync)
{
    struct nexus *nx = st->nx;
    uint32_t ncurrent = 0;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        ncurrent += nx->children[i]->state == NXC_ONLINE;
    *resync = nx->was_dirty && ncurrent > 1;
    nx->dirty_state = *resync ? NX_LBL_DIRTY : NX_LBL_CLEAN;
    for (bool failed = true; failed;) {
        failed = false;
        nx->generation++;
        struct nx_label members;
        memset(&members, 0, sizeof members);
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->state == NXC_ONLINE)
                memcpy(members.members[members.nmembers++], nx->children[i]->id, 16);
        if (members.nmembers == 0) {
            dp_set_error("nexus '%s': writing the labels failed on every current child", st->uuid);
            return -EIO;
        }
        for (uint32_t i = 0; i < nx->nchildren; i++) {
            struct nx_child *c = nx->children[i];
            if (c->state != NXC_ONLINE)
                continue;
            int wr = nx_child_write_label_sync(nx, c, NX_LABEL_SYNCED | (*resync ? 0 : NX_LABEL_CLEAN), nx->generation,
                                               &members);
            if (wr < 0) {
                int rc = label_failed(st, i, wr);
                if (rc < 0)
                    return rc;
                failed = true;
            }
        }
    }
    nx->gen_durable = nx->generation; /* on every member now */
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_DEGRADED)
            continue;
        int wr = nx_child_write_label_sync(nx, c, 0, nx->generation, NULL);
        int rc = wr < 0 ? label_failed(st, i, wr) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * 5b. Resync: one current child is the source (the lowest child id: the same
 * choice after every restart, whatever the order of the URIs); until the
 * others are rebuilt from it (nx_start_rebuilds_msg) reads go to it alone.
 */
static void setup_pick_resync_source(struct nexus *nx)
{
    struct nx_child *src = NULL;
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state == NXC_ONLINE && (!src || memcmp(c->id, src->id, 16) < 0))
            src = c;
    }
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state == NXC_ONLINE && c != src) {
            c->resync = true;
            snprintf(c->reason, sizeof c->reason, "resyncing from '%s' after an unclean shutdown (no reads until done)",
                     src->uri);
        }
    }
}

/* 6. Register as a bdev named by the uuid, list it, start the rebuilds. */
static int setup_register(struct setup *st)
{
    struct nexus *nx = st->nx;
    snprintf(nx->bdev.name, sizeof nx->bdev.name, "%s", st->uuid);
    nx->bdev.size = nx->size;
    nx->bdev.block_size = nx->block_size;
    nx->bdev.thin = false;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->bdev && nx->children[i]->bdev->thin)
            nx->bdev.thin = true;
    nx->bdev.ops = &nx_bdev_ops;
    nx->bdev.ctx = nx;
    nx->bdev.reactor = nx->reactor;
    nx_update_state(nx);
    int rc = dp_bdev_register(&nx->bdev);
    if (rc < 0) {
        char e[256];
        snprintf(e, sizeof e, "%s", dp_get_error());
        dp_set_error("nexus '%s': %s", st->uuid, e);
        return rc;
    }
    nx_list_add(nx);
    dp_reactor_call(nx->reactor, nx_start_rebuilds_msg, nx);
    return 0;
}

/*
 * Undo a failed setup: a fresh create leaves no label behind (`wipe`: labels
 * were written); every device is released. The error message is kept.
 */
static void setup_undo(struct setup *st, bool wipe)
{
    char e[512];
    snprintf(e, sizeof e, "%s", dp_get_error());
    struct nexus *nx = st->nx;
    if (wipe && st->fresh) {
        memset(st->lbuf, 0, 2 * NX_LABEL_BLOCK);
        for (uint32_t i = 0; i < nx->nchildren; i++)
            if (nx->children[i]->bdev)
                dp_bdev_rw_sync(nx->children[i]->bdev, DP_IO_WRITE, st->lbuf, 0, 2 * NX_LABEL_BLOCK);
    }
    for (uint32_t i = 0; i < st->n; i++)
        if (st->pr[i].bdev)
            nx_child_bdev_put(nx, st->pr[i].bdev);
    nx_free(nx);
    dp_set_error("%s", e);
}

static int nexus_setup(struct setup *st)
{
    uint8_t uuid_bin[16];
    int rc = setup_check_args(st, uuid_bin);
    if (rc < 0)
        return rc;
    st->pr = calloc(st->n, sizeof *st->pr);
    st->nx = calloc(1, sizeof *st->nx);
    st->lbuf = dp_buf_alloc(2 * NX_LABEL_BLOCK);
    struct nexus *nx = st->nx;
    if (!st->pr || !nx || !st->lbuf) {
        free(st->pr);
        free(nx);
        dp_buf_free(st->lbuf);
        dp_set_error("nexus '%s': out of memory", st->uuid);
        return -ENOMEM;
    }
    pthread_mutex_init(&nx->ev_lock, NULL);
    pthread_cond_init(&nx->ev_cond, NULL);
    snprintf(nx->uuid, sizeof nx->uuid, "%s", st->uuid);
    memcpy(nx->uuid_bin, uuid_bin, 16);
    nx->size = nx->label_size = st->size;
    nx->block_size = 512;

    bool resync = false, labelled = false;
    rc = setup_open_children(st);
    if (rc == 0)
        rc = setup_read_labels(st);
    if (rc == 0)
        rc = setup_pick_newest(st);
    if (rc == 0 && !st->fresh)
        rc = setup_check_members(st);
    if (rc == 0 && !st->fresh)
        rc = setup_adopt_size(st);
    if (rc == 0)
        rc = setup_leave_out_small(st);
    if (rc == 0)
        rc = setup_build(st);
    if (rc == 0) {
        labelled = true;
        rc = setup_write_labels(st, &resync);
    }
    if (rc == 0 && resync)
        setup_pick_resync_source(nx);
    if (rc == 0)
        rc = setup_register(st);
    if (rc < 0)
        setup_undo(st, labelled);
    free(st->pr);
    dp_buf_free(st->lbuf);
    return rc;
}

DP_EXPORT int dp_nexus_create(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren,
                              uint32_t flags)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct setup st = { .uuid = uuid, .size = size, .uris = children, .n = nchildren, .flags = flags };
    int rc = nexus_setup(&st);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}

DP_EXPORT int dp_nexus_open(const char *uuid, uint64_t size, const char *const *children, uint32_t nchildren)
{
    dp_clear_error();
    pthread_mutex_lock(&nx_ctl_lock);
    struct setup st = { .uuid = uuid, .size = size, .uris = children, .n = nchildren, .open_mode = true };
    int rc = nexus_setup(&st);
    pthread_mutex_unlock(&nx_ctl_lock);
    return rc;
}
