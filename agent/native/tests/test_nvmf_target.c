/*
 * test_nvmf_target.c - the NVMe/TCP target driven by a raw NVMe/TCP host
 * over loopback: the normal path (ICReq, Connect, enable, Identify, I/O
 * queue, writes in-capsule and through R2T/H2CData, reads checked by
 * checksum, discovery) and hostile hosts, each of which must end in an
 * error status or a closed connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "datapath.h"
#include "nvmf/pdu.h"
#include "nvmf/target.h"
#include "testlib.h"

#define SUBNQN "nqn.2019-05.io.openebs:6f1e9a3c-1d2b-4c5e-8f70-0123456789ab"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define OTHERHOST "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555"

static int g_port;

struct host {
    int fd;
    bool hd, dd;
    uint16_t cid, cntlid;
    bool sqflow_off, success_seen;
};

static void xwrite(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the target may have closed: the reads tell */
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
}

/* Read exactly n bytes; false on EOF/error. */
static bool xread(int fd, void *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return false;
        p = (uint8_t *)p + r;
        n -= (size_t)r;
    }
    return true;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { .tv_sec = 20 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* a hang fails the test, it does not block it */
    return fd;
}

/* Whether the target closed the connection (EOF after any pending bytes, e.g. a TermReq). */
static bool closed_by_target(int fd, uint8_t *first_type)
{
    uint8_t buf[4096];
    bool first = true;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0)
            return true;
        if (r < 0)
            return errno == ECONNRESET;
        if (first && first_type)
            *first_type = buf[0];
        first = false;
    }
}

static void h_icreq(struct host *h, bool hd, bool dd)
{
    struct nvme_tcp_icreq req;
    nvmf_icreq_init(&req, hd, dd);
    xwrite(h->fd, &req, sizeof req);
    struct nvme_tcp_icresp rsp;
    CHECK(xread(h->fd, &rsp, sizeof rsp));
    CHECK_EQ(rsp.ch.pdu_type, NVME_TCP_PDU_ICRESP);
    struct nvmf_pdu_err err;
    uint32_t max;
    CHECK_EQ(nvmf_icresp_check(&rsp, &max, &err), 0);
    h->hd = hd;
    h->dd = dd;
}

/* Send a capsule with optional in-capsule data (or a transport SGL of tlen bytes). */
static void h_cmd(struct host *h, struct nvme_sqe *sqe, const void *icd, uint32_t icdlen, uint32_t tlen)
{
    uint8_t pdu[NVME_TCP_CMD_HLEN + 4];
    struct nvme_tcp_cmd *cmd = (struct nvme_tcp_cmd *)pdu;
    sqe->cid = ++h->cid;
    sqe->flags = NVME_CMD_PSDT_SGL;
    sqe->sgl1.id = icdlen ? NVME_TCP_SGL_INCAPSULE : NVME_TCP_SGL_TRANSPORT;
    sqe->sgl1.length = icdlen ? icdlen : tlen;
    sqe->sgl1.address = 0;
    memset(cmd, 0, sizeof *cmd);
    nvmf_ch_init(&cmd->ch, NVME_TCP_PDU_CAPSULE_CMD, h->hd, h->dd, NVME_TCP_CMD_HLEN, icdlen);
    cmd->sqe = *sqe;
    uint32_t hl = NVME_TCP_CMD_HLEN;
    if (h->hd) {
        uint32_t d = nvmf_digest(pdu, hl);
        memcpy(pdu + hl, &d, 4);
        hl += 4;
    }
    xwrite(h->fd, pdu, hl);
    if (icdlen) {
        xwrite(h->fd, icd, icdlen);
        if (h->dd) {
            uint32_t d = nvmf_digest(icd, icdlen);
            xwrite(h->fd, &d, 4);
        }
    }
}

/* Read PDUs until the CapsuleResp: C2HData goes to data, an R2T is answered from out. */
static bool h_wait(struct host *h, struct nvme_cqe *cqe, void *data, const uint8_t *out)
{
    for (;;) {
        struct nvme_tcp_common_hdr ch;
        if (!xread(h->fd, &ch, sizeof ch))
            return false;
        uint8_t rest[256];
        uint32_t hl = ch.hlen + (h->hd && ch.pdu_type != NVME_TCP_PDU_C2H_TERM_REQ ? 4 : 0);
        CHECK(hl >= 8 && hl - 8 <= sizeof rest);
        if (!xread(h->fd, rest, hl - 8))
            return false;
        if (ch.pdu_type == NVME_TCP_PDU_CAPSULE_RESP) {
            memcpy(cqe, rest, sizeof *cqe);
            return true;
        }
        if (ch.pdu_type == NVME_TCP_PDU_C2H_DATA) {
            struct nvme_tcp_c2h_data_hdr dh;
            memcpy(&dh, &ch, 8);
            memcpy((uint8_t *)&dh + 8, rest, sizeof dh - 8);
            CHECK(data);
            CHECK(xread(h->fd, (uint8_t *)data + dh.datao, dh.datal));
            if (h->dd) {
                uint32_t d;
                CHECK(xread(h->fd, &d, 4));
                CHECK_EQ(d, nvmf_digest((uint8_t *)data + dh.datao, dh.datal));
            }
            if (ch.flags & NVME_TCP_F_DATA_SUCCESS) { /* no CapsuleResp follows */
                memset(cqe, 0, sizeof *cqe);
                cqe->cid = dh.cccid;
                h->success_seen = true;
                return true;
            }
            continue;
        }
        if (ch.pdu_type == NVME_TCP_PDU_R2T) {
            struct nvme_tcp_r2t_hdr r;
            memcpy(&r, &ch, 8);
            memcpy((uint8_t *)&r + 8, rest, sizeof r - 8);
            CHECK(out);
            /* answer in two H2CData PDUs to exercise datao */
            uint32_t half = r.r2tl / 2;
            for (int i = 0; i < 2; i++) {
                uint8_t hdr[NVME_TCP_DATA_HLEN + 4];
                struct nvme_tcp_h2c_data_hdr *d = (struct nvme_tcp_h2c_data_hdr *)hdr;
                uint32_t off = i ? half : 0, len = i ? r.r2tl - half : half;
                memset(d, 0, sizeof *d);
                nvmf_ch_init(&d->ch, NVME_TCP_PDU_H2C_DATA, h->hd, h->dd, NVME_TCP_DATA_HLEN, len);
                d->ch.flags |= i ? NVME_TCP_F_DATA_LAST : 0;
                d->cccid = r.cccid;
                d->ttag = r.ttag;
                d->datao = r.r2to + off;
                d->datal = len;
                uint32_t hl2 = NVME_TCP_DATA_HLEN;
                if (h->hd) {
                    uint32_t dg = nvmf_digest(hdr, hl2);
                    memcpy(hdr + hl2, &dg, 4);
                    hl2 += 4;
                }
                xwrite(h->fd, hdr, hl2);
                xwrite(h->fd, out + d->datao, len);
                if (h->dd) {
                    uint32_t dg = nvmf_digest(out + d->datao, len);
                    xwrite(h->fd, &dg, 4);
                }
            }
            continue;
        }
        return false; /* TermReq or anything else */
    }
}

static uint16_t h_connect(struct host *h, uint16_t qid, const char *subnqn, const char *hostnqn, uint32_t kato,
                          uint32_t *cdw0)
{
    struct nvmf_connect_cmd cmd = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_CONNECT };
    struct nvmf_connect_data d;
    memset(&d, 0, sizeof d);
    d.cntlid = qid ? h->cntlid : 0xffff;
    strcpy(d.subnqn, subnqn);
    strcpy(d.hostnqn, hostnqn);
    cmd.qid = qid;
    cmd.sqsize = qid ? 63 : 31;
    cmd.kato = kato;
    cmd.cattr = h->sqflow_off ? NVMF_CONNECT_CATTR_DISABLE_SQ_FC : 0;
    h_cmd(h, (struct nvme_sqe *)&cmd, &d, sizeof d, 0);
    struct nvme_cqe cqe;
    CHECK(h_wait(h, &cqe, NULL, NULL));
    if (!cqe.status && !qid)
        h->cntlid = (uint16_t)cqe.cdw0;
    if (cdw0)
        *cdw0 = cqe.cdw0;
    return cqe.status;
}

static uint16_t h_simple(struct host *h, struct nvme_sqe *sqe, void *data, uint32_t len, uint32_t *cdw0)
{
    struct nvme_cqe cqe;
    h_cmd(h, sqe, NULL, 0, len);
    CHECK(h_wait(h, &cqe, data, NULL));
    if (cdw0)
        *cdw0 = cqe.cdw0;
    return cqe.status;
}

static void h_prop_set_cc(struct host *h, uint32_t cc)
{
    struct nvmf_property_set_cmd p = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_PROPERTY_SET };
    p.ofst = NVME_REG_CC;
    p.value = cc;
    CHECK_EQ(h_simple(h, (struct nvme_sqe *)&p, NULL, 0, NULL), 0);
}

/* Admin queue up and enabled. */
static void h_admin(struct host *h, bool hd, bool dd, uint32_t kato)
{
    memset(h, 0, sizeof *h);
    h->fd = dial();
    h_icreq(h, hd, dd);
    CHECK_EQ(h_connect(h, 0, SUBNQN, HOSTNQN, kato, NULL), 0);
    struct nvmf_property_get_cmd g = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_PROPERTY_GET, .attrib = 1 };
    uint32_t lo;
    CHECK_EQ(h_simple(h, (struct nvme_sqe *)&g, NULL, 0, &lo), 0);
    CHECK_EQ(lo & 0xffff, 127); /* CAP.MQES */
    h_prop_set_cc(h, NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT));
}

TEST(normal_path)
{
    struct host a, q;
    h_admin(&a, true, true, 0);
    uint8_t *id = calloc(1, 4096);
    struct nvme_sqe s = { .opc = NVME_ADM_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL };
    CHECK_EQ(h_simple(&a, &s, id, 4096, NULL), 0);
    struct nvme_id_ctrl *ic = (struct nvme_id_ctrl *)id;
    CHECK_EQ(ic->cntrltype, NVME_CTRL_TYPE_IO);
    CHECK_EQ(ic->cntlid, a.cntlid);
    CHECK(strcmp(ic->subnqn, SUBNQN) == 0);
    CHECK_EQ(ic->ioccsz, (64 + NVMF_ICD_MAX) / 16);
    s = (struct nvme_sqe){ .opc = NVME_ADM_IDENTIFY, .nsid = 1, .cdw10 = NVME_ID_CNS_NS };
    CHECK_EQ(h_simple(&a, &s, id, 4096, NULL), 0);
    struct nvme_id_ns *ns = (struct nvme_id_ns *)id;
    CHECK_EQ(ns->nsze, (4u << 20) / 512);
    CHECK_EQ(ns->anagrpid, 1);
    CHECK_EQ(ns->nguid[0], 0x6f); /* from the share's uuid */
    s = (struct nvme_sqe){ .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0x00010001 };
    uint32_t cdw0;
    CHECK_EQ(h_simple(&a, &s, NULL, 0, &cdw0), 0);
    CHECK_EQ(cdw0, 0x00010001);
    s = (struct nvme_sqe){ .opc = NVME_ADM_GET_LOG_PAGE, .cdw10 = NVME_LOG_ANA | (((4096 / 4) - 1) << 16) };
    CHECK_EQ(h_simple(&a, &s, id, 4096, NULL), 0);
    CHECK_EQ(((struct nvme_ana_group_desc *)(id + 16))->state, NVME_ANA_OPTIMIZED);
    s = (struct nvme_sqe){ .opc = 0xc3 };
    CHECK(NVME_STATUS_SC(h_simple(&a, &s, NULL, 0, NULL)) == NVME_SC_INVALID_OPCODE);
    s = (struct nvme_sqe){ .opc = NVME_ADM_IDENTIFY, .nsid = 1, .cdw10 = NVME_ID_CNS_NS_DESC_LIST };
    CHECK_EQ(h_simple(&a, &s, id, 4096, NULL), 0);
    CHECK_EQ(id[0], NVME_NIDT_NGUID);
    CHECK_EQ(id[4], 0x6f);
    s = (struct nvme_sqe){ .opc = NVME_ADM_IDENTIFY, .cdw10 = NVME_ID_CNS_NS_ACTIVE_LIST };
    CHECK_EQ(h_simple(&a, &s, id, 4096, NULL), 0);
    CHECK_EQ(id[0], 1);
    s = (struct nvme_sqe){ .opc = NVME_ADM_ABORT, .cdw10 = 5 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, &cdw0), 0);
    CHECK_EQ(cdw0 & 1, 1); /* not aborted */
    s = (struct nvme_sqe){ .opc = NVME_ADM_KEEP_ALIVE };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    s = (struct nvme_sqe){ .opc = NVME_ADM_GET_LOG_PAGE, .cdw10 = 0x7f | (127u << 16) };
    CHECK(NVME_STATUS_SC(h_simple(&a, &s, id, 512, NULL)) == NVME_SC_INVALID_LOG_PAGE);
    /* four AERs are held (no reply), the fifth is over the limit */
    struct nvme_cqe acqe;
    for (int i = 0; i < 5; i++) {
        s = (struct nvme_sqe){ .opc = NVME_ADM_ASYNC_EVENT_REQUEST };
        h_cmd(&a, &s, NULL, 0, 0);
    }
    CHECK(h_wait(&a, &acqe, NULL, NULL));
    CHECK_EQ(acqe.cid, a.cid);
    CHECK(NVME_STATUS_SC(acqe.status) == NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED);
    free(id);
    CHECK_EQ(dp_nvmf_export_connections(SUBNQN), 1);

    /* an I/O queue: writes in-capsule (4 KiB) and by R2T (64 KiB), read back by checksum */
    memset(&q, 0, sizeof q);
    q.fd = dial();
    q.cntlid = a.cntlid;
    h_icreq(&q, true, true);
    CHECK_EQ(h_connect(&q, 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    CHECK_EQ(dp_nvmf_export_connections(SUBNQN), 2);
    uint8_t *w = malloc(65536), *r = malloc(65536);
    test_fill(w, 65536, 8192, 7);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw10 = 16, .cdw12 = 7 };
    struct nvme_cqe cqe;
    h_cmd(&q, &s, w, 4096, 0);
    CHECK(h_wait(&q, &cqe, NULL, NULL));
    CHECK_EQ(cqe.status, 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw10 = 16, .cdw12 = 127 | NVME_RW_FUA };
    h_cmd(&q, &s, NULL, 0, 65536);
    CHECK(h_wait(&q, &cqe, NULL, w));
    CHECK_EQ(cqe.status, 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 16, .cdw12 = 127 };
    CHECK_EQ(h_simple(&q, &s, r, 65536, NULL), 0);
    CHECK(nvmf_digest(r, 65536) == nvmf_digest(w, 65536));
    /* out of range, wrong nsid, flush, write zeroes, deallocate */
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 8191, .cdw12 = 1 };
    CHECK(NVME_STATUS_SC(h_simple(&q, &s, r, 1024, NULL)) == NVME_SC_LBA_OUT_OF_RANGE);
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 2, .cdw12 = 0 };
    CHECK(NVME_STATUS_SC(h_simple(&q, &s, r, 512, NULL)) == NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
    s = (struct nvme_sqe){ .opc = NVME_IO_FLUSH, .nsid = 1 };
    CHECK_EQ(h_simple(&q, &s, NULL, 0, NULL), 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE_ZEROES, .nsid = 1, .cdw10 = 16, .cdw12 = 7 };
    CHECK_EQ(h_simple(&q, &s, NULL, 0, NULL), 0);
    struct nvme_dsm_range rg = { .nlb = 8, .slba = 24 };
    s = (struct nvme_sqe){ .opc = NVME_IO_DATASET_MANAGEMENT, .nsid = 1, .cdw11 = NVME_DSM_ATTR_DEALLOCATE };
    h_cmd(&q, &s, &rg, sizeof rg, 0);
    CHECK(h_wait(&q, &cqe, NULL, NULL));
    CHECK_EQ(cqe.status, 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 16, .cdw12 = 7 };
    CHECK_EQ(h_simple(&q, &s, r, 4096, NULL), 0);
    for (int i = 0; i < 4096; i++)
        CHECK_EQ(r[i], 0);
    /* a second I/O queue sees the same data; a third is beyond the two granted */
    struct host q2 = { 0 };
    q2.fd = dial();
    q2.cntlid = a.cntlid;
    h_icreq(&q2, false, false);
    CHECK_EQ(h_connect(&q2, 2, SUBNQN, HOSTNQN, 0, NULL), 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 32, .cdw12 = 7 };
    CHECK_EQ(h_simple(&q2, &s, r, 4096, NULL), 0);
    CHECK(test_check_fill(r, 4096, 8192 + 8192, 7));
    struct host q3 = { 0 };
    q3.fd = dial();
    q3.cntlid = a.cntlid;
    h_icreq(&q3, false, false);
    CHECK_EQ(NVME_STATUS_SC(h_connect(&q3, 3, SUBNQN, HOSTNQN, 0, NULL)), NVMF_SC_INVALID_PARAM);
    close(q3.fd);
    struct nvmf_fabric_cmd disc = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_DISCONNECT };
    CHECK_EQ(h_simple(&q2, (struct nvme_sqe *)&disc, NULL, 0, NULL), 0);
    CHECK(closed_by_target(q2.fd, NULL)); /* Disconnect: the queue closes after the reply */
    close(q2.fd);
    free(w);
    free(r);
    close(q.fd);
    close(a.fd);
}

/* Four I/O queues of one controller land on different reactors (admin on
 * the device's, queue n on the (n - 1)th after it): each writes its own
 * region with several commands in flight, each reads another's back by
 * checksum; closing the admin queue closes every I/O queue on its reactor. */
TEST(queues_over_reactors)
{
    struct host a, q[4];
    h_admin(&a, false, false, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0x00030003 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    uint8_t *w = malloc(8 * 16384), *r = malloc(16384);
    for (int i = 0; i < 4; i++) {
        memset(&q[i], 0, sizeof q[i]);
        q[i].fd = dial();
        q[i].cntlid = a.cntlid;
        h_icreq(&q[i], i & 1, i & 1);
        CHECK_EQ(h_connect(&q[i], (uint16_t)(i + 1), SUBNQN, HOSTNQN, 0, NULL), 0);
    }
    test_fill(w, 8 * 16384, 1 << 20, 77);
    for (int i = 0; i < 4; i++) /* two writes in flight per queue: in-capsule and by R2T */
        for (int j = 0; j < 2; j++) {
            s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw10 = 2048 + (i * 2 + j) * 32, .cdw12 = 31 };
            h_cmd(&q[i], &s, j ? NULL : w + (i * 2 + j) * 16384, j ? 0 : 16384, j ? 16384 : 0);
        }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            struct nvme_cqe cqe;
            CHECK(h_wait(&q[i], &cqe, NULL, w + (i * 2 + 1) * 16384));
            CHECK_EQ(cqe.status, 0);
        }
    for (int i = 0; i < 8; i++) {
        s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 2048 + i * 32, .cdw12 = 31 };
        CHECK_EQ(h_simple(&q[(i / 2 + 1) % 4], &s, r, 16384, NULL), 0);
        CHECK(nvmf_digest(r, 16384) == nvmf_digest(w + i * 16384, 16384));
    }
    /* CC.EN=0 resets the controller: every I/O queue goes, a held AER is aborted, the admin queue stays */
    s = (struct nvme_sqe){ .opc = NVME_ADM_ASYNC_EVENT_REQUEST };
    h_cmd(&a, &s, NULL, 0, 0);
    struct nvmf_property_set_cmd p = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_PROPERTY_SET };
    p.ofst = NVME_REG_CC;
    h_cmd(&a, (struct nvme_sqe *)&p, NULL, 0, 0);
    struct nvme_cqe cqe[2];
    CHECK(h_wait(&a, &cqe[0], NULL, NULL) && h_wait(&a, &cqe[1], NULL, NULL));
    CHECK_EQ(cqe[0].cid, a.cid - 1); /* the AER, aborted before the reset's own reply */
    CHECK_EQ(NVME_STATUS_SC(cqe[0].status), NVME_SC_ABORTED_SQ_DELETION);
    CHECK_EQ(cqe[1].status, 0);
    for (int i = 0; i < 4; i++) {
        CHECK(closed_by_target(q[i].fd, NULL));
        close(q[i].fd);
    }
    /* enabled again, an I/O queue joins; closing the admin queue closes it (on its reactor) */
    h_prop_set_cc(&a, NVME_CC_EN);
    memset(&q[0], 0, sizeof q[0]);
    q[0].fd = dial();
    q[0].cntlid = a.cntlid;
    h_icreq(&q[0], false, false);
    CHECK_EQ(h_connect(&q[0], 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    close(a.fd);
    CHECK(closed_by_target(q[0].fd, NULL));
    close(q[0].fd);
    free(w);
    free(r);
}

TEST(discovery_lists_allowed_subsystems)
{
    struct host d = { 0 };
    d.fd = dial();
    h_icreq(&d, false, false);
    CHECK_EQ(h_connect(&d, 0, NVMF_DISCOVERY_NQN, HOSTNQN, 0, NULL), 0);
    h_prop_set_cc(&d, NVME_CC_EN);
    uint8_t *log = calloc(1, 4096);
    struct nvme_sqe s = { .opc = NVME_ADM_GET_LOG_PAGE, .cdw10 = NVME_LOG_DISCOVERY | (((4096 / 4) - 1) << 16) };
    CHECK_EQ(h_simple(&d, &s, log, 4096, NULL), 0);
    struct nvmf_disc_log_hdr *hdr = (struct nvmf_disc_log_hdr *)log;
    CHECK_EQ(hdr->numrec, 1); /* the restricted subsystem is not listed for this host */
    struct nvmf_disc_log_entry *e = (struct nvmf_disc_log_entry *)(log + 1024);
    CHECK(strcmp(e->subnqn, SUBNQN) == 0);
    CHECK_EQ(e->trtype, NVMF_TRTYPE_TCP);
    CHECK(strncmp(e->traddr, "127.0.0.1 ", 10) == 0);
    CHECK_EQ(atoi(e->trsvcid), g_port);
    free(log);
    close(d.fd);
}

TEST(connect_refusals)
{
    struct host h = { 0 };
    uint32_t cdw0;
    h.fd = dial();
    h_icreq(&h, false, false);
    uint16_t st = h_connect(&h, 0, "nqn.2019-05.io.openebs:nope", HOSTNQN, 0, &cdw0);
    CHECK_EQ(NVME_STATUS_SCT(st), NVME_SCT_COMMAND_SPECIFIC);
    CHECK_EQ(NVME_STATUS_SC(st), NVMF_SC_INVALID_PARAM);
    CHECK_EQ(cdw0, NVMF_INVALID_PARAM_CDW0(1, 256));
    close(h.fd);
    h.fd = dial();
    h_icreq(&h, false, false);
    st = h_connect(&h, 0, "nqn.2019-05.io.openebs:restricted", HOSTNQN, 0, NULL);
    CHECK_EQ(NVME_STATUS_SC(st), NVMF_SC_INVALID_HOST);
    close(h.fd);
    h.fd = dial();
    h_icreq(&h, false, false);
    CHECK_EQ(h_connect(&h, 0, "nqn.2019-05.io.openebs:restricted", OTHERHOST, 0, NULL), 0);
    close(h.fd);
    /* an I/O queue for a controller that does not exist */
    h.fd = dial();
    h.cntlid = 4000;
    h_icreq(&h, false, false);
    st = h_connect(&h, 1, SUBNQN, HOSTNQN, 0, NULL);
    CHECK_EQ(NVME_STATUS_SC(st), NVMF_SC_INVALID_PARAM);
    close(h.fd);
    /* commands before Connect */
    h.fd = dial();
    h_icreq(&h, false, false);
    struct nvme_sqe s = { .opc = NVME_ADM_IDENTIFY, .cdw10 = 1 };
    CHECK(NVME_STATUS_SC(h_simple(&h, &s, NULL, 4096, NULL)) == NVME_SC_COMMAND_SEQUENCE_ERROR);
    close(h.fd);
}

static void expect_termreq(const void *bytes, size_t n, bool ic, bool hd)
{
    struct host h = { 0 };
    h.fd = dial();
    if (ic)
        h_icreq(&h, hd, false);
    xwrite(h.fd, bytes, n);
    uint8_t t = 0;
    CHECK(closed_by_target(h.fd, &t));
    CHECK_EQ(t, NVME_TCP_PDU_C2H_TERM_REQ);
    close(h.fd);
}

TEST(hostile_pdus)
{
    struct nvme_tcp_icreq req;
    nvmf_icreq_init(&req, false, false);
    req.pfv = 7;
    expect_termreq(&req, sizeof req, false, false); /* bad PFV */
    nvmf_icreq_init(&req, false, false);
    req.ch.plen = 100;
    expect_termreq(&req, 8, false, false); /* ICReq plen */
    uint8_t junk[72] = { 0x42, 0, 72, 0, 72 };
    expect_termreq(junk, sizeof junk, true, false); /* unknown PDU type */
    uint8_t big[8] = { NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 72, 0, 0, 0, 0x40 };
    expect_termreq(big, sizeof big, true, false); /* plen 1 GiB */
    uint8_t cap[72 + 4] = { NVME_TCP_PDU_CAPSULE_CMD, NVME_TCP_F_HDGST, 72, 0, 76 };
    expect_termreq(cap, sizeof cap, true, true); /* header digest mismatch */
    uint8_t h2c[24] = { NVME_TCP_PDU_H2C_DATA, NVME_TCP_F_DATA_LAST, 24, 24, 28, 0, 0, 0, 1, 0, 77, 0 };
    uint8_t h2cd[28] = { 0 };
    memcpy(h2cd, h2c, 24);
    expect_termreq(h2cd, sizeof h2cd, true, false); /* H2CData for an unknown ttag */
    /* in-capsule data beyond the limit */
    uint8_t over[72] = { NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 72 };
    uint32_t plen = 72 + NVMF_ICD_MAX + 4096;
    memcpy(over + 4, &plen, 4);
    expect_termreq(over, sizeof over, true, false);
}

TEST(data_digest_mismatch_closes)
{
    struct host h;
    h_admin(&h, false, true, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_ASYNC_EVENT };
    uint8_t data[64] = { 1 };
    s.cid = 99;
    s.flags = NVME_CMD_PSDT_SGL;
    s.sgl1.id = NVME_TCP_SGL_INCAPSULE;
    s.sgl1.length = sizeof data;
    struct nvme_tcp_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    nvmf_ch_init(&cmd.ch, NVME_TCP_PDU_CAPSULE_CMD, false, true, NVME_TCP_CMD_HLEN, sizeof data);
    cmd.sqe = s;
    xwrite(h.fd, &cmd, sizeof cmd);
    xwrite(h.fd, data, sizeof data);
    uint32_t bad = nvmf_digest(data, sizeof data) ^ 1;
    xwrite(h.fd, &bad, 4);
    CHECK(closed_by_target(h.fd, NULL));
    close(h.fd);
}

TEST(disconnect_mid_transfer)
{
    struct host a, q;
    h_admin(&a, false, false, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    memset(&q, 0, sizeof q);
    q.fd = dial();
    q.cntlid = a.cntlid;
    h_icreq(&q, false, false);
    CHECK_EQ(h_connect(&q, 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw12 = 127 };
    h_cmd(&q, &s, NULL, 0, 65536);
    struct nvme_tcp_r2t_hdr r2t;
    CHECK(xread(q.fd, &r2t, sizeof r2t));
    CHECK_EQ(r2t.ch.pdu_type, NVME_TCP_PDU_R2T);
    CHECK_EQ(r2t.r2tl, 65536);
    /* half of the data, then gone */
    struct nvme_tcp_h2c_data_hdr d;
    memset(&d, 0, sizeof d);
    nvmf_ch_init(&d.ch, NVME_TCP_PDU_H2C_DATA, false, false, NVME_TCP_DATA_HLEN, 65536);
    d.cccid = r2t.cccid;
    d.ttag = r2t.ttag;
    d.datal = 65536;
    xwrite(q.fd, &d, sizeof d);
    uint8_t *half = calloc(1, 32768);
    xwrite(q.fd, half, 32768);
    free(half);
    close(q.fd);
    close(a.fd);
}

TEST(h2c_data_beyond_the_command)
{
    struct host a, q;
    h_admin(&a, false, false, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    memset(&q, 0, sizeof q);
    q.fd = dial();
    q.cntlid = a.cntlid;
    h_icreq(&q, false, false);
    CHECK_EQ(h_connect(&q, 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw12 = 7 };
    h_cmd(&q, &s, NULL, 0, 4096);
    struct nvme_tcp_r2t_hdr r2t;
    CHECK(xread(q.fd, &r2t, sizeof r2t));
    CHECK_EQ(r2t.r2tl, 4096);
    struct nvme_tcp_h2c_data_hdr d;
    memset(&d, 0, sizeof d);
    nvmf_ch_init(&d.ch, NVME_TCP_PDU_H2C_DATA, false, false, NVME_TCP_DATA_HLEN, 8192);
    d.cccid = r2t.cccid;
    d.ttag = r2t.ttag;
    d.datal = 8192; /* twice what the command moves */
    xwrite(q.fd, &d, sizeof d);
    uint8_t t = 0;
    CHECK(closed_by_target(q.fd, &t));
    CHECK_EQ(t, NVME_TCP_PDU_C2H_TERM_REQ);
    close(q.fd);
    close(a.fd);
}

TEST(handshake_deadline)
{
    dp_target_limits l;
    CHECK_EQ(dp_target_get_limits(&l), 0);
    uint32_t old = l.handshake_timeout_ms;
    l.handshake_timeout_ms = 200;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    int fd = dial(); /* connects, then says nothing */
    CHECK(closed_by_target(fd, NULL));
    close(fd);
    struct host h = { 0 };
    h.fd = dial();
    h_icreq(&h, false, false); /* ICReq but no Connect */
    CHECK(closed_by_target(h.fd, NULL));
    close(h.fd);
    l.handshake_timeout_ms = old;
    CHECK_EQ(dp_target_set_limits(&l), 0);
}

/* 16 pipelined 128 KiB reads and writes on a 1 MiB connection budget: the target waits for memory, never fails. */
TEST(memory_back_pressure)
{
    dp_target_limits l, old;
    CHECK_EQ(dp_target_get_limits(&old), 0);
    l = old;
    l.conn_memory_budget = 1u << 20;
    CHECK_EQ(dp_target_set_limits(&l), 0);
    struct host a, q;
    h_admin(&a, false, false, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    memset(&q, 0, sizeof q);
    q.fd = dial();
    q.cntlid = a.cntlid;
    h_icreq(&q, false, false);
    CHECK_EQ(h_connect(&q, 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    enum { N = 16, BS = 131072 };
    uint8_t *w = malloc((size_t)N * BS), *r = calloc(N, BS);
    test_fill(w, (uint64_t)N * BS, 0, 11);
    struct nvme_cqe cqe;
    for (int i = 0; i < N; i++) { /* writes one by one (R2T each), then pipelined reads */
        s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw10 = (uint32_t)i * 256, .cdw12 = 255 };
        h_cmd(&q, &s, NULL, 0, BS);
        CHECK(h_wait(&q, &cqe, NULL, w + (size_t)i * BS));
        CHECK_EQ(cqe.status, 0);
    }
    uint16_t first = (uint16_t)(q.cid + 1);
    for (int i = 0; i < N; i++) {
        s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = (uint32_t)i * 256, .cdw12 = 255 };
        h_cmd(&q, &s, NULL, 0, BS);
    }
    for (int done = 0; done < N;) {
        struct nvme_tcp_common_hdr ch;
        CHECK(xread(q.fd, &ch, sizeof ch));
        uint8_t rest[32];
        CHECK(xread(q.fd, rest, ch.hlen - 8u));
        if (ch.pdu_type == NVME_TCP_PDU_C2H_DATA) {
            struct nvme_tcp_c2h_data_hdr dh;
            memcpy(&dh, &ch, 8);
            memcpy((uint8_t *)&dh + 8, rest, sizeof dh - 8);
            CHECK(dh.cccid >= first && dh.cccid < first + N && dh.datao + dh.datal <= BS);
            CHECK(xread(q.fd, r + (size_t)(dh.cccid - first) * BS + dh.datao, dh.datal));
        } else {
            CHECK_EQ(ch.pdu_type, NVME_TCP_PDU_CAPSULE_RESP);
            memcpy(&cqe, rest, sizeof cqe);
            CHECK_EQ(cqe.status, 0);
            done++;
        }
    }
    CHECK(nvmf_digest(r, (size_t)N * BS) == nvmf_digest(w, (size_t)N * BS));
    dp_target_stats st;
    CHECK_EQ(dp_target_stats_get(&st), 0);
    /* whether a read had to wait depends on how the capsules arrived (one recv or several):
     * printed, not checked */
    printf("    memory waits so far: %llu\n", (unsigned long long)st.memory_waits);
    free(w);
    free(r);
    close(q.fd);
    close(a.fd);
    CHECK_EQ(dp_target_set_limits(&old), 0);
}

TEST(sq_flow_control_off_reads_end_with_c2h_success)
{
    struct host a, q;
    h_admin(&a, false, false, 0);
    struct nvme_sqe s = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES, .cdw11 = 0 };
    CHECK_EQ(h_simple(&a, &s, NULL, 0, NULL), 0);
    memset(&q, 0, sizeof q);
    q.fd = dial();
    q.cntlid = a.cntlid;
    q.sqflow_off = true;
    h_icreq(&q, false, true);
    CHECK_EQ(h_connect(&q, 1, SUBNQN, HOSTNQN, 0, NULL), 0);
    uint8_t *w = malloc(8192), *r = malloc(8192);
    test_fill(w, 8192, 4096, 3);
    s = (struct nvme_sqe){ .opc = NVME_IO_WRITE, .nsid = 1, .cdw10 = 8, .cdw12 = 15 };
    struct nvme_cqe cqe;
    h_cmd(&q, &s, w, 8192, 0);
    CHECK(h_wait(&q, &cqe, NULL, NULL));
    CHECK_EQ(cqe.status, 0);
    CHECK(!q.success_seen);
    s = (struct nvme_sqe){ .opc = NVME_IO_READ, .nsid = 1, .cdw10 = 8, .cdw12 = 15 };
    CHECK_EQ(h_simple(&q, &s, r, 8192, NULL), 0);
    CHECK(q.success_seen);
    CHECK(nvmf_digest(r, 8192) == nvmf_digest(w, 8192));
    free(w);
    free(r);
    close(q.fd);
    close(a.fd);
}

TEST(per_export_connection_cap)
{
    dp_target_limits l, old;
    CHECK_EQ(dp_target_get_limits(&old), 0);
    l = old;
    l.max_connections_per_export = 1;
    while (dp_nvmf_export_connections(SUBNQN) > 0) /* earlier tests' queues detach as the target sees EOF */
        usleep(1000);
    CHECK_EQ(dp_target_set_limits(&l), 0);
    struct host a, b = { 0 };
    h_admin(&a, false, false, 0);
    b.fd = dial();
    h_icreq(&b, false, false);
    uint16_t st = h_connect(&b, 0, SUBNQN, HOSTNQN, 0, NULL);
    CHECK_EQ(NVME_STATUS_SCT(st), NVME_SCT_COMMAND_SPECIFIC);
    CHECK_EQ(NVME_STATUS_SC(st), NVMF_SC_CONTROLLER_BUSY);
    close(b.fd);
    close(a.fd);
    CHECK_EQ(dp_target_set_limits(&old), 0);
}

TEST(unshare_with_connected_host)
{
    CHECK_EQ(dp_nvmf_share("malloc:///nvu?size_mb=1", "nqn.2019-05.io.openebs:gone", NULL, NULL), 0);
    struct host h = { 0 };
    h.fd = dial();
    h_icreq(&h, false, false);
    CHECK_EQ(h_connect(&h, 0, "nqn.2019-05.io.openebs:gone", HOSTNQN, 0, NULL), 0);
    CHECK_EQ(dp_nvmf_export_connections("nqn.2019-05.io.openebs:gone"), 1);
    CHECK_EQ(dp_nvmf_unshare("nqn.2019-05.io.openebs:gone"), 0);
    CHECK(closed_by_target(h.fd, NULL));
    close(h.fd);
    CHECK_EQ(dp_nvmf_export_connections("nqn.2019-05.io.openebs:gone"), -ENOENT);
}

TEST(keep_alive_expiry)
{
    struct host h;
    h_admin(&h, false, false, 1000); /* KATO 1 s, then silence */
    CHECK(closed_by_target(h.fd, NULL));
    close(h.fd);
}

TEST(share_validation)
{
    CHECK_EQ(dp_nvmf_share("malloc:///x?size_mb=1", "iqn.bad", NULL, NULL), -EINVAL);
    CHECK(strstr(dp_last_error(), "iqn.bad"));
    CHECK_EQ(dp_nvmf_share("malloc:///x?size_mb=1", "nqn.2019-05.io.openebs:x", "not-a-uuid", NULL), -EINVAL);
    CHECK(strstr(dp_last_error(), "not-a-uuid"));
    CHECK_EQ(dp_nvmf_share("malloc:///x?size_mb=1", NVMF_DISCOVERY_NQN, NULL, NULL), -EINVAL);
}

int main(void)
{
    printf("test_nvmf_target\n");
    CHECK_EQ(dp_init(3), 0);
    CHECK_EQ(dp_nvmf_listen("127.0.0.1", 0, NULL), 0);
    g_port = dp_nvmf_port();
    CHECK(g_port > 0);
    CHECK_EQ(dp_nvmf_share("malloc:///nvt?size_mb=4", SUBNQN, "6f1e9a3c-1d2b-4c5e-8f70-0123456789ab", HOSTNQN), 0);
    CHECK_EQ(dp_nvmf_share("malloc:///nvr?size_mb=1", "nqn.2019-05.io.openebs:restricted", NULL, OTHERHOST), 0);
    RUN(normal_path);
    RUN(queues_over_reactors);
    RUN(discovery_lists_allowed_subsystems);
    RUN(connect_refusals);
    RUN(hostile_pdus);
    RUN(data_digest_mismatch_closes);
    RUN(disconnect_mid_transfer);
    RUN(h2c_data_beyond_the_command);
    RUN(handshake_deadline);
    RUN(memory_back_pressure);
    RUN(sq_flow_control_off_reads_end_with_c2h_success);
    RUN(per_export_connection_cap);
    RUN(unshare_with_connected_host);
    RUN(keep_alive_expiry);
    RUN(share_validation);
    struct host left;
    h_admin(&left, false, false, 60000); /* a controller with its keep-alive timer running at shutdown */
    dp_nvmf_shutdown();
    CHECK(closed_by_target(left.fd, NULL));
    close(left.fd);
    /* a wildcard listener without an advertised host tells each host the address it reached */
    CHECK_EQ(dp_nvmf_listen("0.0.0.0", 0, NULL), 0);
    g_port = dp_nvmf_port();
    CHECK_EQ(dp_nvmf_share("malloc:///nvw?size_mb=1", SUBNQN, NULL, NULL), 0);
    struct host d = { 0 };
    d.fd = dial();
    h_icreq(&d, false, false);
    CHECK_EQ(h_connect(&d, 0, NVMF_DISCOVERY_NQN, HOSTNQN, 0, NULL), 0);
    h_prop_set_cc(&d, NVME_CC_EN);
    uint8_t *log = calloc(1, 2048);
    struct nvme_sqe s = { .opc = NVME_ADM_GET_LOG_PAGE, .cdw10 = NVME_LOG_DISCOVERY | (((2048 / 4) - 1) << 16) };
    CHECK_EQ(h_simple(&d, &s, log, 2048, NULL), 0);
    CHECK(strncmp(((struct nvmf_disc_log_entry *)(log + 1024))->traddr, "127.0.0.1 ", 10) == 0);
    free(log);
    close(d.fd);
    dp_nvmf_shutdown();
    dp_fini();
    return 0;
}
