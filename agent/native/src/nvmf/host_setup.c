/*
 * host_setup.c - bring an NVMe/TCP controller up, the way SPDK's
 * nvme_ctrlr.c and FreeBSD's libnvmf do: TCP connect, ICReq/ICResp, admin
 * Connect (dynamic cntlid, KATO), Property Get CAP/VS, CC.EN=1 and wait for
 * CSTS.RDY within CAP.TO, Identify controller (MDTS, IOCCSZ, KAS), active
 * namespace list, Identify namespace (size, LBA format) and its descriptors
 * (NGUID/UUID/EUI64: the identity checked after a reconnect), Set Features
 * Number of Queues, then the I/O queues, each on its own connection.
 *
 * Blocking sockets bounded by a deadline: it runs on the control thread at
 * open and on the reconnect thread, never on a reactor.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nvmf/host.h"
#include "reactor/reactor.h"

#define ADMIN_QSIZE 32
#define IO_QSIZE_MAX 128
#define KATO_MS 10000u
#define NO_MDTS_XFER (1u << 20)

struct sync_cmd {
    uint16_t cid;
    uint8_t *in;
    uint32_t in_len;
    bool done;
    struct nvme_cqe cqe;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = ev };
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const void *buf, size_t len, uint64_t deadline)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_resp(void *ctx, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct sync_cmd *s = ctx;
    if (cqe->cid != s->cid) {
        snprintf(err, errlen, "CapsuleResp for cid %u, expected %u", cqe->cid, s->cid);
        return -1;
    }
    s->cqe = *cqe;
    s->done = true;
    return 0;
}

static int s_c2h_begin(void *ctx, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct sync_cmd *s = ctx;
    if (cid != s->cid || !s->in || off > s->in_len || len > s->in_len - off) {
        snprintf(err, errlen, "C2HData cid %u offset %u length %u outside the command's %u bytes", cid, off, len,
                 s->in_len);
        return -1;
    }
    return 0;
}

static void s_c2h_data(void *ctx, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct sync_cmd *s = ctx;
    memcpy(s->in + off, buf, len);
}

static int s_c2h_end(void *ctx, uint16_t cid, bool last, bool success, char *err, size_t errlen)
{
    struct sync_cmd *s = ctx;
    if (success) {
        memset(&s->cqe, 0, sizeof s->cqe);
        s->cqe.cid = cid;
        s->done = true;
    }
    return 0;
}

static int s_r2t(void *ctx, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    snprintf(err, errlen, "R2T for cid %u during set-up (all set-up data is in-capsule)", cid);
    return -1;
}

static const struct nvmfh_rx_ops sync_ops = { s_resp, s_c2h_begin, s_c2h_data, s_c2h_end, s_r2t };

/* Read PDUs until `rx` says stop (ICResp) or s->done. */
static int recv_until(int fd, struct nvmfh_rx *rx, struct sync_cmd *s, uint64_t deadline, char *err, size_t errlen)
{
    uint8_t buf[4096];
    for (;;) {
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) {
            snprintf(err, errlen, "no answer in time");
            return rc;
        }
        /* ICResp: read no further than it, the rest belongs to the next stage */
        size_t want = rx->icdone ? sizeof buf : NVME_TCP_ICRESP_SIZE - rx->got;
        ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
        if (n == 0) {
            snprintf(err, errlen, "connection closed by the controller");
            return -ECONNRESET;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(err, errlen, "recv: %s", strerror(errno));
            return -errno;
        }
        bool ic = !rx->icdone;
        size_t used;
        rc = nvmfh_rx_feed(rx, buf, (size_t)n, &used, err, errlen);
        if (rc < 0)
            return -EPROTO;
        if (ic && rx->icdone)
            return 0;
        if (s && s->done) {
            if (used != (size_t)n) {
                snprintf(err, errlen, "unexpected PDU after the response");
                return -EPROTO;
            }
            return 0;
        }
    }
}

/* The fabrics statuses a Connect meets, named for the error message. */
static const char *status_name(uint8_t opc, unsigned sct, unsigned sc)
{
    if (opc != NVME_ADM_FABRICS || sct != NVME_SCT_COMMAND_SPECIFIC)
        return "";
    switch (sc) {
    case NVMF_SC_INVALID_HOST: return " (host not allowed: the subsystem's allowlist does not hold our host NQN)";
    case NVMF_SC_INVALID_PARAM: return " (invalid parameter: no such subsystem, or a bad field)";
    case NVMF_SC_CONTROLLER_BUSY: return " (controller busy)";
    case NVMF_SC_INCOMPATIBLE_FORMAT: return " (incompatible format)";
    case NVMF_SC_AUTH_REQUIRED: return " (authentication required: DH-HMAC-CHAP is not implemented)";
    }
    return "";
}

/* One command, its in-capsule data (out) and its C2H data (in). */
static int sync_exec(int fd, struct nvme_sqe *sqe, const void *out, uint32_t out_len, void *in, uint32_t in_len,
                     struct nvme_cqe *cqe, uint64_t deadline, char *err, size_t errlen)
{
    static uint16_t next_cid;
    struct sync_cmd s = { .cid = (uint16_t)(__atomic_fetch_add(&next_cid, 1, __ATOMIC_RELAXED) & 0x7fff),
                          .in = in,
                          .in_len = in_len };
    uint8_t pdu[NVME_TCP_CMD_HLEN + 1024];
    struct nvme_tcp_cmd *c = (void *)pdu;
    memset(c, 0, sizeof *c);
    sqe->cid = s.cid;
    sqe->flags |= NVME_CMD_PSDT_SGL;
    if (out_len) {
        sqe->sgl1 = (struct nvme_sgl_desc){ .address = 0, .length = out_len, .id = NVME_TCP_SGL_INCAPSULE };
    } else if (in_len) {
        sqe->sgl1 = (struct nvme_sgl_desc){ .address = 0, .length = in_len, .id = NVME_TCP_SGL_TRANSPORT };
    } else {
        sqe->sgl1 = (struct nvme_sgl_desc){ .id = NVME_TCP_SGL_TRANSPORT };
    }
    c->sqe = *sqe;
    c->ch.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
    c->ch.hlen = NVME_TCP_CMD_HLEN;
    c->ch.pdo = out_len ? NVME_TCP_CMD_HLEN : 0;
    c->ch.plen = NVME_TCP_CMD_HLEN + out_len;
    if (out_len)
        memcpy(pdu + NVME_TCP_CMD_HLEN, out, out_len);
    int rc = send_all(fd, pdu, NVME_TCP_CMD_HLEN + out_len, deadline);
    if (rc < 0) {
        snprintf(err, errlen, "send: %s", strerror(-rc));
        return rc;
    }
    struct nvmfh_rx rx;
    nvmfh_rx_init(&rx, &sync_ops, &s, true);
    rc = recv_until(fd, &rx, &s, deadline, err, errlen);
    if (rc < 0)
        return rc;
    *cqe = s.cqe;
    if (NVME_STATUS_SC(cqe->status) || NVME_STATUS_SCT(cqe->status)) {
        unsigned sct = NVME_STATUS_SCT(cqe->status), sc = NVME_STATUS_SC(cqe->status);
        snprintf(err, errlen, "status sct 0x%x sc 0x%x%s", sct, sc, status_name(sqe->opc, sct, sc));
        return sct == NVME_SCT_COMMAND_SPECIFIC && sc == NVMF_SC_INVALID_HOST ? -EACCES : -EIO;
    }
    return 0;
}

static int tcp_connect(const void *addr, uint32_t addrlen, uint64_t deadline, char *err, size_t errlen)
{
    const struct sockaddr *sa = addr;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, sa, addrlen) < 0 ? -errno : 0;
    if (rc == -EINPROGRESS) {
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            int e = 0;
            socklen_t l = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
            rc = -e;
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "connect: %s", rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        close(fd);
        return rc;
    }
    return fd;
}

/* TCP connect and the ICReq/ICResp exchange. */
static int queue_open(const void *addr, uint32_t addrlen, uint32_t *maxh2cdata, uint64_t deadline, char *err,
                      size_t errlen)
{
    int fd = tcp_connect(addr, addrlen, deadline, err, errlen);
    if (fd < 0)
        return fd;
    struct nvme_tcp_icreq req = { .ch = { .pdu_type = NVME_TCP_PDU_ICREQ, .hlen = sizeof req, .plen = sizeof req },
                                  .pfv = NVME_TCP_PFV_1_0 };
    int rc = send_all(fd, &req, sizeof req, deadline);
    if (rc < 0)
        snprintf(err, errlen, "ICReq: %s", strerror(-rc));
    struct nvmfh_rx rx;
    nvmfh_rx_init(&rx, &sync_ops, NULL, false);
    if (rc == 0)
        rc = recv_until(fd, &rx, NULL, deadline, err, errlen);
    if (rc == 0)
        rc = nvmfh_icresp_check(&rx.icresp, maxh2cdata, err, errlen);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static int fabric_connect(int fd, const struct nvmfh_uri *u, uint16_t qid, uint16_t qsize, uint32_t kato,
                          uint16_t cntlid, uint16_t *cntlid_out, uint64_t deadline, char *err, size_t errlen)
{
    struct nvmf_connect_data d;
    memset(&d, 0, sizeof d);
    snprintf(d.hostnqn, sizeof d.hostnqn, "%s", nvmfh_host_nqn(d.hostid));
    snprintf(d.subnqn, sizeof d.subnqn, "%s", u->nqn);
    d.cntlid = cntlid;
    union {
        struct nvme_sqe sqe;
        struct nvmf_connect_cmd c;
    } cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.c.opc = NVME_ADM_FABRICS;
    cmd.c.fctype = NVMF_FCTYPE_CONNECT;
    cmd.c.qid = qid;
    cmd.c.sqsize = (uint16_t)(qsize - 1);
    cmd.c.kato = kato;
    struct nvme_cqe cqe;
    int rc = sync_exec(fd, &cmd.sqe, &d, sizeof d, NULL, 0, &cqe, deadline, err, errlen);
    if (rc < 0) {
        char m[160];
        snprintf(m, sizeof m, "%s", err);
        snprintf(err, errlen, "Connect (queue %u, host %.100s) refused: %.150s", qid, d.hostnqn, m);
        return rc;
    }
    if (cntlid_out)
        *cntlid_out = (uint16_t)cqe.cdw0;
    return 0;
}

static int prop(int fd, bool set, uint32_t ofst, bool eight, uint64_t *val, uint64_t deadline, char *err, size_t errlen)
{
    union {
        struct nvme_sqe sqe;
        struct nvmf_property_get_cmd g;
        struct nvmf_property_set_cmd s;
    } cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.g.opc = NVME_ADM_FABRICS;
    cmd.g.fctype = set ? NVMF_FCTYPE_PROPERTY_SET : NVMF_FCTYPE_PROPERTY_GET;
    cmd.g.attrib = eight ? NVMF_PROP_SIZE_8 : NVMF_PROP_SIZE_4;
    cmd.g.ofst = ofst;
    if (set)
        cmd.s.value = *val;
    struct nvme_cqe cqe;
    int rc = sync_exec(fd, &cmd.sqe, NULL, 0, NULL, 0, &cqe, deadline, err, errlen);
    if (rc == 0 && !set)
        *val = (uint64_t)cqe.cdw0 | (eight ? (uint64_t)cqe.cdw1 << 32 : 0);
    return rc;
}

static int identify(int fd, uint8_t cns, uint32_t nsid, void *buf, uint64_t deadline, char *err, size_t errlen)
{
    struct nvme_sqe sqe = { .opc = NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns };
    struct nvme_cqe cqe;
    return sync_exec(fd, &sqe, NULL, 0, buf, NVME_ID_DATA_LEN, &cqe, deadline, err, errlen);
}

/* CAP, CC.EN, CSTS.RDY within CAP.TO (500 ms units). */
static int ctrlr_enable(int fd, struct nvmfh_conn *c, uint64_t *cap, uint64_t deadline, char *err, size_t errlen)
{
    if (prop(fd, false, NVME_REG_CAP, true, cap, deadline, err, errlen) < 0)
        return -EIO;
    uint64_t cc = NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT);
    if (prop(fd, true, NVME_REG_CC, false, &cc, deadline, err, errlen) < 0)
        return -EIO;
    uint64_t rdy_deadline = now_ms() + 500u * (((*cap >> NVME_CAP_TO_SHIFT) & 0xff) + 1);
    for (;;) {
        uint64_t csts = 0;
        if (prop(fd, false, NVME_REG_CSTS, false, &csts, rdy_deadline + 1000, err, errlen) < 0)
            return -EIO;
        if (csts & NVME_CSTS_CFS) {
            snprintf(err, errlen, "controller fatal status (CSTS 0x%x)", (unsigned)csts);
            return -EIO;
        }
        if (csts & NVME_CSTS_RDY)
            return 0;
        if (now_ms() > rdy_deadline) {
            snprintf(err, errlen, "CSTS.RDY not set within CAP.TO");
            return -ETIMEDOUT;
        }
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* Identify controller, the first active namespace, its format and descriptors. */
static int identify_all(int fd, struct nvmfh_conn *c, uint64_t cap, uint64_t deadline, char *err, size_t errlen)
{
    uint8_t *buf = calloc(1, NVME_ID_DATA_LEN); /* zeroed: a controller may send less than it should */
    if (!buf)
        return -ENOMEM;
    int rc = identify(fd, 1, 0, buf, deadline, err, errlen);
    if (rc == 0) {
        const struct nvme_id_ctrl *id = (const void *)buf;
        uint32_t mps = 4096u << ((cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf);
        /* 64-bit: MPSMIN 8 KiB << MDTS 19 wraps 32 bits to 0, and a max_xfer of 0 would
         * let no read or write progress (found by fuzz_nvmf_setup). */
        uint64_t xfer = id->mdts && id->mdts < 20 ? (uint64_t)mps << id->mdts : NO_MDTS_XFER;
        c->max_xfer = xfer > NO_MDTS_XFER ? NO_MDTS_XFER : (uint32_t)xfer;
        c->icd_max = id->ioccsz > 4 ? id->ioccsz * 16 - NVME_SQE_SIZE : 0;
        c->oncs = id->oncs;
        c->vwc = id->vwc;
        rc = identify(fd, 2, 0, buf, deadline, err, errlen);
    }
    if (rc == 0) {
        memcpy(&c->nsid, buf, 4);
        if (c->nsid == 0) {
            snprintf(err, errlen, "the subsystem has no active namespace");
            rc = -ENODEV;
        }
    }
    if (rc == 0)
        rc = identify(fd, 0, c->nsid, buf, deadline, err, errlen);
    if (rc == 0) {
        const struct nvme_id_ns *ns = (const void *)buf;
        const struct nvme_lbaf *f = &ns->lbaf[ns->flbas & 0xf];
        /* NSZE blocks must fit 64 bits of bytes: a wrapped size is a wrong device (fuzz_nvmf_setup). */
        if (f->lbads < 9 || f->lbads > 12 || f->ms || ns->nsze == 0 || ns->nsze > UINT64_MAX >> f->lbads) {
            snprintf(err, errlen, "namespace %u: unsupported format (lbads %u, ms %u, nsze %llu)", c->nsid, f->lbads,
                     f->ms, (unsigned long long)ns->nsze);
            rc = -ENOTSUP;
        } else {
            c->block_size = 1u << f->lbads;
            c->size = ns->nsze * c->block_size;
            c->nsattr = ns->nsattr;
            memcpy(c->nsid_bytes, ns->nguid, 16);
            memcpy(c->nsid_bytes + 32, ns->eui64, 8);
        }
    }
    /* The descriptor list (UUID) is optional before NVMe 1.3: a refusal leaves it zero. */
    if (rc == 0 && identify(fd, 3, c->nsid, buf, deadline, err, errlen) == 0) {
        for (uint32_t o = 0; o + 4 <= NVME_ID_DATA_LEN;) {
            const struct nvme_ns_id_desc *d = (const void *)(buf + o);
            if (d->nidl == 0 || o + 4 + d->nidl > NVME_ID_DATA_LEN)
                break;
            if (d->nidt == NVME_NIDT_UUID && d->nidl == 16)
                memcpy(c->nsid_bytes + 16, buf + o + 4, 16);
            o += 4 + d->nidl;
        }
    }
    free(buf);
    return rc;
}

static int admin_bringup(const struct nvmfh_uri *u, struct nvmfh_conn *c, uint64_t deadline, char *err, size_t errlen)
{
    uint64_t cap = 0;
    int rc = fabric_connect(c->afd, u, 0, ADMIN_QSIZE, KATO_MS, NVMF_CNTLID_DYNAMIC, &c->cntlid, deadline, err, errlen);
    if (rc == 0)
        rc = ctrlr_enable(c->afd, c, &cap, deadline, err, errlen);
    if (rc == 0)
        rc = identify_all(c->afd, c, cap, deadline, err, errlen);
    if (rc == 0) { /* as many I/O queues as wanted: ?queues=N, else one per reactor */
        uint32_t want = u->queues ? u->queues : dp_reactor_count();
        want = want < 1 ? 1 : want > NVMFH_MAX_QUEUES ? NVMFH_MAX_QUEUES : want;
        struct nvme_sqe sqe = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07, .cdw11 = (want - 1) * 0x10001u };
        struct nvme_cqe cqe;
        rc = sync_exec(c->afd, &sqe, NULL, 0, NULL, 0, &cqe, deadline, err, errlen);
        uint32_t nsq = (cqe.cdw0 & 0xffff) + 1, ncq = (cqe.cdw0 >> 16) + 1;
        uint32_t granted = nsq < ncq ? nsq : ncq;
        c->nioq = (uint16_t)(rc == 0 && granted < want ? granted : want);
    }
    c->kato_ms = KATO_MS;
    uint32_t mqes = (uint32_t)(cap & NVME_CAP_MQES_MASK) + 1;
    c->qsize = (uint16_t)(mqes < IO_QSIZE_MAX ? mqes : IO_QSIZE_MAX);
    if (rc == 0 && c->qsize < 2) {
        snprintf(err, errlen, "CAP.MQES %u is too small", mqes - 1);
        rc = -EPROTO;
    }
    return rc;
}

int nvmfh_setup(const struct nvmfh_uri *u, const void *addr, uint32_t addrlen, struct nvmfh_conn *c, char *err,
                size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->afd = -1;
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++)
        c->iofd[i] = -1;
    uint64_t deadline = now_ms() + u->connect_timeout_ms;
    char m[512] = "";
    const char *stage = "admin queue";
    uint32_t io_h2c = 0;
    int rc = queue_open(addr, addrlen, &c->maxh2cdata, deadline, m, sizeof m);
    if (rc >= 0) {
        c->afd = rc;
        rc = admin_bringup(u, c, deadline, m, sizeof m);
    }
    char qstage[32] = "";
    for (uint16_t i = 0; rc >= 0 && i < c->nioq; i++) {
        snprintf(qstage, sizeof qstage, "I/O queue %u", i + 1);
        stage = qstage;
        rc = queue_open(addr, addrlen, &io_h2c, deadline, m, sizeof m);
        if (rc >= 0) {
            c->iofd[i] = rc;
            c->maxh2cdata = io_h2c;
            rc = fabric_connect(c->iofd[i], u, (uint16_t)(i + 1), c->qsize, 0, c->cntlid, NULL, deadline, m, sizeof m);
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "nvmf://%s:%s/%s: %s: %s", u->host, u->port, u->nqn, stage, m);
        nvmfh_conn_close(c);
        return rc;
    }
    return 0;
}

void nvmfh_conn_close(struct nvmfh_conn *c)
{
    if (c->afd >= 0)
        close(c->afd);
    c->afd = -1;
    for (int i = 0; i < NVMFH_MAX_QUEUES; i++) {
        if (c->iofd[i] >= 0)
            close(c->iofd[i]);
        c->iofd[i] = -1;
    }
}

int nvmfh_sync_read(const struct nvmfh_conn *c, uint64_t off, void *buf, uint32_t len, uint32_t timeout_ms, char *err,
                    size_t errlen)
{
    uint64_t lba = off / c->block_size;
    struct nvme_sqe sqe = { .opc = NVME_IO_READ,
                            .nsid = c->nsid,
                            .cdw10 = (uint32_t)lba,
                            .cdw11 = (uint32_t)(lba >> 32),
                            .cdw12 = len / c->block_size - 1 };
    struct nvme_cqe cqe;
    return sync_exec(c->iofd[0], &sqe, NULL, 0, buf, len, &cqe, now_ms() + timeout_ms, err, errlen);
}

int nvmfh_sync_admin(const struct nvmfh_conn *c, struct nvme_sqe *sqe, const void *out, uint32_t out_len, void *in,
                     uint32_t in_len, struct nvme_cqe *cqe, uint32_t timeout_ms, char *err, size_t errlen)
{
    memset(cqe, 0, sizeof *cqe);
    return sync_exec(c->afd, sqe, out, out_len, in, in_len, cqe, now_ms() + timeout_ms, err, errlen);
}

int nvmfh_resolve(const struct nvmfh_uri *u, void *addr, uint32_t *addrlen, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "nvmf://%s:%s/%s: cannot resolve host '%s': %s", u->host, u->port, u->nqn, u->host,
                 gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addrlen = (uint32_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
