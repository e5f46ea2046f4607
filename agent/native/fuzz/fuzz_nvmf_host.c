/*
 * fuzz_nvmf_host - the NVMe/TCP initiator's receive side (src/nvmf/host_rx.c)
 * fed hostile bytes: the ICResp exchange, then CapsuleResp, C2HData (with
 * padding, SUCCESS/LAST), R2T and C2HTermReq in any split. A fake command
 * table stands for the commands in flight (as host.c's, it refuses unknown
 * cids and data outside a command), and the harness checks that C2HData
 * never writes outside the read it names.
 *
 * Input: byte 0 bit 0 = start before the ICResp; byte 1 = the size of the
 * pieces the stream is fed in (1..256); the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf/host.h"

#define NCMD 8
#define RLEN 16384

struct ctx {
    uint8_t rbuf[NCMD][RLEN];
    uint32_t r2t_sent[NCMD];
    bool active[NCMD];
};

static int resp(void *c, const struct nvme_cqe *cqe, char *err, size_t errlen)
{
    struct ctx *x = c;
    if (cqe->cid >= NCMD || !x->active[cqe->cid])
        return -1;
    x->active[cqe->cid] = false;
    return 0;
}

/* even cids read RLEN bytes, odd cids write RLEN bytes */
static int c2h_begin(void *c, uint16_t cid, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct ctx *x = c;
    if (cid >= NCMD || !x->active[cid] || (cid & 1) || off > RLEN || len > RLEN - off)
        return -1;
    return 0;
}

static void c2h_data(void *c, uint16_t cid, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct ctx *x = c;
    if (cid >= NCMD || off > RLEN || len > RLEN - off)
        abort(); /* the state machine let data out of the range it checked */
    memcpy(x->rbuf[cid] + off, buf, len);
}

static int c2h_end(void *c, uint16_t cid, bool last, bool success, char *err, size_t errlen)
{
    struct ctx *x = c;
    if (success)
        x->active[cid] = false;
    return 0;
}

static int r2t(void *c, uint16_t cid, uint16_t ttag, uint32_t off, uint32_t len, char *err, size_t errlen)
{
    struct ctx *x = c;
    if (cid >= NCMD || !x->active[cid] || !(cid & 1) || off != x->r2t_sent[cid] || len > RLEN - off)
        return -1;
    x->r2t_sent[cid] += len;
    return 0;
}

static const struct nvmfh_rx_ops ops = { resp, c2h_begin, c2h_data, c2h_end, r2t };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static struct ctx x;
    memset(x.r2t_sent, 0, sizeof x.r2t_sent);
    for (int i = 0; i < NCMD; i++)
        x.active[i] = true;
    bool icdone = !(data[0] & 1);
    size_t piece = (size_t)data[1] + 1;
    data += 2;
    size -= 2;
    struct nvmfh_rx rx;
    nvmfh_rx_init(&rx, &ops, &x, icdone);
    rx.max_c2h = RLEN;
    char err[256];
    size_t pos = 0;
    while (pos < size) {
        size_t take = size - pos < piece ? size - pos : piece, used = 0;
        bool ic = !rx.icdone;
        int rc = nvmfh_rx_feed(&rx, data + pos, take, &used, err, sizeof err);
        if (used > take)
            abort();
        if (rc < 0)
            break;
        if (ic && rx.icdone) {
            uint32_t m;
            if (nvmfh_icresp_check(&rx.icresp, &m, err, sizeof err) < 0)
                break;
        }
        pos += used ? used : take;
    }
    return 0;
}
