/*
 * error.h - the thread-local error message behind dp_last_error(): every
 * failing function sets one naming the object or field, then returns -errno.
 */
#ifndef DP_UTIL_ERROR_H
#define DP_UTIL_ERROR_H

void dp_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *dp_get_error(void);
void dp_clear_error(void);
/* For dp_last_error(): this thread's message if one was set since the last
 * take, else the latest message of any thread (control calls made through
 * koffi's .async fail on a worker thread). */
const char *dp_error_take(void);

#endif
