/* error.c - the thread-local error message (error.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

#define ERR_MAX 512

/*
 * Each thread has its own message. A copy of the latest message from any
 * thread is kept too: the agent calls control functions through koffi's
 * .async, so they fail on a libuv worker while dp_last_error() is then
 * called on the main thread (see dp_error_take).
 */
static __thread char err_tls[ERR_MAX];
static __thread char err_out[ERR_MAX];
static __thread bool err_pending;
static char err_global[ERR_MAX];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

void dp_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_tls, sizeof err_tls, fmt, ap);
    va_end(ap);
    err_pending = true;
    pthread_mutex_lock(&err_lock);
    memcpy(err_global, err_tls, sizeof err_global);
    pthread_mutex_unlock(&err_lock);
}

const char *dp_get_error(void)
{
    return err_tls;
}

void dp_clear_error(void)
{
    err_tls[0] = 0;
    err_pending = false;
}

const char *dp_error_take(void)
{
    if (err_pending) {
        memcpy(err_out, err_tls, sizeof err_out);
        err_pending = false;
    } else {
        pthread_mutex_lock(&err_lock);
        memcpy(err_out, err_global, sizeof err_out);
        pthread_mutex_unlock(&err_lock);
    }
    return err_out;
}
