/* pdu.c - NVMe/TCP PDU checks and encoders (see pdu.h). Pure: no I/O. */
#include "nvmf/pdu.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/crc32c.h"

static int fail(struct nvmf_pdu_err *err, uint16_t fes, uint32_t fei, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct nvmf_pdu_err *err, uint16_t fes, uint32_t fei, const char *fmt, ...)
{
    va_list ap;
    err->fes = fes;
    err->fei = fei;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

uint32_t nvmf_pdu_hlen(uint8_t type)
{
    switch (type) {
    case NVME_TCP_PDU_ICREQ:
    case NVME_TCP_PDU_ICRESP: return NVME_TCP_ICREQ_SIZE;
    case NVME_TCP_PDU_H2C_TERM_REQ:
    case NVME_TCP_PDU_C2H_TERM_REQ: return NVME_TCP_TERM_REQ_HLEN;
    case NVME_TCP_PDU_CAPSULE_CMD: return NVME_TCP_CMD_HLEN;
    case NVME_TCP_PDU_CAPSULE_RESP: return NVME_TCP_RSP_HLEN;
    case NVME_TCP_PDU_H2C_DATA:
    case NVME_TCP_PDU_C2H_DATA: return NVME_TCP_DATA_HLEN;
    case NVME_TCP_PDU_R2T: return NVME_TCP_R2T_HLEN;
    default: return 0;
    }
}

bool nvmf_pdu_type_ok(enum nvmf_side side, uint8_t type)
{
    if (side == NVMF_SIDE_CTRL)
        return type == NVME_TCP_PDU_ICREQ || type == NVME_TCP_PDU_H2C_TERM_REQ || type == NVME_TCP_PDU_CAPSULE_CMD ||
               type == NVME_TCP_PDU_H2C_DATA;
    return type == NVME_TCP_PDU_ICRESP || type == NVME_TCP_PDU_C2H_TERM_REQ || type == NVME_TCP_PDU_CAPSULE_RESP ||
           type == NVME_TCP_PDU_C2H_DATA || type == NVME_TCP_PDU_R2T;
}

/* Which PDU types may carry data, and the flags each may set. */
static bool type_has_data(uint8_t t)
{
    return t == NVME_TCP_PDU_CAPSULE_CMD || t == NVME_TCP_PDU_H2C_DATA || t == NVME_TCP_PDU_C2H_DATA ||
           t == NVME_TCP_PDU_H2C_TERM_REQ || t == NVME_TCP_PDU_C2H_TERM_REQ;
}

static uint8_t type_flags(uint8_t t)
{
    switch (t) {
    case NVME_TCP_PDU_H2C_DATA: return NVME_TCP_F_HDGST | NVME_TCP_F_DDGST | NVME_TCP_F_DATA_LAST;
    case NVME_TCP_PDU_C2H_DATA:
        return NVME_TCP_F_HDGST | NVME_TCP_F_DDGST | NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS;
    case NVME_TCP_PDU_CAPSULE_CMD: return NVME_TCP_F_HDGST | NVME_TCP_F_DDGST;
    case NVME_TCP_PDU_CAPSULE_RESP:
    case NVME_TCP_PDU_R2T: return NVME_TCP_F_HDGST;
    default: return 0; /* ICReq/ICResp/TermReq never carry digests */
    }
}

int nvmf_pdu_check_ch(const struct nvme_tcp_common_hdr *ch, enum nvmf_side side, bool icdone, bool hdgst, bool ddgst,
                      uint32_t max_plen, struct nvmf_pdu_layout *lay, struct nvmf_pdu_err *err)
{
    uint8_t t = ch->pdu_type;
    uint32_t hlen = nvmf_pdu_hlen(t);
    bool ic = t == NVME_TCP_PDU_ICREQ || t == NVME_TCP_PDU_ICRESP;
    bool term = t == NVME_TCP_PDU_H2C_TERM_REQ || t == NVME_TCP_PDU_C2H_TERM_REQ;

    memset(lay, 0, sizeof *lay);
    err->fes = 0;
    if (!hlen || !nvmf_pdu_type_ok(side, t))
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 0, "PDU type 0x%02x not accepted here", t);
    if (!icdone && !ic && !term)
        return fail(err, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, "PDU type 0x%02x before ICReq/ICResp", t);
    if (icdone && ic)
        return fail(err, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, "a second ICReq/ICResp");
    if (ch->hlen != hlen)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 2, "hlen %u for PDU type 0x%02x (expected %u)", ch->hlen, t,
                    hlen);
    if (ch->flags & ~type_flags(t))
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, "flags 0x%02x for PDU type 0x%02x", ch->flags, t);
    /* Digests are all-or-nothing per connection: the flag must match what was negotiated. */
    lay->hlen = hlen;
    lay->hdgst = (type_flags(t) & NVME_TCP_F_HDGST) && hdgst ? NVME_TCP_DIGEST_LEN : 0;
    if (!!(ch->flags & NVME_TCP_F_HDGST) != !!lay->hdgst)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, "HDGSTF flag does not match the negotiated digest");
    lay->plen = ch->plen;
    if (ch->plen > max_plen)
        return fail(err, NVME_TCP_FES_R2T_LIMIT_EXCEEDED, 4, "plen %u above the limit %u", ch->plen, max_plen);
    if (ch->plen < hlen + lay->hdgst)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, "plen %u shorter than the header", ch->plen);
    if (term) { /* the rest is the offending header; no pdo, no digest */
        lay->datalen = ch->plen - hlen;
        return 0;
    }
    if (ch->plen == hlen + lay->hdgst) {
        if (ch->pdo != 0 || (ch->flags & NVME_TCP_F_DDGST))
            return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 3, "pdo %u/DDGSTF on a PDU without data", ch->pdo);
        if (t == NVME_TCP_PDU_H2C_DATA || t == NVME_TCP_PDU_C2H_DATA)
            return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, "data PDU without data");
        return 0;
    }
    if (!type_has_data(t))
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, "plen %u: PDU type 0x%02x carries no data", ch->plen, t);
    lay->ddgst = ddgst ? NVME_TCP_DIGEST_LEN : 0;
    if (!!(ch->flags & NVME_TCP_F_DDGST) != !!lay->ddgst)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, "DDGSTF flag does not match the negotiated digest");
    /* pdo: after the header and its digest; we ask for no alignment (CPDA/HPDA 0) but accept padding. */
    if (ch->pdo < hlen + lay->hdgst || ch->pdo + lay->ddgst >= ch->plen)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 3, "pdo %u outside the PDU (hlen %u, plen %u)", ch->pdo,
                    hlen, ch->plen);
    lay->pdo = ch->pdo;
    lay->datalen = ch->plen - ch->pdo - lay->ddgst;
    return 0;
}

uint32_t nvmf_digest(const void *buf, size_t len)
{
    return dp_crc32c(0, buf, len);
}

bool nvmf_hdgst_ok(const void *hdr, uint32_t hlen)
{
    uint32_t got;
    memcpy(&got, (const uint8_t *)hdr + hlen, 4);
    return got == nvmf_digest(hdr, hlen);
}

int nvmf_icreq_check(const struct nvme_tcp_icreq *req, bool *hdgst, bool *ddgst, struct nvmf_pdu_err *err)
{
    err->fes = 0;
    if (req->ch.plen != NVME_TCP_ICREQ_SIZE)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, "ICReq plen %u (expected 128)", req->ch.plen);
    if (req->pfv != NVME_TCP_PFV_1_0)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 8, "ICReq PFV %u unsupported", req->pfv);
    if (req->hpda > NVME_TCP_HPDA_MAX)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, "ICReq HPDA %u above 31", req->hpda);
    if (req->dgst & ~(NVME_TCP_ICREQ_DGST_HDGST | NVME_TCP_ICREQ_DGST_DDGST))
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 11, "ICReq DGST 0x%02x", req->dgst);
    *hdgst = req->dgst & NVME_TCP_ICREQ_DGST_HDGST;
    *ddgst = req->dgst & NVME_TCP_ICREQ_DGST_DDGST;
    return 0;
}

int nvmf_icresp_check(const struct nvme_tcp_icresp *rsp, uint32_t *maxh2cdata, struct nvmf_pdu_err *err)
{
    err->fes = 0;
    if (rsp->ch.plen != NVME_TCP_ICRESP_SIZE)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, "ICResp plen %u (expected 128)", rsp->ch.plen);
    if (rsp->pfv != NVME_TCP_PFV_1_0)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 8, "ICResp PFV %u unsupported", rsp->pfv);
    if (rsp->cpda > NVME_TCP_HPDA_MAX)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, "ICResp CPDA %u above 31", rsp->cpda);
    if (rsp->maxh2cdata < NVME_TCP_MAXH2CDATA_MIN || rsp->maxh2cdata % 4)
        return fail(err, NVME_TCP_FES_INVALID_HEADER_FIELD, 12, "ICResp MAXH2CDATA %u", rsp->maxh2cdata);
    *maxh2cdata = rsp->maxh2cdata;
    return 0;
}

void nvmf_ch_init(struct nvme_tcp_common_hdr *ch, uint8_t type, bool hdgst, bool ddgst_with_data, uint32_t hlen,
                  uint32_t datalen)
{
    uint32_t hd = hdgst ? NVME_TCP_DIGEST_LEN : 0;
    ch->pdu_type = type;
    ch->flags = hdgst ? NVME_TCP_F_HDGST : 0;
    ch->hlen = (uint8_t)hlen;
    ch->pdo = 0;
    ch->plen = hlen + hd;
    if (datalen) {
        ch->pdo = (uint8_t)(hlen + hd);
        ch->plen += datalen;
        if (ddgst_with_data) {
            ch->flags |= NVME_TCP_F_DDGST;
            ch->plen += NVME_TCP_DIGEST_LEN;
        }
    }
}

void nvmf_icresp_init(struct nvme_tcp_icresp *rsp, bool hdgst, bool ddgst, uint32_t maxh2cdata)
{
    memset(rsp, 0, sizeof *rsp);
    nvmf_ch_init(&rsp->ch, NVME_TCP_PDU_ICRESP, false, false, NVME_TCP_ICRESP_SIZE, 0);
    rsp->pfv = NVME_TCP_PFV_1_0;
    rsp->dgst = (hdgst ? NVME_TCP_ICREQ_DGST_HDGST : 0) | (ddgst ? NVME_TCP_ICREQ_DGST_DDGST : 0);
    rsp->maxh2cdata = maxh2cdata;
}

void nvmf_icreq_init(struct nvme_tcp_icreq *req, bool hdgst, bool ddgst)
{
    memset(req, 0, sizeof *req);
    nvmf_ch_init(&req->ch, NVME_TCP_PDU_ICREQ, false, false, NVME_TCP_ICREQ_SIZE, 0);
    req->pfv = NVME_TCP_PFV_1_0;
    req->dgst = (hdgst ? NVME_TCP_ICREQ_DGST_HDGST : 0) | (ddgst ? NVME_TCP_ICREQ_DGST_DDGST : 0);
}

void nvmf_term_req_init(struct nvme_tcp_term_req_hdr *t, enum nvmf_side sender, uint16_t fes, uint32_t fei,
                        uint32_t datalen)
{
    uint32_t max = sender == NVMF_SIDE_CTRL ? NVME_TCP_TERM_REQ_DATA_MAX_C2H : NVME_TCP_TERM_REQ_DATA_MAX_H2C;
    memset(t, 0, sizeof *t);
    t->ch.pdu_type = sender == NVMF_SIDE_CTRL ? NVME_TCP_PDU_C2H_TERM_REQ : NVME_TCP_PDU_H2C_TERM_REQ;
    t->ch.hlen = NVME_TCP_TERM_REQ_HLEN;
    t->ch.plen = NVME_TCP_TERM_REQ_HLEN + (datalen < max ? datalen : max);
    t->fes = fes;
    t->fei = fei;
}

uint16_t nvmf_sgl_check(const struct nvme_sqe *sqe, uint32_t icdlen, uint32_t max_len, uint32_t *len, bool *in_capsule)
{
    const struct nvme_sgl_desc *sgl = &sqe->sgl1;
    *len = 0;
    *in_capsule = false;
    if ((sqe->flags & 0xc0) != NVME_CMD_PSDT_SGL && (sqe->flags & 0xc0) != 0)
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    if (sgl->id == NVME_TCP_SGL_INCAPSULE) {
        if (sgl->address != 0)
            return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_OFFSET);
        if (sgl->length != icdlen)
            return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
        *in_capsule = true;
    } else if (sgl->id == NVME_TCP_SGL_TRANSPORT) {
        if (icdlen)
            return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
        if (sgl->length > max_len)
            return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
    } else if (sgl->length == 0 && icdlen == 0) {
        return 0; /* no data: any descriptor of length 0 */
    } else {
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
    }
    *len = sgl->length;
    return 0;
}

bool nvmf_nqn_field_ok(const char *field, size_t fieldlen)
{
    size_t n = strnlen(field, fieldlen);
    return n < fieldlen && nvmf_nqn_valid(field);
}

bool nvmf_nqn_valid(const char *nqn)
{
    size_t n = strnlen(nqn, NVMF_NQN_MAX + 1);
    if (n > NVMF_NQN_MAX || n < 12 || strncmp(nqn, "nqn.", 4) != 0)
        return false;
    /* nqn.yyyy-mm. : a date then a domain */
    for (int i = 4; i < 11; i++)
        if (i == 8 ? nqn[i] != '-' : (nqn[i] < '0' || nqn[i] > '9'))
            return false;
    if (nqn[11] != '.' && !(nqn[11] == ':' && strncmp(nqn, "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)nqn[i] <= 0x20 || (unsigned char)nqn[i] >= 0x7f)
            return false;
    return true;
}

uint16_t nvmf_connect_check(const struct nvmf_connect_cmd *cmd, const struct nvmf_connect_data *data, bool admin_queue,
                            uint32_t max_qsize, uint32_t *cdw0, char subnqn[NVMF_NQN_FIELD],
                            char hostnqn[NVMF_NQN_FIELD])
{
    const uint16_t inval = NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVMF_SC_INVALID_PARAM);
    *cdw0 = 0;
    if (cmd->recfmt != 0)
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVMF_SC_INCOMPATIBLE_FORMAT);
    if (cmd->sqsize == 0 || cmd->sqsize + 1u > max_qsize || (admin_queue && cmd->sqsize < 31)) {
        *cdw0 = NVMF_INVALID_PARAM_CDW0(0, __builtin_offsetof(struct nvmf_connect_cmd, sqsize));
        return inval;
    }
    if (!nvmf_nqn_field_ok(data->subnqn, sizeof data->subnqn)) {
        *cdw0 = NVMF_INVALID_PARAM_CDW0(1, __builtin_offsetof(struct nvmf_connect_data, subnqn));
        return inval;
    }
    if (!nvmf_nqn_field_ok(data->hostnqn, sizeof data->hostnqn)) {
        *cdw0 = NVMF_INVALID_PARAM_CDW0(1, __builtin_offsetof(struct nvmf_connect_data, hostnqn));
        return inval;
    }
    if (admin_queue && data->cntlid != NVMF_CNTLID_DYNAMIC && data->cntlid != NVMF_CNTLID_STATIC_ANY) {
        *cdw0 = NVMF_INVALID_PARAM_CDW0(1, __builtin_offsetof(struct nvmf_connect_data, cntlid));
        return inval;
    }
    memcpy(subnqn, data->subnqn, NVMF_NQN_FIELD);
    memcpy(hostnqn, data->hostnqn, NVMF_NQN_FIELD);
    return 0;
}

void nvmf_pad_ascii(char *dst, size_t dstlen, const char *s)
{
    size_t n = strnlen(s, dstlen);
    memcpy(dst, s, n);
    memset(dst + n, ' ', dstlen - n);
}
