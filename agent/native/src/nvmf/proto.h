/*
 * proto.h - NVMe over TCP wire format, shared by the target (tcp.c, ctrlr.c,
 * admin.c, io.c, discovery.c) and the initiator (host.c).
 *
 * Every multi-byte field is little-endian on the wire; the structs below are
 * packed and assume a little-endian host (static-asserted), so a received
 * buffer can be read through them after its length is checked.
 *
 * References: NVMe Base 1.4/2.0, NVMe over Fabrics 1.1, NVMe/TCP Transport
 * 1.0 (TP 8000); SPDK include/spdk/nvme_spec.h, nvmf_spec.h, nvme_tcp.h.
 */
#ifndef DP_NVMF_PROTO_H
#define DP_NVMF_PROTO_H

#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "nvmf/proto.h assumes a little-endian host");

#define NVMF_PACKED __attribute__((packed))

/* ---- well-known names and numbers ---------------------------------------- */

#define NVMF_DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"
#define NVMF_NQN_MAX 223 /* bytes, excluding the NUL; the fields are 256 */
#define NVMF_NQN_FIELD 256
#define NVMF_TCP_PORT 4420
#define NVMF_TCP_DISCOVERY_PORT 8009

/* ---- NVMe/TCP PDUs ------------------------------------------------------- */

enum nvme_tcp_pdu_type {
    NVME_TCP_PDU_ICREQ = 0x00,
    NVME_TCP_PDU_ICRESP = 0x01,
    NVME_TCP_PDU_H2C_TERM_REQ = 0x02,
    NVME_TCP_PDU_C2H_TERM_REQ = 0x03,
    NVME_TCP_PDU_CAPSULE_CMD = 0x04,
    NVME_TCP_PDU_CAPSULE_RESP = 0x05,
    NVME_TCP_PDU_H2C_DATA = 0x06,
    NVME_TCP_PDU_C2H_DATA = 0x07,
    NVME_TCP_PDU_R2T = 0x09,
};

/* common header flags */
#define NVME_TCP_F_HDGST 0x01 /* header digest present */
#define NVME_TCP_F_DDGST 0x02 /* data digest present */
#define NVME_TCP_F_DATA_LAST 0x04 /* H2CData/C2HData: last PDU of the transfer */
#define NVME_TCP_F_DATA_SUCCESS 0x08 /* C2HData: command succeeded, no CapsuleResp follows */

#define NVME_TCP_PFV_1_0 0 /* the only protocol format version */
#define NVME_TCP_DIGEST_LEN 4 /* CRC32C */
#define NVME_TCP_ICREQ_DGST_HDGST 0x01 /* ICReq/ICResp dgst byte: header digest enable */
#define NVME_TCP_ICREQ_DGST_DDGST 0x02 /* data digest enable */
#define NVME_TCP_HPDA_MAX 31 /* HPDA/CPDA: data alignment is (n+1)*4 bytes */
#define NVME_TCP_MAXH2CDATA_MIN 4096 /* ICResp maxh2cdata must be >= 4096 and 4-aligned */
#define NVME_TCP_TERM_REQ_DATA_MAX_H2C 128 /* TermReq carries the offending header, up to */
#define NVME_TCP_TERM_REQ_DATA_MAX_C2H 152

/* Fatal error status of a TermReq (fes). */
enum nvme_tcp_fes {
    NVME_TCP_FES_INVALID_HEADER_FIELD = 0x01, /* fei: byte offset of the field */
    NVME_TCP_FES_PDU_SEQUENCE_ERROR = 0x02,
    NVME_TCP_FES_HDGST_ERROR = 0x03,
    NVME_TCP_FES_DATA_OUT_OF_RANGE = 0x04,
    NVME_TCP_FES_R2T_LIMIT_EXCEEDED = 0x05, /* a.k.a. data transfer limit exceeded */
    NVME_TCP_FES_UNSUPPORTED_PARAMETER = 0x06,
};

struct nvme_tcp_common_hdr {
    uint8_t pdu_type;
    uint8_t flags;
    uint8_t hlen; /* header length, without the header digest */
    uint8_t pdo; /* PDU data offset from the PDU start (0: no data) */
    uint32_t plen; /* whole PDU: header, digests, padding, data */
} NVMF_PACKED;

struct nvme_tcp_icreq {
    struct nvme_tcp_common_hdr ch;
    uint16_t pfv;
    uint8_t hpda; /* host PDU data alignment */
    uint8_t dgst; /* NVME_TCP_ICREQ_DGST_* */
    uint32_t maxr2t; /* 0-based: outstanding R2Ts per command */
    uint8_t rsvd[112];
} NVMF_PACKED;

struct nvme_tcp_icresp {
    struct nvme_tcp_common_hdr ch;
    uint16_t pfv;
    uint8_t cpda; /* controller PDU data alignment */
    uint8_t dgst;
    uint32_t maxh2cdata; /* largest H2CData payload the controller accepts */
    uint8_t rsvd[112];
} NVMF_PACKED;

struct nvme_tcp_term_req_hdr {
    struct nvme_tcp_common_hdr ch;
    uint16_t fes;
    uint32_t fei; /* field error information */
    uint8_t rsvd[10];
} NVMF_PACKED;

/* ---- SQE / CQE / SGL ----------------------------------------------------- */

/* SGL descriptor type (high nibble) and subtype (low nibble) */
#define NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVME_SGL_TYPE_BIT_BUCKET 0x1
#define NVME_SGL_TYPE_SEGMENT 0x2
#define NVME_SGL_TYPE_LAST_SEGMENT 0x3
#define NVME_SGL_TYPE_KEYED_DATA_BLOCK 0x4
#define NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK 0x5
#define NVME_SGL_SUBTYPE_ADDRESS 0x0
#define NVME_SGL_SUBTYPE_OFFSET 0x1
#define NVME_SGL_SUBTYPE_TRANSPORT 0xA
#define NVME_SGL_ID(type, subtype) ((uint8_t)(((type) << 4) | (subtype)))
/* NVMe/TCP uses exactly two: in-capsule data, and data moved by R2T/H2CData/C2HData. */
#define NVME_TCP_SGL_INCAPSULE NVME_SGL_ID(NVME_SGL_TYPE_DATA_BLOCK, NVME_SGL_SUBTYPE_OFFSET) /* 0x01 */
#define NVME_TCP_SGL_TRANSPORT NVME_SGL_ID(NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK, NVME_SGL_SUBTYPE_TRANSPORT) /* 0x5A */

struct nvme_sgl_desc {
    uint64_t address; /* in-capsule: offset into the capsule data (must be <= ICDOFF use: 0) */
    uint32_t length;
    uint8_t rsvd[3];
    uint8_t id; /* NVME_SGL_ID(type, subtype) */
} NVMF_PACKED;

/* PSDT (flags bits 6-7): SGL for data (01b) is what fabrics require. */
#define NVME_CMD_PSDT_SGL (1u << 6)
#define NVME_CMD_FUSE_MASK 0x03

struct nvme_sqe {
    uint8_t opc;
    uint8_t flags; /* FUSE bits 0-1, PSDT bits 6-7 */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    struct nvme_sgl_desc sgl1; /* DPTR */
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
} NVMF_PACKED;

struct nvme_cqe {
    uint32_t cdw0; /* command specific result */
    uint32_t cdw1;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* NVME_STATUS_* packing below; phase bit 0 unused over fabrics */
} NVMF_PACKED;

/* Status field: P bit 0, SC bits 1-8, SCT bits 9-11, CRD 12-13, M 14, DNR 15. */
#define NVME_STATUS(sct, sc) ((uint16_t)((((sct)&0x7u) << 9) | (((sc)&0xffu) << 1)))
#define NVME_STATUS_SC(st) (((st) >> 1) & 0xffu)
#define NVME_STATUS_SCT(st) (((st) >> 9) & 0x7u)
#define NVME_STATUS_MORE (1u << 14)
#define NVME_STATUS_DNR (1u << 15)

/* status code types */
#define NVME_SCT_GENERIC 0x0
#define NVME_SCT_COMMAND_SPECIFIC 0x1
#define NVME_SCT_MEDIA_ERROR 0x2
#define NVME_SCT_PATH 0x3
#define NVME_SCT_VENDOR 0x7

/* generic command status */
#define NVME_SC_SUCCESS 0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_COMMAND_ID_CONFLICT 0x03
#define NVME_SC_DATA_TRANSFER_ERROR 0x04
#define NVME_SC_ABORTED_POWER_LOSS 0x05
#define NVME_SC_INTERNAL_DEVICE_ERROR 0x06
#define NVME_SC_ABORTED_BY_REQUEST 0x07
#define NVME_SC_ABORTED_SQ_DELETION 0x08
#define NVME_SC_ABORTED_FAILED_FUSED 0x09
#define NVME_SC_ABORTED_MISSING_FUSED 0x0a
#define NVME_SC_INVALID_NAMESPACE_OR_FORMAT 0x0b
#define NVME_SC_COMMAND_SEQUENCE_ERROR 0x0c
#define NVME_SC_INVALID_SGL_SEG_DESCRIPTOR 0x0d
#define NVME_SC_INVALID_NUM_SGL_DESCIRPTORS 0x0e
#define NVME_SC_DATA_SGL_LENGTH_INVALID 0x0f
#define NVME_SC_METADATA_SGL_LENGTH_INVALID 0x10
#define NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID 0x11
#define NVME_SC_INVALID_SGL_OFFSET 0x16
#define NVME_SC_HOSTID_INCONSISTENT_FORMAT 0x18
#define NVME_SC_KEEP_ALIVE_EXPIRED 0x19
#define NVME_SC_KEEP_ALIVE_INVALID 0x1a
#define NVME_SC_ABORTED_PREEMPT 0x1b
#define NVME_SC_SANITIZE_FAILED 0x1c
#define NVME_SC_SANITIZE_IN_PROGRESS 0x1d
#define NVME_SC_NS_WRITE_PROTECTED 0x20
#define NVME_SC_COMMAND_INTERRUPTED 0x21
#define NVME_SC_TRANSIENT_TRANSPORT_ERROR 0x22
#define NVME_SC_LBA_OUT_OF_RANGE 0x80
#define NVME_SC_CAPACITY_EXCEEDED 0x81
#define NVME_SC_NAMESPACE_NOT_READY 0x82
#define NVME_SC_RESERVATION_CONFLICT 0x83

/* command specific status */
#define NVME_SC_COMPLETION_QUEUE_INVALID 0x00
#define NVME_SC_INVALID_QUEUE_IDENTIFIER 0x01
#define NVME_SC_INVALID_QUEUE_SIZE 0x02
#define NVME_SC_ABORT_COMMAND_LIMIT_EXCEEDED 0x03
#define NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED 0x05
#define NVME_SC_INVALID_FIRMWARE_SLOT 0x06
#define NVME_SC_INVALID_LOG_PAGE 0x09
#define NVME_SC_INVALID_FORMAT 0x0a
#define NVME_SC_FEATURE_ID_NOT_SAVEABLE 0x0d
#define NVME_SC_FEATURE_NOT_CHANGEABLE 0x0e
#define NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC 0x0f
#define NVME_SC_NAMESPACE_NOT_ATTACHED 0x1a
#define NVME_SC_ATTEMPTED_WRITE_TO_RO_RANGE 0x82 /* I/O command set specific */

/* fabrics command specific status (SCT 1) */
#define NVMF_SC_INCOMPATIBLE_FORMAT 0x80
#define NVMF_SC_CONTROLLER_BUSY 0x81
#define NVMF_SC_INVALID_PARAM 0x82 /* cdw0 = IATTR/IPO: which field */
#define NVMF_SC_RESTART_DISCOVERY 0x83
#define NVMF_SC_INVALID_HOST 0x84
#define NVMF_SC_INVALID_QUEUE_TYPE 0x85
#define NVMF_SC_LOG_RESTART_DISCOVERY 0x90
#define NVMF_SC_AUTH_REQUIRED 0x91

/* Connect "invalid parameter" result (cdw0): IATTR byte 0 (0 = SQE, 1 = data), IPO bytes 2-3. */
#define NVMF_INVALID_PARAM_CDW0(in_data, offset) (((uint32_t)(in_data)&1u) | ((uint32_t)(offset) << 16))

/* ---- opcodes ------------------------------------------------------------- */

enum nvme_admin_opc {
    NVME_ADM_DELETE_SQ = 0x00,
    NVME_ADM_CREATE_SQ = 0x01,
    NVME_ADM_GET_LOG_PAGE = 0x02,
    NVME_ADM_DELETE_CQ = 0x04,
    NVME_ADM_CREATE_CQ = 0x05,
    NVME_ADM_IDENTIFY = 0x06,
    NVME_ADM_ABORT = 0x08,
    NVME_ADM_SET_FEATURES = 0x09,
    NVME_ADM_GET_FEATURES = 0x0a,
    NVME_ADM_ASYNC_EVENT_REQUEST = 0x0c,
    NVME_ADM_NS_MANAGEMENT = 0x0d,
    NVME_ADM_FW_COMMIT = 0x10,
    NVME_ADM_FW_DOWNLOAD = 0x11,
    NVME_ADM_DEVICE_SELF_TEST = 0x14,
    NVME_ADM_NS_ATTACHMENT = 0x15,
    NVME_ADM_KEEP_ALIVE = 0x18,
    NVME_ADM_DIRECTIVE_SEND = 0x19,
    NVME_ADM_DIRECTIVE_RECV = 0x1a,
    NVME_ADM_VIRTUALIZATION_MGMT = 0x1c,
    NVME_ADM_NVME_MI_SEND = 0x1d,
    NVME_ADM_NVME_MI_RECV = 0x1e,
    NVME_ADM_DOORBELL_BUFFER_CONFIG = 0x7c,
    NVME_ADM_FABRICS = 0x7f, /* also valid on I/O queues (Connect) */
    NVME_ADM_FORMAT_NVM = 0x80,
    NVME_ADM_SECURITY_SEND = 0x81,
    NVME_ADM_SECURITY_RECV = 0x82,
    NVME_ADM_SANITIZE = 0x84,
    NVME_ADM_GET_LBA_STATUS = 0x86,
};

enum nvme_io_opc {
    NVME_IO_FLUSH = 0x00,
    NVME_IO_WRITE = 0x01,
    NVME_IO_READ = 0x02,
    NVME_IO_WRITE_UNCORRECTABLE = 0x04,
    NVME_IO_COMPARE = 0x05,
    NVME_IO_WRITE_ZEROES = 0x08,
    NVME_IO_DATASET_MANAGEMENT = 0x09,
    NVME_IO_VERIFY = 0x0c,
    NVME_IO_RESERVATION_REGISTER = 0x0d,
    NVME_IO_RESERVATION_REPORT = 0x0e,
    NVME_IO_RESERVATION_ACQUIRE = 0x11,
    NVME_IO_RESERVATION_RELEASE = 0x15,
    NVME_IO_COPY = 0x19,
};

/* Read/Write: cdw10-11 SLBA, cdw12 bits 0-15 NLB (0-based), bit 30 FUA, bit 31 LR. */
#define NVME_RW_FUA (1u << 30)
#define NVME_RW_LR (1u << 31)
#define NVME_RW_NLB_MASK 0xffffu
/* Write Zeroes cdw12: bit 25 DEAC (the host allows deallocating the range). */
#define NVME_WZ_DEAC (1u << 25)
/* DSM: cdw10 bits 0-7 NR (0-based range count), cdw11 bit 2 AD (deallocate). */
#define NVME_DSM_ATTR_DEALLOCATE (1u << 2)
#define NVME_DSM_MAX_RANGES 256

struct nvme_dsm_range {
    uint32_t attributes;
    uint32_t nlb; /* 1-based here */
    uint64_t slba;
} NVMF_PACKED;

/* ---- fabrics commands ---------------------------------------------------- */

enum nvmf_fctype {
    NVMF_FCTYPE_PROPERTY_SET = 0x00,
    NVMF_FCTYPE_CONNECT = 0x01,
    NVMF_FCTYPE_PROPERTY_GET = 0x04,
    NVMF_FCTYPE_AUTH_SEND = 0x05,
    NVMF_FCTYPE_AUTH_RECV = 0x06,
    NVMF_FCTYPE_DISCONNECT = 0x08,
};

/* Generic fabrics SQE: opcode 0x7f, fctype at byte 4. */
struct nvmf_fabric_cmd {
    uint8_t opc; /* NVME_ADM_FABRICS */
    uint8_t flags;
    uint16_t cid;
    uint8_t fctype;
    uint8_t rsvd1[19];
    struct nvme_sgl_desc sgl1;
    uint8_t specific[24];
} NVMF_PACKED;

struct nvmf_connect_cmd {
    uint8_t opc;
    uint8_t flags;
    uint16_t cid;
    uint8_t fctype; /* NVMF_FCTYPE_CONNECT */
    uint8_t rsvd1[19];
    struct nvme_sgl_desc sgl1; /* 1024 bytes of nvmf_connect_data, in capsule */
    uint16_t recfmt; /* 0 */
    uint16_t qid; /* 0: admin queue */
    uint16_t sqsize; /* 0-based */
    uint8_t cattr; /* bit 2: SQ flow control disable requested */
    uint8_t rsvd2;
    uint32_t kato; /* ms, admin queue only; 0 = keep-alive off */
    uint8_t rsvd3[12];
} NVMF_PACKED;

#define NVMF_CONNECT_CATTR_DISABLE_SQ_FC (1u << 2)
#define NVMF_CNTLID_DYNAMIC 0xffff
#define NVMF_CNTLID_STATIC_ANY 0xfffe
#define NVMF_CNTLID_MAX 0xffef

struct nvmf_connect_data {
    uint8_t hostid[16];
    uint16_t cntlid;
    uint8_t rsvd1[238];
    char subnqn[NVMF_NQN_FIELD];
    char hostnqn[NVMF_NQN_FIELD];
    uint8_t rsvd2[256];
} NVMF_PACKED;

/* Connect response: cdw0 bits 0-15 CNTLID (admin queue), bits 16-31 AUTHREQ. */

/* Property Get/Set: attrib bits 0-2 = size (0: 4 bytes, 1: 8 bytes). */
#define NVMF_PROP_SIZE_4 0
#define NVMF_PROP_SIZE_8 1

struct nvmf_property_set_cmd {
    uint8_t opc;
    uint8_t flags;
    uint16_t cid;
    uint8_t fctype;
    uint8_t rsvd1[35];
    uint8_t attrib;
    uint8_t rsvd2[3];
    uint32_t ofst;
    uint64_t value;
    uint8_t rsvd3[8];
} NVMF_PACKED;

struct nvmf_property_get_cmd {
    uint8_t opc;
    uint8_t flags;
    uint16_t cid;
    uint8_t fctype;
    uint8_t rsvd1[35];
    uint8_t attrib;
    uint8_t rsvd2[3];
    uint32_t ofst;
    uint8_t rsvd3[16];
} NVMF_PACKED;

/* Property Get response: cdw0 (4-byte) or cdw0:cdw1 (8-byte) hold the value. */

/* ---- controller properties ("registers") --------------------------------- */

#define NVME_REG_CAP 0x00 /* 8 bytes */
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_NSSR 0x20

/* CAP */
#define NVME_CAP_MQES_MASK 0xffffull /* 0-based max queue entries */
#define NVME_CAP_CQR (1ull << 16) /* contiguous queues required */
#define NVME_CAP_TO_SHIFT 24 /* bits 24-31: ready timeout, 500 ms units */
#define NVME_CAP_DSTRD_SHIFT 32
#define NVME_CAP_NSSRS (1ull << 36)
#define NVME_CAP_CSS_NVM (1ull << 37) /* CSS bit 0: NVM command set */
#define NVME_CAP_CSS_NOIO (1ull << 44) /* CSS bit 7: no I/O command set (discovery) */
#define NVME_CAP_MPSMIN_SHIFT 48
#define NVME_CAP_MPSMAX_SHIFT 52

/* VS: major << 16 | minor << 8 | tertiary */
#define NVME_VS(maj, min, ter) (((uint32_t)(maj) << 16) | ((uint32_t)(min) << 8) | (uint32_t)(ter))

/* CC */
#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS_SHIFT 4
#define NVME_CC_CSS_MASK (7u << 4)
#define NVME_CC_MPS_SHIFT 7
#define NVME_CC_MPS_MASK (0xfu << 7)
#define NVME_CC_AMS_SHIFT 11
#define NVME_CC_AMS_MASK (7u << 11)
#define NVME_CC_SHN_SHIFT 14
#define NVME_CC_SHN_MASK (3u << 14)
#define NVME_CC_SHN_NONE 0u
#define NVME_CC_SHN_NORMAL 1u
#define NVME_CC_SHN_ABRUPT 2u
#define NVME_CC_IOSQES_SHIFT 16
#define NVME_CC_IOSQES_MASK (0xfu << 16)
#define NVME_CC_IOCQES_SHIFT 20
#define NVME_CC_IOCQES_MASK (0xfu << 20)

/* CSTS */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_SHIFT 2
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_NORMAL 0u
#define NVME_CSTS_SHST_OCCURRING 1u
#define NVME_CSTS_SHST_COMPLETE 2u
#define NVME_CSTS_NSSRO (1u << 4)
#define NVME_CSTS_PP (1u << 5)

/* Identify, log pages, features, AER: nvmf/proto_admin.h */
#include "nvmf/proto_admin.h"

/* ---- sizes --------------------------------------------------------------- */

#define NVME_SQE_SIZE 64
#define NVME_CQE_SIZE 16
#define NVME_TCP_CH_SIZE 8
#define NVME_TCP_ICREQ_SIZE 128
#define NVME_TCP_ICRESP_SIZE 128
#define NVME_TCP_TERM_REQ_HLEN 24
#define NVME_TCP_CMD_HLEN (NVME_TCP_CH_SIZE + NVME_SQE_SIZE) /* 72 */
#define NVME_TCP_RSP_HLEN (NVME_TCP_CH_SIZE + NVME_CQE_SIZE) /* 24 */
#define NVME_TCP_DATA_HLEN 24 /* H2CData, C2HData */
#define NVME_TCP_R2T_HLEN 24
#define NVMF_CONNECT_DATA_LEN 1024

/* H2CData / C2HData / R2T headers. */
struct nvme_tcp_h2c_data_hdr {
    struct nvme_tcp_common_hdr ch;
    uint16_t cccid; /* the command's cid */
    uint16_t ttag; /* the R2T's transfer tag */
    uint32_t datao; /* offset into the command's data */
    uint32_t datal;
    uint8_t rsvd[4];
} NVMF_PACKED;

struct nvme_tcp_c2h_data_hdr {
    struct nvme_tcp_common_hdr ch;
    uint16_t cccid;
    uint8_t rsvd1[2];
    uint32_t datao;
    uint32_t datal;
    uint8_t rsvd2[4];
} NVMF_PACKED;

struct nvme_tcp_r2t_hdr {
    struct nvme_tcp_common_hdr ch;
    uint16_t cccid;
    uint16_t ttag;
    uint32_t r2to;
    uint32_t r2tl;
    uint8_t rsvd[4];
} NVMF_PACKED;

struct nvme_tcp_cmd {
    struct nvme_tcp_common_hdr ch;
    struct nvme_sqe sqe;
    /* header digest, padding up to pdo, in-capsule data, data digest follow */
} NVMF_PACKED;

struct nvme_tcp_rsp {
    struct nvme_tcp_common_hdr ch;
    struct nvme_cqe cqe;
} NVMF_PACKED;

/* The largest fixed header of any PDU (ICReq/ICResp), excluding digests. */
#define NVME_TCP_MAX_HLEN 128

_Static_assert(sizeof(struct nvme_tcp_common_hdr) == NVME_TCP_CH_SIZE, "ch");
_Static_assert(sizeof(struct nvme_tcp_icreq) == NVME_TCP_ICREQ_SIZE, "icreq");
_Static_assert(sizeof(struct nvme_tcp_icresp) == NVME_TCP_ICRESP_SIZE, "icresp");
_Static_assert(sizeof(struct nvme_tcp_term_req_hdr) == NVME_TCP_TERM_REQ_HLEN, "termreq");
_Static_assert(sizeof(struct nvme_sgl_desc) == 16, "sgl");
_Static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "sqe");
_Static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "cqe");
_Static_assert(sizeof(struct nvme_tcp_cmd) == NVME_TCP_CMD_HLEN, "capsule cmd");
_Static_assert(sizeof(struct nvme_tcp_rsp) == NVME_TCP_RSP_HLEN, "capsule resp");
_Static_assert(sizeof(struct nvme_tcp_h2c_data_hdr) == NVME_TCP_DATA_HLEN, "h2c");
_Static_assert(sizeof(struct nvme_tcp_c2h_data_hdr) == NVME_TCP_DATA_HLEN, "c2h");
_Static_assert(sizeof(struct nvme_tcp_r2t_hdr) == NVME_TCP_R2T_HLEN, "r2t");
_Static_assert(sizeof(struct nvmf_fabric_cmd) == NVME_SQE_SIZE, "fabric cmd");
_Static_assert(sizeof(struct nvmf_connect_cmd) == NVME_SQE_SIZE, "connect cmd");
_Static_assert(sizeof(struct nvmf_property_set_cmd) == NVME_SQE_SIZE, "prop set");
_Static_assert(sizeof(struct nvmf_property_get_cmd) == NVME_SQE_SIZE, "prop get");
_Static_assert(sizeof(struct nvmf_connect_data) == NVMF_CONNECT_DATA_LEN, "connect data");
_Static_assert(sizeof(struct nvme_id_ctrl) == NVME_ID_DATA_LEN, "id ctrl");
_Static_assert(sizeof(struct nvme_id_ns) == NVME_ID_DATA_LEN, "id ns");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, kas) == 320, "kas");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, anacap) == 343, "anacap");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, sqes) == 512, "sqes");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, sgls) == 536, "sgls");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, subnqn) == 768, "subnqn");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, ioccsz) == 1792, "ioccsz");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, psd) == 2048, "psd");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, cntrltype) == 111, "cntrltype");
_Static_assert(__builtin_offsetof(struct nvme_id_ns, anagrpid) == 92, "anagrpid");
_Static_assert(__builtin_offsetof(struct nvme_id_ns, nguid) == 104, "nguid");
_Static_assert(__builtin_offsetof(struct nvme_id_ns, lbaf) == 128, "lbaf");
_Static_assert(sizeof(struct nvme_error_log_entry) == 64, "error log");
_Static_assert(sizeof(struct nvme_smart_log) == 512, "smart log");
_Static_assert(sizeof(struct nvme_cmd_effects_log) == 4096, "effects log");
_Static_assert(sizeof(struct nvme_ana_log_hdr) == 16, "ana hdr");
_Static_assert(sizeof(struct nvme_ana_group_desc) == 32, "ana group");
_Static_assert(sizeof(struct nvmf_disc_log_hdr) == 1024, "disc hdr");
_Static_assert(sizeof(struct nvmf_disc_log_entry) == 1024, "disc entry");
_Static_assert(__builtin_offsetof(struct nvmf_disc_log_entry, trsvcid) == 32, "trsvcid");
_Static_assert(__builtin_offsetof(struct nvmf_disc_log_entry, subnqn) == 256, "disc subnqn");
_Static_assert(__builtin_offsetof(struct nvmf_disc_log_entry, traddr) == 512, "traddr");
_Static_assert(__builtin_offsetof(struct nvmf_connect_data, subnqn) == 256, "connect subnqn");
_Static_assert(__builtin_offsetof(struct nvmf_connect_cmd, recfmt) == 40, "recfmt");
_Static_assert(__builtin_offsetof(struct nvmf_connect_cmd, kato) == 48, "kato");
_Static_assert(__builtin_offsetof(struct nvmf_property_set_cmd, ofst) == 44, "ofst");
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "dsm range");

#endif
