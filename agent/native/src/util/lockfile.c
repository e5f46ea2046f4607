/*
 * lockfile.c - dp_lock_file()/dp_unlock_file(): a pid file held under an
 * exclusive flock for the life of the process (the agent's DATA_DIR/agent.pid).
 *
 * The lock, not the pid written in the file, is what says "an agent is
 * running": the kernel drops it when the process dies (kill -9, crash,
 * reboot), so a stale file never blocks a start, and a reused pid is never
 * mistaken for a live agent. The fd is O_CLOEXEC so child processes do not
 * inherit the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/export.h"
#include "datapath.h"
#include "util/error.h"

/* The pid recorded in the file (0 if none can be read). */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

DP_EXPORT int dp_lock_file(const char *path)
{
    dp_clear_error();
    if (!path || !path[0]) {
        dp_set_error("lock file: no path");
        return -EINVAL;
    }
    /* A holder may unlink the file as it exits: retry until the locked file is
     * the one at `path` (otherwise two processes could each lock a different
     * inode). */
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            int e = errno;
            dp_set_error("lock file '%s': %s", path, strerror(e));
            return -e;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                long pid = read_pid(fd);
                if (pid > 0)
                    dp_set_error("'%s' is locked by the running process pid %ld", path, pid);
                else
                    dp_set_error("'%s' is locked by another running process", path);
                close(fd);
                return -EBUSY;
            }
            close(fd);
            dp_set_error("lock file '%s': flock: %s", path, strerror(e));
            return -e;
        }
        struct stat held, now;
        if (fstat(fd, &held) < 0 || stat(path, &now) < 0 || held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
            close(fd); /* unlinked or replaced under us: lock the file that is there now */
            continue;
        }
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        /* write, then cut: a reader (the next locker naming the holder) never sees the file empty */
        if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len) < 0) {
            int e = errno ? errno : EIO;
            close(fd);
            dp_set_error("lock file '%s': writing the pid: %s", path, strerror(e));
            return -e;
        }
        return fd;
    }
    dp_set_error("lock file '%s': replaced repeatedly while locking", path);
    return -EAGAIN;
}

DP_EXPORT int dp_unlock_file(int fd, const char *path)
{
    dp_clear_error();
    if (fd < 0)
        return -EBADF;
    /* Unlink while still holding the lock: a starting agent that opened the old
     * inode finds it replaced and retries on the new file. */
    if (path && path[0])
        unlink(path);
    if (close(fd) < 0) {
        int e = errno;
        dp_set_error("lock file: close: %s", strerror(e));
        return -e;
    }
    return 0;
}
