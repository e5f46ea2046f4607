/*
 * test_nvmf_host_io: the nvmf:// child against a small scripted NVMe/TCP
 * controller in this process (127.0.0.1): data written through the child
 * reads back with the same checksum (in-capsule writes, R2T writes answered
 * in several H2CData PDUs, transfers split by MDTS, C2HData in several PDUs
 * and with SUCCESS), unmap and write zeroes read back as zeros, the
 * identity is the replica uuid of the NQN, a dropped connection fails the
 * I/O in flight and comes back by itself, a namespace whose NGUID changed
 * while we were away makes the child "replaced" (ENODEV), and a controller
 * that stops answering fails I/O with ETIMEDOUT after io_timeout_ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "datapath.h"
#include "nvmf/proto.h"
#include "testlib.h"

#define DISK (4u << 20)
#define ICD 8192u
#define MAXH2C 16384u
#define UUID "0b0c7a4e-7d6e-4c83-9e0a-6b1f0e0a1b2c"

static struct {
    int lfd, port;
    uint8_t *disk;
    uint8_t nguid[16];
    volatile int silent, stop, refuse;
    volatile int evil; /* 1: C2HData beyond the read, 2: a response for a cid not in flight, 3: R2T for a read */
    volatile uint64_t nsze; /* the namespace size it reports, in 512-byte blocks */
    int fds[64];
    int nfds;
    pthread_t acc;
    pthread_mutex_t lock;
} g;

static int rd(int fd, void *b, size_t n)
{
    for (size_t o = 0; o < n;) {
        ssize_t k = read(fd, (char *)b + o, n - o);
        if (k <= 0)
            return -1;
        o += (size_t)k;
    }
    return 0;
}

static void wr(int fd, const void *b, size_t n)
{
    for (size_t o = 0; o < n;) {
        ssize_t k = send(fd, (const char *)b + o, n - o, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        o += (size_t)k;
    }
}

static void resp(int fd, uint16_t cid, uint32_t cdw0, uint16_t status)
{
    struct nvme_tcp_rsp r = { .ch = { .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24 } };
    r.cqe.cid = cid;
    r.cqe.cdw0 = cdw0;
    r.cqe.status = status;
    wr(fd, &r, sizeof r);
}

/* data in PDUs of `piece` bytes; SUCCESS on the last one when success */
/* C2HData for bytes [from, len) of the read, in pieces; success on the last */
static void c2h_from(int fd, uint16_t cid, const uint8_t *buf, uint32_t from, uint32_t len, uint32_t piece,
                     bool success)
{
    for (uint32_t o = from; o < len; o += piece) {
        uint32_t n = len - o < piece ? len - o : piece;
        bool last = o + n == len;
        struct nvme_tcp_c2h_data_hdr h = {
            .ch = { .pdu_type = NVME_TCP_PDU_C2H_DATA,
                    .flags = last ? (NVME_TCP_F_DATA_LAST | (success ? NVME_TCP_F_DATA_SUCCESS : 0)) : 0,
                    .hlen = 24,
                    .pdo = 24,
                    .plen = 24 + n },
            .cccid = cid,
            .datao = o,
            .datal = n
        };
        wr(fd, &h, sizeof h);
        wr(fd, buf + o, n);
    }
}

static void c2h(int fd, uint16_t cid, const uint8_t *buf, uint32_t len, uint32_t piece, bool success)
{
    c2h_from(fd, cid, buf, 0, len, piece, success);
}

static void identify(int fd, const struct nvme_sqe *s)
{
    static uint8_t b[4096];
    memset(b, 0, sizeof b);
    uint32_t cns = s->cdw10 & 0xff;
    if (cns == 1) {
        struct nvme_id_ctrl *id = (void *)b;
        id->mdts = 5; /* 128 KiB */
        id->ioccsz = (64 + ICD) / 16;
        id->iorcsz = 1;
        id->oncs = NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
        id->vwc = NVME_VWC_PRESENT;
        id->nn = 1;
    } else if (cns == 2) {
        b[0] = 1;
    } else if (cns == 0) {
        struct nvme_id_ns *ns = (void *)b;
        ns->nsze = ns->ncap = g.nsze;
        ns->lbaf[0].lbads = 9;
        memcpy(ns->nguid, g.nguid, 16);
    } else if (cns == 3) {
        b[0] = NVME_NIDT_NGUID;
        b[1] = 16;
        memcpy(b + 4, g.nguid, 16);
    }
    c2h(fd, s->cid, b, sizeof b, 4096, cns != 1); /* controller: LAST then a CapsuleResp */
    if (cns == 1)
        resp(fd, s->cid, 0, 0);
}

static void fabrics(int fd, const struct nvme_sqe *s)
{
    const struct nvmf_property_get_cmd *p = (const void *)s;
    uint64_t v = 0;
    if (p->fctype == NVMF_FCTYPE_PROPERTY_GET) {
        if (p->ofst == NVME_REG_CAP)
            v = 63 | (1ull << NVME_CAP_TO_SHIFT);
        else if (p->ofst == NVME_REG_CSTS)
            v = NVME_CSTS_RDY;
        else if (p->ofst == NVME_REG_VS)
            v = NVME_VS(1, 4, 0);
    }
    struct nvme_tcp_rsp r = { .ch = { .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24 } };
    r.cqe.cid = s->cid;
    r.cqe.cdw0 = p->fctype == NVMF_FCTYPE_CONNECT ? 1 : (uint32_t)v;
    r.cqe.cdw1 = (uint32_t)(v >> 32);
    wr(fd, &r, sizeof r);
}

/* Writes whose data comes by R2T: one R2T for all of it; the H2CData PDUs
 * arrive interleaved with later capsules. */
struct pending {
    uint8_t *dst;
    uint32_t len, got;
};

static void write_r2t(int fd, const struct nvme_sqe *s, uint8_t *dst, uint32_t len, struct pending *pw)
{
    CHECK(s->cid < 128 && !pw[s->cid].dst);
    pw[s->cid] = (struct pending){ dst, len, 0 };
    struct nvme_tcp_r2t_hdr r = {
        .ch = { .pdu_type = NVME_TCP_PDU_R2T, .hlen = 24, .plen = 24 }, .cccid = s->cid, .ttag = 7, .r2tl = len
    };
    wr(fd, &r, sizeof r);
}

static int h2c_data(int fd, const struct nvme_tcp_common_hdr *ch, struct pending *pw)
{
    struct nvme_tcp_h2c_data_hdr h;
    memcpy(&h, ch, 8);
    if (rd(fd, (uint8_t *)&h + 8, sizeof h - 8) < 0)
        return -1;
    CHECK(h.cccid < 128 && pw[h.cccid].dst && h.ttag == 7);
    struct pending *p = &pw[h.cccid];
    CHECK(h.datao == p->got && h.datal <= MAXH2C && h.datal <= p->len - p->got);
    CHECK_EQ(!!(h.ch.flags & NVME_TCP_F_DATA_LAST), p->got + h.datal == p->len);
    if (rd(fd, p->dst + p->got, h.datal) < 0)
        return -1;
    p->got += h.datal;
    if (p->got == p->len) {
        p->dst = NULL;
        resp(fd, h.cccid, 0, 0);
    }
    return 0;
}

static int io_cmd(int fd, const struct nvme_sqe *s, const uint8_t *icd, uint32_t icdlen, struct pending *pw)
{
    uint64_t off = ((uint64_t)s->cdw11 << 32 | s->cdw10) * 512;
    uint32_t len = ((s->cdw12 & 0xffff) + 1) * 512;
    if (s->opc == NVME_IO_READ && g.evil) {
        static uint8_t junk[8192];
        if (g.evil == 1)
            c2h(fd, s->cid, junk, len + 512 <= sizeof junk ? len + 512 : sizeof junk, 8192, false);
        else if (g.evil == 2)
            resp(fd, (uint16_t)(s->cid + 1), 0, 0);
        else if (g.evil == 4) /* success, no data: the caller's buffer would come back as "read" */
            resp(fd, s->cid, 0, 0);
        else if (g.evil == 5) { /* half of the data, then success */
            c2h(fd, s->cid, junk, len / 2, 8192, false);
            resp(fd, s->cid, 0, 0);
        } else if (g.evil == 6) /* the second half only, flagged success: a gap before it */
            c2h_from(fd, s->cid, junk, len / 2, len, 8192, true);
        else {
            struct nvme_tcp_r2t_hdr r = { .ch = { .pdu_type = NVME_TCP_PDU_R2T, .hlen = 24, .plen = 24 },
                                          .cccid = s->cid,
                                          .r2tl = len };
            wr(fd, &r, sizeof r);
        }
        return 0;
    }
    if (s->opc == NVME_IO_READ) {
        CHECK(off + len <= DISK);
        c2h(fd, s->cid, g.disk + off, len, 8192, (s->cid & 1));
        if (!(s->cid & 1))
            resp(fd, s->cid, 0, 0);
        return 0;
    }
    if (s->opc == NVME_IO_WRITE) {
        CHECK(off + len <= DISK && s->sgl1.length == len);
        if (!icdlen) {
            write_r2t(fd, s, g.disk + off, len, pw);
            return 0;
        }
        memcpy(g.disk + off, icd, len);
    } else if (s->opc == NVME_IO_WRITE_ZEROES) {
        memset(g.disk + off, 0, len);
    } else if (s->opc == NVME_IO_DATASET_MANAGEMENT) {
        const struct nvme_dsm_range *r = (const void *)icd;
        memset(g.disk + r->slba * 512, 0, (size_t)r->nlb * 512);
    }
    resp(fd, s->cid, 0, 0);
    return 0;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t ic[128];
    if (g.refuse || rd(fd, ic, sizeof ic) < 0)
        goto out;
    struct nvme_tcp_icresp r = { .ch = { .pdu_type = NVME_TCP_PDU_ICRESP, .hlen = 128, .plen = 128 },
                                 .maxh2cdata = MAXH2C };
    wr(fd, &r, sizeof r);
    static __thread uint8_t data[ICD + 1024];
    static __thread struct pending pw[128];
    memset(pw, 0, sizeof pw);
    bool ioq = false;
    for (;;) {
        struct nvme_tcp_cmd c;
        if (rd(fd, &c, 8) < 0)
            break;
        if (c.ch.pdu_type == NVME_TCP_PDU_H2C_DATA) {
            if (h2c_data(fd, &c.ch, pw) < 0)
                break;
            continue;
        }
        if (rd(fd, (uint8_t *)&c + 8, sizeof c - 8) < 0)
            break;
        uint32_t icdlen = c.ch.plen - c.ch.hlen;
        CHECK(c.ch.pdu_type == NVME_TCP_PDU_CAPSULE_CMD && icdlen <= sizeof data);
        if (icdlen && rd(fd, data, icdlen) < 0)
            break;
        const struct nvme_sqe *s = &c.sqe;
        if (s->opc == NVME_ADM_FABRICS) {
            if (((const struct nvmf_connect_cmd *)s)->fctype == NVMF_FCTYPE_CONNECT)
                ioq = ((const struct nvmf_connect_cmd *)s)->qid != 0;
            fabrics(fd, s);
        } else if (g.silent)
            continue;
        else if (!ioq && s->opc == NVME_ADM_IDENTIFY && s->sgl1.length == 4096 && s->cdw10 <= 3)
            identify(fd, s);
        else if (!ioq)
            resp(fd, s->cid, 0, 0); /* Set Features, Keep Alive */
        else if (io_cmd(fd, s, data, icdlen, pw) < 0)
            break;
    }
out:
    close(fd);
    return NULL;
}

static void *acc_main(void *arg)
{
    for (;;) {
        int fd = accept(g.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&g.lock);
        CHECK(g.nfds < 64);
        g.fds[g.nfds++] = fd;
        pthread_mutex_unlock(&g.lock);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

/* Drop every connection (the controller restarted or the network broke). */
static void drop_all(void)
{
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < g.nfds; i++)
        shutdown(g.fds[i], SHUT_RDWR);
    g.nfds = 0;
    pthread_mutex_unlock(&g.lock);
}

static void target_start(void)
{
    g.disk = calloc(1, DISK);
    memset(g.nguid, 0x11, 16);
    g.nsze = DISK / 1024; /* half the disk at first: refresh_size grows it */
    pthread_mutex_init(&g.lock, NULL);
    g.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(bind(g.lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(g.lfd, 16), 0);
    socklen_t l = sizeof a;
    getsockname(g.lfd, (struct sockaddr *)&a, &l);
    g.port = ntohs(a.sin_port);
    pthread_create(&g.acc, NULL, acc_main, NULL);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static struct dp_bdev *open_child(const char *query)
{
    char uri[256];
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/nqn.2019-05.io.openebs:" UUID "%s", g.port, query);
    struct dp_bdev *b = NULL;
    int rc = dp_bdev_open_uri(uri, &b);
    if (rc < 0)
        fprintf(stderr, "open: %s\n", dp_last_error());
    CHECK_EQ(rc, 0);
    return b;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* The namespace grew: refresh_size learns it; shrinking or another namespace is refused. */
TEST(refresh_size)
{
    struct dp_bdev *b = open_child("");
    CHECK_EQ(b->size, DISK / 2);
    g.nsze = DISK / 512;
    CHECK_EQ(dp_bdev_refresh_size(b), 0);
    CHECK_EQ(b->size, DISK);
    g.nsze = DISK / 1024;
    CHECK_EQ(dp_bdev_refresh_size(b), -EIO);
    CHECK(strstr(dp_last_error(), "shrank") && strstr(dp_last_error(), "nvmf://127.0.0.1:"));
    g.nsze = DISK / 512;
    memset(g.nguid, 0x33, 16);
    CHECK_EQ(dp_bdev_refresh_size(b), -ENODEV);
    memset(g.nguid, 0x11, 16);
    CHECK_EQ(b->size, DISK);
    dp_bdev_put(b);
}

TEST(data_roundtrip)
{
    struct dp_bdev *b = open_child("");
    CHECK(!strcmp(dp_bdev_ident(b), UUID));
    CHECK_EQ(b->size, DISK);
    CHECK_EQ(b->block_size, 512);
    uint8_t *w = dp_buf_alloc(1 << 20), *r = dp_buf_alloc(1 << 20);
    for (size_t i = 0; i < (1 << 20); i++)
        w[i] = (uint8_t)(i * 131 + (i >> 9));
    /* 4 KiB in-capsule, 64 KiB by R2T in four H2CData PDUs, 512 KiB split by MDTS */
    static const uint32_t sizes[] = { 4096, 65536, 524288 };
    for (unsigned k = 0; k < 3; k++) {
        for (uint32_t o = 0; o < (1u << 20); o += sizes[k])
            CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w + o, (uint64_t)k << 20 | o, sizes[k]), 0);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_FLUSH, NULL, 0, 0), 0);
        memset(r, 0, 1 << 20);
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, (uint64_t)k << 20, 1 << 20), 0);
        CHECK_EQ(fnv(r, 1 << 20), fnv(w, 1 << 20));
        CHECK_EQ(fnv(g.disk + ((size_t)k << 20), 1 << 20), fnv(w, 1 << 20));
        printf("    %u-byte writes: checksum %016llx both sides\n", sizes[k], (unsigned long long)fnv(w, 1 << 20));
    }
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_UNMAP, NULL, 4096, 8192), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE_ZEROES, NULL, 65536, 65536), 0);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 1 << 20), 0);
    memset(w + 4096, 0, 8192);
    memset(w + 65536, 0, 65536);
    for (size_t i = 0; i < (1 << 20); i++)
        if (r[i] != w[i]) {
            fprintf(stderr, "first difference at %zu: %u != %u\n", i, r[i], w[i]);
            break;
        }
    CHECK_EQ(fnv(r, 1 << 20), fnv(w, 1 << 20));
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(reconnect_after_drop)
{
    struct dp_bdev *b = open_child("?io_timeout_ms=2000");
    uint8_t *w = dp_buf_alloc(65536), *r = dp_buf_alloc(65536);
    memset(w, 0x5c, 65536);
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_WRITE, w, 0, 65536), 0);
    drop_all();
    int rc, tries = 0;
    /* in-flight or new I/O fails (EIO/ENOTCONN) until the reconnect is done */
    while ((rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 65536)) != 0 && tries++ < 200) {
        CHECK(rc == -EIO || rc == -ENOTCONN);
        sleep_ms(50);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(fnv(r, 65536), fnv(w, 65536));
    printf("    back after %d failed tries\n", tries);
    dp_buf_free(w);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(io_timeout)
{
    struct dp_bdev *b = open_child("?io_timeout_ms=300");
    uint8_t *r = dp_buf_alloc(4096);
    g.silent = 1;
    CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096), -ETIMEDOUT);
    g.silent = 0;
    int rc, tries = 0;
    while ((rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096)) != 0 && tries++ < 200)
        sleep_ms(50);
    CHECK_EQ(rc, 0);
    dp_buf_free(r);
    dp_bdev_put(b);
}

TEST(replaced_namespace)
{
    struct dp_bdev *b = open_child("");
    uint8_t *r = dp_buf_alloc(4096);
    memset(g.nguid, 0x22, 16); /* the subsystem now holds another namespace */
    drop_all();
    int rc, tries = 0;
    while ((rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096)) != -ENODEV && tries++ < 200) {
        CHECK(rc == -EIO || rc == -ENOTCONN);
        sleep_ms(50);
    }
    CHECK_EQ(rc, -ENODEV);
    memset(g.nguid, 0x11, 16);
    dp_buf_free(r);
    dp_bdev_put(b);
}

/* A controller that breaks the protocol: the I/O fails with EIO, the connection is dropped, the child reconnects. */
TEST(hostile_controller)
{
    struct dp_bdev *b = open_child("");
    uint8_t *r = dp_buf_alloc(4096);
    for (int mode = 1; mode <= 6; mode++) {
        g.evil = mode;
        memset(r, 0xa5, 4096); /* a short read must fail, never return these bytes as data */
        CHECK_EQ(dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096), -EIO);
        g.evil = 0;
        int rc, tries = 0;
        while ((rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096)) != 0 && tries++ < 200)
            sleep_ms(50);
        CHECK_EQ(rc, 0);
    }
    dp_buf_free(r);
    dp_bdev_put(b);
}

/* Closed while it is down and reconnecting: the reconnect thread finishes on its own, nothing leaks. */
TEST(destroy_while_reconnecting)
{
    struct dp_bdev *b = open_child("?connect_timeout_ms=500");
    uint8_t *r = dp_buf_alloc(4096);
    g.refuse = 1;
    drop_all();
    int rc, tries = 0;
    while ((rc = dp_bdev_rw_sync(b, DP_IO_READ, r, 0, 4096)) == 0 && tries++ < 100)
        sleep_ms(20);
    CHECK(rc == -EIO || rc == -ENOTCONN);
    sleep_ms(300); /* a reconnect attempt or two is under way */
    dp_bdev_put(b);
    sleep_ms(800); /* the thread sees it was detached, closes and frees its job */
    g.refuse = 0;
    dp_buf_free(r);
}

/* A namespace whose NSZE blocks overflow 64 bits of bytes is refused naming the field, not opened with a wrapped size. */
TEST(namespace_size_overflow)
{
    char uri[256];
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/nqn.2019-05.io.openebs:" UUID, g.port);
    uint64_t was = g.nsze;
    g.nsze = 1ull << 55; /* 2^55 blocks of 512 bytes: 2^64 bytes, 0 once wrapped */
    struct dp_bdev *b = NULL;
    CHECK_EQ(dp_bdev_open_uri(uri, &b), -ENOTSUP);
    printf("    %s\n", dp_last_error());
    CHECK(strstr(dp_last_error(), "nsze 36028797018963968") && strstr(dp_last_error(), "nvmf://127.0.0.1:"));
    g.nsze = was;
    b = open_child("");
    CHECK_EQ(b->size, (uint64_t)was * 512);
    dp_bdev_put(b);
}

int main(void)
{
    printf("test_nvmf_host_io\n");
    target_start();
    CHECK_EQ(dp_init(1), 0);
    RUN(refresh_size);
    RUN(data_roundtrip);
    RUN(reconnect_after_drop);
    RUN(io_timeout);
    RUN(replaced_namespace);
    RUN(hostile_controller);
    RUN(destroy_while_reconnecting);
    RUN(namespace_size_overflow);
    dp_fini();
    shutdown(g.lfd, SHUT_RDWR);
    pthread_join(g.acc, NULL);
    close(g.lfd);
    drop_all();
    sleep_ms(100); /* the connection threads see their sockets close */
    free(g.disk);
    printf("ok\n");
    return 0;
}
