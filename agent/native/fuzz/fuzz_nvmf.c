/*
 * fuzz_nvmf.c - libFuzzer harness for the NVMe/TCP target's PDU and command
 * parsers (src/nvmf/pdu.c).
 *
 * The input is the byte stream a hostile host sends a controller: the first
 * PDU goes through the ICReq checks (and negotiates digests as the target
 * would), every following one through the common-header check, the header
 * digest check, and for capsules the SGL and Connect checks the target runs.
 * Seeds: fuzz/seeds/fuzz_nvmf (an ICReq then a Connect capsule, with and
 * without digests).
 */
#include <stdlib.h>
#include <string.h>

#include "nvmf/pdu.h"

#define MAX_PLEN (1u << 20)

static void capsule(const uint8_t *p, const struct nvmf_pdu_layout *lay)
{
    struct nvme_sqe sqe;
    uint32_t len;
    bool icd;
    memcpy(&sqe, p + NVME_TCP_CH_SIZE, sizeof sqe);
    if (nvmf_sgl_check(&sqe, lay->datalen, 1u << 20, &len, &icd) != 0)
        return;
    if (sqe.opc == NVME_ADM_FABRICS && ((const struct nvmf_fabric_cmd *)&sqe)->fctype == NVMF_FCTYPE_CONNECT && icd &&
        len == NVMF_CONNECT_DATA_LEN) {
        struct nvmf_connect_data data;
        char sub[NVMF_NQN_FIELD], host[NVMF_NQN_FIELD];
        uint32_t cdw0;
        memcpy(&data, p + lay->pdo, sizeof data);
        const struct nvmf_connect_cmd *c = (const struct nvmf_connect_cmd *)&sqe;
        if (nvmf_connect_check(c, &data, c->qid == 0, 128, &cdw0, sub, host) == 0 && strlen(sub) > NVMF_NQN_MAX)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool icdone = false, hd = false, dd = false;
    size_t off = 0;
    while (size - off >= NVME_TCP_CH_SIZE) {
        struct nvme_tcp_common_hdr ch;
        struct nvmf_pdu_layout lay;
        struct nvmf_pdu_err err;
        memcpy(&ch, data + off, sizeof ch);
        if (nvmf_pdu_check_ch(&ch, NVMF_SIDE_CTRL, icdone, hd, dd, MAX_PLEN, &lay, &err) != 0) {
            if (err.fes == 0 || !err.msg[0])
                abort();
            return 0;
        }
        if (lay.plen > size - off)
            return 0;
        const uint8_t *p = data + off;
        if (lay.hdgst && !nvmf_hdgst_ok(p, lay.hlen))
            return 0;
        if (lay.ddgst) {
            uint32_t got;
            memcpy(&got, p + lay.pdo + lay.datalen, 4);
            if (got != nvmf_digest(p + lay.pdo, lay.datalen))
                return 0;
        }
        if (ch.pdu_type == NVME_TCP_PDU_ICREQ) {
            struct nvme_tcp_icreq req;
            memcpy(&req, p, sizeof req);
            if (nvmf_icreq_check(&req, &hd, &dd, &err) != 0)
                return 0;
            icdone = true;
        } else if (ch.pdu_type == NVME_TCP_PDU_CAPSULE_CMD) {
            capsule(p, &lay);
        } else if (ch.pdu_type == NVME_TCP_PDU_H2C_TERM_REQ) {
            return 0;
        }
        off += lay.plen;
    }
    return 0;
}
