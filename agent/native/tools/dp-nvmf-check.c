/*
 * dp-nvmf-check - data check of a remote device through the public API:
 * open a URI (nvmf://host:port/<nqn>, or any device URI) with dp_desc_open,
 * write a pattern in requests of several sizes (in-capsule and R2T-sized
 * writes over NVMe/TCP), flush, read it back, compare checksums.
 *
 *   dp-nvmf-check URI [--bytes N] [--offset N] [--qd N] [--idle-ms N]
 *
 * --idle-ms: wait that long between the first write pass and its read-back
 * (longer than the keep-alive timeout proves that keep-alive works).
 *
 * Prints one line per size and the checksums; exits 1 on any mismatch or
 * error (the error names the device), 0 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datapath.h"

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Run `count` requests of `sz` bytes over [off, off + count*sz) at queue depth qd. */
static int run(dp_desc *d, dp_cq *cq, uint32_t op, uint8_t *buf, uint64_t off, uint64_t sz, uint64_t count, uint32_t qd)
{
    uint64_t next = 0, done = 0;
    uint32_t inflight = 0;
    while (done < count) {
        while (next < count && inflight < qd) {
            int rc = dp_io_submit(d, cq, op, buf + next * sz, off + next * sz, sz, next);
            if (rc < 0) {
                fprintf(stderr, "dp-nvmf-check: submit: %s\n", dp_last_error());
                return rc;
            }
            next++;
            inflight++;
        }
        uint64_t tags[64];
        int32_t res[64];
        int n = dp_cq_wait(cq, tags, res, 64, 60000);
        if (n <= 0) {
            fprintf(stderr, "dp-nvmf-check: no completion within 60 s\n");
            return -ETIMEDOUT;
        }
        for (int i = 0; i < n; i++) {
            if (res[i] < 0) {
                fprintf(stderr, "dp-nvmf-check: %s of %" PRIu64 " bytes at %" PRIu64 ": %s\n",
                        op == DP_OP_READ ? "read" : "write", sz, off + tags[i] * sz, strerror(-res[i]));
                return res[i];
            }
        }
        done += (uint64_t)n;
        inflight -= (uint32_t)n;
    }
    return 0;
}

static int flush(dp_desc *d, dp_cq *cq)
{
    int rc = dp_io_submit(d, cq, DP_OP_FLUSH, NULL, 0, 0, 0);
    uint64_t tag;
    int32_t res = 0;
    if (rc == 0 && dp_cq_wait(cq, &tag, &res, 1, 60000) != 1)
        rc = -ETIMEDOUT;
    return rc < 0 ? rc : res;
}

int main(int argc, char **argv)
{
    uint64_t bytes = 8 << 20, base = 0;
    uint32_t qd = 16, idle_ms = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: dp-nvmf-check URI [--bytes N] [--offset N] [--qd N] [--idle-ms N]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bytes"))
            bytes = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--offset"))
            base = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--idle-ms"))
            idle_ms = (uint32_t)strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--qd"))
            qd = (uint32_t)strtoul(argv[i + 1], NULL, 0);
    }
    if (dp_init(2) < 0) {
        fprintf(stderr, "dp-nvmf-check: init: %s\n", dp_last_error());
        return 1;
    }
    dp_desc *d;
    if (dp_desc_open(argv[1], &d) < 0) {
        fprintf(stderr, "dp-nvmf-check: open: %s\n", dp_last_error());
        dp_fini();
        return 1;
    }
    dp_cq *cq = dp_cq_create();
    uint64_t size = dp_desc_size(d);
    printf("device %s: %" PRIu64 " bytes, block size %u\n", argv[1], size, dp_desc_block_size(d));
    bytes = bytes / (1 << 20) * (1 << 20);
    if (bytes == 0 || base % (1 << 20) || base + bytes > size) {
        fprintf(stderr, "dp-nvmf-check: --offset/--bytes must be MiB multiples inside the device\n");
        return 1;
    }
    uint8_t *w = aligned_alloc(4096, bytes), *r = aligned_alloc(4096, bytes);
    static const uint64_t sizes[] = { 4096, 8192, 65536, 131072, 1 << 20 };
    int bad = 0;
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0] && !bad; s++) {
        uint64_t seed = 0x9e3779b97f4a7c15ull * (s + 1);
        for (uint64_t i = 0; i < bytes / 8; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            memcpy(w + i * 8, &seed, 8);
        }
        memset(r, 0, bytes);
        uint64_t n = bytes / sizes[s];
        int rc = run(d, cq, DP_OP_WRITE, w, base, sizes[s], n, qd);
        if (rc == 0 && (rc = flush(d, cq)) < 0)
            fprintf(stderr, "dp-nvmf-check: flush: %s\n", strerror(-rc));
        if (rc == 0 && idle_ms && s == 0) { /* idle: the connection must live on keep-alive */
            printf("idle for %u ms\n", idle_ms);
            struct timespec ts = { idle_ms / 1000, (long)(idle_ms % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
        if (rc == 0)
            rc = run(d, cq, DP_OP_READ, r, base, sizes[s], n, qd);
        uint64_t cw = fnv(w, bytes, 0xcbf29ce484222325ull), cr = fnv(r, bytes, 0xcbf29ce484222325ull);
        printf("%7" PRIu64 "-byte requests x %" PRIu64 ": written %016" PRIx64 " read %016" PRIx64 " %s\n", sizes[s], n,
               cw, cr,
               rc < 0     ? "ERROR"
               : cw == cr ? "ok"
                          : "MISMATCH");
        bad = rc < 0 || cw != cr;
    }
    free(w);
    free(r);
    dp_cq_destroy(cq);
    dp_desc_close(d);
    dp_fini();
    printf("%s\n", bad ? "FAILED" : "PASSED");
    return bad;
}
