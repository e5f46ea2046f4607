/*
 * proto_admin.h - NVMe admin data structures of the wire format: Identify,
 * log pages (error, SMART, effects, ANA, discovery), features and
 * asynchronous events. Part of nvmf/proto.h (which includes it); split
 * only to keep each file readable.
 */
/* First, so that included on its own it still comes in the middle of proto.h. */
#include "nvmf/proto.h"

#ifndef DP_NVMF_PROTO_ADMIN_H
#define DP_NVMF_PROTO_ADMIN_H

/* ---- Identify ------------------------------------------------------------ */

/* cdw10 bits 0-7 CNS, bits 16-31 CNTID; cdw11 bits 24-31 CSI */
enum nvme_identify_cns {
    NVME_ID_CNS_NS = 0x00,
    NVME_ID_CNS_CTRL = 0x01,
    NVME_ID_CNS_NS_ACTIVE_LIST = 0x02,
    NVME_ID_CNS_NS_DESC_LIST = 0x03,
    NVME_ID_CNS_NVMSET_LIST = 0x04,
    NVME_ID_CNS_CS_NS = 0x05,
    NVME_ID_CNS_CS_CTRL = 0x06,
    NVME_ID_CNS_CS_NS_ACTIVE_LIST = 0x07,
    NVME_ID_CNS_NS_CS_INDEP = 0x08,
    NVME_ID_CNS_NS_PRESENT_LIST = 0x10,
    NVME_ID_CNS_NS_PRESENT = 0x11,
    NVME_ID_CNS_CTRL_NS_LIST = 0x12,
    NVME_ID_CNS_CTRL_LIST = 0x13,
    NVME_ID_CNS_CS_INDEP_CTRL = 0x1c,
};
#define NVME_ID_DATA_LEN 4096
#define NVME_CSI_NVM 0x00
#define NVME_CSI_ZNS 0x02

/* Identify Controller (CNS 01h), the fields we fill; the rest stays zero. */
struct nvme_id_ctrl {
    uint16_t vid;
    uint16_t ssvid;
    char sn[20]; /* space padded, not NUL terminated */
    char mn[40];
    char fr[8];
    uint8_t rab;
    uint8_t ieee[3];
    uint8_t cmic; /* bit 0 multi-port, 1 multi-controller, 3 ANA reporting */
    uint8_t mdts; /* max transfer 2^mdts * CAP.MPSMIN pages; 0 = no limit */
    uint16_t cntlid;
    uint32_t ver;
    uint32_t rtd3r;
    uint32_t rtd3e;
    uint32_t oaes; /* bit 8 ns attribute notices, 11 ANA change, 31 discovery log change */
    uint32_t ctratt;
    uint16_t rrls;
    uint8_t rsvd102[9];
    uint8_t cntrltype; /* NVME_CTRL_TYPE_* */
    uint8_t fguid[16];
    uint16_t crdt[3];
    uint8_t rsvd134[119];
    uint8_t nvmsr;
    uint8_t vwci;
    uint8_t mec;
    uint16_t oacs;
    uint8_t acl; /* 0-based: concurrent Abort commands */
    uint8_t aerl; /* 0-based: outstanding AERs */
    uint8_t frmw;
    uint8_t lpa; /* bit 1 command effects log, 2 extended data, 3 telemetry */
    uint8_t elpe; /* 0-based error log entries */
    uint8_t npss;
    uint8_t avscc;
    uint8_t apsta;
    uint16_t wctemp;
    uint16_t cctemp;
    uint16_t mtfa;
    uint32_t hmpre;
    uint32_t hmmin;
    uint8_t tnvmcap[16];
    uint8_t unvmcap[16];
    uint32_t rpmbs;
    uint16_t edstt;
    uint8_t dsto;
    uint8_t fwug;
    uint16_t kas; /* keep-alive granularity, 100 ms units */
    uint16_t hctma;
    uint16_t mntmt;
    uint16_t mxtmt;
    uint32_t sanicap;
    uint32_t hmminds;
    uint16_t hmmaxd;
    uint16_t nsetidmax;
    uint16_t endgidmax;
    uint8_t anatt; /* ANA transition time, s */
    uint8_t anacap; /* bit 0 optimized state reported, 6 ANAGRPID static, 7 non-zero grpid */
    uint32_t anagrpmax;
    uint32_t nanagrpid;
    uint32_t pels;
    uint16_t domainid;
    uint8_t rsvd358[10];
    uint8_t megcap[16];
    uint8_t rsvd384[128];
    uint8_t sqes; /* bits 0-3 required, 4-7 max: log2 of the entry size (6) */
    uint8_t cqes; /* (4) */
    uint16_t maxcmd;
    uint32_t nn; /* highest nsid */
    uint16_t oncs; /* NVME_ONCS_* */
    uint16_t fuses;
    uint8_t fna;
    uint8_t vwc; /* bit 0 volatile write cache present; bits 1-2 = 11b flush nsid ffffffff ok */
    uint16_t awun;
    uint16_t awupf;
    uint8_t icsvscc;
    uint8_t nwpc;
    uint16_t acwu;
    uint16_t ocfs;
    uint32_t sgls; /* NVME_SGLS_* */
    uint32_t mnan;
    uint8_t maxdna[16];
    uint32_t maxcna;
    uint8_t rsvd564[204];
    char subnqn[NVMF_NQN_FIELD];
    uint8_t rsvd1024[768];
    /* fabrics */
    uint32_t ioccsz; /* I/O command capsule size, 16-byte units (SQE + in-capsule data) */
    uint32_t iorcsz; /* response capsule size, 16-byte units (1) */
    uint16_t icdoff; /* in-capsule data offset, 16-byte units (0) */
    uint8_t fcatt; /* bit 0: 0 dynamic controller model */
    uint8_t msdbd; /* max SGL data block descriptors (1) */
    uint16_t ofcs;
    uint8_t rsvd1806[242];
    uint8_t psd[32][32];
    uint8_t vs[1024];
} NVMF_PACKED;

#define NVME_CTRL_TYPE_IO 1
#define NVME_CTRL_TYPE_DISCOVERY 2
#define NVME_CTRL_TYPE_ADMIN 3

#define NVME_CMIC_MULTI_PORT (1u << 0)
#define NVME_CMIC_MULTI_CTRL (1u << 1)
#define NVME_CMIC_ANA (1u << 3)

#define NVME_OAES_NS_ATTR (1u << 8)
#define NVME_OAES_ANA_CHANGE (1u << 11)
#define NVME_OAES_DISC_LOG_CHANGE (1u << 31)

#define NVME_LPA_CMD_EFFECTS (1u << 1)
#define NVME_LPA_EXT_DATA (1u << 2)

#define NVME_ONCS_COMPARE (1u << 0)
#define NVME_ONCS_WRITE_UNCORRECTABLE (1u << 1)
#define NVME_ONCS_DSM (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)
#define NVME_ONCS_SAVE_FEATURES (1u << 4)
#define NVME_ONCS_RESERVATIONS (1u << 5)
#define NVME_ONCS_TIMESTAMP (1u << 6)
#define NVME_ONCS_VERIFY (1u << 7)

#define NVME_VWC_PRESENT (1u << 0)
#define NVME_VWC_FLUSH_BROADCAST (3u << 1) /* 11b: Flush with nsid ffffffff supported */

#define NVME_SGLS_SUPPORTED (1u << 0) /* bits 0-1 = 01b: no dword alignment needed */
#define NVME_SGLS_KEYED (1u << 2)
#define NVME_SGLS_BIT_BUCKET (1u << 16)
#define NVME_SGLS_OFFSET (1u << 20) /* address field may be an offset (in-capsule) */
#define NVME_SGLS_TRANSPORT (1u << 21) /* Transport SGL Data Block descriptor */

#define NVME_ANACAP_OPTIMIZED (1u << 0)
#define NVME_ANACAP_NON_OPTIMIZED (1u << 1)
#define NVME_ANACAP_INACCESSIBLE (1u << 2)
#define NVME_ANACAP_PERSISTENT_LOSS (1u << 3)
#define NVME_ANACAP_CHANGE (1u << 4)
#define NVME_ANACAP_GRPID_STATIC (1u << 6)
#define NVME_ANACAP_GRPID_NONZERO (1u << 7)

struct nvme_lbaf {
    uint16_t ms; /* metadata bytes */
    uint8_t lbads; /* log2 of the LBA data size */
    uint8_t rp;
} NVMF_PACKED;

/* Identify Namespace (CNS 00h). */
struct nvme_id_ns {
    uint64_t nsze; /* in LBAs */
    uint64_t ncap;
    uint64_t nuse;
    uint8_t nsfeat; /* bit 0 thin provisioning, 2 DAE/ERR, 4 optperf */
    uint8_t nlbaf; /* 0-based */
    uint8_t flbas; /* bits 0-3 format index */
    uint8_t mc;
    uint8_t dpc;
    uint8_t dps;
    uint8_t nmic; /* bit 0 may be attached to several controllers */
    uint8_t rescap;
    uint8_t fpi;
    uint8_t dlfeat; /* bits 0-2 = 001b: deallocated reads zero; bit 3 WZ DEAC */
    uint16_t nawun;
    uint16_t nawupf;
    uint16_t nacwu;
    uint16_t nabsn;
    uint16_t nabo;
    uint16_t nabspf;
    uint16_t noiob;
    uint8_t nvmcap[16];
    uint16_t npwg;
    uint16_t npwa;
    uint16_t npdg;
    uint16_t npda;
    uint16_t nows;
    uint16_t mssrl;
    uint32_t mcl;
    uint8_t msrc;
    uint8_t rsvd81;
    uint8_t nulbaf;
    uint8_t rsvd83[9];
    uint32_t anagrpid;
    uint8_t rsvd96[3];
    uint8_t nsattr;
    uint16_t nvmsetid;
    uint16_t endgid;
    uint8_t nguid[16];
    uint8_t eui64[8];
    struct nvme_lbaf lbaf[64];
    uint8_t rsvd384[3712];
} NVMF_PACKED;

#define NVME_NSFEAT_THIN (1u << 0)
#define NVME_NSFEAT_OPTPERF (1u << 4) /* npwg..nows valid */
#define NVME_NMIC_SHARED (1u << 0)
#define NVME_DLFEAT_READ_ZEROES 0x01
#define NVME_DLFEAT_WZ_DEAC (1u << 3)

/* Namespace identification descriptor (CNS 03h list of these, 4096 bytes). */
struct nvme_ns_id_desc {
    uint8_t nidt; /* NVME_NIDT_* */
    uint8_t nidl; /* length of the following id */
    uint16_t rsvd;
    /* uint8_t nid[nidl] follows */
} NVMF_PACKED;

#define NVME_NIDT_EUI64 0x01 /* 8 bytes */
#define NVME_NIDT_NGUID 0x02 /* 16 bytes */
#define NVME_NIDT_UUID 0x03 /* 16 bytes */
#define NVME_NIDT_CSI 0x04 /* 1 byte */
#define NVME_NIDT_EUI64_LEN 8
#define NVME_NIDT_NGUID_LEN 16
#define NVME_NIDT_UUID_LEN 16
#define NVME_NIDT_CSI_LEN 1

/* ---- log pages ----------------------------------------------------------- */

/* Get Log Page: cdw10 bits 0-7 LID, 8-14 LSP, 15 RAE, 16-31 NUMDL;
 * cdw11 bits 0-15 NUMDU, 16-31 LSI; cdw12/13 LPOL/LPOU (byte offset).
 * The length in bytes is ((NUMDU << 16 | NUMDL) + 1) * 4. */
#define NVME_LOG_RAE (1u << 15)

enum nvme_log_page {
    NVME_LOG_ERROR = 0x01,
    NVME_LOG_SMART = 0x02,
    NVME_LOG_FW_SLOT = 0x03,
    NVME_LOG_CHANGED_NS = 0x04,
    NVME_LOG_CMD_EFFECTS = 0x05,
    NVME_LOG_DEVICE_SELF_TEST = 0x06,
    NVME_LOG_TELEMETRY_HOST = 0x07,
    NVME_LOG_TELEMETRY_CTRL = 0x08,
    NVME_LOG_ENDURANCE_GROUP = 0x09,
    NVME_LOG_ANA = 0x0c,
    NVME_LOG_DISCOVERY = 0x70,
    NVME_LOG_RESERVATION = 0x80,
    NVME_LOG_SANITIZE = 0x81,
};

struct nvme_error_log_entry {
    uint64_t error_count;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status;
    uint16_t parm_error_location;
    uint64_t lba;
    uint32_t nsid;
    uint8_t vs;
    uint8_t trtype;
    uint8_t rsvd30[2];
    uint64_t cs;
    uint16_t trtype_spec;
    uint8_t rsvd42[22];
} NVMF_PACKED;

struct nvme_smart_log {
    uint8_t critical_warning;
    uint16_t temperature; /* kelvin */
    uint8_t avail_spare;
    uint8_t spare_thresh;
    uint8_t percent_used;
    uint8_t endu_grp_crit_warn;
    uint8_t rsvd7[25];
    uint8_t data_units_read[16]; /* 1000 x 512 bytes */
    uint8_t data_units_written[16];
    uint8_t host_reads[16];
    uint8_t host_writes[16];
    uint8_t ctrl_busy_time[16];
    uint8_t power_cycles[16];
    uint8_t power_on_hours[16];
    uint8_t unsafe_shutdowns[16];
    uint8_t media_errors[16];
    uint8_t num_err_log_entries[16];
    uint32_t warning_temp_time;
    uint32_t critical_comp_time;
    uint16_t temp_sensor[8];
    uint32_t thm_temp1_trans_count;
    uint32_t thm_temp2_trans_count;
    uint32_t thm_temp1_total_time;
    uint32_t thm_temp2_total_time;
    uint8_t rsvd232[280];
} NVMF_PACKED;

/* Commands Supported and Effects log: one dword per opcode. */
struct nvme_cmd_effects_log {
    uint32_t acs[256];
    uint32_t iocs[256];
    uint8_t rsvd[2048];
} NVMF_PACKED;
#define NVME_CMD_EFFECTS_CSUPP (1u << 0)
#define NVME_CMD_EFFECTS_LBCC (1u << 1) /* logical block content change */
#define NVME_CMD_EFFECTS_NCC (1u << 2)
#define NVME_CMD_EFFECTS_NIC (1u << 3)
#define NVME_CMD_EFFECTS_CCC (1u << 4)

#define NVME_CHANGED_NS_LOG_LEN 4096 /* up to 1024 nsids, 0-terminated */

/* Asymmetric Namespace Access log: header, then per group a descriptor and its nsids. */
struct nvme_ana_log_hdr {
    uint64_t chgcnt;
    uint16_t ngrps;
    uint8_t rsvd[6];
} NVMF_PACKED;

struct nvme_ana_group_desc {
    uint32_t grpid;
    uint32_t nnsids;
    uint64_t chgcnt;
    uint8_t state; /* NVME_ANA_* */
    uint8_t rsvd[15];
    /* uint32_t nsids[nnsids] follows (omitted when LSP bit 0 RGO is set) */
} NVMF_PACKED;

#define NVME_ANA_LSP_RGO 0x01 /* return groups only */
#define NVME_ANA_OPTIMIZED 0x01
#define NVME_ANA_NON_OPTIMIZED 0x02
#define NVME_ANA_INACCESSIBLE 0x03
#define NVME_ANA_PERSISTENT_LOSS 0x04
#define NVME_ANA_CHANGE 0x0f

/* Discovery log page: header then numrec entries of 1024 bytes. */
struct nvmf_disc_log_hdr {
    uint64_t genctr;
    uint64_t numrec;
    uint16_t recfmt;
    uint8_t rsvd[1006];
} NVMF_PACKED;

struct nvmf_disc_log_entry {
    uint8_t trtype; /* NVMF_TRTYPE_* */
    uint8_t adrfam; /* NVMF_ADRFAM_* */
    uint8_t subtype; /* NVMF_SUBTYPE_* */
    uint8_t treq; /* NVMF_TREQ_* */
    uint16_t portid;
    uint16_t cntlid; /* NVMF_CNTLID_DYNAMIC */
    uint16_t asqsz; /* admin max SQ size */
    uint16_t eflags;
    uint8_t rsvd12[20];
    char trsvcid[32]; /* space padded ASCII */
    uint8_t rsvd64[192];
    char subnqn[NVMF_NQN_FIELD];
    char traddr[256]; /* space padded ASCII */
    union {
        uint8_t raw[256];
        struct {
            uint8_t sectype; /* NVMF_TCP_SECTYPE_* */
        } tcp;
    } tsas;
} NVMF_PACKED;

#define NVMF_TRTYPE_RDMA 1
#define NVMF_TRTYPE_FC 2
#define NVMF_TRTYPE_TCP 3
#define NVMF_TRTYPE_LOOP 254
#define NVMF_ADRFAM_IPV4 1
#define NVMF_ADRFAM_IPV6 2
#define NVMF_SUBTYPE_DISCOVERY_REFERRAL 1
#define NVMF_SUBTYPE_NVME 2
#define NVMF_SUBTYPE_DISCOVERY_CURRENT 3
#define NVMF_TREQ_SECURE_NOT_SPECIFIED 0
#define NVMF_TREQ_SECURE_REQUIRED 1
#define NVMF_TREQ_SECURE_NOT_REQUIRED 2
#define NVMF_TREQ_DISABLE_SQFLOW (1u << 2)
#define NVMF_TCP_SECTYPE_NONE 0

/* ---- features ------------------------------------------------------------ */

/* Set/Get Features: cdw10 bits 0-7 FID, Set bit 31 SV (save), Get bits 8-10 SEL. */
enum nvme_feature_id {
    NVME_FEAT_ARBITRATION = 0x01,
    NVME_FEAT_POWER_MGMT = 0x02,
    NVME_FEAT_LBA_RANGE = 0x03,
    NVME_FEAT_TEMP_THRESH = 0x04,
    NVME_FEAT_ERR_RECOVERY = 0x05,
    NVME_FEAT_VOLATILE_WC = 0x06,
    NVME_FEAT_NUM_QUEUES = 0x07, /* cdw11/result: NSQR bits 0-15, NCQR 16-31, 0-based */
    NVME_FEAT_IRQ_COALESCE = 0x08,
    NVME_FEAT_IRQ_CONFIG = 0x09,
    NVME_FEAT_WRITE_ATOMIC = 0x0a,
    NVME_FEAT_ASYNC_EVENT = 0x0b,
    NVME_FEAT_AUTO_PST = 0x0c,
    NVME_FEAT_HOST_MEM_BUF = 0x0d,
    NVME_FEAT_TIMESTAMP = 0x0e,
    NVME_FEAT_KATO = 0x0f, /* cdw11: keep-alive timeout, ms */
    NVME_FEAT_HCTM = 0x10,
    NVME_FEAT_NOPSC = 0x11,
    NVME_FEAT_RRL = 0x12,
    NVME_FEAT_PLM_CONFIG = 0x13,
    NVME_FEAT_PLM_WINDOW = 0x14,
    NVME_FEAT_HOST_BEHAVIOR = 0x16,
    NVME_FEAT_SANITIZE = 0x17,
    NVME_FEAT_SW_PROGRESS = 0x80,
    NVME_FEAT_HOST_ID = 0x81,
    NVME_FEAT_RESV_MASK = 0x82,
    NVME_FEAT_RESV_PERSIST = 0x83,
    NVME_FEAT_WRITE_PROTECT = 0x84,
};
#define NVME_FEAT_SET_SAVE (1u << 31)
#define NVME_FEAT_GET_SEL_SHIFT 8

/* ---- asynchronous events ------------------------------------------------- */

/* AER completion cdw0: bits 0-2 type, 8-15 info, 16-23 log page id. */
#define NVME_AER_TYPE_ERROR 0
#define NVME_AER_TYPE_SMART 1
#define NVME_AER_TYPE_NOTICE 2
#define NVME_AER_NOTICE_NS_CHANGED 0x00
#define NVME_AER_NOTICE_FW_ACTIVATED 0x01
#define NVME_AER_NOTICE_ANA_CHANGE 0x03
#define NVME_AER_NOTICE_DISC_CHANGED 0xf0
#define NVME_AEN_CFG_NS_ATTR (1u << 8) /* Async Event Configuration: namespace attribute notices */
#define NVME_AER_CDW0(type, info, lid) ((uint32_t)(type) | ((uint32_t)(info) << 8) | ((uint32_t)(lid) << 16))

/* ---- vendor-specific admin commands (ours) ------------------------------- */

/*
 * Remote snapshots (issue 13): a nexus snapshots a child reached over
 * nvmf:// through the protocol. Admin opcodes in the vendor range C0h-FFh;
 * bits 1:0 = 01b say host-to-controller data, so create is C1h and destroy
 * C5h (C2h would be controller-to-host). Data: struct nvmf_vs_snapshot, 64
 * bytes, in-capsule (or by R2T). Only a host that passed Connect to the
 * subsystem can send them (the allowlist applies), not on discovery.
 * The target runs the device's snapshot op off the reactor and answers:
 *   success; Namespace is Write Protected (generic 20h) for a read-only
 *   namespace; Invalid Field (generic 02h) for a bad payload or a device
 *   that refuses (no snapshot op, unknown or duplicate snapshot); Capacity
 *   Exceeded (generic 81h) when the pool is full; Internal Error otherwise.
 * On failure cdw0 carries the device's errno (positive), so the host
 * returns the same -errno; the target logs the device's message.
 */
#define NVMF_ADM_VS_SNAPSHOT_CREATE 0xc1
#define NVMF_ADM_VS_SNAPSHOT_DESTROY 0xc5
#define NVMF_VS_SNAPSHOT_LEN 64

struct nvmf_vs_snapshot {
    uint32_t nsid; /* 1: the subsystem's namespace */
    uint32_t rsvd4;
    uint8_t snap_uuid[16]; /* the new snapshot (not nil) */
    uint8_t group_uuid[16]; /* the volume snapshot it belongs to; nil: this device alone (create only) */
    uint8_t rsvd40[24];
};
_Static_assert(sizeof(struct nvmf_vs_snapshot) == NVMF_VS_SNAPSHOT_LEN, "vendor snapshot payload");

#endif /* DP_NVMF_PROTO_ADMIN_H */
