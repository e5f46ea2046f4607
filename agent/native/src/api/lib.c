/* lib.c - library lifecycle: dp_init, dp_fini, dp_last_error, dp_version. */
#include <errno.h>
#include <pthread.h>

#include "api/export.h"
#include "bdev/bdev.h"
#include "datapath.h"
#include "reactor/reactor.h"

#define DP_VERSION "0.1.0"

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running;

DP_EXPORT int dp_init(uint32_t reactors)
{
    dp_clear_error();
    if (reactors < 1) {
        dp_set_error("dp_init: reactors must be at least 1");
        return -EINVAL;
    }
    pthread_mutex_lock(&life_lock);
    int ret = 0;
    if (!running) {
        ret = dp_reactors_start(reactors);
        running = ret == 0;
    }
    pthread_mutex_unlock(&life_lock);
    return ret;
}

DP_EXPORT void dp_fini(void)
{
    pthread_mutex_lock(&life_lock);
    if (running) {
        /* Targets first: no client may issue I/O into devices being closed. */
        dp_nbd_shutdown();
        /* Then volumes over their children, stores over their disks (struct dp_module). */
        dp_modules_fini();
        /* Devices nobody holds open close now; the reactors then drain. */
        dp_bdev_unregister_all();
        dp_reactors_stop();
        running = false;
    }
    pthread_mutex_unlock(&life_lock);
}

DP_EXPORT const char *dp_last_error(void)
{
    return dp_error_take();
}

DP_EXPORT const char *dp_version(void)
{
    return DP_VERSION;
}
