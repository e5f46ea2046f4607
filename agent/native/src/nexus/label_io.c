/*
 * label_io.c - writing the nexus child labels (format in LABEL.md; the codec
 * is label.c).
 *
 * Rounds on the reactor: when a child leaves or joins (a new generation) or
 * the first write after a clean label arrives (dirty mark), every online child
 * gets a label, and writes that completed meanwhile wait (io.c holds them)
 * until the round is stable. Synchronous writes from control threads for
 * children no I/O goes to (create, add, online, leave, close).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/export.h"
#include "datapath.h"
#include "nexus/nexus.h"

/* messages and reasons are truncated on purpose where they would not fit */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- label updates on the reactor ------------------------------------------ */

static void label_round(struct nexus *nx);

static void fill_label(struct nexus *nx, struct nx_child *c, struct nx_label *l, uint32_t flags)
{
    memset(l, 0, sizeof *l);
    memcpy(l->nexus_uuid, nx->uuid_bin, 16);
    memcpy(l->child_id, c->id, 16);
    l->seq = ++c->label_seq;
    l->generation = nx->generation;
    l->data_offset = NX_HDR_SIZE;
    l->data_size = nx->label_size;
    l->flags = flags;
    l->block_size = nx->block_size;
    for (uint32_t i = 0; i < nx->nchildren; i++)
        if (nx->children[i]->state == NXC_ONLINE && l->nmembers < NX_MAX_CHILDREN)
            memcpy(l->members[l->nmembers++], nx->children[i]->id, 16);
}

bool nx_label_idle(const struct nexus *nx)
{
    return !nx->label_busy && !nx->label_again;
}

static void label_finish(struct nexus *nx)
{
    nx->label_busy = false;
    nx->label_rounds++;
    if (nx->round_dirty && nx->dirty_state == NX_LBL_MARKING) {
        /* "dirty" is stable on every member: data may go to the children */
        nx->dirty_state = NX_LBL_DIRTY;
        nx_io_release_dirty_wait(nx);
    }
    if (nx->label_again) {
        label_round(nx);
        return;
    }
    nx_io_release_held(nx);
    nx_notify(nx);
}

static void label_leg_done(struct nx_leg *leg)
{
    struct nx_child *c = leg->child;
    struct nexus *nx = c->nx;
    if (leg->status < 0) {
        c->errors++;
        nx_child_fault(c, "label %s failed: %s", leg->io.type == DP_IO_WRITE ? "write" : "flush",
                       strerror(-leg->status));
        nx_child_io_error(c, leg->status);
    } else if (leg->io.type == DP_IO_WRITE && c->state == NXC_ONLINE) {
        /* then make it stable */
        leg->io.type = DP_IO_FLUSH;
        leg->io.offset = 0;
        leg->io.length = 0;
        leg->io.iov = NULL;
        leg->io.iovcnt = 0;
        nx_leg_submit(nx, leg);
        return;
    } else if (leg->io.type == DP_IO_FLUSH && nx->generation > nx->gen_durable) {
        nx->gen_durable = nx->generation; /* this round's labels are stable on this child */
    }
    if (--nx->label_pending == 0)
        label_finish(nx);
}

static void label_round(struct nexus *nx)
{
    struct nx_child *todo[NX_MAX_CHILDREN];
    uint32_t ntodo = 0;
    nx->label_again = false;
    nx->label_busy = true;
    if (nx->label_newgen) {
        nx->generation++;
        nx->label_newgen = false;
    }
    nx->round_dirty = nx->dirty_state != NX_LBL_CLEAN;
    uint32_t flags = NX_LABEL_SYNCED | (nx->round_dirty ? 0 : NX_LABEL_CLEAN);
    for (uint32_t i = 0; i < nx->nchildren; i++) {
        struct nx_child *c = nx->children[i];
        if (c->state != NXC_ONLINE || !c->bdev || (nx->label_only && c != nx->label_only))
            continue;
        struct nx_label l;
        fill_label(nx, c, &l, flags);
        nx_label_encode(&l, c->label_buf);
        struct nx_leg *leg = &c->label_leg;
        memset(&leg->io, 0, sizeof leg->io);
        leg->io.type = DP_IO_WRITE;
        leg->io.offset = nx_label_slot_offset(l.seq);
        leg->io.length = NX_LABEL_BLOCK;
        leg->iov.iov_base = c->label_buf;
        leg->iov.iov_len = NX_LABEL_BLOCK;
        leg->io.iov = &leg->iov;
        leg->io.iovcnt = 1;
        leg->child = c;
        leg->done = label_leg_done;
        todo[ntodo++] = c;
    }
    /* count all before submitting any: completions never run inline, but be explicit */
    nx->label_pending = ntodo;
    if (ntodo == 0) {
        label_finish(nx);
        return;
    }
    for (uint32_t i = 0; i < ntodo; i++)
        nx_leg_submit(nx, &todo[i]->label_leg);
}

/*
 * A child left or joined: write the next generation to every online child.
 * Write completions wait (io.c holds them) until the round is on disk.
 */
void nx_label_request(struct nexus *nx)
{
    if (nx->label_busy) {
        nx->label_again = true;
        return;
    }
    label_round(nx);
}

void nx_label_bump(struct nexus *nx)
{
    nx->label_newgen = true;
    nx_label_request(nx);
}

/* The first write since the labels said clean: same generation, without CLEAN. */
void nx_label_mark_dirty(struct nexus *nx)
{
    nx->dirty_state = NX_LBL_MARKING;
    nx->dirty_marks++;
    nx_label_request(nx);
}

/* ---- synchronous label I/O from control threads ----------------------------- */

int nx_child_write_label_sync(struct nexus *nx, struct nx_child *c, uint32_t flags, uint64_t gen,
                              const struct nx_label *members_from)
{
    struct nx_label l;
    memset(&l, 0, sizeof l);
    memcpy(l.nexus_uuid, nx->uuid_bin, 16);
    memcpy(l.child_id, c->id, 16);
    l.seq = ++c->label_seq;
    l.generation = gen;
    l.data_offset = NX_HDR_SIZE;
    l.data_size = nx->label_size;
    l.flags = flags;
    l.block_size = nx->block_size;
    if (members_from) {
        l.nmembers = members_from->nmembers;
        memcpy(l.members, members_from->members, sizeof l.members);
    }
    /* an out-of-sync mark goes to both slots: no older label may survive it */
    int rc = 0;
    for (int k = 0; k < (flags & NX_LABEL_SYNCED ? 1 : 2) && rc == 0; k++) {
        if (k)
            l.seq = ++c->label_seq;
        nx_label_encode(&l, c->label_buf);
        rc = dp_bdev_rw_sync(c->bdev, DP_IO_WRITE, c->label_buf, nx_label_slot_offset(l.seq), NX_LABEL_BLOCK);
    }
    if (rc == 0)
        rc = dp_bdev_rw_sync(c->bdev, DP_IO_FLUSH, NULL, 0, 0);
    return rc;
}

/* Continue the child's label seq from what is on it (any nexus), so our next label wins. */
void nx_child_adopt_seq(struct nx_child *c, const uint8_t *two)
{
    for (int i = 0; i < 2; i++) {
        struct nx_label l;
        char why[96];
        if (nx_label_decode(two + i * NX_LABEL_BLOCK, &l, why, sizeof why) == 0 && l.seq > c->label_seq &&
            l.seq < UINT64_MAX / 2)
            c->label_seq = l.seq;
    }
}
