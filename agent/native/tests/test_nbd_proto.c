/* test_nbd_proto.c - NBD protocol parser/encoder unit tests, hostile cases included. */
#include <errno.h>

#include "nbd/proto.h"
#include "testlib.h"

static int t_lookup(void *ctx, const char *name, struct nbd_export_view *v)
{
    (void)ctx;
    if (strcmp(name, "secret") == 0)
        return -EACCES;
    if (strcmp(name, "disk") != 0)
        return -ENOENT;
    v->size = 1 << 20;
    v->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
                NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
    v->min_block = 512;
    v->pref_block = 4096;
    v->max_payload = NBD_MAX_PAYLOAD;
    return 0;
}

static int t_list(void *ctx, uint32_t i, char *name, size_t cap)
{
    (void)ctx;
    if (i > 0 || cap < 5)
        return -ENOENT;
    strcpy(name, "disk");
    return 4;
}

static const struct nbd_neg_ops ops = { t_lookup, t_list };
static uint8_t out[NBD_NEG_OUT_MAX];
static struct nbd_neg neg;

static size_t mk_go(uint8_t *b, const char *name, uint32_t namelen, uint16_t nreq, const uint16_t *reqs)
{
    nbd_put32(b, namelen);
    memcpy(b + 4, name, strlen(name));
    nbd_put16(b + 4 + namelen, nreq);
    for (int i = 0; i < nreq; i++)
        nbd_put16(b + 6 + namelen + 2 * i, reqs[i]);
    return 6 + namelen + 2u * nreq;
}

/* Check the reply header at out+off: returns its data length. */
static uint32_t rep_at(size_t off, uint32_t opt, uint32_t type)
{
    CHECK(nbd_get64(out + off) == NBD_REP_MAGIC);
    CHECK_EQ(nbd_get32(out + off + 8), opt);
    CHECK_EQ(nbd_get32(out + off + 12), type);
    return nbd_get32(out + off + 16);
}

static enum nbd_neg_result run(uint32_t opt, const uint8_t *d, uint32_t len, size_t *outlen)
{
    return nbd_neg_option(&neg, opt, d, len, &ops, NULL, out, sizeof out, outlen);
}

TEST(greeting_and_client_flags)
{
    uint8_t b[NBD_GREETING_LEN], f[4];
    uint32_t fl;
    nbd_enc_greeting(b);
    CHECK(nbd_get64(b) == NBD_MAGIC);
    CHECK(nbd_get64(b + 8) == NBD_IHAVEOPT);
    CHECK_EQ(nbd_get16(b + 16), 3);
    nbd_put32(f, 3);
    CHECK_EQ(nbd_parse_client_flags(f, &fl), 0);
    CHECK_EQ(fl, 3);
    nbd_put32(f, 1);
    CHECK_EQ(nbd_parse_client_flags(f, &fl), 0);
    nbd_put32(f, 0); /* not fixed newstyle */
    CHECK_EQ(nbd_parse_client_flags(f, &fl), -EPROTO);
    nbd_put32(f, 7); /* unknown bit */
    CHECK_EQ(nbd_parse_client_flags(f, &fl), -EPROTO);
}

TEST(option_header_hostile)
{
    uint8_t b[16];
    struct nbd_opt_hdr h;
    nbd_put64(b, NBD_IHAVEOPT);
    nbd_put32(b + 8, NBD_OPT_GO);
    nbd_put32(b + 12, 100);
    CHECK_EQ(nbd_parse_opt_hdr(b, &h), 0);
    CHECK_EQ(h.opt, NBD_OPT_GO);
    CHECK_EQ(h.len, 100);
    nbd_put32(b + 12, NBD_MAX_OPT_LEN + 1); /* oversized option length */
    CHECK_EQ(nbd_parse_opt_hdr(b, &h), -E2BIG);
    nbd_put32(b + 12, 0xffffffffu);
    CHECK_EQ(nbd_parse_opt_hdr(b, &h), -E2BIG);
    nbd_put64(b, NBD_MAGIC); /* bad magic */
    nbd_put32(b + 12, 0);
    CHECK_EQ(nbd_parse_opt_hdr(b, &h), -EPROTO);
}

TEST(unknown_options_unsup)
{
    size_t n;
    nbd_neg_init(&neg, 3);
    uint32_t unsup[] = { NBD_OPT_STARTTLS, 11 /* EXTENDED_HEADERS */, 4, 0, 12345, 0xffffffffu };
    for (size_t i = 0; i < sizeof unsup / sizeof unsup[0]; i++) {
        CHECK_EQ(run(unsup[i], (const uint8_t *)"junk", 4, &n), NBD_NEG_CONTINUE);
        uint32_t l = rep_at(0, unsup[i], NBD_REP_ERR_UNSUP);
        CHECK_EQ(n, 20 + l);
    }
}

TEST(structured_reply_and_abort)
{
    size_t n;
    nbd_neg_init(&neg, 3);
    CHECK_EQ(run(NBD_OPT_STRUCTURED_REPLY, (const uint8_t *)"x", 1, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID);
    CHECK(!neg.structured);
    CHECK_EQ(run(NBD_OPT_STRUCTURED_REPLY, NULL, 0, &n), NBD_NEG_CONTINUE);
    CHECK_EQ(n, 20);
    rep_at(0, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK);
    CHECK(neg.structured);
    CHECK_EQ(run(NBD_OPT_ABORT, NULL, 0, &n), NBD_NEG_CLOSE);
    rep_at(0, NBD_OPT_ABORT, NBD_REP_ACK);
}

TEST(go_good)
{
    uint8_t d[64];
    size_t n;
    uint16_t reqs[] = { NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, 77 };
    nbd_neg_init(&neg, 3);
    size_t l = mk_go(d, "disk", 4, 3, reqs);
    CHECK_EQ(run(NBD_OPT_INFO, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_GO);
    size_t off = 0;
    CHECK_EQ(rep_at(off, NBD_OPT_GO, NBD_REP_INFO), 12);
    CHECK_EQ(nbd_get16(out + off + 20), NBD_INFO_EXPORT);
    CHECK(nbd_get64(out + off + 22) == 1 << 20);
    CHECK_EQ(nbd_get16(out + off + 30) & NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_CAN_MULTI_CONN);
    off += 32;
    CHECK_EQ(rep_at(off, NBD_OPT_GO, NBD_REP_INFO), 14);
    CHECK_EQ(nbd_get16(out + off + 20), NBD_INFO_BLOCK_SIZE);
    CHECK_EQ(nbd_get32(out + off + 22), 512);
    CHECK_EQ(nbd_get32(out + off + 26), 4096);
    CHECK_EQ(nbd_get32(out + off + 30), NBD_MAX_PAYLOAD);
    off += 34;
    CHECK_EQ(rep_at(off, NBD_OPT_GO, NBD_REP_INFO), 6);
    CHECK(memcmp(out + off + 22, "disk", 4) == 0);
    off += 26;
    CHECK_EQ(rep_at(off, NBD_OPT_GO, NBD_REP_ACK), 0);
    CHECK_EQ(n, off + 20);
    CHECK(strcmp(neg.export_name, "disk") == 0);
}

TEST(go_hostile)
{
    uint8_t d[NBD_MAX_OPT_LEN];
    size_t n;
    uint16_t reqs[] = { NBD_INFO_BLOCK_SIZE };
    nbd_neg_init(&neg, 3);
    /* unknown export, policy */
    size_t l = mk_go(d, "nope", 4, 1, reqs);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN);
    l = mk_go(d, "secret", 6, 1, reqs);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_POLICY);
    /* every truncation of a valid GO is rejected, never read past the end */
    l = mk_go(d, "disk", 4, 1, reqs);
    for (size_t t = 0; t < l; t++) {
        struct nbd_go_req g;
        CHECK_EQ(nbd_parse_go(d, (uint32_t)t, &g), -EINVAL);
        CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)t, &n), NBD_NEG_CONTINUE);
        rep_at(0, NBD_OPT_GO, NBD_REP_ERR_INVALID);
    }
    /* trailing junk */
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l + 1, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_INVALID);
    /* name length beyond the option */
    nbd_put32(d, 0xfffffff0u);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_INVALID);
    /* oversized name (> 4096) even when the option holds it */
    memset(d, 'a', sizeof d);
    nbd_put32(d, 5000);
    nbd_put16(d + 4 + 5000, 0);
    CHECK_EQ(run(NBD_OPT_GO, d, 5006, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_INVALID);
    /* embedded NUL in the name */
    l = mk_go(d, "di\0k", 4, 0, NULL);
    memcpy(d + 4, "di\0k", 4);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_GO, NBD_REP_ERR_INVALID);
    CHECK(neg.export_name[0] == 0);
}

TEST(export_name)
{
    size_t n;
    nbd_neg_init(&neg, 3);
    CHECK_EQ(run(NBD_OPT_EXPORT_NAME, (const uint8_t *)"disk", 4, &n), NBD_NEG_GO);
    CHECK_EQ(n, 10);
    CHECK(nbd_get64(out) == 1 << 20);
    nbd_neg_init(&neg, 1); /* no NO_ZEROES: 124 zero bytes follow */
    CHECK_EQ(run(NBD_OPT_EXPORT_NAME, (const uint8_t *)"disk", 4, &n), NBD_NEG_GO);
    CHECK_EQ(n, 134);
    /* unknown: refusal means close, with nothing sent */
    CHECK_EQ(run(NBD_OPT_EXPORT_NAME, (const uint8_t *)"nope", 4, &n), NBD_NEG_CLOSE);
    CHECK_EQ(n, 0);
    CHECK_EQ(run(NBD_OPT_EXPORT_NAME, (const uint8_t *)"secret", 6, &n), NBD_NEG_CLOSE);
}

TEST(list)
{
    size_t n;
    nbd_neg_init(&neg, 3);
    CHECK_EQ(run(NBD_OPT_LIST, NULL, 0, &n), NBD_NEG_CONTINUE);
    CHECK_EQ(rep_at(0, NBD_OPT_LIST, NBD_REP_SERVER), 8);
    CHECK_EQ(nbd_get32(out + 20), 4);
    CHECK(memcmp(out + 24, "disk", 4) == 0);
    rep_at(28, NBD_OPT_LIST, NBD_REP_ACK);
    CHECK_EQ(n, 48);
    CHECK_EQ(run(NBD_OPT_LIST, (const uint8_t *)"x", 1, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_LIST, NBD_REP_ERR_INVALID);
}

static size_t mk_meta(uint8_t *b, const char *name, int nq, const char **qs)
{
    size_t nl = strlen(name), p = 0;
    nbd_put32(b, (uint32_t)nl);
    memcpy(b + 4, name, nl);
    nbd_put32(b + 4 + nl, (uint32_t)nq);
    p = 8 + nl;
    for (int i = 0; i < nq; i++) {
        nbd_put32(b + p, (uint32_t)strlen(qs[i]));
        memcpy(b + p + 4, qs[i], strlen(qs[i]));
        p += 4 + strlen(qs[i]);
    }
    return p;
}

TEST(meta_context)
{
    uint8_t d[256];
    size_t n;
    const char *q[] = { "base:allocation", "qemu:dirty-bitmap:x" };
    nbd_neg_init(&neg, 3);
    size_t l = mk_meta(d, "disk", 2, q);
    /* SET before STRUCTURED_REPLY */
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
    neg.structured = true;
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    CHECK_EQ(rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT), 19);
    CHECK_EQ(nbd_get32(out + 20), NBD_META_ID_BASE_ALLOCATION);
    CHECK(memcmp(out + 24, "base:allocation", 15) == 0);
    rep_at(39, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK);
    CHECK(neg.meta_alloc);
    /* LIST with no query lists base:allocation */
    l = mk_meta(d, "disk", 0, NULL);
    CHECK_EQ(run(NBD_OPT_LIST_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_LIST_META_CONTEXT, NBD_REP_META_CONTEXT);
    /* SET with an unknown context only: nothing selected */
    l = mk_meta(d, "disk", 1, q + 1);
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    CHECK_EQ(n, 20);
    rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK);
    CHECK(!neg.meta_alloc);
    /* unknown export */
    l = mk_meta(d, "nope", 1, q);
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_UNKNOWN);
    /* truncations and a query length pointing past the end */
    l = mk_meta(d, "disk", 2, q);
    for (size_t t = 0; t < l; t++) {
        struct nbd_meta_req m;
        CHECK_EQ(nbd_parse_meta(d, (uint32_t)t, &m), -EINVAL);
    }
    nbd_put32(d + 12, 1000);
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
    /* absurd query count */
    l = mk_meta(d, "disk", 0, NULL);
    nbd_put32(d + 8, 0x7fffffff);
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    rep_at(0, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
    /* contexts set for one export do not survive GO to another */
    l = mk_meta(d, "disk", 1, q);
    CHECK_EQ(run(NBD_OPT_SET_META_CONTEXT, d, (uint32_t)l, &n), NBD_NEG_CONTINUE);
    CHECK(neg.meta_alloc);
    strcpy(neg.meta_export, "other");
    l = mk_go(d, "disk", 4, 0, NULL);
    CHECK_EQ(run(NBD_OPT_GO, d, (uint32_t)l, &n), NBD_NEG_GO);
    CHECK(!neg.meta_alloc);
}

static uint8_t *mk_req(uint8_t *b, uint16_t flags, uint16_t type, uint64_t off, uint32_t len)
{
    nbd_put32(b, NBD_REQUEST_MAGIC);
    nbd_put16(b + 4, flags);
    nbd_put16(b + 6, type);
    nbd_put64(b + 8, 0x1122334455667788ull);
    nbd_put64(b + 16, off);
    nbd_put32(b + 24, len);
    return b;
}

static int chk(const struct nbd_limits *l, uint16_t flags, uint16_t type, uint64_t off, uint32_t len)
{
    uint8_t b[NBD_REQ_LEN];
    struct nbd_request r;
    CHECK_EQ(nbd_parse_request(mk_req(b, flags, type, off, len), &r), 0);
    CHECK(r.cookie == 0x1122334455667788ull);
    return nbd_check_request(&r, l);
}

TEST(requests)
{
    struct nbd_limits l = {
        .size = 1 << 20,
        .min_block = 512,
        .max_payload = NBD_MAX_PAYLOAD,
        .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
                  NBD_FLAG_SEND_WRITE_ZEROES,
        .structured = true,
        .meta_alloc = false,
    };
    uint8_t b[NBD_REQ_LEN];
    struct nbd_request r;
    mk_req(b, 0, NBD_CMD_READ, 0, 512);
    b[0] ^= 1; /* bad magic */
    CHECK_EQ(nbd_parse_request(b, &r), -EPROTO);

    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 0, 4096), 0);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 4096, 4096), 0);
    CHECK_EQ(chk(&l, 0, NBD_CMD_FLUSH, 0, 0), 0);
    CHECK_EQ(chk(&l, 0, NBD_CMD_TRIM, 0, 1 << 20), 0);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE_ZEROES, 0, 1 << 20), 0);
    CHECK_EQ(chk(&l, 0, NBD_CMD_DISC, 0, 0), 0);
    /* beyond the end: reads EINVAL, writes ENOSPC; offset overflow */
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, (1 << 20) - 512, 1024), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 1 << 20, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, (1 << 20) - 512, 1024), NBD_ENOSPC);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE_ZEROES, 1 << 20, 512), NBD_ENOSPC);
    CHECK_EQ(chk(&l, 0, NBD_CMD_TRIM, 1 << 20, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, UINT64_MAX - 511, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, UINT64_MAX - 511, 1024), NBD_ENOSPC);
    /* alignment, zero length */
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 1, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, 0, 100), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 0, 0), NBD_EINVAL);
    /* too big */
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 0, NBD_MAX_PAYLOAD + 512), NBD_EOVERFLOW);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, 0, NBD_MAX_PAYLOAD + 512), NBD_CHECK_CLOSE);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, 0, 0xffffffffu), NBD_CHECK_CLOSE);
    /* unknown command, CACHE (not advertised), bad flags */
    CHECK_EQ(chk(&l, 0, 8, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, 0xffff, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_CACHE, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_WRITE_ZEROES, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0x8000, NBD_CMD_WRITE, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, 0, 0), NBD_EINVAL);
    /* BLOCK_STATUS needs base:allocation */
    CHECK_EQ(chk(&l, 0, NBD_CMD_BLOCK_STATUS, 0, 4096), NBD_EINVAL);
    l.meta_alloc = true;
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 0, 4096), 0);
    CHECK_EQ(chk(&l, 0, NBD_CMD_BLOCK_STATUS, 0, (1 << 20) + 512), NBD_EINVAL);
    /* not advertised -> rejected */
    l.tflags = NBD_FLAG_HAS_FLAGS;
    CHECK_EQ(chk(&l, 0, NBD_CMD_TRIM, 0, 512), NBD_EINVAL);
    CHECK_EQ(chk(&l, 0, NBD_CMD_FLUSH, 0, 0), NBD_EINVAL);
    /* a read-only export (a snapshot): every change is EPERM, a write too large to skip still closes */
    l.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, 0, 4096), NBD_EPERM);
    CHECK_EQ(chk(&l, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1 << 20, 4096), NBD_EPERM); /* before the bounds */
    CHECK_EQ(chk(&l, 0, NBD_CMD_TRIM, 0, 512), NBD_EPERM);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE_ZEROES, 0, 512), NBD_EPERM);
    CHECK_EQ(chk(&l, 0, NBD_CMD_WRITE, 0, NBD_MAX_PAYLOAD + 512), NBD_CHECK_CLOSE);
    CHECK_EQ(chk(&l, 0, NBD_CMD_READ, 0, 4096), 0);
    CHECK_EQ(chk(&l, 0, NBD_CMD_FLUSH, 0, 0), 0);
}

TEST(encoders_and_errno)
{
    uint8_t b[64];
    CHECK_EQ(nbd_enc_simple_reply(b, NBD_EIO, 42), 16);
    CHECK_EQ(nbd_get32(b), NBD_SIMPLE_REPLY_MAGIC);
    CHECK_EQ(nbd_get32(b + 4), NBD_EIO);
    CHECK_EQ(nbd_get64(b + 8), 42);
    CHECK_EQ(nbd_enc_read_chunk(b, 7, 4096, 512), 28);
    CHECK_EQ(nbd_get32(b), NBD_STRUCTURED_REPLY_MAGIC);
    CHECK_EQ(nbd_get16(b + 4), NBD_REPLY_FLAG_DONE);
    CHECK_EQ(nbd_get16(b + 6), NBD_REPLY_TYPE_OFFSET_DATA);
    CHECK_EQ(nbd_get32(b + 16), 520);
    CHECK_EQ(nbd_get64(b + 20), 4096);
    CHECK_EQ(nbd_enc_error_chunk(b, 7, NBD_EINVAL), 26);
    CHECK_EQ(nbd_get16(b + 6), NBD_REPLY_TYPE_ERROR);
    CHECK_EQ(nbd_get32(b + 16), 6);
    CHECK_EQ(nbd_get32(b + 20), NBD_EINVAL);
    CHECK_EQ(nbd_errno(0), 0);
    CHECK_EQ(nbd_errno(-EINVAL), NBD_EINVAL);
    CHECK_EQ(nbd_errno(-ERANGE), NBD_EINVAL);
    CHECK_EQ(nbd_errno(-ENOSPC), NBD_ENOSPC);
    CHECK_EQ(nbd_errno(-EROFS), NBD_EPERM);
    CHECK_EQ(nbd_errno(-ETIMEDOUT), NBD_EIO);
}

int main(void)
{
    printf("test_nbd_proto\n");
    RUN(greeting_and_client_flags);
    RUN(option_header_hostile);
    RUN(unknown_options_unsup);
    RUN(structured_reply_and_abort);
    RUN(go_good);
    RUN(go_hostile);
    RUN(export_name);
    RUN(list);
    RUN(meta_context);
    RUN(requests);
    RUN(encoders_and_errno);
    return 0;
}
