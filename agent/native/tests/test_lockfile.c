/* test_lockfile.c - dp_lock_file/dp_unlock_file: the agent's pid file under an flock. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "datapath.h"
#include "testlib.h"

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", test_tmpdir(), name);
}

static long pid_in(const char *path)
{
    char buf[32] = { 0 };
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, sizeof buf - 1) > 0);
    close(fd);
    return strtol(buf, NULL, 10);
}

TEST(held_and_refused)
{
    char p[512];
    path_of(p, sizeof p, "agent.pid");
    int fd = dp_lock_file(p);
    CHECK(fd >= 0);
    CHECK_EQ(pid_in(p), getpid());
    /* A second holder (another open file description, as another process would have) is refused, naming the pid. */
    CHECK_EQ(dp_lock_file(p), -EBUSY);
    char want[64];
    snprintf(want, sizeof want, "pid %ld", (long)getpid());
    CHECK(strstr(dp_last_error(), want));
    /* ... also from a child process */
    pid_t c = fork();
    if (c == 0)
        _exit(dp_lock_file(p) == -EBUSY ? 0 : 1);
    int st;
    CHECK_EQ(waitpid(c, &st, 0), c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(dp_unlock_file(fd, p), 0);
    CHECK(access(p, F_OK) != 0); /* unlinked */
}

TEST(stale_file_never_blocks)
{
    char p[512];
    path_of(p, sizeof p, "stale.pid");
    /* A file left by a process that died (kill -9), naming a pid that is alive now (pid reuse): ours. */
    FILE *f = fopen(p, "w");
    CHECK(f);
    fprintf(f, "%ld\n", (long)getppid());
    fclose(f);
    int fd = dp_lock_file(p);
    CHECK(fd >= 0);
    CHECK_EQ(pid_in(p), getpid());
    /* A holder killed hard: the kernel drops its lock. */
    CHECK_EQ(dp_unlock_file(fd, NULL), 0);
    pid_t c = fork();
    if (c == 0) {
        if (dp_lock_file(p) < 0)
            _exit(1);
        for (;;)
            pause();
    }
    for (int i = 0; i < 500 && pid_in(p) != c; i++)
        usleep(10000);
    CHECK_EQ(pid_in(p), c);
    CHECK_EQ(dp_lock_file(p), -EBUSY);
    kill(c, SIGKILL);
    CHECK_EQ(waitpid(c, NULL, 0), c);
    fd = dp_lock_file(p);
    CHECK(fd >= 0);
    CHECK_EQ(pid_in(p), getpid());
    CHECK_EQ(dp_unlock_file(fd, p), 0);
    CHECK_EQ(dp_lock_file(""), -EINVAL);
}

int main(void)
{
    printf("test_lockfile\n");
    RUN(held_and_refused);
    RUN(stale_file_never_blocks);
    test_rm_tmpdir();
    return 0;
}
