/*
 * fuzz_nbd.c - libFuzzer harness for the NBD negotiation and request parsers.
 *
 * The input is treated as the byte stream a hostile client sends: client
 * flags, then options (each handled by the same nbd_neg_option the server
 * runs), then, after GO/EXPORT_NAME, transmission requests validated by
 * nbd_check_request (export "ro" is read-only: no change may be accepted).
 * Seeds: fuzz/seeds/fuzz_nbd (real clients' handshakes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/proto.h"

static int f_lookup(void *ctx, const char *name, struct nbd_export_view *v)
{
    (void)ctx;
    if (strcmp(name, "secret") == 0)
        return -EACCES;
    if (strcmp(name, "") != 0 && strcmp(name, "disk") != 0 && strcmp(name, "ro") != 0)
        return -ENOENT;
    v->size = 64ull << 20;
    v->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
                NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN;
    if (strcmp(name, "ro") == 0) /* a read-only device, as handshake.c advertises it */
        v->tflags = (v->tflags | NBD_FLAG_READ_ONLY) & ~(NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES);
    v->min_block = 512;
    v->pref_block = NBD_PREF_BLOCK;
    v->max_payload = NBD_MAX_PAYLOAD;
    return 0;
}

static int f_list(void *ctx, uint32_t i, char *name, size_t cap)
{
    (void)ctx;
    if (i >= 3 || cap < 8)
        return -ENOENT;
    static const char *names[] = { "disk", "a", "" };
    strcpy(name, names[i]);
    return (int)strlen(names[i]);
}

static const struct nbd_neg_ops ops = { f_lookup, f_list };
static uint8_t out[NBD_NEG_OUT_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint32_t cflags;
    static struct nbd_neg neg;
    if (size < 4 || nbd_parse_client_flags(data, &cflags) < 0)
        return 0;
    pos = 4;
    nbd_neg_init(&neg, cflags);
    for (;;) {
        struct nbd_opt_hdr h;
        if (size - pos < NBD_OPT_HDR_LEN || nbd_parse_opt_hdr(data + pos, &h) < 0)
            return 0;
        pos += NBD_OPT_HDR_LEN;
        if (size - pos < h.len)
            return 0;
        /* Copy so ASan catches reads past the option's own data. */
        uint8_t *opt = malloc(h.len ? h.len : 1);
        memcpy(opt, data + pos, h.len);
        pos += h.len;
        size_t outlen = 0;
        enum nbd_neg_result r = nbd_neg_option(&neg, h.opt, opt, h.len, &ops, NULL, out, sizeof out, &outlen);
        free(opt);
        if (outlen > sizeof out)
            abort();
        if (r == NBD_NEG_CLOSE)
            return 0;
        if (r == NBD_NEG_GO)
            break;
    }
    struct nbd_limits lim;
    nbd_neg_limits(&neg, &lim);
    while (size - pos >= NBD_REQ_LEN) {
        struct nbd_request rq;
        if (nbd_parse_request(data + pos, &rq) < 0)
            return 0;
        pos += NBD_REQ_LEN;
        int rc = nbd_check_request(&rq, &lim);
        if (rc == NBD_CHECK_CLOSE)
            return 0;
        if (rc == 0 && rq.type != NBD_CMD_WRITE && rq.type != NBD_CMD_DISC && rq.type != NBD_CMD_FLUSH &&
            (rq.offset + rq.length > lim.size || rq.length == 0))
            abort(); /* an accepted request must lie inside the export */
        if (rc == 0 && (lim.tflags & NBD_FLAG_READ_ONLY) &&
            (rq.type == NBD_CMD_WRITE || rq.type == NBD_CMD_TRIM || rq.type == NBD_CMD_WRITE_ZEROES))
            abort(); /* a read-only export accepts no change */
        if (rq.type == NBD_CMD_WRITE) {
            if (size - pos < rq.length)
                return 0;
            pos += rq.length;
        }
        uint8_t rep[64];
        nbd_enc_simple_reply(rep, nbd_errno(-EIO), rq.cookie);
        nbd_enc_read_chunk(rep, rq.cookie, rq.offset, rq.length);
        nbd_enc_error_chunk(rep + 28, rq.cookie, NBD_EINVAL);
        if (rq.type == NBD_CMD_DISC)
            return 0;
    }
    return 0;
}
