/*
 * uring.c - files and block devices through io_uring: uring:///abs/path,
 * aio:///abs/path (an alias) and plain absolute paths.
 *
 * O_DIRECT where the filesystem allows it (tmpfs refuses: buffered then).
 * Flush is always fdatasync (IORING_FSYNC_DATASYNC): even O_DIRECT leaves
 * the device's volatile cache and file metadata to sync. Buffers that do
 * not meet O_DIRECT's alignment (JS Buffers) go through a bounce buffer.
 * Short transfers are continued until the whole request is done.
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
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev/bdev.h"

#define MAX_XFER (1u << 30)  /* per SQE; the rest continues */
#define ZBUF_SIZE (1u << 20) /* zeros written where fallocate cannot */

struct uring_bdev {
    struct dp_bdev bdev;
    int fd;
    bool direct;
    bool blockdev;
    bool no_punch, no_zero_range; /* fallocate modes refused: write zeros */
    char path[PATH_MAX];
};

/* Per-request state, in io->driver. */
struct ureq {
    struct dp_uring_op op;
    struct dp_bdev_io *io;
    uint64_t done;          /* bytes transferred so far */
    struct iovec *tmp_iov;  /* remainder after a short vectored transfer */
    void *bounce;           /* aligned copy for O_DIRECT */
    bool zero_write;        /* UNMAP/WRITE_ZEROES done by writing zeros */
};
_Static_assert(sizeof(struct ureq) <= sizeof(((struct dp_bdev_io *)0)->driver), "ureq too big");

static void *zbuf;
static pthread_once_t zbuf_once = PTHREAD_ONCE_INIT;

static void zbuf_init(void)
{
    zbuf = dp_buf_alloc(ZBUF_SIZE);
}

static void ureq_finish(struct ureq *q, int status)
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
    io->cb(io, status);
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
    struct io_uring_sqe *sqe = dp_reactor_sqe(io->bdev->reactor);
    uint64_t off = io->offset + q->done;
    uint64_t left = io->length - q->done;
    bool write = io->type != DP_IO_READ;

    if (q->zero_write || q->bounce || io->iovcnt == 1) {
        char *base = q->zero_write ? zbuf
                   : q->bounce     ? (char *)q->bounce + q->done
                                   : (char *)io->iov[0].iov_base + q->done;
        uint32_t len = left > (q->zero_write ? ZBUF_SIZE : MAX_XFER)
                           ? (q->zero_write ? ZBUF_SIZE : MAX_XFER) : (uint32_t)left;
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

static void fallocate_done(struct dp_uring_op *op, int res, uint32_t flags)
{
    struct ureq *q = (struct ureq *)op;
    struct uring_bdev *u = q->io->bdev->ctx;
    if (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOTTY) {
        /* Remember, and write zeros from now on. */
        if (q->io->type == DP_IO_UNMAP)
            u->no_punch = true;
        else
            u->no_zero_range = true;
        zero_write_start(q);
        return;
    }
    ureq_finish(q, res < 0 ? res : 0);
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
    case DP_IO_WRITE_ZEROES: {
        bool unmap = io->type == DP_IO_UNMAP;
        if (unmap ? u->no_punch : u->no_zero_range) {
            zero_write_start(q);
            return;
        }
        /* Both modes leave zeros behind, on files and on block devices
         * (blkdev_fallocate zeroes the range, with discard where it can). */
        int mode = (unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) | FALLOC_FL_KEEP_SIZE;
        struct io_uring_sqe *sqe = dp_reactor_sqe(bdev->reactor);
        io_uring_prep_fallocate(sqe, u->fd, mode, io->offset, io->length);
        q->op.cb = fallocate_done;
        io_uring_sqe_set_data(sqe, &q->op);
        return;
    }
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

int dp_uring_create(const char *uri, struct dp_bdev **out)
{
    const char *path = uri;
    char real[PATH_MAX], name[sizeof(((struct dp_bdev *)0)->name)];
    struct stat st;

    if (uri[0] != '/') {
        const char *sep = strstr(uri, "://");
        path = sep ? sep + 3 : uri;
        if (path[0] != '/') {
            dp_set_error("'%s': expected %.*s:///absolute/path (an absolute path, empty host)", uri,
                         sep ? (int)(sep - uri) : 5, sep ? uri : "uring");
            return -EINVAL;
        }
    }
    if (!realpath(path, real)) {
        int e = errno;
        if (e == ENOENT)
            dp_set_error("'%s': no such file or device: '%s'", uri, path);
        else
            dp_set_error("'%s': cannot resolve '%s': %s", uri, path, strerror(e));
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
        *out = b;
        return 0;
    }
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

    /* O_EXCL on a block device refuses one that is mounted or claimed. */
    int base = O_RDWR | O_CLOEXEC | (blk ? O_EXCL : 0);
    bool direct = true;
    int fd = open(real, base | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        direct = false;
        fd = open(real, base);
    }
    if (fd < 0) {
        int e = errno;
        dp_set_error("'%s': cannot open '%s': %s", uri, real, strerror(e));
        return -e;
    }

    uint64_t size;
    uint32_t bs = 512;
    if (blk) {
        int ssz = 0;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0 || ioctl(fd, BLKSSZGET, &ssz) < 0) {
            int e = errno;
            dp_set_error("'%s': cannot get the size of block device '%s': %s", uri, real, strerror(e));
            close(fd);
            return -e;
        }
        if (ssz > 512)
            bs = (uint32_t)ssz;
    } else {
        size = (uint64_t)st.st_size;
        if (direct) {
            bs = probe_direct(fd);
            if (!bs) {
                /* Opened with O_DIRECT but reads refuse it: go buffered. */
                close(fd);
                direct = false;
                bs = 512;
                fd = open(real, base);
                if (fd < 0) {
                    int e = errno;
                    dp_set_error("'%s': cannot open '%s': %s", uri, real, strerror(e));
                    return -e;
                }
            }
        }
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
    snprintf(u->path, sizeof u->path, "%s", real);
    memcpy(u->bdev.name, name, sizeof name);
    u->bdev.size = size;
    u->bdev.block_size = bs;
    u->bdev.ops = &uring_ops;
    u->bdev.ctx = u;
    u->bdev.reactor = dp_reactor_next();
    *out = &u->bdev;
    return 0;
}
