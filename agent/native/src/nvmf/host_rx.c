/*
 * host_rx.c - the pure part of the NVMe/TCP initiator: URI parsing, the
 * ICResp check and the receive state machine. No I/O, no allocation: every
 * byte comes from the network and is hostile; each check names its field.
 *
 * The state machine takes bytes in any split (a PDU across many recv()s, many
 * PDUs in one) and streams C2HData payloads straight to their command, so a
 * large read never needs a PDU-sized buffer. Digests are not negotiated (we
 * ask for none), so a PDU that carries one is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/export.h"
#include "nvmf/host.h"
#include "util/uuid.h"

static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 9)
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_query(const char *q, struct nvmfh_uri *u, char *err, size_t errlen)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vn = eq ? n - kn - 1 : 0;
        uint32_t *dst = NULL;
        if (kn == 6 && !memcmp(q, "queues", 6)) {
            if (parse_u32(v, vn, &u->queues) < 0 || u->queues == 0 || u->queues > NVMFH_MAX_QUEUES) {
                snprintf(err, errlen, "queues: '%.*s' is not 1-%d", (int)vn, v, NVMFH_MAX_QUEUES);
                return -EINVAL;
            }
            q += n + (amp ? 1 : 0);
            continue;
        }
        if (kn == 13 && !memcmp(q, "io_timeout_ms", 13))
            dst = &u->io_timeout_ms;
        else if (kn == 18 && !memcmp(q, "connect_timeout_ms", 18))
            dst = &u->connect_timeout_ms;
        if (!dst) {
            snprintf(err, errlen, "unknown query parameter '%.*s' (io_timeout_ms, connect_timeout_ms, queues)", (int)kn,
                     q);
            return -EINVAL;
        }
        if (parse_u32(v, vn, dst) < 0 || *dst == 0) {
            snprintf(err, errlen, "%.*s: '%.*s' is not a positive number of milliseconds", (int)kn, q, (int)vn, v);
            return -EINVAL;
        }
        q += n + (amp ? 1 : 0);
    }
    return 0;
}

static int parse_authority(const char *a, size_t n, struct nvmfh_uri *u, char *err, size_t errlen)
{
    const char *port = NULL;
    size_t hn;
    if (n && a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb || rb == a + 1) {
            snprintf(err, errlen, "host: bad IPv6 literal '%.*s'", (int)n, a);
            return -EINVAL;
        }
        hn = (size_t)(rb - a - 1);
        memcpy(u->host, a + 1, hn);
        u->host[hn] = 0;
        if (rb + 1 < a + n) {
            if (rb[1] != ':') {
                snprintf(err, errlen, "host: junk after ']' in '%.*s'", (int)n, a);
                return -EINVAL;
            }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        hn = colon ? (size_t)(colon - a) : n;
        if (hn == 0 || hn >= sizeof u->host) {
            snprintf(err, errlen, "host: missing or too long");
            return -EINVAL;
        }
        memcpy(u->host, a, hn);
        u->host[hn] = 0;
        if (colon)
            port = colon + 1;
    }
    if (hn >= sizeof u->host ||
        strspn(u->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_%") != hn) {
        snprintf(err, errlen, "host: bad character in '%s'", u->host);
        return -EINVAL;
    }
    if (!port) {
        snprintf(u->port, sizeof u->port, "%d", NVMF_TCP_PORT);
        return 0;
    }
    uint32_t p;
    size_t pn = (size_t)(a + n - port);
    if (parse_u32(port, pn, &p) < 0 || p == 0 || p > 65535) {
        snprintf(err, errlen, "port: '%.*s' is not 1-65535", (int)pn, port);
        return -EINVAL;
    }
    snprintf(u->port, sizeof u->port, "%u", p);
    return 0;
}

int nvmfh_uri_parse(const char *uri, struct nvmfh_uri *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->io_timeout_ms = NVMFH_DEFAULT_IO_TIMEOUT_MS;
    u->connect_timeout_ms = NVMFH_DEFAULT_CONNECT_TIMEOUT_MS;
    if (strncmp(uri, "nvmf://", 7) != 0) {
        snprintf(err, errlen, "scheme: not nvmf://");
        return -EINVAL;
    }
    const char *a = uri + 7;
    const char *slash = strchr(a, '/');
    if (!slash) {
        snprintf(err, errlen, "nqn: missing (nvmf://host:port/<subsystem nqn>)");
        return -EINVAL;
    }
    int rc = parse_authority(a, (size_t)(slash - a), u, err, errlen);
    if (rc < 0)
        return rc;
    const char *nqn = slash + 1;
    const char *q = strchr(nqn, '?');
    size_t nn = q ? (size_t)(q - nqn) : strlen(nqn);
    if (nn == 0 || nn > NVMF_NQN_MAX || strncmp(nqn, "nqn.", 4) != 0) {
        snprintf(err, errlen, "nqn: '%.*s' is not an NQN (nqn.yyyy-mm.domain:name, at most %d bytes)", (int)nn, nqn,
                 NVMF_NQN_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < nn; i++) {
        if ((unsigned char)nqn[i] <= ' ' || nqn[i] == '/' || (unsigned char)nqn[i] >= 0x7f) {
            snprintf(err, errlen, "nqn: bad character at byte %zu", i);
            return -EINVAL;
        }
    }
    memcpy(u->nqn, nqn, nn);
    u->nqn[nn] = 0;
    return q ? parse_query(q + 1, u, err, errlen) : 0;
}

int nvmfh_icresp_check(const struct nvme_tcp_icresp *r, uint32_t *maxh2cdata, char *err, size_t errlen)
{
    if (r->pfv != NVME_TCP_PFV_1_0) {
        snprintf(err, errlen, "ICResp pfv %u (only 0 is known)", r->pfv);
        return -EPROTO;
    }
    if (r->cpda > NVME_TCP_HPDA_MAX) {
        snprintf(err, errlen, "ICResp cpda %u (at most %d)", r->cpda, NVME_TCP_HPDA_MAX);
        return -EPROTO;
    }
    if (r->dgst != 0) {
        snprintf(err, errlen, "ICResp dgst 0x%x: digests enabled that we did not ask for", r->dgst);
        return -EPROTO;
    }
    if (r->maxh2cdata < NVME_TCP_MAXH2CDATA_MIN || r->maxh2cdata % 4) {
        snprintf(err, errlen, "ICResp maxh2cdata %u (must be >= 4096 and a multiple of 4)", r->maxh2cdata);
        return -EPROTO;
    }
    *maxh2cdata = r->maxh2cdata;
    return 0;
}

void nvmfh_rx_init(struct nvmfh_rx *rx, const struct nvmfh_rx_ops *ops, void *ctx, bool icdone)
{
    memset(rx, 0, sizeof *rx);
    rx->ops = ops;
    rx->ctx = ctx;
    rx->icdone = icdone;
    rx->max_c2h = 1u << 30;
    rx->state = RX_CH;
    rx->need = NVME_TCP_CH_SIZE;
}

static int fail(struct nvmfh_rx *rx, char *err, size_t errlen, const char *fmt, unsigned a, unsigned b)
{
    snprintf(err, errlen, fmt, a, b);
    rx->state = RX_DEAD;
    return -1;
}

/* The common header is in: check type, lengths and flags against what the type allows. */
static int check_ch(struct nvmfh_rx *rx, char *err, size_t errlen)
{
    const struct nvme_tcp_common_hdr *ch = (const void *)rx->hdr;
    uint32_t hlen;
    switch (ch->pdu_type) {
    case NVME_TCP_PDU_ICRESP: hlen = NVME_TCP_ICRESP_SIZE; break;
    case NVME_TCP_PDU_CAPSULE_RESP: hlen = NVME_TCP_RSP_HLEN; break;
    case NVME_TCP_PDU_C2H_DATA: hlen = NVME_TCP_DATA_HLEN; break;
    case NVME_TCP_PDU_R2T: hlen = NVME_TCP_R2T_HLEN; break;
    case NVME_TCP_PDU_C2H_TERM_REQ: hlen = NVME_TCP_TERM_REQ_HLEN; break;
    default: return fail(rx, err, errlen, "PDU type 0x%x is not one a controller sends%.0u", ch->pdu_type, 0);
    }
    if ((ch->pdu_type == NVME_TCP_PDU_ICRESP) == rx->icdone)
        return fail(rx, err, errlen, "PDU type 0x%x out of sequence (ICResp first, then no other)%.0u", ch->pdu_type,
                    0);
    if (ch->hlen != hlen)
        return fail(rx, err, errlen, "PDU type 0x%x: hlen %u is wrong", ch->pdu_type, ch->hlen);
    if (ch->flags & (NVME_TCP_F_HDGST | NVME_TCP_F_DDGST))
        return fail(rx, err, errlen, "PDU type 0x%x: flags 0x%x announce digests that were not negotiated",
                    ch->pdu_type, ch->flags);
    bool data = ch->pdu_type == NVME_TCP_PDU_C2H_DATA;
    bool term = ch->pdu_type == NVME_TCP_PDU_C2H_TERM_REQ;
    if (data) {
        if (ch->pdo < hlen || ch->plen <= ch->pdo)
            return fail(rx, err, errlen, "C2HData: pdo %u / plen %u is inconsistent", ch->pdo, ch->plen);
    } else if (term) {
        if (ch->plen < hlen || ch->plen > hlen + NVME_TCP_TERM_REQ_DATA_MAX_C2H)
            return fail(rx, err, errlen, "C2HTermReq: plen %u (hlen %u)", ch->plen, hlen);
    } else if (ch->pdo != 0 || ch->plen != hlen) {
        return fail(rx, err, errlen, "PDU type 0x%x: plen %u for a PDU without data", ch->pdu_type, ch->plen);
    }
    rx->flags = ch->flags;
    rx->need = hlen;
    rx->state = RX_HDR;
    return 0;
}

static int c2h_header(struct nvmfh_rx *rx, char *err, size_t errlen)
{
    const struct nvme_tcp_c2h_data_hdr *d = (const void *)rx->hdr;
    if (d->datal == 0 || d->datal != d->ch.plen - d->ch.pdo || d->datal > rx->max_c2h)
        return fail(rx, err, errlen, "C2HData: datal %u does not match plen %u", d->datal, d->ch.plen);
    if ((rx->flags & NVME_TCP_F_DATA_SUCCESS) && !(rx->flags & NVME_TCP_F_DATA_LAST))
        return fail(rx, err, errlen, "C2HData: flags 0x%x: SUCCESS without LAST%.0u", rx->flags, 0);
    if (rx->ops->c2h_begin(rx->ctx, d->cccid, d->datao, d->datal, err, errlen) < 0) {
        rx->state = RX_DEAD;
        return -1;
    }
    rx->cid = d->cccid;
    rx->data_off = d->datao;
    rx->data_left = d->datal;
    rx->skip = d->ch.pdo - d->ch.hlen;
    rx->state = rx->skip ? RX_PAD : RX_DATA;
    return 0;
}

/* A whole fixed header is in rx->hdr: act on it. */
static int header_done(struct nvmfh_rx *rx, char *err, size_t errlen)
{
    const struct nvme_tcp_common_hdr *ch = (const void *)rx->hdr;
    int rc = 0;
    switch (ch->pdu_type) {
    case NVME_TCP_PDU_ICRESP:
        memcpy(&rx->icresp, rx->hdr, sizeof rx->icresp);
        rx->icdone = true;
        rc = 1;
        break;
    case NVME_TCP_PDU_CAPSULE_RESP: {
        const struct nvme_tcp_rsp *r = (const void *)rx->hdr;
        rc = rx->ops->resp(rx->ctx, &r->cqe, err, errlen);
        break;
    }
    case NVME_TCP_PDU_R2T: {
        const struct nvme_tcp_r2t_hdr *r = (const void *)rx->hdr;
        if (r->r2tl == 0)
            return fail(rx, err, errlen, "R2T for cid %u: r2tl 0%.0u", r->cccid, 0);
        rc = rx->ops->r2t(rx->ctx, r->cccid, r->ttag, r->r2to, r->r2tl, err, errlen);
        break;
    }
    case NVME_TCP_PDU_C2H_TERM_REQ: {
        const struct nvme_tcp_term_req_hdr *t = (const void *)rx->hdr;
        return fail(rx, err, errlen, "the controller ended the connection (C2HTermReq fes 0x%x fei %u)", t->fes,
                    t->fei);
    }
    case NVME_TCP_PDU_C2H_DATA: return c2h_header(rx, err, errlen);
    }
    if (rc < 0) {
        rx->state = RX_DEAD;
        return -1;
    }
    rx->state = RX_CH;
    rx->got = 0;
    rx->need = NVME_TCP_CH_SIZE;
    return rc;
}

static int data_done(struct nvmfh_rx *rx, char *err, size_t errlen)
{
    bool last = rx->flags & NVME_TCP_F_DATA_LAST, success = rx->flags & NVME_TCP_F_DATA_SUCCESS;
    if (rx->ops->c2h_end(rx->ctx, rx->cid, last, success, err, errlen) < 0) {
        rx->state = RX_DEAD;
        return -1;
    }
    rx->state = RX_CH;
    rx->got = 0;
    rx->need = NVME_TCP_CH_SIZE;
    return 0;
}

int nvmfh_rx_feed(struct nvmfh_rx *rx, const uint8_t *buf, size_t len, size_t *used, char *err, size_t errlen)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        size_t avail = len - pos;
        switch (rx->state) {
        case RX_CH:
        case RX_HDR: {
            size_t take = rx->need - rx->got < avail ? rx->need - rx->got : avail;
            memcpy(rx->hdr + rx->got, buf + pos, take);
            rx->got += (uint32_t)take;
            pos += take;
            if (rx->got < rx->need)
                break;
            rc = rx->state == RX_CH ? check_ch(rx, err, errlen) : header_done(rx, err, errlen);
            break;
        }
        case RX_PAD: {
            size_t take = rx->skip < avail ? rx->skip : avail;
            rx->skip -= (uint32_t)take;
            pos += take;
            if (!rx->skip)
                rx->state = RX_DATA;
            break;
        }
        case RX_DATA: {
            uint32_t take = rx->data_left < avail ? rx->data_left : (uint32_t)avail;
            rx->ops->c2h_data(rx->ctx, rx->cid, rx->data_off, buf + pos, take);
            rx->data_off += take;
            rx->data_left -= take;
            pos += take;
            if (!rx->data_left)
                rc = data_done(rx, err, errlen);
            break;
        }
        case RX_DDGST:
        case RX_DEAD:
            snprintf(err, errlen, "bytes after a fatal protocol error");
            rc = -1;
            break;
        }
        /* a state change to RX_PAD/RX_DATA with nothing left in the PDU */
        if (rc == 0 && rx->state == RX_PAD && !rx->skip)
            rx->state = RX_DATA;
    }
    if (used)
        *used = pos;
    return rc;
}

uint32_t nvmfh_rx_data_pending(const struct nvmfh_rx *rx, uint16_t *cid, uint32_t *off)
{
    if (rx->state != RX_DATA)
        return 0;
    *cid = rx->cid;
    *off = rx->data_off;
    return rx->data_left;
}

int nvmfh_rx_data_direct(struct nvmfh_rx *rx, uint32_t n, char *err, size_t errlen)
{
    if (rx->state != RX_DATA || n > rx->data_left) {
        snprintf(err, errlen, "direct data outside the C2HData payload");
        rx->state = RX_DEAD;
        return -1;
    }
    rx->data_off += n;
    rx->data_left -= n;
    return rx->data_left ? 0 : data_done(rx, err, errlen);
}

static pthread_once_t nqn_once = PTHREAD_ONCE_INIT;
static char host_nqn[NVMF_NQN_FIELD];
static uint8_t host_id[16];

/* machine-id is 32 hex digits: stable per machine, so target allowlists keep matching
 * after an agent restart. */
static bool machine_uuid(uint8_t out[16])
{
    char buf[64] = { 0 };
    int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 32)
        return false;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(buf + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    return true;
}

static void nqn_init(void)
{
    const char *env = getenv("MAYASTOR_NVMF_HOSTNQN");
    char text[DP_UUID_TEXT];
    if (!machine_uuid(host_id))
        dp_uuid_generate(host_id);
    dp_uuid_format(host_id, text);
    if (env && *env && strlen(env) <= NVMF_NQN_MAX)
        snprintf(host_nqn, sizeof host_nqn, "%s", env);
    else
        snprintf(host_nqn, sizeof host_nqn, "nqn.2014-08.org.nvmexpress:uuid:%s", text);
}

const char *nvmfh_host_nqn(uint8_t hostid[16])
{
    pthread_once(&nqn_once, nqn_init);
    if (hostid)
        memcpy(hostid, host_id, 16);
    return host_nqn;
}

/* Public (datapath.h): the agent reports it for remote allowlists. */
DP_EXPORT const char *dp_nvmf_host_nqn(void)
{
    return nvmfh_host_nqn(NULL);
}
