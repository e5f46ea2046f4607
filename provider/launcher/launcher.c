/* mayastor-provider-launcher: the executable Terraform starts for terraform-provider-mayastor.
 *
 * Terraform starts a provider 3 times per `terraform plan`; a cold Node.js start costs ~100 ms plus cold JIT
 * each time.  So this tiny launcher hands the launch to a warm, long-lived "provider daemon" (provider/daemon.ts),
 * which serves it as a separate session (own gRPC server, port, mTLS certificate, environment), and relays the
 * session's stdout/stderr to its own fd 1/2.  Terraform reads the go-plugin handshake line from our stdout and
 * then talks gRPC over TCP straight to the session.  Whenever the daemon is unavailable, and no stdout byte has
 * been relayed yet, the launcher execs Node directly: slow but always correct.
 *
 * Invocation:  mayastor-provider-launcher NODE ENTRY [ARGS...]
 *   NODE  absolute path of the node executable, ENTRY absolute path of the script node runs: the loader
 *   bin/terraform-provider-mayastor (the bundle with its code cache; what the installed shim passes) or
 *   dist/provider/main.js.
 *   Fewer than 2 arguments: usage on stderr, exit 2.
 *
 * Direct mode = execv(NODE, [NODE, ENTRY, ARGS...]) with the unchanged environment (and the signal dispositions
 * the launcher was started with).  If execv fails: "terraform-provider-mayastor: cannot run NODE: ..." exit 1.
 * Used at once when MAYASTOR_PROVIDER_DAEMON is 0/off/false/no (any case), when TF_PLUGIN_MAGIC_COOKIE is unset
 * (Node prints go-plugin's "this binary is a plugin" message), when ARGS is non-empty (e.g. --debug), and when
 * the runtime directory is unsafe; later whenever the daemon cannot be reached or the session fails before the
 * first stdout byte.  Fallbacks caused by a problem write one line to stderr (go-plugin logs non-JSON stderr
 * lines at debug level).
 *
 * Runtime directory DIR:
 *   "$XDG_RUNTIME_DIR/mayastor-provider" if XDG_RUNTIME_DIR is absolute, else
 *   "$TMPDIR/mayastor-provider-<euid>" ($TMPDIR if absolute, else /tmp).
 *   mkdir(DIR, 0700) (EEXIST is fine); lstat(DIR) must show a real directory (no symlink) owned by geteuid()
 *   with no group/other permission bits, else direct mode.
 * KEY = 16 lowercase hex digits of FNV-1a 64 (offset 0xcbf29ce484222325, prime 0x100000001b3) over
 *   NODE "\0" ENTRY "\0" $NODE_OPTIONS "\0" $NODE_EXTRA_CA_CERTS   (unset variables count as "").
 *   One daemon per node binary, checkout and node start-up options.
 * DIR/KEY.sock  the daemon's unix socket (a path longer than sun_path: direct mode)
 * DIR/KEY.lock  spawn lock (flock)
 * DIR/KEY.log   the daemon's stderr (truncated at spawn when larger than 1 MiB)
 *
 * Connecting:
 *   1. connect(DIR/KEY.sock); on success go to the session.
 *   2. Open DIR/KEY.lock, flock(LOCK_EX|LOCK_NB) every 10 ms for up to 10 s (timeout: direct mode).  Holding it,
 *      connect again (another launcher may have just started the daemon); if that fails, unlink the stale socket
 *      and start the daemon detached (fork, setsid, fork; stdin/stdout /dev/null, stderr DIR/KEY.log, cwd "/",
 *      no other fd, default signal dispositions):
 *          NODE ENTRY --daemon DIR/KEY.sock
 *      with the launcher's environment minus the session-only variables PLUGIN_CLIENT_CERT,
 *      TF_PLUGIN_MAGIC_COOKIE, PLUGIN_PROTOCOL_VERSIONS, PLUGIN_MIN_PORT, PLUGIN_MAX_PORT and MAYASTOR_TOKEN (the
 *      daemon must never use one session's secrets: each session brings its own environment).  Then connect
 *      every 5 ms for up to 10 s, release the lock; timeout, or the daemon dying first: direct mode.
 *   The launcher's own fds are all CLOEXEC and the daemon additionally closes every fd above 2 before exec, so
 *   neither the lock, a socket nor Terraform's pipes (Terraform waits for their EOF) stay open in the daemon.
 *
 * Session protocol (integers little-endian):
 *   launcher -> daemon, once:  "MSTRPL1\n", u32 N (N <= 1 MiB, else direct mode), N bytes of NUL-terminated
 *     strings: cwd (getcwd, "/" if that fails), the number of ARGS in decimal, each ARG, then every "K=V" of the
 *     launcher's environ, unfiltered (the session's environment, secrets included).
 *   daemon -> launcher: frames  u8 type, u32 L (L <= 1 MiB, else protocol error), L payload bytes:
 *     1  payload goes to the launcher's stdout            2  payload goes to the launcher's stderr
 *     3  session ended, L == 1, payload = exit status     4  "retry", L == 0: this daemon will not serve (its code
 *        changed; it has unlinked its socket and is leaving).  Before any stdout byte: back to step 2 once (a
 *        second type 4 means direct mode); after stdout bytes it is a protocol error.
 *     Anything else (unknown type, wrong L, EOF or read error inside a frame or before type 3) is a protocol error.
 *   Protocol error / EOF before any stdout byte: close the socket, direct mode.  After stdout bytes: print
 *   "terraform-provider-mayastor: lost the provider daemon (<what>); see DIR/KEY.log" and exit 1.
 *   Until the first stdout byte the launcher waits at most MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS (default 15000)
 *   milliseconds in total, then uses direct mode; after it there is no timeout (the session lives as long as
 *   Terraform uses it).  A failed write to fd 1/2 (Terraform went away) exits 1.
 *
 * Signals: SIGINT is ignored (go-plugin plugins ignore interrupts; Terraform stops providers over gRPC), SIGPIPE
 * is ignored so a vanished reader is an error.  SIGTERM kills the launcher; the daemon sees EOF and ends the
 * session.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define PROG "terraform-provider-mayastor"
#define REQUEST_MAGIC "MSTRPL1\n"
#define MAX_PAYLOAD (1u << 20)
#define LOG_MAX (1 << 20)
#define LOCK_WAIT_MS 10000
#define SPAWN_WAIT_MS 10000
#define DEFAULT_LAUNCH_TIMEOUT_MS 15000

enum { F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_RETRY = 4 };
enum session_end { S_DIRECT, S_RETRY };

extern char **environ;

static char **node_argv; /* [NODE, ENTRY, ARGS..., NULL] */
static struct sigaction orig_int, orig_pipe;
static char dir[PATH_MAX], sock_path[sizeof((struct sockaddr_un *)0)->sun_path];
static char lock_path[PATH_MAX + 32], log_path[PATH_MAX + 32]; /* DIR + "/" + KEY + suffix */
static char what[256]; /* what went wrong in the session, for the messages */

static void say(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    /* One write so concurrent loggers do not interleave mid-line. */
    fprintf(stderr, PROG ": %.*s", n, buf);
    fflush(stderr);
}

static _Noreturn void direct(void)
{
    /* Node gets the dispositions Terraform gave us, exactly as when the shim exec'd it. */
    sigaction(SIGINT, &orig_int, NULL);
    sigaction(SIGPIPE, &orig_pipe, NULL);
    execv(node_argv[0], node_argv);
    say("cannot run %s: %s", node_argv[0], strerror(errno));
    exit(1);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static bool is_off(const char *v)
{
    return v && (!strcasecmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no"));
}

static int launch_timeout_ms(void)
{
    const char *v = getenv("MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS");
    char *end;
    long n;

    if (!v || !*v)
        return DEFAULT_LAUNCH_TIMEOUT_MS;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n <= 0 || n > INT_MAX) {
        say("ignoring MAYASTOR_PROVIDER_LAUNCH_TIMEOUT_MS=%s: not a positive number of milliseconds", v);
        return DEFAULT_LAUNCH_TIMEOUT_MS;
    }
    return (int)n;
}

static uint64_t fnv1a(uint64_t h, const char *s, bool nul)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    if (nul)
        h *= 0x100000001b3ULL; /* h ^= 0 is a no-op */
    return h;
}

/* Computes DIR and the three file names; -1 (after saying why) when the daemon must not be used. */
static int setup_paths(void)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR"), *tmp = getenv("TMPDIR");
    const char *nopt = getenv("NODE_OPTIONS"), *ca = getenv("NODE_EXTRA_CA_CERTS");
    struct stat st;
    uint64_t h;
    int n;

    if (xdg && xdg[0] == '/')
        n = snprintf(dir, sizeof dir, "%s/mayastor-provider", xdg);
    else
        n = snprintf(dir, sizeof dir, "%s/mayastor-provider-%u", tmp && tmp[0] == '/' ? tmp : "/tmp",
                     (unsigned)geteuid());
    if (n < 0 || (size_t)n >= sizeof dir) {
        say("runtime directory name is too long; running node directly");
        return -1;
    }
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        say("cannot create runtime directory %s: %s; running node directly", dir, strerror(errno));
        return -1;
    }
    /* lstat: a symlink planted by someone else must not redirect our socket and log. */
    if (lstat(dir, &st) == -1) {
        say("runtime directory %s: %s; running node directly", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say("runtime directory %s is not a directory (a symlink?); running node directly", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        say("runtime directory %s is owned by uid %u, not %u; running node directly", dir, (unsigned)st.st_uid,
            (unsigned)geteuid());
        return -1;
    }
    if (st.st_mode & 077) {
        say("runtime directory %s has mode %03o, open to group/other; running node directly", dir,
            (unsigned)(st.st_mode & 0777));
        return -1;
    }

    h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, node_argv[0], true);
    h = fnv1a(h, node_argv[1], true);
    h = fnv1a(h, nopt ? nopt : "", true);
    h = fnv1a(h, ca ? ca : "", false);

    n = snprintf(sock_path, sizeof sock_path, "%s/%016llx.sock", dir, (unsigned long long)h);
    if (n < 0 || (size_t)n >= sizeof sock_path) {
        say("socket path %s/%016llx.sock is longer than a unix socket address allows; running node directly", dir,
            (unsigned long long)h);
        return -1;
    }
    snprintf(lock_path, sizeof lock_path, "%s/%016llx.lock", dir, (unsigned long long)h);
    snprintf(log_path, sizeof log_path, "%s/%016llx.log", dir, (unsigned long long)h);
    return 0;
}

static int try_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Puts fd on target without CLOEXEC (dup2 clears it; when fd == target, clear it by hand). */
static int move_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) == -1 ? -1 : 0;
}

/* In the grandchild: a clean process for the daemon.  Never returns. */
static _Noreturn void exec_daemon(char **args, char **env)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    struct stat st;
    sigset_t none;
    int null, log;

    /* Open both above 2 first so neither lands on a std fd we are about to overwrite. */
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0 && null < 3)
        null = fcntl(null, F_DUPFD_CLOEXEC, 3);
    log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log >= 0 && log < 3)
        log = fcntl(log, F_DUPFD_CLOEXEC, 3);
    if (null == -1 || log == -1)
        _exit(127);
    if (fstat(log, &st) == 0 && st.st_size > LOG_MAX && ftruncate(log, 0) == -1)
        _exit(127);
    if (move_fd(null, 0) == -1 || move_fd(null, 1) == -1 || move_fd(log, 2) == -1)
        _exit(127);
    /* Terraform's pipes must not stay open in the daemon (Terraform waits for their EOF), nor anything else. */
    if (close_range(3, ~0U, 0) == -1)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    if (chdir("/") == -1)
        _exit(127);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(args[0], args, env);
    _exit(127);
}

static bool session_only(const char *entry)
{
    static const char *const names[] = {
        "PLUGIN_CLIENT_CERT", "TF_PLUGIN_MAGIC_COOKIE", "PLUGIN_PROTOCOL_VERSIONS",
        "PLUGIN_MIN_PORT",    "PLUGIN_MAX_PORT",        "MAYASTOR_TOKEN",
    };

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (!strncmp(entry, names[i], n) && entry[n] == '=')
            return true;
    }
    return false;
}

/* Starts the daemon detached (double fork); 0 once the intermediate child is reaped, with the daemon's pid in
 * *daemon_pid (0 if unknown) so a daemon dying at start-up is noticed without waiting for the timeout. */
static int spawn_daemon(pid_t *daemon_pid)
{
    char *args[] = { node_argv[0], node_argv[1], (char *)"--daemon", sock_path, NULL };
    char **env;
    size_t n = 0, k = 0;
    pid_t pid;
    int status, pfd[2];

    for (char **e = environ; *e; e++)
        n++;
    env = calloc(n + 1, sizeof *env);
    if (!env)
        return -1;
    for (char **e = environ; *e; e++)
        if (!session_only(*e))
            env[k++] = *e;

    if (pipe2(pfd, O_CLOEXEC) == -1) {
        free(env);
        return -1;
    }
    pid = fork();
    if (pid == -1) {
        free(env);
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        pid_t gc;

        /* New session, then fork again: the daemon is no session leader, so it can never get a terminal. */
        setsid();
        gc = fork();
        if (gc == 0)
            exec_daemon(args, env);
        if (gc > 0 && write(pfd[1], &gc, sizeof gc) != sizeof gc)
            _exit(127);
        _exit(gc == -1 ? 127 : 0);
    }
    free(env);
    close(pfd[1]);
    *daemon_pid = 0;
    if (read(pfd[0], daemon_pid, sizeof *daemon_pid) != sizeof *daemon_pid)
        *daemon_pid = 0;
    close(pfd[0]);
    while (waitpid(pid, &status, 0) == -1)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    errno = ECHILD;
    return -1;
}

/* Whether the daemon we started has died: gone, or a zombie its new parent has not reaped yet (a parent that
 * never reaps just leaves us the start-up timeout). */
static bool daemon_dead(pid_t pid)
{
    char path[64], buf[256], *p;
    ssize_t n;
    int fd;

    if (pid <= 0)
        return false;
    if (kill(pid, 0) == -1)
        return errno == ESRCH;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* "pid (comm) state ...": comm may hold anything */
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Step 2: under the spawn lock, connect or start the daemon.  A connected socket, or -1 for direct mode. */
static int start_daemon(void)
{
    int64_t deadline;
    pid_t pid;
    int lk, fd;

    lk = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk == -1) {
        say("cannot open %s: %s; running node directly", lock_path, strerror(errno));
        return -1;
    }
    deadline = now_ms() + LOCK_WAIT_MS;
    while (flock(lk, LOCK_EX | LOCK_NB) == -1) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            say("cannot lock %s: %s; running node directly", lock_path, strerror(errno));
            close(lk);
            return -1;
        }
        if (now_ms() >= deadline) {
            say("%s stayed locked for %d s; running node directly", lock_path, LOCK_WAIT_MS / 1000);
            close(lk);
            return -1;
        }
        sleep_ms(10);
    }

    fd = try_connect();
    if (fd == -1) {
        if (unlink(sock_path) == -1 && errno != ENOENT) {
            say("cannot remove stale %s: %s; running node directly", sock_path, strerror(errno));
            close(lk);
            return -1;
        }
        if (spawn_daemon(&pid) == -1) {
            say("cannot start the provider daemon: %s; running node directly", strerror(errno));
            close(lk);
            return -1;
        }
        deadline = now_ms() + SPAWN_WAIT_MS;
        while ((fd = try_connect()) == -1 && now_ms() < deadline) {
            if (daemon_dead(pid) && (fd = try_connect()) == -1) {
                say("the provider daemon exited at start-up (see %s); running node directly", log_path);
                break;
            }
            sleep_ms(5);
        }
        if (fd == -1 && now_ms() >= deadline)
            say("the provider daemon did not listen on %s within %d s (see %s); running node directly", sock_path,
                SPAWN_WAIT_MS / 1000, log_path);
    }
    close(lk); /* releases the lock */
    return fd;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* someone handed us a non-blocking fd */
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                poll(&pfd, 1, -1);
                continue;
            }
            return -1;
        }
        p += r;
        n -= r;
    }
    return 0;
}

/* read() with an absolute deadline (-1: none).  Like read; -1 with ETIMEDOUT on timeout. */
static ssize_t read_some(int fd, void *buf, size_t n, int64_t deadline)
{
    for (;;) {
        ssize_t r;

        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            struct pollfd pfd = { .fd = fd, .events = POLLIN };

            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
            if (r == -1 && errno != EINTR)
                return -1;
            if (r <= 0)
                continue; /* EINTR or timeout: the deadline is re-checked above */
        }
        r = read(fd, buf, n);
        if (r == -1 && errno == EINTR)
            continue;
        return r;
    }
}

/* Reads exactly n bytes.  0 ok, 1 EOF before the first byte, -1 failure described in `what`. */
static int read_full(int fd, void *buf, size_t n, int64_t deadline, bool eof_ok)
{
    char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read_some(fd, p + got, n - got, deadline);
        if (r == 0) {
            if (got == 0 && eof_ok)
                return 1;
            snprintf(what, sizeof what, "connection closed in the middle of a frame");
            return -1;
        }
        if (r == -1) {
            if (errno == ETIMEDOUT)
                snprintf(what, sizeof what, "no output within the launch timeout");
            else
                snprintf(what, sizeof what, "read error: %s", strerror(errno));
            return -1;
        }
        got += r;
    }
    return 0;
}

/* The request: magic, u32le N, then NUL-terminated cwd, argc, args, environ.  NULL if N would exceed 1 MiB. */
static char *build_request(size_t *len)
{
    char *cwd = getcwd(NULL, 0), nargs[16], *buf, *p;
    size_t n, total;
    int argc = 0;

    while (node_argv[2 + argc])
        argc++;
    snprintf(nargs, sizeof nargs, "%d", argc);
    n = strlen(cwd ? cwd : "/") + 1 + strlen(nargs) + 1;
    for (int i = 0; i < argc; i++)
        n += strlen(node_argv[2 + i]) + 1;
    for (char **e = environ; *e; e++)
        n += strlen(*e) + 1;
    if (n > MAX_PAYLOAD) {
        free(cwd);
        say("session request of %zu bytes (mostly environment) exceeds 1 MiB; running node directly", n);
        return NULL;
    }
    total = 8 + 4 + n;
    buf = malloc(total);
    if (!buf) {
        free(cwd);
        return NULL;
    }
    memcpy(buf, REQUEST_MAGIC, 8);
    for (int i = 0; i < 4; i++)
        buf[8 + i] = (char)((n >> (8 * i)) & 0xff);
    p = buf + 12;
#define PUT(s) \
    do { \
        size_t l_ = strlen(s) + 1; \
        memcpy(p, (s), l_); \
        p += l_; \
    } while (0)
    PUT(cwd ? cwd : "/");
    PUT(nargs);
    for (int i = 0; i < argc; i++)
        PUT(node_argv[2 + i]);
    for (char **e = environ; *e; e++)
        PUT(*e);
#undef PUT
    free(cwd);
    *len = total;
    return buf;
}

/* Runs one session on fd (closed on return).  Exits the process when the session ends; returns what to do next
 * when it cannot be served. */
static enum session_end session(int fd, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms; /* until the first stdout byte; then -1 */
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    static char chunk[65536];
    size_t len;
    char *req;
    int r;

    req = build_request(&len);
    if (!req) {
        close(fd);
        return S_DIRECT;
    }
    /* A daemon that never reads must not hang us either. */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1) {
            say("cannot send the session to the provider daemon: %s; running node directly", strerror(errno));
            free(req);
            close(fd);
            return S_DIRECT;
        }
        off += w;
    }
    free(req);

    for (;;) {
        unsigned char h[5];
        uint32_t L;

        r = read_full(fd, h, sizeof h, deadline, true);
        if (r == 1) {
            snprintf(what, sizeof what, "connection closed before the session ended");
            goto fail;
        }
        if (r == -1)
            goto fail;
        L = h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
        if (L > MAX_PAYLOAD) {
            snprintf(what, sizeof what, "frame of %" PRIu32 " bytes exceeds 1 MiB", L);
            goto fail;
        }
        switch (h[0]) {
        case F_STDOUT:
        case F_STDERR:
            while (L > 0) {
                ssize_t k = read_some(fd, chunk, L < sizeof chunk ? L : sizeof chunk, deadline);
                if (k <= 0) {
                    if (k == 0)
                        snprintf(what, sizeof what, "connection closed in the middle of a frame");
                    else if (errno == ETIMEDOUT)
                        snprintf(what, sizeof what, "no output within the launch timeout");
                    else
                        snprintf(what, sizeof what, "read error: %s", strerror(errno));
                    goto fail;
                }
                if (h[0] == F_STDOUT)
                    deadline = -1; /* committed: from now on there is no going back to direct mode */
                if (write_all(h[0], chunk, k) == -1)
                    exit(1); /* Terraform went away */
                L -= k;
            }
            break;
        case F_EXIT: {
            unsigned char status;
            if (L != 1) {
                snprintf(what, sizeof what, "exit frame of %" PRIu32 " bytes", L);
                goto fail;
            }
            if (read_full(fd, &status, 1, deadline, false) == -1)
                goto fail;
            exit(status);
        }
        case F_RETRY:
            if (L != 0) {
                snprintf(what, sizeof what, "retry frame of %" PRIu32 " bytes", L);
                goto fail;
            }
            if (deadline == -1) {
                snprintf(what, sizeof what, "retry frame after the session started");
                goto fail;
            }
            close(fd);
            return S_RETRY;
        default: snprintf(what, sizeof what, "unknown frame type %u", h[0]); goto fail;
        }
    }

fail:
    if (deadline == -1) {
        say("lost the provider daemon (%s); see %s", what, log_path);
        exit(1);
    }
    say("the provider daemon failed (%s; see %s); running node directly", what, log_path);
    close(fd);
    return S_DIRECT;
}

int main(int argc, char **argv)
{
    struct sigaction ign = { .sa_handler = SIG_IGN };
    bool retried = false;
    int timeout, fd;

    if (argc < 3) {
        fprintf(stderr, "usage: %s NODE ENTRY [ARGS...]\n", argv[0]);
        return 2;
    }
    node_argv = argv + 1;
    sigaction(SIGINT, &ign, &orig_int);
    sigaction(SIGPIPE, &ign, &orig_pipe);

    if (is_off(getenv("MAYASTOR_PROVIDER_DAEMON")) || !getenv("TF_PLUGIN_MAGIC_COOKIE") || argc > 3)
        direct();
    if (setup_paths() == -1)
        direct();
    timeout = launch_timeout_ms();

    fd = try_connect();
    for (;;) {
        if (fd == -1)
            fd = start_daemon();
        if (fd == -1)
            direct();
        if (session(fd, timeout) == S_RETRY) {
            if (!retried) {
                retried = true;
                fd = -1;
                continue;
            }
            say("the provider daemon asked for a retry twice; running node directly");
        }
        direct();
    }
}
