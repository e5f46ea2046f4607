/*
 * pdu.h - pure NVMe/TCP PDU checks and encoders (no I/O, no allocation),
 * shared by the target and the initiator and driven by fuzz/fuzz_nvmf.c.
 *
 * Everything read from the network is hostile: each check names the field
 * it rejects (in err) and returns the TermReq fatal error status (fes) and
 * field error information (fei: byte offset of the field in the header) a
 * receiver sends before closing.
 */
#ifndef DP_NVMF_PDU_H
#define DP_NVMF_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmf/proto.h"

/* Who receives: a controller accepts host-to-controller PDUs and vice versa. */
enum nvmf_side { NVMF_SIDE_CTRL, NVMF_SIDE_HOST };

/* What one PDU's common header says about its layout, once checked. */
struct nvmf_pdu_layout {
    uint32_t hlen; /* fixed header */
    uint32_t hdgst; /* 0 or 4 */
    uint32_t pdo; /* data offset (0: no data) */
    uint32_t datalen; /* payload bytes */
    uint32_t ddgst; /* 0 or 4 */
    uint32_t plen;
};

struct nvmf_pdu_err {
    uint16_t fes; /* enum nvme_tcp_fes; 0: no error */
    uint32_t fei;
    char msg[128];
};

/* The fixed hlen of a PDU type, or 0 for an unknown type. */
uint32_t nvmf_pdu_hlen(uint8_t type);
/* Whether `side` may receive PDUs of this type. */
bool nvmf_pdu_type_ok(enum nvmf_side side, uint8_t type);

/*
 * Check a received common header (the first 8 bytes) against what was
 * negotiated (digests; before ICReq/ICResp neither) and the largest PDU the
 * receiver takes (max_plen). Fills *lay; 0, or -1 with *err set.
 * `icdone`: false only for the first PDU, which must be ICReq/ICResp.
 */
int nvmf_pdu_check_ch(const struct nvme_tcp_common_hdr *ch, enum nvmf_side side, bool icdone, bool hdgst, bool ddgst,
                      uint32_t max_plen, struct nvmf_pdu_layout *lay, struct nvmf_pdu_err *err);

/* Header digest of hlen bytes (CRC32C, sent little-endian after the header). */
uint32_t nvmf_digest(const void *buf, size_t len);
/* Check the header digest that follows `hlen` header bytes. */
bool nvmf_hdgst_ok(const void *hdr, uint32_t hlen);

/*
 * An ICReq received by a controller: its PFV, HPDA, digest and MAXR2T
 * fields. On success *hdgst and *ddgst say what the host asked for.
 */
int nvmf_icreq_check(const struct nvme_tcp_icreq *req, bool *hdgst, bool *ddgst, struct nvmf_pdu_err *err);
/* An ICResp received by a host (PFV, CPDA, MAXH2CDATA). */
int nvmf_icresp_check(const struct nvme_tcp_icresp *rsp, uint32_t *maxh2cdata, struct nvmf_pdu_err *err);

/* ---- encoders (fill a zeroed header; digests are the caller's) ---- */
void nvmf_ch_init(struct nvme_tcp_common_hdr *ch, uint8_t type, bool hdgst, bool ddgst_with_data, uint32_t hlen,
                  uint32_t datalen);
void nvmf_icresp_init(struct nvme_tcp_icresp *rsp, bool hdgst, bool ddgst, uint32_t maxh2cdata);
void nvmf_icreq_init(struct nvme_tcp_icreq *req, bool hdgst, bool ddgst);
/* A TermReq carrying up to max bytes of the offending header (datalen set to what fits). */
void nvmf_term_req_init(struct nvme_tcp_term_req_hdr *t, enum nvmf_side sender, uint16_t fes, uint32_t fei,
                        uint32_t datalen);

/* ---- command-level checks ---- */

/*
 * The data pointer of a command: its SGL (the only form fabrics allow) must
 * be in-capsule (offset 0, length <= icdlen, and then exactly icdlen bytes
 * came) or transport (length <= max_len). Returns an NVMe status (0 when
 * fine) and sets *len and *in_capsule.
 */
uint16_t nvmf_sgl_check(const struct nvme_sqe *sqe, uint32_t icdlen, uint32_t max_len, uint32_t *len, bool *in_capsule);

/* Whether s (a field of 256 bytes) is a NUL-terminated NQN we accept. */
bool nvmf_nqn_field_ok(const char *field, size_t fieldlen);
/* A well-formed NQN: "nqn.yyyy-mm.<domain>[:<rest>]" or the uuid form, <= 223 bytes, printable. */
bool nvmf_nqn_valid(const char *nqn);

/*
 * A Connect command and its 1024 bytes of data. On success returns 0 with
 * NUL-terminated copies of the NQNs; otherwise the NVMe status and, for
 * Invalid Parameter, *cdw0 names the field (IATTR/IPO).
 */
uint16_t nvmf_connect_check(const struct nvmf_connect_cmd *cmd, const struct nvmf_connect_data *data, bool admin_queue,
                            uint32_t max_qsize, uint32_t *cdw0, char subnqn[NVMF_NQN_FIELD],
                            char hostnqn[NVMF_NQN_FIELD]);

/* Copy s into a fixed ASCII field padded with spaces (Identify sn/mn/fr, discovery log). */
void nvmf_pad_ascii(char *dst, size_t dstlen, const char *s);

#endif /* DP_NVMF_PDU_H */
