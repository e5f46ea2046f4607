/* test_nvmf_pdu.c - the pure NVMe/TCP PDU checks (nvmf/pdu.c): every hostile
 * header is refused naming the field, every good one is laid out right. */
#include "nvmf/pdu.h"
#include "testlib.h"

static struct nvme_tcp_common_hdr ch(uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
    struct nvme_tcp_common_hdr h = { .pdu_type = type, .flags = flags, .hlen = hlen, .pdo = pdo, .plen = plen };
    return h;
}

TEST(crc32c_vector)
{
    CHECK_EQ(nvmf_digest("123456789", 9), 0xe3069283u);
}

TEST(icreq_checks)
{
    struct nvme_tcp_icreq req;
    struct nvmf_pdu_err err;
    bool hd, dd;
    nvmf_icreq_init(&req, true, false);
    CHECK_EQ(nvmf_icreq_check(&req, &hd, &dd, &err), 0);
    CHECK(hd && !dd);
    req.pfv = 1;
    CHECK_EQ(nvmf_icreq_check(&req, &hd, &dd, &err), -1);
    CHECK_EQ(err.fes, NVME_TCP_FES_INVALID_HEADER_FIELD);
    CHECK_EQ(err.fei, 8);
    CHECK(strstr(err.msg, "PFV"));
    nvmf_icreq_init(&req, false, false);
    req.hpda = 32;
    CHECK_EQ(nvmf_icreq_check(&req, &hd, &dd, &err), -1);
    CHECK(strstr(err.msg, "HPDA"));
    nvmf_icreq_init(&req, false, false);
    req.ch.plen = 200;
    CHECK_EQ(nvmf_icreq_check(&req, &hd, &dd, &err), -1);
    CHECK(strstr(err.msg, "plen"));
}

TEST(common_header_checks)
{
    struct nvmf_pdu_layout lay;
    struct nvmf_pdu_err err;
    struct nvme_tcp_common_hdr h;
    /* first PDU must be ICReq */
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 0, 72);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, false, false, false, 8192, &lay, &err), -1);
    CHECK_EQ(err.fes, NVME_TCP_FES_PDU_SEQUENCE_ERROR);
    h = ch(NVME_TCP_PDU_ICREQ, 0, 128, 0, 128);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, false, false, false, 8192, &lay, &err), 0);
    /* a second ICReq */
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    /* unknown type, and a C2H type sent to a controller */
    h = ch(0x42, 0, 72, 0, 72);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    CHECK(strstr(err.msg, "0x42"));
    h = ch(NVME_TCP_PDU_R2T, 0, 24, 0, 24);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    /* wrong hlen, plen beyond the limit, plen below the header */
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 70, 0, 72);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    CHECK_EQ(err.fei, 2);
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 72, 1u << 30);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    CHECK_EQ(err.fes, NVME_TCP_FES_R2T_LIMIT_EXCEEDED);
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 0, 40);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    /* digest flag must match the negotiation */
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 0, 72);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, true, false, 8192, &lay, &err), -1);
    CHECK(strstr(err.msg, "HDGSTF"));
    /* a capsule with header digest and 512 bytes of data with data digest */
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 3, 72, 76, 76 + 512 + 4);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, true, true, 8192, &lay, &err), 0);
    CHECK_EQ(lay.hdgst, 4);
    CHECK_EQ(lay.ddgst, 4);
    CHECK_EQ(lay.pdo, 76);
    CHECK_EQ(lay.datalen, 512);
    /* pdo inside the header */
    h = ch(NVME_TCP_PDU_CAPSULE_CMD, 0, 72, 8, 600);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    CHECK(strstr(err.msg, "pdo"));
    /* data PDU without data */
    h = ch(NVME_TCP_PDU_H2C_DATA, NVME_TCP_F_DATA_LAST, 24, 0, 24);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    /* SUCCESS flag is C2H only */
    h = ch(NVME_TCP_PDU_H2C_DATA, NVME_TCP_F_DATA_SUCCESS, 24, 24, 28);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_CTRL, true, false, false, 8192, &lay, &err), -1);
    /* the host side: C2HData with SUCCESS is fine */
    h = ch(NVME_TCP_PDU_C2H_DATA, NVME_TCP_F_DATA_SUCCESS | NVME_TCP_F_DATA_LAST, 24, 24, 24 + 4096);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_HOST, true, false, false, 8192, &lay, &err), 0);
    CHECK_EQ(lay.datalen, 4096);
}

TEST(encoders_roundtrip)
{
    struct nvme_tcp_icresp rsp;
    struct nvmf_pdu_err err;
    uint32_t max;
    nvmf_icresp_init(&rsp, true, true, 131072);
    CHECK_EQ(nvmf_icresp_check(&rsp, &max, &err), 0);
    CHECK_EQ(max, 131072);
    rsp.maxh2cdata = 100;
    CHECK_EQ(nvmf_icresp_check(&rsp, &max, &err), -1);
    struct nvme_tcp_common_hdr h;
    struct nvmf_pdu_layout lay;
    nvmf_ch_init(&h, NVME_TCP_PDU_C2H_DATA, true, true, 24, 4096);
    CHECK_EQ(nvmf_pdu_check_ch(&h, NVMF_SIDE_HOST, true, true, true, 8192, &lay, &err), 0);
    CHECK_EQ(lay.datalen, 4096);
    struct nvme_tcp_term_req_hdr t;
    nvmf_term_req_init(&t, NVMF_SIDE_CTRL, NVME_TCP_FES_HDGST_ERROR, 0, 1000);
    CHECK_EQ(t.ch.plen, 24 + 152);
}

TEST(sgl_and_connect)
{
    struct nvmf_connect_cmd cmd = { .opc = NVME_ADM_FABRICS, .fctype = NVMF_FCTYPE_CONNECT, .sqsize = 31 };
    struct nvmf_connect_data data;
    char sub[256], host[256];
    uint32_t len, cdw0;
    bool icd;
    cmd.sgl1.id = NVME_TCP_SGL_INCAPSULE;
    cmd.sgl1.length = 1024;
    CHECK_EQ(nvmf_sgl_check((struct nvme_sqe *)&cmd, 1024, 8192, &len, &icd), 0);
    CHECK(icd && len == 1024);
    CHECK(nvmf_sgl_check((struct nvme_sqe *)&cmd, 512, 8192, &len, &icd) ==
          NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID));
    cmd.sgl1.address = 8;
    CHECK(nvmf_sgl_check((struct nvme_sqe *)&cmd, 1024, 8192, &len, &icd) ==
          NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_OFFSET));
    cmd.sgl1.address = 0;
    memset(&data, 0, sizeof data);
    data.cntlid = 0xffff;
    strcpy(data.subnqn, "nqn.2019-05.io.openebs:abc");
    strcpy(data.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555");
    CHECK_EQ(nvmf_connect_check(&cmd, &data, true, 128, &cdw0, sub, host), 0);
    CHECK(strcmp(sub, "nqn.2019-05.io.openebs:abc") == 0);
    memset(data.hostnqn, 'a', sizeof data.hostnqn); /* unterminated */
    CHECK(nvmf_connect_check(&cmd, &data, true, 128, &cdw0, sub, host) ==
          NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVMF_SC_INVALID_PARAM));
    CHECK_EQ(cdw0, NVMF_INVALID_PARAM_CDW0(1, 512));
    CHECK(!nvmf_nqn_valid("nqn.20x9-05.io"));
    CHECK(!nvmf_nqn_valid("iqn.2019-05.io.openebs:x"));
    CHECK(!nvmf_nqn_valid("nqn.2019-05.io.open ebs"));
    CHECK(nvmf_nqn_valid(NVMF_DISCOVERY_NQN));
}

int main(void)
{
    printf("test_nvmf_pdu\n");
    RUN(crc32c_vector);
    RUN(icreq_checks);
    RUN(common_header_checks);
    RUN(encoders_roundtrip);
    RUN(sgl_and_connect);
    return 0;
}
