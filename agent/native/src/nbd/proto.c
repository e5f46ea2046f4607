/* proto.c - NBD parsing/encoding and the option negotiation state machine. */
#include <errno.h>
#include <string.h>

#include "nbd/proto.h"

void nbd_enc_greeting(uint8_t *b)
{
    nbd_put64(b, NBD_MAGIC);
    nbd_put64(b + 8, NBD_IHAVEOPT);
    nbd_put16(b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

int nbd_parse_client_flags(const uint8_t b[4], uint32_t *flags)
{
    uint32_t f = nbd_get32(b);
    /* Unknown bits must make the server close; we only speak fixed newstyle. */
    if (f & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
        return -EPROTO;
    if (!(f & NBD_FLAG_C_FIXED_NEWSTYLE))
        return -EPROTO;
    *flags = f;
    return 0;
}

int nbd_parse_opt_hdr(const uint8_t b[NBD_OPT_HDR_LEN], struct nbd_opt_hdr *h)
{
    if (nbd_get64(b) != NBD_IHAVEOPT)
        return -EPROTO;
    h->opt = nbd_get32(b + 8);
    h->len = nbd_get32(b + 12);
    if (h->len > NBD_MAX_OPT_LEN)
        return -E2BIG;
    return 0;
}

/*
 * The export name GO/INFO and META payloads start with (u32 length, bytes),
 * which at least `tail` more bytes must follow.
 */
static int parse_name(const uint8_t *d, uint32_t len, uint32_t tail, const uint8_t **name, uint32_t *name_len)
{
    if (len < 4 + tail)
        return -EINVAL;
    uint32_t nl = nbd_get32(d);
    if (nl > NBD_MAX_NAME || nl > len - 4 - tail)
        return -EINVAL;
    *name = d + 4;
    *name_len = nl;
    return 0;
}

int nbd_parse_go(const uint8_t *d, uint32_t len, struct nbd_go_req *out)
{
    memset(out, 0, sizeof *out);
    if (parse_name(d, len, 2, &out->name, &out->name_len) < 0)
        return -EINVAL;
    uint32_t nl = out->name_len;
    uint32_t n = nbd_get16(d + 4 + nl);
    /* The remainder must be exactly n info requests. */
    if ((uint64_t)len != 6ull + nl + 2ull * n)
        return -EINVAL;
    out->nreqs = (uint16_t)n;
    const uint8_t *r = d + 6 + nl;
    for (uint32_t i = 0; i < n; i++) {
        switch (nbd_get16(r + 2 * i)) {
        case NBD_INFO_BLOCK_SIZE: out->want_block_size = true; break;
        case NBD_INFO_NAME: out->want_name = true; break;
        case NBD_INFO_DESCRIPTION: out->want_description = true; break;
        default: break; /* unknown requests are ignored per spec */
        }
    }
    return 0;
}

int nbd_parse_meta(const uint8_t *d, uint32_t len, struct nbd_meta_req *out)
{
    memset(out, 0, sizeof *out);
    if (parse_name(d, len, 4, &out->name, &out->name_len) < 0)
        return -EINVAL;
    uint32_t nl = out->name_len;
    uint32_t n = nbd_get32(d + 4 + nl);
    if (n > NBD_MAX_META_QUERIES)
        return -EINVAL;
    const uint8_t *q = d + 8 + nl;
    uint32_t left = len - 8 - nl, pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (left - pos < 4)
            return -EINVAL;
        uint32_t ql = nbd_get32(q + pos);
        pos += 4;
        if (ql > NBD_MAX_NAME || ql > left - pos)
            return -EINVAL;
        pos += ql;
    }
    if (pos != left)
        return -EINVAL;
    out->nqueries = n;
    out->queries = q;
    out->queries_len = left;
    return 0;
}

int nbd_meta_next(const struct nbd_meta_req *m, uint32_t *pos, const uint8_t **q, uint32_t *qlen)
{
    /* Structure was validated by nbd_parse_meta; still bound every access. */
    if (*pos + 4 > m->queries_len)
        return 0;
    uint32_t l = nbd_get32(m->queries + *pos);
    if (l > m->queries_len - *pos - 4)
        return 0;
    *q = m->queries + *pos + 4;
    *qlen = l;
    *pos += 4 + l;
    return 1;
}

size_t nbd_enc_opt_reply(uint8_t *b, uint32_t opt, uint32_t type, uint32_t len)
{
    nbd_put64(b, NBD_REP_MAGIC);
    nbd_put32(b + 8, opt);
    nbd_put32(b + 12, type);
    nbd_put32(b + 16, len);
    return NBD_OPT_REPLY_HDR_LEN;
}

/* ---- negotiation ------------------------------------------------------- */

void nbd_neg_init(struct nbd_neg *n, uint32_t client_flags)
{
    memset(n, 0, sizeof *n);
    n->client_flags = client_flags;
}

struct outbuf {
    uint8_t *p;
    size_t cap, len;
};

/* Append one option reply; false (nothing written) if it does not fit. */
static bool put_reply(struct outbuf *o, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
    if (o->cap - o->len < NBD_OPT_REPLY_HDR_LEN + (size_t)len)
        return false;
    o->len += nbd_enc_opt_reply(o->p + o->len, opt, type, len);
    if (len)
        memcpy(o->p + o->len, data, len);
    o->len += len;
    return true;
}

static void put_err(struct outbuf *o, uint32_t opt, uint32_t type, const char *msg)
{
    put_reply(o, opt, type, msg, (uint32_t)strlen(msg));
}

/* Copy a wire name into a NUL-terminated buffer; false for an embedded NUL. */
static bool copy_name(char *dst, const uint8_t *src, uint32_t len)
{
    if (len > NBD_MAX_NAME || memchr(src, 0, len))
        return false;
    memcpy(dst, src, len);
    dst[len] = 0;
    return true;
}

static uint32_t lookup_err(int rc)
{
    return rc == -EACCES ? NBD_REP_ERR_POLICY : NBD_REP_ERR_UNKNOWN;
}

static enum nbd_neg_result opt_go(struct nbd_neg *n, uint32_t opt, const uint8_t *d, uint32_t len,
                                  const struct nbd_neg_ops *ops, void *ctx, struct outbuf *o)
{
    struct nbd_go_req g;
    char name[NBD_MAX_NAME + 1];
    struct nbd_export_view v;
    if (nbd_parse_go(d, len, &g) < 0 || !copy_name(name, g.name, g.name_len)) {
        put_err(o, opt, NBD_REP_ERR_INVALID, "malformed GO/INFO option");
        return NBD_NEG_CONTINUE;
    }
    int rc = ops->lookup(ctx, name, &v);
    if (rc < 0) {
        put_err(o, opt, lookup_err(rc), rc == -EACCES ? "access denied" : "unknown export");
        return NBD_NEG_CONTINUE;
    }
    uint8_t info[14];
    nbd_put16(info, NBD_INFO_EXPORT);
    nbd_put64(info + 2, v.size);
    nbd_put16(info + 10, v.tflags);
    put_reply(o, opt, NBD_REP_INFO, info, 12);
    if (g.want_block_size) {
        nbd_put16(info, NBD_INFO_BLOCK_SIZE);
        nbd_put32(info + 2, v.min_block);
        nbd_put32(info + 6, v.pref_block);
        nbd_put32(info + 10, v.max_payload);
        put_reply(o, opt, NBD_REP_INFO, info, 14);
    }
    if (g.want_name && o->cap - o->len >= NBD_OPT_REPLY_HDR_LEN + 2 + (size_t)g.name_len) {
        o->len += nbd_enc_opt_reply(o->p + o->len, opt, NBD_REP_INFO, 2 + g.name_len);
        nbd_put16(o->p + o->len, NBD_INFO_NAME);
        memcpy(o->p + o->len + 2, g.name, g.name_len);
        o->len += 2 + g.name_len;
    }
    put_reply(o, opt, NBD_REP_ACK, NULL, 0);
    if (opt == NBD_OPT_INFO)
        return NBD_NEG_CONTINUE;
    /* Meta contexts negotiated for another export do not carry over. */
    if (n->meta_alloc && strcmp(n->meta_export, name) != 0)
        n->meta_alloc = false;
    memcpy(n->export_name, name, g.name_len + 1);
    n->view = v;
    return NBD_NEG_GO;
}

static enum nbd_neg_result opt_export_name(struct nbd_neg *n, const uint8_t *d, uint32_t len,
                                           const struct nbd_neg_ops *ops, void *ctx, struct outbuf *o)
{
    char name[NBD_MAX_NAME + 1];
    struct nbd_export_view v;
    /* Refusal of EXPORT_NAME can only be signalled by closing. */
    if (!copy_name(name, d, len) || ops->lookup(ctx, name, &v) < 0)
        return NBD_NEG_CLOSE;
    size_t need = 10 + ((n->client_flags & NBD_FLAG_C_NO_ZEROES) ? 0 : 124);
    if (o->cap - o->len < need)
        return NBD_NEG_CLOSE;
    nbd_put64(o->p + o->len, v.size);
    nbd_put16(o->p + o->len + 8, v.tflags);
    memset(o->p + o->len + 10, 0, need - 10);
    o->len += need;
    n->meta_alloc = false; /* contexts need GO */
    memcpy(n->export_name, name, len + 1);
    n->view = v;
    return NBD_NEG_GO;
}

static const char BASE_ALLOC[] = "base:allocation";

static enum nbd_neg_result opt_meta(struct nbd_neg *n, uint32_t opt, const uint8_t *d, uint32_t len,
                                    const struct nbd_neg_ops *ops, void *ctx, struct outbuf *o)
{
    struct nbd_meta_req m;
    char name[NBD_MAX_NAME + 1];
    struct nbd_export_view v;
    bool set = opt == NBD_OPT_SET_META_CONTEXT;
    if (set && !n->structured) {
        put_err(o, opt, NBD_REP_ERR_INVALID, "structured replies not negotiated");
        return NBD_NEG_CONTINUE;
    }
    if (nbd_parse_meta(d, len, &m) < 0 || !copy_name(name, m.name, m.name_len)) {
        put_err(o, opt, NBD_REP_ERR_INVALID, "malformed meta context option");
        return NBD_NEG_CONTINUE;
    }
    int rc = ops->lookup(ctx, name, &v);
    if (rc < 0) {
        put_err(o, opt, lookup_err(rc), "unknown export");
        return NBD_NEG_CONTINUE;
    }
    uint8_t rep[4 + sizeof BASE_ALLOC];
    nbd_put32(rep, NBD_META_ID_BASE_ALLOCATION);
    memcpy(rep + 4, BASE_ALLOC, sizeof BASE_ALLOC - 1);
    bool found = false;
    if (!set && m.nqueries == 0) {
        found = true; /* LIST with no query lists everything */
    } else {
        uint32_t pos = 0, ql;
        const uint8_t *q;
        while (nbd_meta_next(&m, &pos, &q, &ql)) {
            if (ql == sizeof BASE_ALLOC - 1 && memcmp(q, BASE_ALLOC, ql) == 0)
                found = true;
            else if (!set && ql == 5 && memcmp(q, "base:", 5) == 0)
                found = true;
        }
    }
    if (set) {
        n->meta_alloc = found;
        memcpy(n->meta_export, name, m.name_len + 1);
    }
    if (found)
        put_reply(o, opt, NBD_REP_META_CONTEXT, rep, sizeof rep - 1);
    put_reply(o, opt, NBD_REP_ACK, NULL, 0);
    return NBD_NEG_CONTINUE;
}

static enum nbd_neg_result opt_list(uint32_t len, const struct nbd_neg_ops *ops, void *ctx, struct outbuf *o)
{
    if (len != 0) {
        put_err(o, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "LIST takes no data");
        return NBD_NEG_CONTINUE;
    }
    char name[NBD_MAX_NAME + 1];
    /* Keep room for the final ACK; exports beyond the buffer are not listed. */
    for (uint32_t i = 0;; i++) {
        int nl = ops->list(ctx, i, name, sizeof name);
        if (nl < 0)
            break;
        size_t need = NBD_OPT_REPLY_HDR_LEN + 4 + (size_t)nl;
        if (o->cap - o->len < need + NBD_OPT_REPLY_HDR_LEN)
            break;
        o->len += nbd_enc_opt_reply(o->p + o->len, NBD_OPT_LIST, NBD_REP_SERVER, 4 + (uint32_t)nl);
        nbd_put32(o->p + o->len, (uint32_t)nl);
        memcpy(o->p + o->len + 4, name, (size_t)nl);
        o->len += 4 + (size_t)nl;
    }
    put_reply(o, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
    return NBD_NEG_CONTINUE;
}

enum nbd_neg_result nbd_neg_option(struct nbd_neg *n, uint32_t opt, const uint8_t *data, uint32_t len,
                                   const struct nbd_neg_ops *ops, void *ctx, uint8_t *out, size_t cap, size_t *outlen)
{
    struct outbuf o = { out, cap, 0 };
    enum nbd_neg_result r = NBD_NEG_CONTINUE;
    switch (opt) {
    case NBD_OPT_EXPORT_NAME: r = opt_export_name(n, data, len, ops, ctx, &o); break;
    case NBD_OPT_ABORT:
        put_reply(&o, opt, NBD_REP_ACK, NULL, 0);
        r = NBD_NEG_CLOSE;
        break;
    case NBD_OPT_LIST: r = opt_list(len, ops, ctx, &o); break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO: r = opt_go(n, opt, data, len, ops, ctx, &o); break;
    case NBD_OPT_STRUCTURED_REPLY:
        if (len != 0) {
            put_err(&o, opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
        } else {
            n->structured = true;
            put_reply(&o, opt, NBD_REP_ACK, NULL, 0);
        }
        break;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT: r = opt_meta(n, opt, data, len, ops, ctx, &o); break;
    default: /* STARTTLS, EXTENDED_HEADERS and anything unknown */
        put_err(&o, opt, NBD_REP_ERR_UNSUP, "option not supported");
        break;
    }
    *outlen = o.len;
    return r;
}

/* ---- transmission ----------------------------------------------------- */

int nbd_parse_request(const uint8_t b[NBD_REQ_LEN], struct nbd_request *r)
{
    if (nbd_get32(b) != NBD_REQUEST_MAGIC)
        return -EPROTO;
    r->flags = nbd_get16(b + 4);
    r->type = nbd_get16(b + 6);
    r->cookie = nbd_get64(b + 8);
    r->offset = nbd_get64(b + 16);
    r->length = nbd_get32(b + 24);
    return 0;
}

void nbd_neg_limits(const struct nbd_neg *n, struct nbd_limits *l)
{
    *l = (struct nbd_limits){
        .size = n->view.size,
        .min_block = n->view.min_block,
        .max_payload = n->view.max_payload,
        .tflags = n->view.tflags,
        .structured = n->structured,
        .meta_alloc = n->meta_alloc,
    };
}

int nbd_check_request(const struct nbd_request *r, const struct nbd_limits *l)
{
    uint16_t allowed = 0;
    bool is_write = false;
    /* A read-only export refuses every change with EPERM (a write's payload is still consumed). */
    if ((l->tflags & NBD_FLAG_READ_ONLY) &&
        (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM || r->type == NBD_CMD_WRITE_ZEROES))
        return r->type == NBD_CMD_WRITE && r->length > l->max_payload ? NBD_CHECK_CLOSE : (int)NBD_EPERM;
    switch (r->type) {
    case NBD_CMD_READ:
        allowed = NBD_CMD_FLAG_FUA | ((l->tflags & NBD_FLAG_SEND_DF) && l->structured ? NBD_CMD_FLAG_DF : 0);
        break;
    case NBD_CMD_WRITE:
        is_write = true;
        /* A payload we refuse to buffer cannot be skipped safely: close. */
        if (r->length > l->max_payload)
            return NBD_CHECK_CLOSE;
        allowed = NBD_CMD_FLAG_FUA;
        break;
    case NBD_CMD_DISC: return 0;
    case NBD_CMD_FLUSH:
        if (!(l->tflags & NBD_FLAG_SEND_FLUSH))
            return NBD_EINVAL;
        return (r->flags & ~NBD_CMD_FLAG_FUA) ? NBD_EINVAL : 0;
    case NBD_CMD_TRIM:
        if (!(l->tflags & NBD_FLAG_SEND_TRIM))
            return NBD_EINVAL;
        allowed = NBD_CMD_FLAG_FUA;
        break;
    case NBD_CMD_WRITE_ZEROES:
        if (!(l->tflags & NBD_FLAG_SEND_WRITE_ZEROES))
            return NBD_EINVAL;
        allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
        break;
    case NBD_CMD_BLOCK_STATUS:
        if (!l->structured || !l->meta_alloc)
            return NBD_EINVAL;
        allowed = NBD_CMD_FLAG_REQ_ONE;
        break;
    default: /* CACHE is not advertised; unknown commands */ return NBD_EINVAL;
    }
    if (r->flags & ~allowed)
        return NBD_EINVAL;
    if (r->length == 0)
        return NBD_EINVAL;
    if (r->type == NBD_CMD_READ && r->length > l->max_payload)
        return NBD_EOVERFLOW;
    if (r->offset > l->size || r->length > l->size - r->offset)
        return (is_write || r->type == NBD_CMD_WRITE_ZEROES) ? NBD_ENOSPC : NBD_EINVAL;
    if (l->min_block > 1 && ((r->offset | r->length) & (l->min_block - 1)))
        return NBD_EINVAL;
    return 0;
}

uint32_t nbd_errno(int e)
{
    switch (-e) {
    case 0: return 0;
    case EPERM:
    case EROFS:
    case EACCES: return NBD_EPERM;
    case ENOMEM: return NBD_ENOMEM;
    case EINVAL:
    case ERANGE: return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT: return NBD_ENOSPC;
    case EOVERFLOW: return NBD_EOVERFLOW;
    case ENOTSUP: return NBD_ENOTSUP;
    case ESHUTDOWN: return NBD_ESHUTDOWN;
    default: return NBD_EIO;
    }
}

size_t nbd_enc_simple_reply(uint8_t *b, uint32_t error, uint64_t cookie)
{
    nbd_put32(b, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(b + 4, error);
    nbd_put64(b + 8, cookie);
    return NBD_SIMPLE_REPLY_LEN;
}

size_t nbd_enc_chunk_hdr(uint8_t *b, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len)
{
    nbd_put32(b, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(b + 4, flags);
    nbd_put16(b + 6, type);
    nbd_put64(b + 8, cookie);
    nbd_put32(b + 16, len);
    return NBD_CHUNK_HDR_LEN;
}

size_t nbd_enc_read_chunk(uint8_t *b, uint64_t cookie, uint64_t offset, uint32_t datalen)
{
    nbd_enc_chunk_hdr(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + datalen);
    nbd_put64(b + NBD_CHUNK_HDR_LEN, offset);
    return NBD_READ_CHUNK_HDR_LEN;
}

size_t nbd_enc_error_chunk(uint8_t *b, uint64_t cookie, uint32_t error)
{
    nbd_enc_chunk_hdr(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6);
    nbd_put32(b + NBD_CHUNK_HDR_LEN, error);
    nbd_put16(b + NBD_CHUNK_HDR_LEN + 4, 0);
    return NBD_ERROR_CHUNK_LEN;
}
