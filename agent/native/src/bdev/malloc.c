/*
 * malloc.c - RAM disks: malloc:///name?size_mb=N (block size 512).
 *
 * Memory is an anonymous mapping, so untouched ranges cost nothing and read
 * as zeros. I/O is a memcpy; completions are deferred through the reactor
 * like every other module's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bdev/bdev.h"

#define MALLOC_BS 512
#define NAME_MAX_LEN 64

struct malloc_bdev {
    struct dp_bdev bdev;
    char *data;
};

static void zero_range(struct malloc_bdev *m, uint64_t off, uint64_t len)
{
    /* Whole pages go back to the kernel (and read as zeros); edges are memset. */
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t a = (off + pg - 1) / pg * pg, b = (off + len) / pg * pg;
    if (a < b) {
        memset(m->data + off, 0, a - off);
        madvise(m->data + a, b - a, MADV_DONTNEED);
        memset(m->data + b, 0, off + len - b);
    } else {
        memset(m->data + off, 0, len);
    }
}

static void malloc_submit(struct dp_bdev *bdev, struct dp_bdev_io *io)
{
    struct malloc_bdev *m = bdev->ctx;
    char *p = m->data + io->offset;
    switch (io->type) {
    case DP_IO_READ:
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(io->iov[i].iov_base, p, io->iov[i].iov_len);
        break;
    case DP_IO_WRITE:
        for (int i = 0; i < io->iovcnt; p += io->iov[i].iov_len, i++)
            memcpy(p, io->iov[i].iov_base, io->iov[i].iov_len);
        break;
    case DP_IO_FLUSH: break;
    case DP_IO_UNMAP:
    case DP_IO_WRITE_ZEROES: zero_range(m, io->offset, io->length); break;
    }
    dp_bdev_io_complete_deferred(io, 0);
}

static void malloc_destroy(struct dp_bdev *bdev)
{
    struct malloc_bdev *m = bdev->ctx;
    munmap(m->data, bdev->size);
    free(m);
}

static const struct dp_bdev_ops malloc_ops = {
    .submit = malloc_submit,
    .destroy = malloc_destroy,
};

/* Parse "size_mb=N[&...]": N decimal, 1..physical memory in MiB. */
static int parse_query(const char *uri, const char *q, uint64_t *size_mb)
{
    uint64_t phys_mb = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) >> 20;
    bool have = false;
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 8 && !strncmp(q, "size_mb=", 8)) {
            uint64_t v = 0;
            for (size_t i = 8; i < len; i++) {
                if (q[i] < '0' || q[i] > '9') {
                    dp_set_error("'%s': size_mb: '%.*s' is not a whole number", uri, (int)(len - 8), q + 8);
                    return -EINVAL;
                }
                if (v > (UINT64_MAX - 9) / 10) {
                    dp_set_error("'%s': size_mb: '%.*s' is too large", uri, (int)(len - 8), q + 8);
                    return -EINVAL;
                }
                v = v * 10 + (uint64_t)(q[i] - '0');
            }
            if (v == 0) {
                dp_set_error("'%s': size_mb must be at least 1", uri);
                return -EINVAL;
            }
            if (v > phys_mb) {
                dp_set_error("'%s': size_mb: %llu exceeds the physical memory (%llu MiB)", uri, (unsigned long long)v,
                             (unsigned long long)phys_mb);
                return -EINVAL;
            }
            *size_mb = v;
            have = true;
        } else if (len == 7 && !strncmp(q, "size_mb", 7)) {
            dp_set_error("'%s': size_mb: missing value (size_mb=N)", uri);
            return -EINVAL;
        } else if (len == 8 && !strncmp(q, "size_mb=", 8)) {
            dp_set_error("'%s': size_mb: empty value", uri);
            return -EINVAL;
        } else {
            dp_set_error("'%s': unknown query parameter '%.*s' (expected size_mb=N)", uri, (int)(len > 32 ? 32 : len),
                         q);
            return -EINVAL;
        }
        q = amp ? amp + 1 : NULL;
    }
    if (!have) {
        dp_set_error("'%s': size_mb is missing (malloc:///name?size_mb=N)", uri);
        return -EINVAL;
    }
    return 0;
}

static int malloc_create(const char *uri, struct dp_bdev **out)
{
    const char *p = uri + strlen("malloc://");
    if (*p != '/') {
        dp_set_error("'%s': expected malloc:///name?size_mb=N", uri);
        return -EINVAL;
    }
    p++;
    size_t nlen = strcspn(p, "?");
    if (nlen == 0 || nlen > NAME_MAX_LEN) {
        dp_set_error("'%s': name must be 1..%d characters", uri, NAME_MAX_LEN);
        return -EINVAL;
    }
    for (size_t i = 0; i < nlen; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.')) {
            dp_set_error("'%s': name may only hold letters, digits, '-', '_' and '.'", uri);
            return -EINVAL;
        }
    }
    uint64_t size_mb = 0;
    int ret = parse_query(uri, p[nlen] == '?' ? p + nlen + 1 : NULL, &size_mb);
    if (ret < 0)
        return ret;

    char name[sizeof(((struct dp_bdev *)0)->name)];
    snprintf(name, sizeof name, "malloc:///%.*s", (int)nlen, p);
    struct dp_bdev *b = dp_bdev_get(name);
    if (b) {
        if (b->size != size_mb << 20) {
            dp_set_error("'%s': %s already exists with size_mb=%llu", uri, name, (unsigned long long)(b->size >> 20));
            dp_bdev_put(b);
            return -EEXIST;
        }
        *out = b;
        return 0;
    }

    struct malloc_bdev *m = calloc(1, sizeof *m);
    if (!m) {
        dp_set_error("'%s': out of memory", uri);
        return -ENOMEM;
    }
    m->data = mmap(NULL, size_mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->data == MAP_FAILED) {
        int e = errno;
        free(m);
        dp_set_error("'%s': cannot map %llu MiB: %s", uri, (unsigned long long)size_mb, strerror(e));
        return -e;
    }
    memcpy(m->bdev.name, name, sizeof name);
    m->bdev.size = size_mb << 20;
    m->bdev.block_size = MALLOC_BS;
    m->bdev.ops = &malloc_ops;
    m->bdev.ctx = m;
    m->bdev.reactor = dp_reactor_next();
    *out = &m->bdev;
    return 0;
}

static const char *const malloc_schemes[] = { "malloc", NULL };
static struct dp_module malloc_module = { .name = "malloc", .schemes = malloc_schemes, .create = malloc_create };
DP_MODULE_REGISTER(malloc_module)
