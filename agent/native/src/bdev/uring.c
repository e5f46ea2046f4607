/*
 * uring.c - files and block devices through io_uring: uring:///abs/path,
 * aio:///abs/path (an alias) and plain absolute paths.
 *
 * Cache mode, per device: `uring:///path?cache=direct|buffered`.
 *  - direct (default): O_DIRECT where the filesystem allows it (else
 *    buffered). No double caching under a consumer that caches itself (a
 *    VM's page cache, a nexus), and memory use does not grow with the data.
 *  - buffered: through the page cache, like nbdkit's file plugin or
 *    qemu-nbd --cache=writeback. Equally safe: a write is only durable
 *    after FLUSH or FUA in both modes.
 * Flush is always fdatasync (IORING_FSYNC_DATASYNC): even O_DIRECT leaves
 * the device's volatile cache and file metadata to sync.
 *
 * Page-cache-only filesystems (tmpfs, ramfs) never block on a device, but
 * io_uring punts every read and write on them to its worker threads (they
 * lack FMODE_NOWAIT), which costs two context switches per I/O. There the
 * reactor does preadv/pwritev itself (a memcpy) and completes the request
 * through dp_bdev_io_complete_deferred. Buffered writes would be punted
 * the same way on filesystems without async buffered writes (ext4): they
 * are done inline too (pwritev2 with RWF_NOWAIT where the filesystem takes
 * it, falling back to io_uring when that would block; plain pwritev where
 * it does not, which only waits when the kernel throttles dirty pages).
 * FUA writes and flushes, which wait for the device, stay on io_uring.
 *
 * Buffers that do not meet O_DIRECT's alignment (JS Buffers) go through a
 * bounce buffer. Short transfers are continued until the whole request is
 * done.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bdev/bdev.h"

#define MAX_XFER (1u << 30) /* per SQE; the rest continues */
#define ZBUF_SIZE (1u << 20) /* zeros written where fallocate cannot */

struct uring_bdev {
    struct dp_bdev bdev;
    int fd;
    bool direct;
    bool blockdev;
    bool buffered; /* cache=buffered asked for */
    bool inline_rw; /* tmpfs/ramfs: preadv/pwritev on the reactor */
    bool nowait_write; /* buffered: writes inline, RWF_NOWAIT if the fs can */
    bool nowait_unsupported; /* the fs refuses RWF_NOWAIT writes: plain pwritev */
    bool no_punch, no_zero_range; /* fallocate modes refused: write zeros */
    char path[PATH_MAX];
};

/* Per-request state, in io->driver. */
struct ureq {
    struct dp_uring_op op;
    struct dp_bdev_io *io;
    uint64_t done; /* bytes transferred so far */
    struct iovec *tmp_iov; /* remainder after a short vectored transfer */
    void *bounce; /* aligned copy for O_DIRECT */
    bool zero_write; /* UNMAP/WRITE_ZEROES done by writing zeros */
    bool punch; /* the fallocate in flight punches a hole */
};
_Static_assert(sizeof(struct ureq) <= sizeof(((struct dp_bdev_io *)0)->driver), "ureq too big");

static void *zbuf;
static pthread_once_t zbuf_once = PTHREAD_ONCE_INIT;

static void zbuf_init(void)
{
    zbuf = dp_buf_alloc(ZBUF_SIZE);
}

/* Copy a bounced read out and free what the request held. */
static void ureq_cleanup(struct ureq *q, int status)
{
    struct dp_bdev_io *io = q->io;
    if (q->bounce) {
        if (status == 0 && io->type == DP_IO_READ) {
            const char *p = q->bounce;
            for (int i = 0; i < io->iovcnt; i++) {
                memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
                p += io->iov[i].iov_len;
            }
        }
        dp_buf_free(q->bounce);
        q->bounce = NULL;
    }
    free(q->tmp_iov);
    q->tmp_iov = NULL;
}

static void ureq_finish(struct ureq *q, int status)
{
    ureq_cleanup(q, status);
    q->io->cb(q->io, status);
}

/* Finished inside submit (or a continuation of it): complete later. */
static void ureq_finish_deferred(struct ureq *q, int status)
{
    ureq_cleanup(q, status);
    dp_bdev_io_complete_deferred(q->io, status);
}

/* The part of a READ/WRITE not done yet, as an iovec (<= DP_IO_MAX_IOV). */
static int rest_iov(const struct ureq *q, struct iovec *v)
{
    const struct dp_bdev_io *io = q->io;
    if (q->bounce || io->iovcnt == 1) {
        v[0].iov_base = (char *)(q->bounce ? q->bounce : io->iov[0].iov_base) + q->done;
        v[0].iov_len = io->length - q->done;
        return 1;
    }
    uint64_t skip = q->done;
    int i = 0, n = 0;
    while (skip >= io->iov[i].iov_len)
        skip -= io->iov[i++].iov_len;
    for (; i < io->iovcnt; i++, skip = 0) {
        v[n].iov_base = (char *)io->iov[i].iov_base + skip;
        v[n++].iov_len = io->iov[i].iov_len - skip;
    }
    return n;
}

/*
 * preadv/pwritev on the reactor thread: always on tmpfs/ramfs (never waits
 * for a device), and for buffered writes with RWF_NOWAIT (gives up rather
 * than block). Returns false when io_uring must do the rest.
 */
static bool ureq_try_inline(struct ureq *q, struct uring_bdev *u)
{
    struct dp_bdev_io *io = q->io;
    bool write = io->type == DP_IO_WRITE;
    int rwf = 0;
    if (!u->inline_rw) {
        if (!write || !u->nowait_write || (io->flags & DP_IO_FUA))
            return false;
        rwf = u->nowait_unsupported ? 0 : RWF_NOWAIT;
    } else if (write && (io->flags & DP_IO_FUA)) {
        rwf = RWF_DSYNC;
    }
    struct iovec v[DP_IO_MAX_IOV];
    while (q->done < io->length) {
        int n = rest_iov(q, v);
        off_t off = (off_t)(io->offset + q->done);
        ssize_t r = write ? pwritev2(u->fd, v, n, off, rwf) : preadv2(u->fd, v, n, off, rwf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (rwf == RWF_NOWAIT && errno == EOPNOTSUPP) {
                /* No async buffered writes here (ext4): io_uring would
                 * punt each one to a worker. A buffered write only copies
                 * into the page cache (it waits only when the kernel
                 * throttles dirty pages), so do it on the reactor. */
                u->nowait_unsupported = true;
                rwf = 0;
                continue;
            }
            if (rwf == RWF_NOWAIT && errno == EAGAIN)
                return false;
            ureq_finish_deferred(q, -errno);
            return true;
        }
        if (r == 0) { /* EOF inside the device: the file shrank under us */
            ureq_finish_deferred(q, -EIO);
            return true;
        }
        q->done += (uint64_t)r;
    }
    ureq_finish_deferred(q, 0);
    return true;
}

static void ureq_issue(struct ureq *q);

static void rw_done(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct ureq *q = (struct ureq *)op;
    struct dp_bdev_io *io = q->io;
    if (res == -EINTR || res == -EAGAIN) {
        ureq_issue(q);
        return;
    }
    if (res < 0) {
        ureq_finish(q, res);
        return;
    }
    if (res == 0) { /* EOF inside the device: the file shrank under us */
        ureq_finish(q, -EIO);
        return;
    }
    q->done += (uint64_t)res;
    if (q->done < io->length)
        ureq_issue(q);
    else
        ureq_finish(q, 0);
}

/* Issue the part of a READ/WRITE (or zero write) not done yet. */
static void ureq_issue(struct ureq *q)
{
    struct dp_bdev_io *io = q->io;
    struct uring_bdev *u = io->bdev->ctx;
    if ((u->inline_rw || u->nowait_write) && !q->zero_write && !(io->flags & DP_IO_NOINLINE) && ureq_try_inline(q, u))
        return;
    struct io_uring_sqe *sqe = dp_reactor_sqe(io->bdev->reactor);
    uint64_t off = io->offset + q->done;
    uint64_t left = io->length - q->done;
    bool write = io->type != DP_IO_READ;

    if (q->zero_write || q->bounce || io->iovcnt == 1) {
        char *base = q->zero_write ? zbuf
                     : q->bounce   ? (char *)q->bounce + q->done
                                   : (char *)io->iov[0].iov_base + q->done;
        uint32_t len =
            left > (q->zero_write ? ZBUF_SIZE : MAX_XFER) ? (q->zero_write ? ZBUF_SIZE : MAX_XFER) : (uint32_t)left;
        if (write)
            io_uring_prep_write(sqe, u->fd, base, len, off);
        else
            io_uring_prep_read(sqe, u->fd, base, len, off);
    } else {
        const struct iovec *iov = io->iov;
        int cnt = io->iovcnt;
        if (q->done) {
            /* Rare (short vectored transfer): rebuild the rest. */
            if (!q->tmp_iov && !(q->tmp_iov = malloc(sizeof(struct iovec) * (size_t)io->iovcnt))) {
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data(sqe, NULL);
                ureq_finish(q, -ENOMEM);
                return;
            }
            uint64_t skip = q->done;
            int i = 0;
            while (skip >= io->iov[i].iov_len)
                skip -= io->iov[i++].iov_len;
            cnt = 0;
            for (; i < io->iovcnt; i++, skip = 0) {
                q->tmp_iov[cnt].iov_base = (char *)io->iov[i].iov_base + skip;
                q->tmp_iov[cnt].iov_len = io->iov[i].iov_len - skip;
                cnt++;
            }
            iov = q->tmp_iov;
        }
        if (write)
            io_uring_prep_writev(sqe, u->fd, iov, (unsigned)cnt, off);
        else
            io_uring_prep_readv(sqe, u->fd, iov, (unsigned)cnt, off);
    }
    if (write && (io->flags & DP_IO_FUA))
        sqe->rw_flags = RWF_DSYNC;
    q->op.cb = rw_done;
    io_uring_sqe_set_data(sqe, &q->op);
}

static void simple_done(struct dp_uring_op *op, int res, uint32_t flags)
{
    ureq_finish((struct ureq *)op, res < 0 ? res : 0);
}

static void zero_write_start(struct ureq *q)
{
    pthread_once(&zbuf_once, zbuf_init);
    if (!zbuf) {
        ureq_finish(q, -ENOMEM);
        return;
    }
    q->zero_write = true;
    q->done = 0;
    ureq_issue(q);
}

static void fallocate_issue(struct ureq *q);

static void fallocate_done(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct ureq *q = (struct ureq *)op;
    struct uring_bdev *u = q->io->bdev->ctx;
    if (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOTTY) {
        /* Remember, and fall back: zero-range -> punch (tmpfs has only
         * that; it reads back zeros too) -> writing zeros. */
        if (q->punch)
            u->no_punch = true;
        else
            u->no_zero_range = true;
        if (!u->no_punch)
            fallocate_issue(q);
        else
            zero_write_start(q);
        return;
    }
    ureq_finish(q, res < 0 ? res : 0);
}

/* Both modes leave zeros behind, on files and on block devices
 * (blkdev_fallocate zeroes the range, with discard where it can). */
static void fallocate_issue(struct ureq *q)
{
    struct dp_bdev_io *io = q->io;
    struct uring_bdev *u = io->bdev->ctx;
    q->punch = io->type == DP_IO_UNMAP || u->no_zero_range;
    if (q->punch ? u->no_punch : u->no_zero_range) {
        zero_write_start(q);
        return;
    }
    int mode = (q->punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) | FALLOC_FL_KEEP_SIZE;
    struct io_uring_sqe *sqe = dp_reactor_sqe(io->bdev->reactor);
    io_uring_prep_fallocate(sqe, u->fd, mode, io->offset, io->length);
    q->op.cb = fallocate_done;
    io_uring_sqe_set_data(sqe, &q->op);
}

static bool iov_aligned(const struct dp_bdev_io *io, uint32_t align)
{
    for (int i = 0; i < io->iovcnt; i++)
        if (((uintptr_t)io->iov[i].iov_base | io->iov[i].iov_len) & (align - 1))
            return false;
    return true;
}

static void uring_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct uring_bdev *u = bdev->ctx;
    struct ureq *q = (struct ureq *)io->driver;
    memset(q, 0, sizeof *q);
    q->io = io;

    switch (io->type) {
    case DP_IO_READ:
    case DP_IO_WRITE:
        if (u->direct && !iov_aligned(io, bdev->block_size)) {
            q->bounce = dp_buf_alloc(io->length);
            if (!q->bounce) {
                dp_bdev_io_complete_deferred(io, -ENOMEM);
                return;
            }
            if (io->type == DP_IO_WRITE) {
                char *p = q->bounce;
                for (int i = 0; i < io->iovcnt; i++) {
                    memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
                    p += io->iov[i].iov_len;
                }
            }
        }
        ureq_issue(q);
        return;
    case DP_IO_FLUSH: {
        struct io_uring_sqe *sqe = dp_reactor_sqe(bdev->reactor);
        io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
        q->op.cb = simple_done;
        io_uring_sqe_set_data(sqe, &q->op);
        return;
    }
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES: fallocate_issue(q); return;
    }
    dp_bdev_io_complete_deferred(io, -EINVAL);
}

static void uring_destroy(struct dp_bdev *bdev)
{
    struct uring_bdev *u = bdev->ctx;
    close(u->fd);
    free(u);
}

static const struct dp_bdev_ops uring_ops = {
    .submit = uring_submit,
    .destroy = uring_destroy,
};

/* Smallest block size O_DIRECT accepts on this file, or 0 if none does. */
static uint32_t probe_direct(int fd)
{
    uint32_t result = 0;
    void *buf = dp_buf_alloc(4096);
    if (!buf)
        return 0;
    for (uint32_t bs = 512; bs <= 4096; bs *= 2) {
        ssize_t n;
        do
            n = pread(fd, buf, bs, 0);
        while (n < 0 && errno == EINTR);
        if (n >= 0) {
            result = bs;
            break;
        }
        if (errno != EINVAL)
            break;
    }
    dp_buf_free(buf);
    return result;
}

/*
 * The path of a uring:///, aio:/// or plain-path URI into pbuf, and its
 * cache option (-1 default (direct), 0 direct, 1 buffered). Options are for
 * URIs only: a plain path may contain '?'.
 */
static int parse_file_uri(const char *uri, char *pbuf, size_t plen, int *cache)
{
    *cache = -1;
    if (uri[0] == '/') {
        if (snprintf(pbuf, plen, "%s", uri) >= (int)plen) {
            dp_set_error("'%.64s...': path too long", uri);
            return -ENAMETOOLONG;
        }
        return 0;
    }
    const char *sep = strstr(uri, "://");
    const char *path = sep ? sep + 3 : uri;
    size_t plen_uri = strcspn(path, "?");
    if (plen_uri >= plen) {
        dp_set_error("'%.64s...': path too long", uri);
        return -ENAMETOOLONG;
    }
    memcpy(pbuf, path, plen_uri);
    pbuf[plen_uri] = 0;
    for (const char *o = path[plen_uri] ? path + plen_uri + 1 : path + plen_uri; *o;) {
        size_t n = strcspn(o, "&");
        if (n == 12 && !strncmp(o, "cache=direct", n))
            *cache = 0;
        else if (n == 14 && !strncmp(o, "cache=buffered", n))
            *cache = 1;
        else if (n >= 6 && !strncmp(o, "cache=", 6)) {
            dp_set_error("'%s': option cache='%.*s': expected 'direct' or 'buffered'", uri,
                         (int)(n - 6 > 32 ? 32 : n - 6), o + 6);
            return -EINVAL;
        } else if (n) {
            dp_set_error("'%s': unknown option '%.*s' (known: cache=direct|buffered)", uri, (int)(n > 32 ? 32 : n), o);
            return -EINVAL;
        }
        o += n;
        if (*o == '&')
            o++;
    }
    if (pbuf[0] != '/') {
        dp_set_error("'%s': expected %.*s:///absolute/path (an absolute path, empty host)", uri,
                     sep ? (int)(sep - uri) : 5, sep ? uri : "uring");
        return -EINVAL;
    }
    return 0;
}

/*
 * Open the file or block device for I/O: O_DIRECT where the filesystem
 * allows it (memory filesystems never: it would only add bounce copies),
 * O_EXCL on block devices (refuses one that is mounted or claimed), and an
 * exclusive flock: one writer-owner across processes too (a second agent, or
 * this one through a hard link, fails here rather than both writing). flock
 * locks belong to the open file, so they go away with the process, however
 * it ends. *fd_out, *direct and *bs (the block size) on success.
 */
static int open_locked(const char *uri, const char *real, const struct stat *st, int cache, bool memfs, int *fd_out,
                       bool *direct_out, uint32_t *bs)
{
    bool blk = S_ISBLK(st->st_mode);
    int base = O_RDWR | O_CLOEXEC | (blk ? O_EXCL : 0);
    bool direct = cache != 1 && !memfs;
    int fd = open(real, base | (direct ? O_DIRECT : 0));
    if (fd < 0 && direct && errno == EINVAL) {
        direct = false;
        fd = open(real, base);
    }
    *bs = 512;
    if (fd >= 0 && !blk && direct) {
        *bs = probe_direct(fd);
        if (!*bs) {
            /* Opened with O_DIRECT but reads refuse it: go buffered. */
            close(fd);
            direct = false;
            *bs = 512;
            fd = open(real, base);
        }
    }
    if (fd < 0) {
        int e = errno;
        dp_set_error("'%s': cannot open '%s': %s", uri, real, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            dp_set_error("'%s': '%s' is in use by another process or opener (locked): a device has one owner", uri,
                         real);
        else
            dp_set_error("'%s': cannot lock '%s': %s", uri, real, strerror(e));
        close(fd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    *fd_out = fd;
    *direct_out = direct;
    return 0;
}

/* Size and block size of a block device (its logical sector size, at least 512). */
static int blockdev_geometry(const char *uri, const char *real, int fd, uint64_t *size, uint32_t *bs)
{
    int ssz = 0;
    if (ioctl(fd, BLKGETSIZE64, size) < 0 || ioctl(fd, BLKSSZGET, &ssz) < 0) {
        int e = errno;
        dp_set_error("'%s': cannot get the size of block device '%s': %s", uri, real, strerror(e));
        return -e;
    }
    *bs = ssz > 512 ? (uint32_t)ssz : 512;
    return 0;
}

static int uring_create(const char *uri, struct dp_bdev **out)
{
    char pbuf[PATH_MAX], real[PATH_MAX], name[sizeof(((struct dp_bdev *)0)->name)];
    int cache;
    int rc = parse_file_uri(uri, pbuf, sizeof pbuf, &cache);
    if (rc < 0)
        return rc;
    if (!realpath(pbuf, real)) {
        int e = errno;
        if (e == ENOENT)
            dp_set_error("'%s': no such file or device: '%s'", uri, pbuf);
        else
            dp_set_error("'%s': cannot resolve '%s': %s", uri, pbuf, strerror(e));
        return -e;
    }
    if ((size_t)snprintf(name, sizeof name, "uring://%s", real) >= sizeof name) {
        dp_set_error("'%s': path too long for a device name (max %zu characters)", uri,
                     sizeof name - 1 - strlen("uring://"));
        return -ENAMETOOLONG;
    }
    /* aio:///x, uring:///x and /x are one device. */
    struct dp_bdev *b = dp_bdev_get(name);
    if (b) {
        if (cache >= 0 && b->ops == &uring_ops && ((struct uring_bdev *)b->ctx)->buffered != cache) {
            dp_set_error("'%s': '%s' is already open with cache=%s", uri, real, cache ? "direct" : "buffered");
            dp_bdev_put(b);
            return -EBUSY;
        }
        *out = b;
        return 0;
    }
    struct stat st;
    if (stat(real, &st) < 0) {
        int e = errno;
        dp_set_error("'%s': cannot stat '%s': %s", uri, real, strerror(e));
        return -e;
    }
    bool blk = S_ISBLK(st.st_mode);
    if (!blk && !S_ISREG(st.st_mode)) {
        dp_set_error("'%s': '%s' is not a regular file or block device", uri, real);
        return -EINVAL;
    }
    /* tmpfs/ramfs: memory is the store; I/O runs inline (see the top). */
    struct statfs sfs;
    bool memfs = !blk && statfs(real, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
    int fd = -1;
    bool direct = false;
    uint32_t bs = 512;
    rc = open_locked(uri, real, &st, cache, memfs, &fd, &direct, &bs);
    if (rc < 0)
        return rc;
    uint64_t size = (uint64_t)st.st_size;
    if (blk && (rc = blockdev_geometry(uri, real, fd, &size, &bs)) < 0) {
        close(fd);
        return rc;
    }
    size -= size % bs;
    if (size == 0) {
        dp_set_error("'%s': '%s' is smaller than one block (%u bytes)", uri, real, bs);
        close(fd);
        return -EINVAL;
    }

    struct uring_bdev *u = calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    u->fd = fd;
    u->direct = direct;
    u->blockdev = blk;
    u->buffered = cache == 1;
    u->inline_rw = memfs;
    u->nowait_write = !direct && !memfs;
    snprintf(u->path, sizeof u->path, "%s", real);
    memcpy(u->bdev.name, name, sizeof name);
    snprintf(u->bdev.ident, sizeof u->bdev.ident, "file:%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    u->bdev.size = size;
    u->bdev.block_size = bs;
    u->bdev.ops = &uring_ops;
    u->bdev.ctx = u;
    u->bdev.reactor = dp_reactor_next();
    *out = &u->bdev;
    return 0;
}

static const char *const uring_schemes[] = { "uring", "aio", NULL };
static struct dp_module uring_module = { .name = "uring", .schemes = uring_schemes, .create = uring_create };
DP_MODULE_REGISTER(uring_module)
