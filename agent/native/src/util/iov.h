/* iov.h - what a partial sendmsg/recvmsg leaves of an iovec array. */
#ifndef DP_UTIL_IOV_H
#define DP_UTIL_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Consume `done` bytes from v[*i..n): whole entries advance *i, a partly
 * sent one is trimmed in place. True when nothing is left to send.
 */
static inline bool dp_iov_advance(struct iovec *v, int n, int *i, size_t done)
{
    while (done && *i < n) {
        if (done >= v[*i].iov_len) {
            done -= v[*i].iov_len;
            (*i)++;
        } else {
            v[*i].iov_base = (uint8_t *)v[*i].iov_base + done;
            v[*i].iov_len -= done;
            done = 0;
        }
    }
    return *i >= n;
}

#endif
