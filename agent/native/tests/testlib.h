/* testlib.h - the few helpers C unit tests share. Tests print what they check. */
#ifndef DP_TESTLIB_H
#define DP_TESTLIB_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdev/bdev.h"
#include "reactor/reactor.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1); \
        } \
    } while (0)
#define CHECK_EQ(a, b) \
    do { \
        long long _a = (long long)(a), _b = (long long)(b); \
        if (_a != _b) { \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); \
            exit(1); \
        } \
    } while (0)
#define TEST(name) static void name(void)
#define RUN(name) \
    do { \
        printf("  %s\n", #name); \
        fflush(stdout); \
        name(); \
    } while (0)

/* A scratch directory for this test binary (removed by the caller's cleanup). */
static inline const char *test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/dp-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

/* rm -rf the scratch directory (end of main). */
static inline void test_rm_tmpdir(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
    CHECK(system(cmd) == 0);
}

/* A sparse file of `size` bytes (created or truncated). */
static inline void test_make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

/* A pattern that depends on the byte's device offset, so misplaced data shows. */
static inline uint8_t test_pattern(uint64_t pos, uint32_t seed)
{
    return (uint8_t)(pos * 31 + seed + (pos >> 9));
}

static inline void test_fill(uint8_t *buf, uint64_t len, uint64_t off, uint32_t seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = test_pattern(off + i, seed);
}

static inline bool test_check_fill(const uint8_t *buf, uint64_t len, uint64_t off, uint32_t seed)
{
    for (uint64_t i = 0; i < len; i++)
        if (buf[i] != test_pattern(off + i, seed))
            return false;
    return true;
}

/* ---- asynchronous bdev I/O: submit on the bdev's reactor, wait ---------- */

struct test_waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    struct dp_bdev *b;
    struct dp_bdev_io *ios;
    int n, left, *status;
    bool submitting, inline_completion;
};

static inline void test_waiter_cb(struct dp_bdev_io *io, int status)
{
    struct test_waiter *w = io->cb_arg;
    pthread_mutex_lock(&w->m);
    if (w->submitting)
        w->inline_completion = true;
    w->status[io - w->ios] = status;
    w->left--;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

static inline void test_submit_msg(void *arg)
{
    struct test_waiter *w = arg;
    pthread_mutex_lock(&w->m);
    w->submitting = true;
    pthread_mutex_unlock(&w->m);
    for (int i = 0; i < w->n; i++)
        dp_bdev_submit(w->b, &w->ios[i]);
    pthread_mutex_lock(&w->m);
    w->submitting = false;
    pthread_mutex_unlock(&w->m);
}

/*
 * Submit ios[0..n) on b's reactor (as the targets do) and wait for all of
 * them; status[i] is the result of ios[i]. A completion must come later
 * than dp_bdev_submit, never inside it.
 */
static inline void test_run_ios(struct dp_bdev *b, struct dp_bdev_io *ios, int n, int *status)
{
    struct test_waiter w = { .b = b, .ios = ios, .n = n, .left = n, .status = status };
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    for (int i = 0; i < n; i++) {
        ios[i].cb = test_waiter_cb;
        ios[i].cb_arg = &w;
    }
    dp_reactor_call(b->reactor, test_submit_msg, &w); /* returns once submitted */
    pthread_mutex_lock(&w.m);
    while (w.left)
        pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
    pthread_cond_destroy(&w.c);
    pthread_mutex_destroy(&w.m);
    CHECK(!w.inline_completion);
}

#endif
