/*
 * fuzz_nvmf_setup.c - libFuzzer harness for the NVMe/TCP initiator's
 * controller bring-up (src/nvmf/host_setup.c: admin_bringup), which reads a
 * hostile controller's answers: the Connect result (cntlid), CAP, CSTS, the
 * Identify Controller (MDTS, IOCCSZ), active namespace list, Identify
 * Namespace (size, LBA format) and descriptor list, and the Set Features
 * Number of Queues result; then one nvmfh_sync_read (the identity read).
 *
 * No sockets: host_setup.c is #included with send/recv/poll and the clock
 * replaced, so the controller is the input and time only moves when the host
 * sleeps or waits (no timeout depends on the machine's speed).
 *
 * Input: records [length: 2 bytes LE][bytes], one per command the host sends:
 * the bytes are what the controller answers (any PDUs, any split the host's
 * recv asks for). The harness writes the command's cid into every PDU of the
 * record that carries one (CapsuleResp, C2HData, R2T), so the fuzzer does not
 * have to guess cids. When the records run out the controller hangs up.
 * Oracles: a bring-up that succeeds has a usable geometry (block size 512..4096,
 * a size that is NSZE blocks (no wrap), max_xfer a
 * multiple of the block size in 4 KiB..1 MiB, 2 <= qsize <= 128, nioq >= 1).
 * Seeds: fuzz/seeds/fuzz_nvmf_setup: a well-behaved controller's answers (bringup*; Identify
 * data cut short, the rest reads as zeros), and the two answers that wrapped
 * max_xfer (mdts-wrap) and the size (nsze-wrap) before host_setup.c checked them.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static ssize_t fz_send(int fd, const void *buf, size_t len, int flags);
static ssize_t fz_recv(int fd, void *buf, size_t len, int flags);
static int fz_poll(struct pollfd *p, nfds_t n, int timeout);
static int fz_clock_gettime(clockid_t id, struct timespec *ts);
static int fz_nanosleep(const struct timespec *req, struct timespec *rem);
#define send fz_send
#define recv fz_recv
#define poll fz_poll
#define clock_gettime fz_clock_gettime
#define nanosleep fz_nanosleep
#include "fuzz.h"
#include "nvmf/host_setup.c"
#include "util/le.h"
#undef send
#undef recv
#undef poll
#undef clock_gettime
#undef nanosleep

#define FZ_FD 1000

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t dp_reactor_count(void)
{
    return 4;
}

static const uint8_t *g_in;
static size_t g_in_len, g_in_pos;
static uint8_t g_rec[65536 + 8];
static size_t g_rec_len, g_rec_pos;
static uint64_t g_now_ns;
static uint16_t g_cid;
static bool g_id_ns; /* the command answered is Identify Namespace */
static uint64_t g_nsze; /* what the answer says the namespace holds (NSZE) */
static bool g_nsze_known;

static int fz_clock_gettime(clockid_t id, struct timespec *ts)
{
    ts->tv_sec = (time_t)(g_now_ns / 1000000000u);
    ts->tv_nsec = (long)(g_now_ns % 1000000000u);
    return 0;
}

static int fz_nanosleep(const struct timespec *req, struct timespec *rem)
{
    g_now_ns += (uint64_t)req->tv_sec * 1000000000u + (uint64_t)req->tv_nsec;
    return 0;
}

static int fz_poll(struct pollfd *p, nfds_t n, int timeout)
{
    REQUIRE(n == 1 && p->fd == FZ_FD);
    p->revents = p->events;
    return 1;
}

/* Put the command's cid into every PDU of the answer that names one. */
static void patch_cids(void)
{
    for (size_t o = 0; o + NVME_TCP_CH_SIZE <= g_rec_len;) {
        uint8_t type = g_rec[o];
        uint32_t plen = dp_get_le32(g_rec + o + 4);
        size_t at = type == NVME_TCP_PDU_CAPSULE_RESP                           ? o + 8 + offsetof(struct nvme_cqe, cid)
                    : type == NVME_TCP_PDU_C2H_DATA || type == NVME_TCP_PDU_R2T ? o + 8
                                                                                : 0;
        if (at && at + 2 <= g_rec_len)
            memcpy(g_rec + at, &g_cid, 2); /* little-endian host */
        if (g_id_ns && type == NVME_TCP_PDU_C2H_DATA && o + 24 <= g_rec_len) { /* NSZE: bytes 0..7 */
            uint32_t datao = dp_get_le32(g_rec + o + 12), datal = dp_get_le32(g_rec + o + 16);
            size_t pdo = g_rec[o + 3];
            if (datao == 0 && datal >= 8 && o + pdo + 8 <= g_rec_len) {
                g_nsze = dp_get_le64(g_rec + o + pdo);
                g_nsze_known = true;
            } else if (datao < 8) {
                g_nsze_known = false; /* pieces of it: no simple oracle */
                g_id_ns = false;
            }
        }
        if (plen < NVME_TCP_CH_SIZE)
            break;
        o += plen;
    }
}

/* The host sent a PDU (always whole: send_all): its answer is the next record. */
static ssize_t fz_send(int fd, const void *buf, size_t len, int flags)
{
    REQUIRE(fd == FZ_FD && len >= NVME_TCP_CH_SIZE);
    const uint8_t *p = buf;
    if (p[0] == NVME_TCP_PDU_CAPSULE_CMD) {
        REQUIRE(len >= NVME_TCP_CMD_HLEN);
        g_cid = get_le16(p + 8 + offsetof(struct nvme_sqe, cid));
        g_id_ns = p[8] == NVME_ADM_IDENTIFY && p[8 + offsetof(struct nvme_sqe, cdw10)] == 0;
    }
    g_rec_len = g_rec_pos = 0;
    if (g_in_len - g_in_pos >= 2) {
        size_t n = get_le16(g_in + g_in_pos);
        g_in_pos += 2;
        if (n > g_in_len - g_in_pos)
            n = g_in_len - g_in_pos;
        memcpy(g_rec, g_in + g_in_pos, n);
        g_in_pos += n;
        g_rec_len = n;
        patch_cids();
    }
    return (ssize_t)len;
}

/* The answer, as much as asked; then the controller hangs up (0). */
static ssize_t fz_recv(int fd, void *buf, size_t len, int flags)
{
    REQUIRE(fd == FZ_FD);
    size_t n = g_rec_len - g_rec_pos < len ? g_rec_len - g_rec_pos : len;
    memcpy(buf, g_rec + g_rec_pos, n);
    g_rec_pos += n;
    g_now_ns += 1000000; /* a millisecond per read: every wait ends */
    return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_in = data;
    g_in_len = size;
    g_in_pos = 0;
    g_rec_len = g_rec_pos = 0;
    g_now_ns = 1000000000000ull;
    g_id_ns = g_nsze_known = false;
    struct nvmfh_uri u = { .host = "fuzz", .port = "4420", .nqn = "nqn.2019-05.io.openebs:fuzz", .queues = 2 };
    struct nvmfh_conn c;
    memset(&c, 0, sizeof c);
    c.afd = FZ_FD;
    char err[512] = "";
    int rc = admin_bringup(&u, &c, now_ms() + 5000, err, sizeof err);
    if (rc < 0) {
        REQUIRE(err[0]);
        return 0;
    }
    REQUIRE(c.block_size >= 512 && c.block_size <= 4096 && !(c.block_size & (c.block_size - 1)));
    REQUIRE(c.size >= c.block_size && c.size % c.block_size == 0);
    REQUIRE(!g_nsze_known || c.size / c.block_size == g_nsze); /* no wrap */
    REQUIRE(c.max_xfer >= 4096 && c.max_xfer <= NO_MDTS_XFER && c.max_xfer % c.block_size == 0);
    REQUIRE(c.qsize >= 2 && c.qsize <= IO_QSIZE_MAX && c.nioq >= 1 && c.nioq <= 2);
    /* The identity read after a reconnect: C2HData must stay inside it. */
    c.iofd[0] = FZ_FD;
    uint8_t *ident = malloc(8192);
    err[0] = 0;
    rc = nvmfh_sync_read(&c, 0, ident, 8192, 1000, err, sizeof err);
    REQUIRE(rc == 0 || err[0]);
    free(ident);
    return 0;
}
