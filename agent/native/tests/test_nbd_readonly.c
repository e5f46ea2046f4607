/* test_nbd_readonly.c - an NBD export of a read-only device (a snapshot: bdev.h read_only):
 * advertised with NBD_FLAG_READ_ONLY and without trim/write-zeroes (nbdinfo), writes, trims and
 * write-zeroes answer NBD_EPERM (a raw client, also one connected before the device became
 * read-only: the generic layer's -EROFS), qemu-io cannot write, reads work and every byte is
 * unchanged (qemu-io read -P). Also the writer lease over a real NBD connection: a label from one
 * client makes the export writable by its host only (test_target_export covers the rules), and a real
 * pool snapshot's export (read-only, its bytes fixed while its replica takes writes). Skipped under
 * valgrind (the server receives through io_uring); the ASan/UBSan build runs it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "bdev/bdev.h"
#include "datapath.h"
#include "nbd/proto.h"
#include "nbd/server.h"
#include "nexus/nexus.h"
#include "testlib.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static int g_port;

static void xfer(int fd, void *buf, size_t n, bool send_it)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = send_it ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        CHECK(r > 0);
        p += r;
        n -= (size_t)r;
    }
}

/* A newstyle client from address src on `export` (NBD_OPT_EXPORT_NAME, simple replies); *tflags the
 * export's flags. The peers of one machine share 127.0.0.1: another host is 127.0.0.2 (127/8 is lo). */
static int connect_from(const char *src, const char *export, uint16_t *tflags)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in me = { .sin_family = AF_INET };
    inet_pton(AF_INET, src, &me.sin_addr);
    CHECK_EQ(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    uint8_t b[64];
    xfer(fd, b, NBD_GREETING_LEN, false);
    nbd_put32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    xfer(fd, b, 4, true);
    nbd_put64(b, NBD_IHAVEOPT);
    nbd_put32(b + 8, NBD_OPT_EXPORT_NAME);
    nbd_put32(b + 12, (uint32_t)strlen(export));
    xfer(fd, b, 16, true);
    xfer(fd, (void *)export, strlen(export), true);
    xfer(fd, b, 10, false); /* size, transmission flags */
    if (tflags)
        *tflags = nbd_get16(b + 8);
    return fd;
}

/* One request; its simple reply's error (a read's data into data). */
static uint32_t nbd_req(int fd, uint16_t type, uint64_t off, uint32_t len, void *data)
{
    static uint64_t cookie;
    uint8_t h[NBD_REQ_LEN];
    nbd_put32(h, NBD_REQUEST_MAGIC);
    nbd_put16(h + 4, 0);
    nbd_put16(h + 6, type);
    nbd_put64(h + 8, ++cookie);
    nbd_put64(h + 16, off);
    nbd_put32(h + 24, len);
    xfer(fd, h, sizeof h, true);
    if (type == NBD_CMD_WRITE)
        xfer(fd, data, len, true);
    uint8_t r[NBD_SIMPLE_REPLY_LEN];
    xfer(fd, r, sizeof r, false);
    CHECK_EQ(nbd_get32(r), NBD_SIMPLE_REPLY_MAGIC);
    CHECK_EQ(nbd_get64(r + 8), cookie);
    uint32_t err = nbd_get32(r + 4);
    if (type == NBD_CMD_READ && err == 0)
        xfer(fd, data, len, false);
    return err;
}

static void disc(int fd)
{
    uint8_t h[NBD_REQ_LEN] = { 0 };
    nbd_put32(h, NBD_REQUEST_MAGIC);
    nbd_put16(h + 6, NBD_CMD_DISC);
    xfer(fd, h, sizeof h, true);
    close(fd);
}

static int sh(const char *fmt, const char *arg)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, fmt, g_port, arg);
    return system(cmd);
}

/* qemu-io -r with `cmds` (reads with -P) on export: 0 when it ran `nreads` reads and every byte
 * matched (qemu-io prints "read ..." even after "Pattern verification failed"). */
static int qio_reads_ok(const char *cmds, int nreads, const char *export)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "o=$(qemu-io -r -f raw %s nbd://127.0.0.1:%d/%s 2>&1) && ! echo \"$o\" | grep -q 'verification failed' "
             "&& [ $(echo \"$o\" | grep -c '^read ') -eq %d ]",
             cmds, g_port, export, nreads);
    return system(cmd);
}

static uint8_t g_buf[65536];

TEST(read_only_export)
{
    CHECK_EQ(dp_nbd_share("malloc:///ro?size_mb=4", "ro", NULL), 0);
    pthread_mutex_lock(&g_nbd_exports.lock);
    struct dp_bdev *b = dp_export_named_locked(&g_nbd_exports, "ro")->bdev;
    pthread_mutex_unlock(&g_nbd_exports.lock);
    /* data while still writable; a client that stays connected across the change */
    uint16_t tf = 0;
    int early = connect_from("127.0.0.1", "ro", &tf);
    CHECK(!(tf & NBD_FLAG_READ_ONLY));
    memset(g_buf, 0x5c, sizeof g_buf);
    CHECK_EQ(nbd_req(early, NBD_CMD_WRITE, 0, sizeof g_buf, g_buf), 0);
    CHECK_EQ(nbd_req(early, NBD_CMD_FLUSH, 0, 0, NULL), 0);
    b->read_only = true; /* as a snapshot's module sets it */

    /* advertised: read-only, no trim or write-zeroes */
    CHECK_EQ(sh("nbdinfo --json nbd://127.0.0.1:%d/%s > /tmp/ro-info.json", "ro"), 0);
    CHECK_EQ(system("grep -q '\"is_read_only\": true' /tmp/ro-info.json"), 0);
    CHECK_EQ(system("grep -q '\"can_trim\": false' /tmp/ro-info.json"), 0);
    CHECK_EQ(system("grep -q '\"can_zero\": false' /tmp/ro-info.json"), 0);
    unlink("/tmp/ro-info.json");

    /* a writable export is a writable nbd:// device */
    CHECK_EQ(dp_nbd_share("malloc:///rw?size_mb=1", "rw", NULL), 0);
    char rwuri[128];
    snprintf(rwuri, sizeof rwuri, "nbd://127.0.0.1:%d/rw", g_port);
    struct dp_bdev *wb = NULL;
    CHECK_EQ(dp_bdev_open_uri(rwuri, &wb), 0);
    CHECK(!wb->read_only);
    dp_bdev_put(wb);
    CHECK_EQ(dp_nbd_unshare("rw"), 0);

    /* a new client: every change is EPERM, reads work */
    int fd = connect_from("127.0.0.1", "ro", &tf);
    CHECK(tf & NBD_FLAG_READ_ONLY);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE, 0, 4096, g_buf), NBD_EPERM);
    CHECK_EQ(nbd_req(fd, NBD_CMD_TRIM, 0, 4096, NULL), NBD_EPERM);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE_ZEROES, 0, 4096, NULL), NBD_EPERM);
    CHECK_EQ(nbd_req(fd, NBD_CMD_FLUSH, 0, 0, NULL), 0);
    memset(g_buf, 0, sizeof g_buf);
    CHECK_EQ(nbd_req(fd, NBD_CMD_READ, 0, sizeof g_buf, g_buf), 0);
    for (size_t i = 0; i < sizeof g_buf; i++)
        CHECK_EQ(g_buf[i], 0x5c);
    disc(fd);
    /* the client from before: its writes reach the device layer, which says EROFS -> EPERM */
    CHECK_EQ(nbd_req(early, NBD_CMD_WRITE, 0, 4096, g_buf), NBD_EPERM);
    CHECK_EQ(nbd_req(early, NBD_CMD_TRIM, 0, 4096, NULL), NBD_EPERM);
    CHECK_EQ(nbd_req(early, NBD_CMD_WRITE_ZEROES, 0, 4096, NULL), NBD_EPERM);
    disc(early);

    /* our own nbd:// client sees a read-only device: writes fail -EROFS, reads work */
    char uri[128];
    snprintf(uri, sizeof uri, "nbd://127.0.0.1:%d/ro", g_port);
    struct dp_bdev *rb = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &rb), 0);
    CHECK(rb->read_only);
    static uint8_t iobuf[4096] __attribute__((aligned(4096)));
    struct iovec v = { iobuf, sizeof iobuf };
    struct dp_bdev_io ios[2] = {
        { .type = DP_IO_WRITE, .offset = 0, .length = 4096, .iov = &v, .iovcnt = 1 },
        { .type = DP_IO_UNMAP, .offset = 0, .length = 4096 },
    };
    int st[2];
    test_run_ios(rb, ios, 2, st);
    CHECK_EQ(st[0], -EROFS);
    CHECK_EQ(st[1], -EROFS);
    struct dp_bdev_io rd = { .type = DP_IO_READ, .offset = 4096, .length = 4096, .iov = &v, .iovcnt = 1 };
    test_run_ios(rb, &rd, 1, st);
    CHECK_EQ(st[0], 0);
    for (size_t i = 0; i < sizeof iobuf; i++)
        CHECK_EQ(iobuf[i], 0x5c);
    dp_bdev_put(rb);

    /* qemu-io: cannot write; the bytes are all still there */
    CHECK(sh("qemu-io -f raw -c 'write -P 0x11 0 4k' nbd://127.0.0.1:%d/%s >/dev/null 2>&1", "ro") != 0);
    CHECK_EQ(qio_reads_ok("-c 'read -P 0x5c 0 64k' -c 'read -P 0 64k 1M'", 2, "ro"), 0);
    CHECK(qio_reads_ok("-c 'read -P 0x5d 0 64k'", 1, "ro") != 0); /* the check can fail */
    CHECK_EQ(dp_nbd_unshare("ro"), 0);
}

/* The writer lease on a live NBD connection: a label written, then another host is refused. */
TEST(writer_lease_over_nbd)
{
    CHECK_EQ(dp_nbd_share("malloc:///wl?size_mb=4", "wl", NULL), 0);
    dp_target_stats s0;
    CHECK_EQ(dp_target_stats_get(&s0), 0);
    int nexus = connect_from("127.0.0.1", "wl", NULL), other = connect_from("127.0.0.2", "wl", NULL);
    struct nx_label l = { .seq = 2,
                          .generation = 1,
                          .data_offset = NX_HDR_SIZE,
                          .data_size = 1 << 20,
                          .flags = NX_LABEL_SYNCED,
                          .block_size = 4096,
                          .nmembers = 1 };
    l.nexus_uuid[0] = 0x77;
    uint8_t blk[NX_LABEL_BLOCK];
    nx_label_encode(&l, blk);
    CHECK_EQ(nbd_req(nexus, NBD_CMD_WRITE, 0, sizeof blk, blk), 0);
    memset(g_buf, 0x33, 4096);
    CHECK_EQ(nbd_req(other, NBD_CMD_WRITE, 1 << 20, 4096, g_buf), NBD_EPERM);
    CHECK_EQ(nbd_req(other, NBD_CMD_TRIM, 1 << 20, 4096, NULL), NBD_EPERM);
    CHECK_EQ(nbd_req(other, NBD_CMD_READ, 0, 4096, g_buf), 0);
    CHECK(!memcmp(g_buf, blk, 4096)); /* reads stay allowed */
    CHECK_EQ(nbd_req(nexus, NBD_CMD_WRITE, 1 << 20, 4096, g_buf), 0);
    dp_target_stats s1;
    CHECK_EQ(dp_target_stats_get(&s1), 0);
    CHECK_EQ(s1.writes_refused, s0.writes_refused + 2);
    CHECK_EQ(s1.writer_leases, s0.writer_leases + 1);
    /* released: the other host writes */
    l.seq = 3;
    l.flags |= NX_LABEL_RELEASED;
    nx_label_encode(&l, blk);
    CHECK_EQ(nbd_req(nexus, NBD_CMD_WRITE, NX_LABEL_BLOCK, sizeof blk, blk), 0);
    CHECK_EQ(nbd_req(other, NBD_CMD_WRITE, 1 << 20, 4096, g_buf), 0);
    disc(nexus);
    disc(other);
    CHECK_EQ(dp_nbd_unshare("wl"), 0);
}

/* Under the registry lock: the host holding export's writer lease, or "" (none). */
static void lease_holder(const char *export, char *host, size_t cap)
{
    pthread_mutex_lock(&g_nbd_exports.lock);
    struct dp_export *e = dp_export_named_locked(&g_nbd_exports, export);
    pthread_mutex_unlock(&g_nbd_exports.lock);
    CHECK(e);
    if (!dp_export_writer_host(e, host, cap))
        host[0] = 0;
}

static int bdev_rw(struct dp_bdev *b, enum dp_bdev_io_type t, void *buf, uint64_t off, uint32_t len)
{
    struct iovec v = { buf, len };
    struct dp_bdev_io io = { .type = t, .offset = off, .length = len, .iov = &v, .iovcnt = 1 };
    int st;
    test_run_ios(b, &io, 1, &st);
    return st;
}

/* The exporting side forgets the lease (its agent restarted: here, unshare and share again): the
 * nbd:// child that reconnects writes its label back before any I/O, and its host holds the lease
 * again. If another host took it meanwhile, the write-back is refused and the child fails for good. */
TEST(reconnected_child_reasserts_its_lease)
{
    struct dp_bdev *m = NULL;
    CHECK_EQ(dp_bdev_open_uri("malloc:///wb?size_mb=4", &m), 0); /* the device outlives its shares */
    CHECK_EQ(dp_nbd_share(m->name, "wb", NULL), 0);
    char uri[128], host[DP_EXPORT_HOST_MAX];
    snprintf(uri, sizeof uri, "nbd://127.0.0.1:%d/wb?connect_timeout_ms=2000", g_port);
    struct dp_bdev *child = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &child), 0);
    static uint8_t blk[NX_LABEL_BLOCK] __attribute__((aligned(4096)));
    struct nx_label l = { .seq = 2,
                          .generation = 1,
                          .data_offset = NX_HDR_SIZE,
                          .data_size = 1 << 20,
                          .flags = NX_LABEL_SYNCED,
                          .block_size = 4096,
                          .nmembers = 0 };
    l.nexus_uuid[0] = 0x88;
    nx_label_encode(&l, blk);
    CHECK_EQ(bdev_rw(child, DP_IO_WRITE, blk, 0, sizeof blk), 0);
    lease_holder("wb", host, sizeof host);
    CHECK(!strcmp(host, "127.0.0.1"));

    CHECK_EQ(dp_nbd_unshare("wb"), 0); /* the child's connection is closed; the lease is gone */
    CHECK_EQ(dp_nbd_share(m->name, "wb", NULL), 0);
    lease_holder("wb", host, sizeof host);
    CHECK_EQ(host[0], 0);
    /* the child's next I/O waits for its reconnect (verify, write-back) */
    static uint8_t rb[4096] __attribute__((aligned(4096)));
    while (bdev_rw(child, DP_IO_READ, rb, 0, sizeof rb) == -ENOTCONN)
        usleep(50000); /* down until its backoff lets it reconnect */
    CHECK(!memcmp(rb, blk, sizeof rb));
    lease_holder("wb", host, sizeof host);
    CHECK(!strcmp(host, "127.0.0.1"));
    int other = connect_from("127.0.0.2", "wb", NULL);
    CHECK_EQ(nbd_req(other, NBD_CMD_WRITE, 1 << 20, 4096, g_buf), NBD_EPERM);
    disc(other);

    /* forgotten again, and another host writes the very same label first: it holds the lease now */
    CHECK_EQ(dp_nbd_unshare("wb"), 0);
    CHECK_EQ(dp_nbd_share(m->name, "wb", NULL), 0);
    other = connect_from("127.0.0.2", "wb", NULL);
    CHECK_EQ(nbd_req(other, NBD_CMD_WRITE, 0, sizeof blk, blk), 0);
    lease_holder("wb", host, sizeof host);
    CHECK(!strcmp(host, "127.0.0.2"));
    int st;
    while ((st = bdev_rw(child, DP_IO_READ, rb, 0, sizeof rb)) == -ENOTCONN)
        usleep(50000);
    CHECK(st == -EPERM || st == -ENODEV); /* refused write-back: failed for good */
    CHECK_EQ(bdev_rw(child, DP_IO_READ, rb, 0, sizeof rb), -ENODEV);
    disc(other);
    dp_bdev_put(child);
    CHECK_EQ(dp_nbd_unshare("wb"), 0);
    dp_bdev_put(m);
}

/* A real snapshot (pool format v2) exported over NBD: read-only, its bytes fixed while the replica
 * it was taken of goes on taking writes. */
#define SR "0e2e0e2e-0000-4000-8000-000000000001"
#define SS "0e2e0e2e-0000-4000-8000-000000000002"
TEST(snapshot_export)
{
    char disk[300];
    snprintf(disk, sizeof disk, "%s/pool.img", test_tmpdir());
    test_make_file(disk, 64ull << 20);
    const char *disks[] = { disk };
    char puuid[40];
    CHECK_EQ(dp_pool_create("rop", disks, 1, 1 << 20, puuid), 0);
    CHECK_EQ(dp_replica_create("rop", SR, 8 << 20, 1), 0);
    CHECK_EQ(dp_nbd_share(SR, SR, NULL), 0);
    CHECK_EQ(sh("qemu-io -f raw -c 'write -P 0x5c 0 2M' -c flush nbd://127.0.0.1:%d/%s >/dev/null", SR), 0);
    CHECK_EQ(dp_snapshot_create(SR, SS, NULL), 0);
    CHECK_EQ(dp_nbd_share(SS, SS, NULL), 0);
    CHECK_EQ(sh("nbdinfo --json nbd://127.0.0.1:%d/%s | grep -q '\"is_read_only\": true'", SS), 0);
    CHECK(sh("qemu-io -f raw -c 'write -P 0x11 0 4k' nbd://127.0.0.1:%d/%s >/dev/null 2>&1", SS) != 0);
    uint16_t tf = 0;
    int fd = connect_from("127.0.0.1", SS, &tf);
    CHECK(tf & NBD_FLAG_READ_ONLY);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE, 0, 4096, g_buf), NBD_EPERM);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE_ZEROES, 0, 4096, NULL), NBD_EPERM);
    disc(fd);
    /* the replica moves on; the snapshot keeps its bytes */
    CHECK_EQ(sh("qemu-io -f raw -c 'write -P 0x77 0 1M' -c flush nbd://127.0.0.1:%d/%s >/dev/null", SR), 0);
    CHECK_EQ(qio_reads_ok("-c 'read -P 0x5c 0 2M' -c 'read -P 0 2M 6M'", 2, SS), 0);
    CHECK_EQ(qio_reads_ok("-c 'read -P 0x77 0 1M' -c 'read -P 0x5c 1M 1M' -c 'read -P 0 2M 6M'", 3, SR), 0);
    CHECK_EQ(dp_nbd_unshare(SS), 0);
    CHECK_EQ(dp_nbd_unshare(SR), 0);
}

static uint64_t zw_fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* A zero-length write (no payload, no buffer) is refused (EINVAL; EPERM when read-only) and the
 * connection goes on: the next requests work and the bytes are unchanged (checksum). */
TEST(zero_length_write)
{
    CHECK_EQ(dp_nbd_share("malloc:///zw?size_mb=1", "zw", NULL), 0);
    int fd = connect_from("127.0.0.1", "zw", NULL);
    memset(g_buf, 0x3c, sizeof g_buf);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE, 0, sizeof g_buf, g_buf), 0);
    uint64_t want = zw_fnv(g_buf, sizeof g_buf);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE, 4096, 0, NULL), NBD_EINVAL);
    memset(g_buf, 0, sizeof g_buf);
    CHECK_EQ(nbd_req(fd, NBD_CMD_READ, 0, sizeof g_buf, g_buf), 0);
    CHECK_EQ(zw_fnv(g_buf, sizeof g_buf), want);
    pthread_mutex_lock(&g_nbd_exports.lock);
    dp_export_named_locked(&g_nbd_exports, "zw")->bdev->read_only = true;
    pthread_mutex_unlock(&g_nbd_exports.lock);
    disc(fd);
    fd = connect_from("127.0.0.1", "zw", NULL);
    CHECK_EQ(nbd_req(fd, NBD_CMD_WRITE, 4096, 0, NULL), NBD_EPERM);
    CHECK_EQ(nbd_req(fd, NBD_CMD_READ, 0, sizeof g_buf, g_buf), 0);
    CHECK_EQ(zw_fnv(g_buf, sizeof g_buf), want);
    disc(fd);
    CHECK_EQ(dp_nbd_unshare("zw"), 0);
}

int main(void)
{
    printf("test_nbd_readonly\n");
    if (RUNNING_ON_VALGRIND) { /* the server receives through io_uring, whose writes valgrind cannot see */
        printf("  skipped under valgrind (ASan/UBSan build runs it)\n");
        return 0;
    }
    CHECK_EQ(dp_init(1), 0);
    CHECK_EQ(dp_nbd_listen("127.0.0.1", 0), 0);
    g_port = dp_nbd_port();
    RUN(read_only_export);
    RUN(writer_lease_over_nbd);
    RUN(snapshot_export);
    RUN(reconnected_child_reasserts_its_lease);
    RUN(zero_length_write);
    dp_fini();
    test_rm_tmpdir();
    return 0;
}
