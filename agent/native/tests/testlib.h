/* testlib.h - the few helpers C unit tests share. Tests print what they check. */
#ifndef DP_TESTLIB_H
#define DP_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
    fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); \
    exit(1); } } while (0)
#define TEST(name) static void name(void)
#define RUN(name) do { printf("  %s\n", #name); fflush(stdout); name(); } while (0)

/* A scratch directory for this test binary (removed by the caller's cleanup). */
static inline const char *test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/dp-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    }
    return dir;
}

#endif
