/* fuzz.h - what every harness shares: REQUIRE (a broken invariant is a
 * crash libFuzzer keeps) and fz_fprintf, for harnesses that #include a
 * source file whose log lines would slow every run: define fprintf to it
 * around the #include and the lines are formatted (ASan checks their
 * arguments) but not written. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(c) \
    do { \
        if (!(c)) \
            abort(); \
    } while (0)

static inline int fz_fprintf(FILE *f, const char *fmt, ...)
{
    (void)f;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n;
}

#endif
