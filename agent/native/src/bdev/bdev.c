/*
 * bdev.c - the generic block-device layer: request validation, counters,
 * the name registry, claims, the module list and its URI schemes,
 * synchronous I/O for control paths, aligned buffers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev/bdev.h"

/* ---- buffers --------------------------------------------------------------- */

void *dp_buf_alloc(size_t len)
{
    void *p;
    if (len == 0)
        len = DP_BUF_ALIGN;
    len = (len + DP_BUF_ALIGN - 1) & ~(size_t)(DP_BUF_ALIGN - 1);
    if (posix_memalign(&p, DP_BUF_ALIGN, len))
        return NULL;
    memset(p, 0, len);
    return p;
}

void dp_buf_free(void *buf)
{
    free(buf);
}

/* ---- submission ------------------------------------------------------------ */

static inline void ctr_add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static void gen_done(struct dp_bdev_io *io, int status)
{
    if (status < 0)
        ctr_add(&io->bdev->stats.errors, 1);
    io->cb = io->gen_cb; /* the submitter may reuse io from its callback */
    io->cb(io, status);
}

static void deferred_msg(void *arg)
{
    struct dp_bdev_io *io = arg;
    io->cb(io, io->gen_status);
}

void dp_bdev_io_complete_deferred(struct dp_bdev_io *io, int status)
{
    io->gen_status = status;
    dp_reactor_send(io->bdev->reactor, deferred_msg, io);
}

static int validate(const struct dp_bdev *bdev, const struct dp_bdev_io *io)
{
    uint64_t size = __atomic_load_n(&bdev->size, __ATOMIC_RELAXED);
    uint32_t bs = bdev->block_size;

    switch (io->type) {
    case DP_IO_FLUSH: return 0;
    case DP_IO_READ:
    case DP_IO_WRITE:
        if (io->iovcnt < 1 || io->iovcnt > DP_IO_MAX_IOV || !io->iov)
            return -EINVAL;
        {
            uint64_t sum = 0;
            for (int i = 0; i < io->iovcnt; i++)
                sum += io->iov[i].iov_len;
            if (sum != io->length)
                return -EINVAL;
        }
        /* fall through */
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES:
        if (io->type != DP_IO_READ && bdev->read_only)
            return -EROFS;
        if (io->length == 0 || bs == 0 || io->offset % bs || io->length % bs)
            return -EINVAL;
        if (io->offset > size || io->length > size - io->offset)
            return -ERANGE;
        return 0;
    }
    return -EINVAL;
}

static void submit_here(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    /* A module passing the very same io on to another bdev keeps the
     * first wrapper (modules should use a child io of their own). */
    if (io->cb != gen_done) {
        io->gen_cb = io->cb;
        io->cb = gen_done;
    }
    int err = validate(bdev, io);
    if (err) {
        dp_bdev_io_complete_deferred(io, err);
        return;
    }
    struct dp_io_counters *s = &bdev->stats;
    switch (io->type) {
    case DP_IO_READ:
        ctr_add(&s->reads, 1);
        ctr_add(&s->bytes_read, io->length);
        break;
    case DP_IO_WRITE:
        ctr_add(&s->writes, 1);
        ctr_add(&s->bytes_written, io->length);
        break;
    case DP_IO_FLUSH: ctr_add(&s->flushes, 1); break;
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES: ctr_add(&s->unmaps, 1); break;
    }
    bdev->ops->submit(bdev, io);
}

static void submit_msg(void *arg)
{
    struct dp_bdev_io *io = arg;
    submit_here(io->bdev, io);
}

int dp_bdev_refresh_size(struct dp_bdev *bdev)
{
    return bdev->ops->refresh_size ? bdev->ops->refresh_size(bdev) : 0;
}

int dp_bdev_snapshot_create(struct dp_bdev *bdev, const char *snap_uuid, const char *group)
{
    if (!bdev->ops->snapshot_create) {
        dp_set_error("'%s' cannot be snapshotted (only pool replicas and nvmf:// children can)", bdev->name);
        return -ENOTSUP;
    }
    return bdev->ops->snapshot_create(bdev, snap_uuid, group ? group : "");
}

int dp_bdev_snapshot_destroy(struct dp_bdev *bdev, const char *snap_uuid)
{
    if (!bdev->ops->snapshot_destroy) {
        dp_set_error("'%s' has no snapshots to destroy", bdev->name);
        return -ENOTSUP;
    }
    return bdev->ops->snapshot_destroy(bdev, snap_uuid);
}

void dp_bdev_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    io->bdev = bdev;
    /* Off the owning reactor (a descriptor on a koffi thread, another
     * reactor): hop over; the completion runs on the bdev's reactor. */
    if (dp_reactor_self() != bdev->reactor)
        dp_reactor_send(bdev->reactor, submit_msg, io);
    else
        submit_here(bdev, io);
}

/* ---- registry -------------------------------------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dp_bdev *reg_head;

static struct dp_bdev *reg_find(const char *name)
{
    for (struct dp_bdev *b = reg_head; b; b = b->reg_next)
        if (!strcmp(b->name, name))
            return b;
    return NULL;
}

static void reg_unlink(struct dp_bdev *bdev)
{
    for (struct dp_bdev **p = &reg_head; *p; p = &(*p)->reg_next)
        if (*p == bdev) {
            *p = bdev->reg_next;
            break;
        }
    bdev->reg_next = NULL;
    bdev->registered = false;
}

static void destroy_msg(void *arg)
{
    struct dp_bdev *bdev = arg;
    bdev->ops->destroy(bdev);
}

static void bdev_destroy(struct dp_bdev *bdev)
{
    if (!bdev->ops->destroy)
        return;
    if (!bdev->reactor || dp_reactor_count() == 0) /* after dp_fini: no reactor left */
        bdev->ops->destroy(bdev);
    else if (dp_reactor_self() == bdev->reactor)
        dp_reactor_send(bdev->reactor, destroy_msg, bdev); /* not under our caller's feet */
    else
        dp_reactor_call(bdev->reactor, destroy_msg, bdev); /* closed when put returns */
}

int dp_bdev_register(struct dp_bdev *bdev)
{
    if (!bdev->name[0] || !memchr(bdev->name, 0, sizeof bdev->name)) {
        dp_set_error("bdev: empty or unterminated name");
        return -EINVAL;
    }
    pthread_mutex_lock(&reg_lock);
    if (reg_find(bdev->name)) {
        pthread_mutex_unlock(&reg_lock);
        dp_set_error("bdev '%s' already exists", bdev->name);
        return -EEXIST;
    }
    bdev->refs++;
    bdev->registered = true;
    bdev->reg_next = reg_head;
    reg_head = bdev;
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

void dp_bdev_unregister(struct dp_bdev *bdev)
{
    pthread_mutex_lock(&reg_lock);
    if (!bdev->registered) {
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    reg_unlink(bdev);
    int refs = --bdev->refs;
    pthread_mutex_unlock(&reg_lock);
    if (refs == 0)
        bdev_destroy(bdev);
}

struct dp_bdev *dp_bdev_get(const char *name)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&reg_lock);
    struct dp_bdev *b = reg_find(name);
    if (b)
        b->refs++;
    pthread_mutex_unlock(&reg_lock);
    return b;
}

void dp_bdev_put(struct dp_bdev *bdev)
{
    if (!bdev)
        return;
    pthread_mutex_lock(&reg_lock);
    int refs = --bdev->refs;
    if (refs == 1 && bdev->registered && bdev->auto_release) {
        reg_unlink(bdev);
        refs = bdev->refs = 0;
    }
    pthread_mutex_unlock(&reg_lock);
    if (refs == 0)
        bdev_destroy(bdev);
}

int dp_bdev_claim(struct dp_bdev *bdev, const void *holder, const char *owner)
{
    pthread_mutex_lock(&reg_lock);
    if (bdev->claim_holder && bdev->claim_holder != holder) {
        char cur[sizeof bdev->claim_owner];
        memcpy(cur, bdev->claim_owner, sizeof cur);
        pthread_mutex_unlock(&reg_lock);
        dp_set_error("'%s' is already in use by %s", bdev->name, cur);
        return -EBUSY;
    }
    bdev->claim_holder = holder;
    snprintf(bdev->claim_owner, sizeof bdev->claim_owner, "%s", owner);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

void dp_bdev_unclaim(struct dp_bdev *bdev, const void *holder)
{
    if (!bdev)
        return;
    pthread_mutex_lock(&reg_lock);
    if (bdev->claim_holder == holder) {
        bdev->claim_holder = NULL;
        bdev->claim_owner[0] = 0;
    }
    pthread_mutex_unlock(&reg_lock);
}

void dp_bdev_claim_owner(struct dp_bdev *bdev, char *buf, size_t len)
{
    pthread_mutex_lock(&reg_lock);
    snprintf(buf, len, "%s", bdev->claim_holder ? bdev->claim_owner : "");
    pthread_mutex_unlock(&reg_lock);
}

const char *dp_bdev_ident(const struct dp_bdev *bdev)
{
    return bdev->ident[0] ? bdev->ident : bdev->name;
}

/* Unregister every bdev (dp_fini). Those still open by someone stay alive. */
void dp_bdev_unregister_all(void)
{
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        struct dp_bdev *b = reg_head;
        pthread_mutex_unlock(&reg_lock);
        if (!b)
            break;
        dp_bdev_unregister(b);
    }
}

/* ---- URI schemes ------------------------------------------------------------ */

/* bdev:///<name>: a bdev registered under that name (a replica uuid). */
static int bdev_scheme_create(const char *uri, struct dp_bdev **out)
{
    const char *name = uri + strlen("bdev://");
    if (*name != '/' || !name[1]) {
        dp_set_error("'%s': expected bdev:///<replica-uuid>", uri);
        return -EINVAL;
    }
    struct dp_bdev *b = dp_bdev_get(name + 1);
    if (!b) {
        dp_set_error("'%s': no replica or device named '%s'", uri, name + 1);
        return -ENOENT;
    }
    *out = b;
    return 0;
}

static const char *const bdev_schemes[] = { "bdev", NULL };
static struct dp_module bdev_module = { .name = "bdev", .schemes = bdev_schemes, .create = bdev_scheme_create };
DP_MODULE_REGISTER(bdev_module)

/* Modules register from constructors (before main): the list is read-only after that. */
static struct dp_module *modules;

void dp_module_register(struct dp_module *m)
{
    m->next = modules;
    modules = m;
}

void dp_modules_fini(void)
{
    for (int stage = DP_FINI_TARGETS; stage <= DP_FINI_STORES; stage++)
        for (struct dp_module *m = modules; m; m = m->next)
            if (m->fini && (int)m->fini_stage == stage)
                m->fini();
}

/* The create function for a scheme of n characters, or NULL. */
static dp_bdev_create_fn scheme_create(const char *scheme, size_t n)
{
    for (struct dp_module *m = modules; m; m = m->next)
        for (const char *const *sc = m->schemes; sc && *sc; sc++)
            if (strlen(*sc) == n && !strncmp(*sc, scheme, n))
                return m->create;
    return NULL;
}

static void scheme_list(char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (struct dp_module *m = modules; m; m = m->next)
        for (const char *const *sc = m->schemes; sc && *sc && n < len; sc++)
            n += snprintf(buf + n, len - n, "%s%s://", n ? ", " : "", *sc);
}

/*
 * Opens in progress, by URI. A scheme's create may block for long (nbd:// and
 * nvmf:// connect over the network, up to their connect timeout), so no lock
 * is held across it: only a second opener of the same URI waits (for the
 * first one's device or failure); opens of other URIs go on. open_lock
 * guards the list and the look-up + registration that ends each open.
 */
struct opening {
    const char *uri;
    pthread_t by;
    struct opening *next;
};
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t open_done = PTHREAD_COND_INITIALIZER;
static struct opening *openings;

/* Under open_lock. */
static struct opening *opening_of(const char *uri)
{
    for (struct opening *o = openings; o; o = o->next)
        if (!strcmp(o->uri, uri))
            return o;
    return NULL;
}

/* Under open_lock: take o out of the list and wake the openers waiting on its URI. */
static void opening_end(struct opening *o)
{
    for (struct opening **p = &openings; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    pthread_cond_broadcast(&open_done);
}

int dp_bdev_open_uri(const char *uri, struct dp_bdev **out)
{
    *out = NULL;
    if (!uri || !*uri) {
        dp_set_error("device URI is empty");
        return -EINVAL;
    }
    if (dp_reactor_count() == 0) {
        dp_set_error("'%s': the data path is not initialised (dp_init)", uri);
        return -ENODEV;
    }
    dp_bdev_create_fn create = NULL;
    const char *sep = strstr(uri, "://");
    if (uri[0] == '/') {
        create = scheme_create("uring", 5); /* a plain path is a file or block device */
    } else if (sep) {
        size_t n = (size_t)(sep - uri);
        create = scheme_create(uri, n);
        if (!create) {
            char list[256];
            scheme_list(list, sizeof list);
            dp_set_error("'%s': unknown URI scheme '%.*s' (known: %s)", uri, (int)(n > 32 ? 32 : n), uri, list);
            return -EINVAL;
        }
    } else {
        dp_set_error("'%s' is neither a device URI (scheme://...) nor an absolute path", uri);
        return -EINVAL;
    }

    /* One opener per URI, so two opens of one URI cannot both create. */
    pthread_mutex_lock(&open_lock);
    struct dp_bdev *b;
    for (;;) {
        b = dp_bdev_get(uri);
        if (b) {
            pthread_mutex_unlock(&open_lock);
            *out = b;
            return 0;
        }
        struct opening *o = opening_of(uri);
        if (!o)
            break;
        if (pthread_equal(o->by, pthread_self())) { /* a scheme opening its own URI again */
            pthread_mutex_unlock(&open_lock);
            dp_set_error("'%s': opening it needs itself", uri);
            return -ELOOP;
        }
        pthread_cond_wait(&open_done, &open_lock);
    }
    struct opening me = { .uri = uri, .by = pthread_self(), .next = openings };
    openings = &me;
    pthread_mutex_unlock(&open_lock);

    b = NULL;
    int ret = create(uri, &b);

    pthread_mutex_lock(&open_lock);
    opening_end(&me);
    if (ret >= 0 && !b->registered) {
        b->auto_release = true;
        ret = dp_bdev_register(b);
        if (ret < 0) {
            pthread_mutex_unlock(&open_lock);
            bdev_destroy(b);
            return ret;
        }
        pthread_mutex_lock(&reg_lock);
        b->refs++;
        pthread_mutex_unlock(&reg_lock);
    }
    pthread_mutex_unlock(&open_lock);
    if (ret < 0)
        return ret;
    *out = b;
    return 0;
}

/* ---- synchronous I/O -------------------------------------------------------- */

struct sync_io {
    struct dp_bdev_io io;
    struct iovec iov;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    int status;
};

static void sync_done(struct dp_bdev_io *io, int status)
{
    struct sync_io *s = (struct sync_io *)io;
    pthread_mutex_lock(&s->m);
    s->status = status;
    s->done = true;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
}

static const char *op_name(enum dp_bdev_io_type t)
{
    switch (t) {
    case DP_IO_READ: return "read";
    case DP_IO_WRITE: return "write";
    case DP_IO_FLUSH: return "flush";
    case DP_IO_UNMAP: return "unmap";
    case DP_IO_WRITE_ZEROES: return "write-zeroes";
    }
    return "unknown op";
}

int dp_bdev_rw_sync(struct dp_bdev *bdev, enum dp_bdev_io_type type, void *buf, uint64_t offset, uint64_t length)
{
    if (dp_reactor_self()) {
        dp_set_error("bdev '%s': synchronous %s called on a reactor thread", bdev->name, op_name(type));
        return -EDEADLK;
    }
    struct sync_io s = { 0 };
    s.io.type = type;
    s.io.offset = offset;
    s.io.length = length;
    s.iov.iov_base = buf;
    s.iov.iov_len = length;
    if (type == DP_IO_READ || type == DP_IO_WRITE) {
        s.io.iov = &s.iov;
        s.io.iovcnt = 1;
    }
    s.io.cb = sync_done;
    pthread_mutex_init(&s.m, NULL);
    pthread_cond_init(&s.c, NULL);
    dp_bdev_submit(bdev, &s.io);
    pthread_mutex_lock(&s.m);
    while (!s.done)
        pthread_cond_wait(&s.c, &s.m);
    pthread_mutex_unlock(&s.m);
    pthread_cond_destroy(&s.c);
    pthread_mutex_destroy(&s.m);
    if (s.status < 0)
        dp_set_error("bdev '%s': %s of %llu bytes at offset %llu failed: %s", bdev->name, op_name(type),
                     (unsigned long long)length, (unsigned long long)offset, strerror(-s.status));
    return s.status;
}
