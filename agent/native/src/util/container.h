/* container.h - the struct around an embedded member. */
#ifndef DP_UTIL_CONTAINER_H
#define DP_UTIL_CONTAINER_H

#include <stddef.h>

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

#endif
