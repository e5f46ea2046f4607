/*
 * test_nvmf_host: the NVMe/TCP initiator's pure parts (URI grammar, ICResp
 * check, the receive state machine fed in every split) and its behaviour
 * against hostile peers over 127.0.0.1: a socket that accepts and never
 * answers (connect_timeout_ms bounds the open), a peer that answers garbage,
 * a peer that closes at once. Each ends in an error naming the peer, never a
 * hang or a leak. (Data against a real target: dp-nvmf-check against Linux
 * nvmet; see the report of the guest test.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "datapath.h"
#include "nvmf/host.h"
#include "testlib.h"

TEST(uri_grammar)
{
    struct nvmfh_uri u;
    char err[256];
    CHECK_EQ(nvmfh_uri_parse("nvmf://10.0.0.1:4421/nqn.2019-05.io.openebs:0b0c7a4e-7d6e-4c83-9e0a-6b1f0e0a1b2c", &u,
                             err, sizeof err),
             0);
    CHECK(!strcmp(u.host, "10.0.0.1") && !strcmp(u.port, "4421"));
    CHECK(!strcmp(u.nqn, "nqn.2019-05.io.openebs:0b0c7a4e-7d6e-4c83-9e0a-6b1f0e0a1b2c"));
    CHECK_EQ(u.io_timeout_ms, NVMFH_DEFAULT_IO_TIMEOUT_MS);
    CHECK_EQ(nvmfh_uri_parse("nvmf://node-1/nqn.a:b?io_timeout_ms=500&connect_timeout_ms=700", &u, err, sizeof err), 0);
    CHECK(!strcmp(u.host, "node-1") && !strcmp(u.port, "4420"));
    CHECK_EQ(u.io_timeout_ms, 500);
    CHECK_EQ(u.connect_timeout_ms, 700);
    CHECK_EQ(u.queues, 0); /* default: one per reactor */
    CHECK_EQ(nvmfh_uri_parse("nvmf://node-1/nqn.a:b?queues=4&io_timeout_ms=500", &u, err, sizeof err), 0);
    CHECK_EQ(u.queues, 4);
    CHECK_EQ(nvmfh_uri_parse("nvmf://[::1]:4430/nqn.a:b", &u, err, sizeof err), 0);
    CHECK(!strcmp(u.host, "::1") && !strcmp(u.port, "4430"));
    CHECK_EQ(nvmfh_uri_parse("nvmf://[fe80::1]/nqn.a:b", &u, err, sizeof err), 0);
    CHECK(!strcmp(u.port, "4420"));
    struct {
        const char *uri, *field;
    } bad[] = {
        { "nvmf://h:1", "nqn" },
        { "nvmf://h:1/", "nqn" },
        { "nvmf://h:1/notnqn", "nqn" },
        { "nvmf://h:0/nqn.a:b", "port" },
        { "nvmf://h:70000/nqn.a:b", "port" },
        { "nvmf://h:x/nqn.a:b", "port" },
        { "nvmf://:4420/nqn.a:b", "host" },
        { "nvmf://[::1/nqn.a:b", "host" },
        { "nvmf://[::1]x/nqn.a:b", "host" },
        { "nvmf://h/nqn.a:b?size=1", "size" },
        { "nvmf://h/nqn.a:b?io_timeout_ms=", "io_timeout_ms" },
        { "nvmf://h/nqn.a:b?io_timeout_ms=abc", "io_timeout_ms" },
        { "nvmf://h/nqn.a:b?connect_timeout_ms=0", "connect_timeout_ms" },
        { "nvmf://h/nqn.a b", "nqn" },
        { "nvmf://h/nqn.a:b?queues=0", "queues" },
        { "nvmf://h/nqn.a:b?queues=17", "queues" },
        { "nvmf://h/nqn.a:b?queues=x", "queues" },
        { "nbd://h/x", "scheme" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK_EQ(nvmfh_uri_parse(bad[i].uri, &u, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i].field)) {
            fprintf(stderr, "%s: '%s' does not name %s\n", bad[i].uri, err, bad[i].field);
            CHECK(0);
        }
    }
}

TEST(icresp_checks)
{
    struct nvme_tcp_icresp r = { .ch = { .pdu_type = NVME_TCP_PDU_ICRESP, .hlen = 128, .plen = 128 },
                                 .maxh2cdata = 131072 };
    uint32_t m = 0;
    char err[256];
    CHECK_EQ(nvmfh_icresp_check(&r, &m, err, sizeof err), 0);
    CHECK_EQ(m, 131072);
    r.pfv = 1;
    CHECK(nvmfh_icresp_check(&r, &m, err, sizeof err) < 0 && strstr(err, "pfv"));
    r.pfv = 0, r.cpda = 32;
    CHECK(nvmfh_icresp_check(&r, &m, err, sizeof err) < 0 && strstr(err, "cpda"));
    r.cpda = 0, r.maxh2cdata = 4095;
    CHECK(nvmfh_icresp_check(&r, &m, err, sizeof err) < 0 && strstr(err, "maxh2cdata"));
    r.maxh2cdata = 4098;
    CHECK(nvmfh_icresp_check(&r, &m, err, sizeof err) < 0 && strstr(err, "maxh2cdata"));
    r.maxh2cdata = 8192, r.dgst = 1;
    CHECK(nvmfh_icresp_check(&r, &m, err, sizeof err) < 0 && strstr(err, "dgst"));
}

/* A fake command table for the receive machine: cid 1 reads 8 KiB, cid 2 writes 64 KiB. */
struct fake {
    uint8_t rbuf[8192];
    int resps, r2ts, ends;
    uint32_t r2t_len;
};

static int f_resp(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct fake *f = ctx;
    if (cqe->cid != 1 && cqe->cid != 2) {
        snprintf(err, errlen, "cid %u not in flight", cqe->cid);
        return -1;
    }
    f->resps++;
    return 0;
}

static int f_begin(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    if (cid != 1 || off > 8192 || len > 8192 - off) {
        snprintf(err, errlen, "C2HData outside the read");
        return -1;
    }
    return 0;
}

static void f_data(void *ctx, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len)
{
    memcpy(((struct fake *)ctx)->rbuf + off, buf, len);
}

static int f_end(void *ctx, uint16_t cid, bool last, bool success, char *err, size_t errlen)
{
    ((struct fake *)ctx)->ends++;
    return 0;
}

static int f_r2t(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct fake *f = ctx;
    if (cid != 2) {
        snprintf(err, errlen, "R2T for cid %u", cid);
        return -1;
    }
    f->r2ts++;
    f->r2t_len += len;
    return 0;
}

static const struct nvmfh_rx_ops fops = { f_resp, f_begin, f_data, f_end, f_r2t };

/* A stream: C2HData (8 KiB, pdo padded to 32), R2T, CapsuleResp x2. */
static size_t build_stream(uint8_t *s, const uint8_t *payload)
{
    size_t n = 0;
    struct nvme_tcp_c2h_data_hdr d = { .ch = { .pdu_type = NVME_TCP_PDU_C2H_DATA,
                                               .flags = NVME_TCP_F_DATA_LAST,
                                               .hlen = 24,
                                               .pdo = 32,
                                               .plen = 32 + 8192 },
                                       .cccid = 1,
                                       .datal = 8192 };
    memcpy(s + n, &d, 24);
    memset(s + n + 24, 0, 8);
    memcpy(s + n + 32, payload, 8192);
    n += 32 + 8192;
    struct nvme_tcp_r2t_hdr r = { .ch = { .pdu_type = NVME_TCP_PDU_R2T, .hlen = 24, .plen = 24 },
                                  .cccid = 2,
                                  .r2tl = 65536 };
    memcpy(s + n, &r, 24);
    n += 24;
    for (uint16_t cid = 1; cid <= 2; cid++) {
        struct nvme_tcp_rsp c = { .ch = { .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24 } };
        c.cqe.cid = cid;
        memcpy(s + n, &c, 24);
        n += 24;
    }
    return n;
}

TEST(rx_any_split)
{
    static uint8_t s[16384], payload[8192];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    size_t n = build_stream(s, payload);
    size_t chunks[] = { 1, 3, 7, 24, 100, 4096, n };
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        struct fake f = { 0 };
        struct nvmfh_rx rx;
        char err[256];
        nvmfh_rx_init(&rx, &fops, &f, true);
        for (size_t o = 0; o < n; o += chunks[k]) {
            size_t take = n - o < chunks[k] ? n - o : chunks[k];
            CHECK_EQ(nvmfh_rx_feed(&rx, s + o, take, NULL, err, sizeof err), 0);
        }
        CHECK(!memcmp(f.rbuf, payload, sizeof payload));
        CHECK_EQ(f.resps, 2);
        CHECK_EQ(f.ends, 1);
        CHECK_EQ(f.r2ts, 1);
        CHECK_EQ(f.r2t_len, 65536);
    }
}

/* The payload of a C2HData taken in place (as host_io.c does for large reads), then the rest fed. */
TEST(rx_direct_payload)
{
    static uint8_t st[16384], payload[8192];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 5 + 1);
    size_t n = build_stream(st, payload);
    struct fake f = { 0 };
    struct nvmfh_rx rx;
    char err[256];
    uint16_t cid;
    uint32_t off;
    nvmfh_rx_init(&rx, &fops, &f, true);
    CHECK_EQ(nvmfh_rx_data_pending(&rx, &cid, &off), 0);
    CHECK_EQ(nvmfh_rx_feed(&rx, st, 32, NULL, err, sizeof err), 0); /* header and pad */
    CHECK_EQ(nvmfh_rx_data_pending(&rx, &cid, &off), 8192);
    CHECK_EQ(cid, 1);
    CHECK_EQ(off, 0);
    memcpy(f.rbuf, st + 32, 8000); /* what a recv() into the buffer does */
    CHECK_EQ(nvmfh_rx_data_direct(&rx, 8000, err, sizeof err), 0);
    CHECK_EQ(nvmfh_rx_data_pending(&rx, &cid, &off), 192);
    CHECK_EQ(off, 8000);
    CHECK_EQ(nvmfh_rx_feed(&rx, st + 32 + 8000, n - 32 - 8000, NULL, err, sizeof err), 0);
    CHECK(!memcmp(f.rbuf, payload, sizeof payload));
    CHECK_EQ(f.ends, 1);
    CHECK_EQ(f.resps, 2);
    CHECK_EQ(nvmfh_rx_data_direct(&rx, 1, err, sizeof err), -1); /* not inside a payload */
    CHECK(strstr(err, "outside"));
}

static void expect_bad(const void *pdu, size_t len, const char *what, bool icdone)
{
    struct fake f = { 0 };
    struct nvmfh_rx rx;
    char err[256] = "";
    nvmfh_rx_init(&rx, &fops, &f, icdone);
    int rc = nvmfh_rx_feed(&rx, pdu, len, NULL, err, sizeof err);
    if (rc != -1 || !strstr(err, what)) {
        fprintf(stderr, "expected an error naming '%s', got rc %d '%s'\n", what, rc, err);
        CHECK(0);
    }
    /* and nothing after a fatal error is taken */
    CHECK_EQ(nvmfh_rx_feed(&rx, pdu, len, NULL, err, sizeof err), -1);
}

TEST(rx_hostile)
{
    uint8_t b[64] = { 0 };
    struct nvme_tcp_common_hdr *ch = (void *)b;
    *ch = (struct nvme_tcp_common_hdr){ .pdu_type = 0x42, .hlen = 24, .plen = 24 };
    expect_bad(b, 24, "type 0x42", true);
    *ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 25, .plen = 25 };
    expect_bad(b, 25, "hlen", true);
    *ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 40 };
    expect_bad(b, 40, "plen", true);
    *ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24, .flags = 1 };
    expect_bad(b, 24, "digest", true);
    *ch = (struct nvme_tcp_common_hdr){ .pdu_type = NVME_TCP_PDU_CAPSULE_RESP, .hlen = 24, .plen = 24 };
    expect_bad(b, 24, "out of sequence", false);
    ((struct nvme_tcp_rsp *)b)->cqe.cid = 9;
    expect_bad(b, 24, "cid 9", true);
    struct nvme_tcp_c2h_data_hdr *d = (void *)b;
    *d = (struct nvme_tcp_c2h_data_hdr){
        .ch = { .pdu_type = NVME_TCP_PDU_C2H_DATA, .hlen = 24, .pdo = 24, .plen = 24 + 16 }, .cccid = 1, .datal = 17
    };
    expect_bad(b, 40, "datal", true);
    d->datal = 16;
    d->datao = 8190;
    expect_bad(b, 40, "outside", true);
    d->datao = 0;
    d->ch.flags = NVME_TCP_F_DATA_SUCCESS;
    expect_bad(b, 40, "SUCCESS without LAST", true);
    d->ch.flags = 0;
    d->ch.pdo = 8;
    expect_bad(b, 40, "pdo", true);
    struct nvme_tcp_r2t_hdr *r = (void *)b;
    *r = (struct nvme_tcp_r2t_hdr){ .ch = { .pdu_type = NVME_TCP_PDU_R2T, .hlen = 24, .plen = 24 },
                                    .cccid = 5,
                                    .r2tl = 10 };
    expect_bad(b, 24, "R2T for cid 5", true);
    r->cccid = 2, r->r2tl = 0;
    expect_bad(b, 24, "r2tl 0", true);
    struct nvme_tcp_term_req_hdr *t = (void *)b;
    *t = (struct nvme_tcp_term_req_hdr){ .ch = { .pdu_type = NVME_TCP_PDU_C2H_TERM_REQ, .hlen = 24, .plen = 24 },
                                         .fes = 2 };
    expect_bad(b, 24, "C2HTermReq fes 0x2", true);
}

/* ---- hostile peers on a real socket ---- */

struct peer {
    int lfd, port;
    int mode; /* 0 accept and stay silent, 1 answer garbage, 2 close at once */
    pthread_t t;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[256];
    if (p->mode == 1) {
        ssize_t k = read(fd, buf, sizeof buf); /* the ICReq */
        (void)k;
        memset(buf, 0xa5, sizeof buf);
        k = write(fd, buf, sizeof buf);
        (void)k;
    }
    if (p->mode != 2) {
        while (read(fd, buf, sizeof buf) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void peer_start(struct peer *p, int mode)
{
    p->mode = mode;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_EQ(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(p->lfd, 4), 0);
    socklen_t l = sizeof a;
    getsockname(p->lfd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    CHECK_EQ(pthread_create(&p->t, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->t, NULL);
    close(p->lfd);
}

static void open_fails(int mode, const char *what)
{
    struct peer p;
    peer_start(&p, mode);
    char uri[160];
    snprintf(uri, sizeof uri,
             "nvmf://127.0.0.1:%d/nqn.2019-05.io.openebs:0b0c7a4e-7d6e-4c83-9e0a-6b1f0e0a1b2c"
             "?connect_timeout_ms=300",
             p.port);
    dp_desc *d = NULL;
    CHECK(dp_desc_open(uri, &d) < 0);
    const char *e = dp_last_error();
    printf("    %s\n", e);
    CHECK(strstr(e, "nvmf://127.0.0.1:") && strstr(e, "nqn.2019-05.io.openebs:0b0c7a4e"));
    CHECK(strstr(e, what));
    peer_stop(&p);
}

TEST(silent_peer_times_out)
{
    open_fails(0, "no answer in time");
}

TEST(garbage_peer_refused)
{
    open_fails(1, "type 0xa5");
}

TEST(closing_peer_refused)
{
    open_fails(2, "admin queue: "); /* closed or reset, as the kernel tells it */
}

TEST(refused_port_named)
{
    struct peer p;
    peer_start(&p, 2);
    int port = p.port;
    peer_stop(&p);
    char uri[128];
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/nqn.a:b", port);
    dp_desc *d = NULL;
    CHECK(dp_desc_open(uri, &d) < 0);
    CHECK(strstr(dp_last_error(), "connect:") && strstr(dp_last_error(), "nqn.a:b"));
    snprintf(uri, sizeof uri, "nvmf://127.0.0.1:%d/nqn.a:b?bogus=1", port);
    CHECK(dp_desc_open(uri, &d) < 0);
    CHECK(strstr(dp_last_error(), "bogus"));
}

const char *dp_nvmf_host_nqn(void); /* public; not in datapath.h yet */

TEST(host_nqn_stable)
{
    uint8_t a[16], b[16];
    const char *n1 = nvmfh_host_nqn(a), *n2 = nvmfh_host_nqn(b);
    CHECK(!strncmp(n1, "nqn.2014-08.org.nvmexpress:uuid:", 32) || getenv("MAYASTOR_NVMF_HOSTNQN"));
    CHECK(n1 == n2 && !memcmp(a, b, 16));
    CHECK(!strcmp(dp_nvmf_host_nqn(), n1)); /* what the agent reports */
}

int main(void)
{
    printf("test_nvmf_host\n");
    RUN(uri_grammar);
    RUN(icresp_checks);
    RUN(rx_any_split);
    RUN(rx_direct_payload);
    RUN(rx_hostile);
    RUN(host_nqn_stable);
    CHECK_EQ(dp_init(1), 0);
    RUN(silent_peer_times_out);
    RUN(garbage_peer_refused);
    RUN(closing_peer_refused);
    RUN(refused_port_named);
    dp_fini();
    printf("ok\n");
    return 0;
}
