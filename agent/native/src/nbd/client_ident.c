/*
 * client_ident.c - the nbd:// child's identity across reconnects.
 *
 * Identity across reconnects: the export may have been deleted and created
 * again (an empty replica under the same uuid) while we were away. Its first
 * IDENT_BYTES hold the nexus label (or a pool label), so the client keeps a
 * copy of them, read at the first connect and updated by every write that
 * succeeds there; after a reconnect it reads them again before any I/O
 * passes, and a device whose bytes differ (or whose bytes it could not
 * track: a write there failed) is "replaced": every I/O fails with -ENODEV
 * and it never reconnects. Its owner (a nexus faults the child) must open it
 * afresh, where the label rules treat it as new and rebuild it. When the
 * bytes match and hold a nexus label, they are written back unchanged before
 * any I/O passes: an exporting agent that restarted learns again whose child
 * it serves (its writer lease, target/export.h); a refusal (another host
 * holds the lease) fails the child for good like a replaced device.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nbd/client.h"

/* A write, zeroing or trim reached the identity bytes: keep the copy equal to the device. */
void nbdc_ident_track(struct nbdc *n, const struct dp_bdev_io *io, const void *bounce, int status)
{
    if (status < 0) {
        n->ident_lost = true;
        return;
    }
    uint64_t len = io->length < IDENT_BYTES - io->offset ? io->length : IDENT_BYTES - io->offset;
    uint8_t *dst = n->ident + io->offset;
    if (io->type != DP_IO_WRITE) {
        memset(dst, 0, len);
        return;
    }
    if (bounce) {
        memcpy(dst, bounce, len);
        return;
    }
    for (int i = 0; i < io->iovcnt && len; i++) {
        uint64_t take = io->iov[i].iov_len < len ? io->iov[i].iov_len : len;
        memcpy(dst, io->iov[i].iov_base, take);
        dst += take;
        len -= take;
    }
}

static int verify_cb(void *user_data, int *error)
{
    struct nbdc *n = user_data;
    n->verify_result = !*error && !memcmp(n->verify_buf, n->ident, IDENT_BYTES) ? 1 : -1;
    if (n->verify_result == 1 && !n->bdev.read_only &&
        (!memcmp(n->ident, "MAYANXL1", 8) || !memcmp(n->ident + IDENT_BYTES / 2, "MAYANXL1", 8)))
        n->verify_result = 2; /* a nexus child: write the label back (nbdc_drive) */
    return 1;
}

/*
 * EPERM: another host holds the export's writer lease, the child must not go on. Any other failure
 * (a full thin pool copying a snapshot's cluster) left the bytes as verified (a write of the same
 * bytes, whole or in part, or none): go on; the export learns the owner at the next label write.
 */
static int reassert_cb(void *user_data, int *error)
{
    struct nbdc *n = user_data;
    n->verify_result = *error == EPERM ? -2 : 1;
    if (*error && *error != EPERM)
        fprintf(stderr, "%s: writing the verified label back failed (%s); going on without it\n", n->peer,
                strerror(*error));
    return 1;
}

/* Connected again: read the identity bytes before any I/O passes (ST_VERIFY). */
void nbdc_verify_start(struct nbdc *n)
{
    n->verify_result = 0;
    n->state = ST_VERIFY;
    if (!n->ident)
        n->verify_result = 1; /* too small to carry a label: nothing to tell devices apart by */
    else if (n->ident_lost)
        n->verify_result = -1; /* what is there now cannot be vouched for */
    else {
        nbd_completion_callback cb = { .callback = verify_cb, .user_data = n };
        n->in_call = true;
        if (nbd_aio_pread(n->h, n->verify_buf, IDENT_BYTES, 0, cb, 0) < 0)
            n->verify_result = -1;
        n->in_call = false;
    }
}

void nbdc_reassert_start(struct nbdc *n)
{
    nbd_completion_callback cb = { .callback = reassert_cb, .user_data = n };
    n->verify_result = 0;
    n->in_call = true;
    if (nbd_aio_pwrite(n->h, n->ident, IDENT_BYTES, 0, cb, 0) < 0)
        n->verify_result = -1; /* the handle refused it: cannot vouch for the bytes */
    n->in_call = false;
}
