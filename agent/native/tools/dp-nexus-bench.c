/*
 * dp-nexus-bench - write cost of a nexus against a single device, through
 * the public API (descriptors), without NBD in the way.
 *
 *   dp-nexus-bench [--dir DIR] [--size-mb N] [--bs BYTES] [--qd N] [--secs S]
 *                  [--children N] [--reps N] [--seq] [--reactors N]
 *   dp-nexus-bench --uri URI [--read] [--size-mb N] [--bs BYTES] [--qd N] [--secs S] [--reps N]
 *
 * Files in DIR (default /dev/shm): one single device and N nexus children,
 * fully allocated first. Runs "single" and "nexus" alternately (--reps
 * times each), --bs writes at queue depth --qd for --secs seconds, random
 * offsets unless --seq, and prints IOPS, MiB/s and the CPU each I/O cost:
 * the reactor threads', and the whole process's (io_uring workers
 * included). Figures only, never a pass/fail.
 *
 * --uri: load one existing device instead (nvmf://, nbd://, any URI the
 * descriptors open), writes or (--read) reads over its first --size-mb,
 * one line per rep (bench/nvmf.ts drives our NVMe/TCP initiator this way).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "datapath.h"

#define NX_HDR (1ull << 20)
#define MAXQD 256

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process's threads whose name starts with `prefix` ("" = all) */
static double cpu_of(const char *prefix)
{
    if (!*prefix) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
    }
    double t = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    long hz = sysconf(_SC_CLK_TCK);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[300], buf[1024];
        snprintf(p, sizeof p, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *l = strchr(buf, '('), *r = strrchr(buf, ')');
        if (!l || !r || strncmp(l + 1, prefix, strlen(prefix)))
            continue;
        unsigned long ut = 0, st = 0;
        /* fields after ")": state(3) ... utime(14) stime(15) */
        if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            t += (double)(ut + st) / (double)hz;
    }
    if (d)
        closedir(d);
    return t;
}

static void mkfile(const char *path, uint64_t size)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0 || posix_fallocate(fd, 0, (off_t)size) != 0) {
        fprintf(stderr, "dp-nexus-bench: %s: cannot create %llu bytes\n", path, (unsigned long long)size);
        exit(1);
    }
    close(fd);
}

struct result {
    double iops, mibs, reactor_us, proc_us;
};

static struct result run(const char *target, uint64_t size, uint64_t bs, uint32_t qd, double secs, bool seq,
                         uint32_t op)
{
    dp_desc *d;
    if (dp_desc_open(target, &d) < 0) {
        fprintf(stderr, "dp-nexus-bench: open '%s': %s\n", target, dp_last_error());
        exit(1);
    }
    if (size > dp_desc_size(d))
        size = dp_desc_size(d) / bs * bs;
    dp_cq *cq = dp_cq_create();
    uint8_t *buf = aligned_alloc(4096, bs * qd);
    memset(buf, 0x5a, bs * qd);
    uint64_t blocks = size / bs, next = 0, done = 0;
    uint32_t inflight = 0;
    unsigned seed = 1;
    uint64_t tags[MAXQD];
    int32_t res[MAXQD];
    double r0 = cpu_of("dp-reactor"), p0 = cpu_of(""), t0 = now_s(), t1 = t0;
    for (uint32_t i = 0; i < qd; i++) {
        uint64_t blk = seq ? next++ % blocks : (uint64_t)rand_r(&seed) % blocks;
        if (dp_io_submit(d, cq, op, buf + i * bs, blk * bs, bs, i) < 0) {
            fprintf(stderr, "dp-nexus-bench: submit: %s\n", dp_last_error());
            exit(1);
        }
        inflight++;
    }
    bool stop = false;
    while (inflight) {
        int n = dp_cq_wait(cq, tags, res, MAXQD, -1);
        for (int k = 0; k < n; k++) {
            inflight--;
            if (res[k] < 0) {
                fprintf(stderr, "dp-nexus-bench: %s: %s\n", op == DP_OP_READ ? "read" : "write", strerror(-res[k]));
                exit(1);
            }
            done++;
            if (stop)
                continue;
            uint64_t blk = seq ? next++ % blocks : (uint64_t)rand_r(&seed) % blocks;
            if (dp_io_submit(d, cq, op, buf + tags[k] * bs, blk * bs, bs, tags[k]) < 0)
                exit(1);
            inflight++;
        }
        if (!stop && ((done & 255) == 0 || n > 0) && (t1 = now_s()) - t0 >= secs)
            stop = true;
    }
    t1 = now_s();
    struct result r;
    r.iops = (double)done / (t1 - t0);
    r.mibs = r.iops * (double)bs / 1048576.0;
    r.reactor_us = (cpu_of("dp-reactor") - r0) * 1e6 / (double)done;
    r.proc_us = (cpu_of("") - p0) * 1e6 / (double)done;
    free(buf);
    dp_cq_destroy(cq);
    dp_desc_close(d);
    return r;
}

/* --uri: one device, `reps` runs, one line each. */
static int run_uri(const char *uri, uint64_t size, uint64_t bs, uint32_t qd, double secs, bool seq, bool rd,
                   uint32_t reps)
{
    printf("%s %s of %llu bytes, QD %u, %.0f s, on %s\n", seq ? "sequential" : "random", rd ? "reads" : "writes",
           (unsigned long long)bs, qd, secs, uri);
    printf("%-7s %10s %9s %16s %16s\n", "target", "IOPS", "MiB/s", "reactor us/IO", "process us/IO");
    for (uint32_t r = 0; r < reps; r++) {
        struct result x = run(uri, size, bs, qd, secs, seq, rd ? DP_OP_READ : DP_OP_WRITE);
        printf("%-7s %10.0f %9.1f %16.2f %16.2f\n", "uri", x.iops, x.mibs, x.reactor_us, x.proc_us);
        fflush(stdout);
    }
    dp_fini();
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/dev/shm";
    uint64_t size = 256ull << 20, bs = 4096;
    uint32_t qd = 32, nchildren = 3, reps = 2, reactors = 1;
    double secs = 5;
    bool seq = false, rd = false;
    const char *uri = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seq") || !strcmp(a, "--read")) {
            *(a[2] == 's' ? &seq : &rd) = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "dp-nexus-bench: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--size-mb"))
            size = strtoull(v, NULL, 0) << 20;
        else if (!strcmp(a, "--bs"))
            bs = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--qd"))
            qd = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--secs"))
            secs = strtod(v, NULL);
        else if (!strcmp(a, "--children"))
            nchildren = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--reps"))
            reps = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(a, "--uri"))
            uri = v;
        else if (!strcmp(a, "--reactors"))
            reactors = (uint32_t)strtoul(v, NULL, 0);
        else {
            fprintf(stderr, "dp-nexus-bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (bs == 0 || bs % 4096 || size < bs || qd == 0 || qd > MAXQD || nchildren == 0 || nchildren > 8 || secs <= 0 ||
        reps == 0) {
        fprintf(stderr, "dp-nexus-bench: bad option value (bs: multiple of 4096, qd 1..%d, children 1..8)\n", MAXQD);
        return 2;
    }
    if (dp_init(reactors) < 0) {
        fprintf(stderr, "dp-nexus-bench: init: %s\n", dp_last_error());
        return 1;
    }
    if (uri)
        return run_uri(uri, size, bs, qd, secs, seq, rd, reps);
    char single[512], paths[8][512], uris[8][600];
    const char *ch[8];
    snprintf(single, sizeof single, "%s/dp-nexus-bench-%d-single.img", dir, (int)getpid());
    mkfile(single, size);
    char single_uri[600];
    snprintf(single_uri, sizeof single_uri, "uring://%s", single);
    for (uint32_t i = 0; i < nchildren; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/dp-nexus-bench-%d-c%u.img", dir, (int)getpid(), i);
        mkfile(paths[i], size + NX_HDR);
        snprintf(uris[i], sizeof uris[i], "uring://%s", paths[i]);
        ch[i] = uris[i];
    }
    const char *uuid = "0b0b0b0b-0000-4000-8000-000000000001";
    if (dp_nexus_create(uuid, size, ch, nchildren, 0) < 0) {
        fprintf(stderr, "dp-nexus-bench: nexus: %s\n", dp_last_error());
        return 1;
    }
    printf("%s writes of %llu bytes, QD %u, %.0f s, %u-child nexus vs single, files in %s, %u reactor(s)\n",
           seq ? "sequential" : "random", (unsigned long long)bs, qd, secs, nchildren, dir, reactors);
    printf("%-7s %10s %9s %16s %16s\n", "target", "IOPS", "MiB/s", "reactor us/IO", "process us/IO");
    double s_sum = 0, n_sum = 0;
    for (uint32_t r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            bool nexus = (k + r) % 2 == 1;
            struct result x = run(nexus ? uuid : single_uri, size, bs, qd, secs, seq, DP_OP_WRITE);
            printf("%-7s %10.0f %9.1f %16.2f %16.2f\n", nexus ? "nexus" : "single", x.iops, x.mibs, x.reactor_us,
                   x.proc_us);
            fflush(stdout);
            *(nexus ? &n_sum : &s_sum) += x.iops;
        }
    }
    printf("ratio nexus/single (mean IOPS): %.2f\n", n_sum / s_sum);
    dp_nexus_destroy(uuid, 0);
    dp_fini();
    unlink(single);
    for (uint32_t i = 0; i < nchildren; i++)
        unlink(paths[i]);
    return 0;
}
