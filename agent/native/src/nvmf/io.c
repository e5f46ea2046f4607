/*
 * io.c - NVM I/O commands on nsid 1: Read, Write (FUA), Flush, Write
 * Zeroes, Dataset Management (deallocate ranges, one unmap at a time).
 * Ranges are checked against the namespace before the bdev sees them;
 * anything else is Invalid Opcode. An I/O queue may live on another reactor
 * than its device: dp_bdev_submit hops there, io_done hops back.
 */
#include <errno.h>
#include <string.h>

#include "nvmf/target.h"

#define ST(sc) (NVME_STATUS(NVME_SCT_GENERIC, (sc)) | NVME_STATUS_DNR)

static void io_done(struct dp_bdev_io *io, int status);

static void submit(struct nvmf_req *q, enum dp_bdev_io_type type, uint64_t off, uint64_t len, uint32_t flags)
{
    struct nvmf_conn *c = q->c;
    struct dp_bdev *b = c->exp->bdev;
    memset(&q->io, 0, sizeof q->io);
    q->io.type = type;
    q->io.flags = flags;
    q->io.offset = off;
    q->io.length = len;
    if (type == DP_IO_READ || type == DP_IO_WRITE) {
        q->iov.iov_base = q->buf;
        q->iov.iov_len = len;
        q->io.iov = &q->iov;
        q->io.iovcnt = 1;
    }
    q->io.cb = io_done;
    q->io.cb_arg = q;
    if (type != DP_IO_READ && type != DP_IO_FLUSH &&
        dp_export_writer_check(c->exp, &c->wc, off, q->io.iov, q->io.iovcnt, len) < 0) {
        /* An export serving a nexus child is writable by the nexus's host only: another
         * host meets what NVMe calls a reservation held by another host. */
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT) | NVME_STATUS_DNR, 0);
        return;
    }
    c->io_inflight++;
    dp_bdev_submit(b, &q->io);
}

/* The next Dataset Management range, or the completion. */
static void dsm_next(struct nvmf_req *q)
{
    struct dp_bdev *b = q->c->exp->bdev;
    uint64_t nblocks = b->size / b->block_size;
    while (q->dsm_i < q->dsm_n) {
        struct nvme_dsm_range r;
        memcpy(&r, q->buf + 16 * q->dsm_i++, sizeof r);
        if (!r.nlb)
            continue;
        if (r.slba >= nblocks || r.nlb > nblocks - r.slba) {
            nvmf_req_complete(q, ST(NVME_SC_LBA_OUT_OF_RANGE), 0);
            return;
        }
        submit(q, DP_IO_UNMAP, r.slba * b->block_size, (uint64_t)r.nlb * b->block_size, 0);
        return;
    }
    nvmf_req_complete(q, 0, 0);
}

static void io_finish(struct nvmf_req *q, int status);

static void io_back(void *arg)
{
    struct nvmf_req *q = arg;
    io_finish(q, q->io_status);
}

/* On the device's reactor: the queue may live on another one (its connection
 * is touched only there), so the completion goes back to it first. */
static void io_done(struct dp_bdev_io *io, int status)
{
    struct nvmf_req *q = io->cb_arg;
    if (dp_reactor_self() != q->c->r) {
        q->io_status = status;
        dp_reactor_send(q->c->r, io_back, q);
        return;
    }
    io_finish(q, status);
}

static void io_finish(struct nvmf_req *q, int status)
{
    struct nvmf_conn *c = q->c;
    c->io_inflight--;
    if (c->closing) { /* the connection goes; the slot goes with it */
        nvmf_conn_close(c, NULL);
        return;
    }
    if (status == -EROFS) { /* a read-only namespace (a snapshot), reported so by Identify NSATTR */
        nvmf_req_complete(q, ST(NVME_SC_NS_WRITE_PROTECTED), 0);
        return;
    }
    if (status < 0) {
        nvmf_req_complete(q, NVME_STATUS(NVME_SCT_MEDIA_ERROR, 0x81) /* unrecovered read/write */, 0);
        return;
    }
    if (q->sqe.opc == NVME_IO_DATASET_MANAGEMENT) {
        dsm_next(q);
        return;
    }
    if (q->sqe.opc == NVME_IO_READ)
        q->data_out = q->len;
    nvmf_req_complete(q, 0, 0);
}

/* LBA range of Read/Write/Write Zeroes: 0, or the status. */
static uint16_t lba_range(struct nvmf_req *q, uint64_t *off, uint64_t *len)
{
    struct dp_bdev *b = q->c->exp->bdev;
    uint64_t slba = (uint64_t)q->sqe.cdw11 << 32 | q->sqe.cdw10;
    uint64_t nlb = (q->sqe.cdw12 & NVME_RW_NLB_MASK) + 1ull;
    uint64_t nblocks = b->size / b->block_size;
    if (slba >= nblocks || nlb > nblocks - slba)
        return ST(NVME_SC_LBA_OUT_OF_RANGE);
    *off = slba * b->block_size;
    *len = nlb * b->block_size;
    return 0;
}

void nvmf_io_cmd(struct nvmf_req *q)
{
    struct nvmf_ctrlr *k = q->c->ctrlr;
    uint64_t off = 0, len = 0;
    uint16_t st;
    /* written on the controller's reactor, which may not be this queue's */
    if (!(__atomic_load_n(&k->csts, __ATOMIC_RELAXED) & NVME_CSTS_RDY) || __atomic_load_n(&k->dead, __ATOMIC_RELAXED)) {
        nvmf_req_complete(q, ST(NVME_SC_COMMAND_SEQUENCE_ERROR), 0);
        return;
    }
    if (q->sqe.nsid != 1 && !(q->sqe.opc == NVME_IO_FLUSH && q->sqe.nsid == 0xffffffffu)) {
        nvmf_req_complete(q, ST(NVME_SC_INVALID_NAMESPACE_OR_FORMAT), 0);
        return;
    }
    switch (q->sqe.opc) {
    case NVME_IO_READ:
    case NVME_IO_WRITE:
        if ((st = lba_range(q, &off, &len)) != 0 || len != q->len) {
            nvmf_req_complete(q, st ? st : ST(NVME_SC_DATA_SGL_LENGTH_INVALID), 0);
            return;
        }
        if (q->sqe.opc == NVME_IO_READ && nvmf_req_buf(q) < 0) {
            nvmf_req_complete(q, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR), 0);
            return;
        }
        submit(q, q->sqe.opc == NVME_IO_READ ? DP_IO_READ : DP_IO_WRITE, off, len,
               q->sqe.opc == NVME_IO_WRITE && (q->sqe.cdw12 & NVME_RW_FUA) ? DP_IO_FUA : 0);
        return;
    case NVME_IO_FLUSH: submit(q, DP_IO_FLUSH, 0, 0, 0); return;
    case NVME_IO_WRITE_ZEROES:
        if ((st = lba_range(q, &off, &len)) != 0) {
            nvmf_req_complete(q, st, 0);
            return;
        }
        submit(q, DP_IO_WRITE_ZEROES, off, len, 0);
        return;
    case NVME_IO_DATASET_MANAGEMENT:
        q->dsm_n = (q->sqe.cdw10 & 0xff) + 1;
        if (!(q->sqe.cdw11 & NVME_DSM_ATTR_DEALLOCATE)) {
            nvmf_req_complete(q, 0, 0); /* only hints: nothing to do */
            return;
        }
        if (q->len < 16 * q->dsm_n || !q->buf) {
            nvmf_req_complete(q, ST(NVME_SC_DATA_SGL_LENGTH_INVALID), 0);
            return;
        }
        dsm_next(q);
        return;
    }
    nvmf_req_complete(q, ST(NVME_SC_INVALID_OPCODE), 0);
}
