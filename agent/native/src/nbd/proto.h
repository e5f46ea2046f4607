/*
 * proto.h - NBD wire protocol: pure, allocation-free parsing and encoding.
 *
 * Everything here works on caller-provided buffers and never reads past the
 * lengths it is given: every byte comes from the network and is hostile.
 * The server (server.c) and the fuzz harness (fuzz/fuzz_nbd.c) share this code,
 * so the fuzzer exercises exactly the logic that runs in production,
 * including option negotiation (nbd_neg_option) and request validation
 * (nbd_check_request).
 *
 * Reference: doc/proto.md of github.com/NetworkBlockDevice/nbd.
 */
#ifndef DP_NBD_PROTO_H
#define DP_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* magics */
#define NBD_MAGIC 0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454F5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* options */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT 10u

/* option replies */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR_UNSUP (0x80000000u + 1)
#define NBD_REP_ERR_POLICY (0x80000000u + 2)
#define NBD_REP_ERR_INVALID (0x80000000u + 3)
#define NBD_REP_ERR_UNKNOWN (0x80000000u + 6)
#define NBD_REP_ERR_TOO_BIG (0x80000000u + 9)

/* info types */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* commands and command flags */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_CACHE 5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_NONE 0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_OFFSET_HOLE 2u
#define NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NBD_REPLY_TYPE_ERROR (0x8000u + 1)

/* base:allocation */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)
#define NBD_META_ID_BASE_ALLOCATION 1u

/* NBD error values (wire) */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

/* fixed sizes */
#define NBD_GREETING_LEN 18 /* magic, IHAVEOPT, u16 handshake flags */
#define NBD_OPT_HDR_LEN 16
#define NBD_OPT_REPLY_HDR_LEN 20
#define NBD_REQ_LEN 28
#define NBD_SIMPLE_REPLY_LEN 16
#define NBD_CHUNK_HDR_LEN 20
#define NBD_READ_CHUNK_HDR_LEN 28 /* chunk header + u64 offset */
#define NBD_ERROR_CHUNK_LEN 26 /* chunk header + u32 error + u16 msg len (0) */

/* limits */
#define NBD_MAX_NAME 4096 /* spec: names are at most 4096 bytes */
#define NBD_MAX_OPT_LEN 16384 /* longer options: connection closed */
#define NBD_MAX_PAYLOAD (32u << 20) /* advertised maximum payload */
#define NBD_PREF_BLOCK 4096u
#define NBD_MAX_META_QUERIES 128
#define NBD_NEG_OUT_MAX 65536 /* option reply buffer */

/* ---- big-endian helpers ------------------------------------------------ */
static inline uint16_t nbd_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t nbd_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t nbd_get64(const uint8_t *p)
{
    return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}
static inline void nbd_put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = (uint8_t)v;
}
static inline void nbd_put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void nbd_put64(uint8_t *p, uint64_t v)
{
    nbd_put32(p, (uint32_t)(v >> 32));
    nbd_put32(p + 4, (uint32_t)v);
}

/* ---- handshake ------------------------------------------------------------ */

/* Server greeting (NBD_GREETING_LEN bytes). */
void nbd_enc_greeting(uint8_t *b);

/* Client flags: 0, or -EPROTO for unknown bits / no FIXED_NEWSTYLE. */
int nbd_parse_client_flags(const uint8_t b[4], uint32_t *flags);

struct nbd_opt_hdr {
    uint32_t opt;
    uint32_t len;
};
/* 0; -EPROTO for a bad magic; -E2BIG for len > NBD_MAX_OPT_LEN (close). */
int nbd_parse_opt_hdr(const uint8_t b[NBD_OPT_HDR_LEN], struct nbd_opt_hdr *h);

/* NBD_OPT_GO / NBD_OPT_INFO payload. name is not NUL-terminated. */
struct nbd_go_req {
    const uint8_t *name;
    uint32_t name_len;
    uint16_t nreqs;
    bool want_block_size, want_name, want_description;
};
int nbd_parse_go(const uint8_t *d, uint32_t len, struct nbd_go_req *out); /* 0 / -EINVAL */

/* NBD_OPT_{LIST,SET}_META_CONTEXT payload; walk queries with nbd_meta_next. */
struct nbd_meta_req {
    const uint8_t *name;
    uint32_t name_len;
    uint32_t nqueries;
    const uint8_t *queries; /* validated: nqueries x (u32 len, bytes) */
    uint32_t queries_len;
};
int nbd_parse_meta(const uint8_t *d, uint32_t len, struct nbd_meta_req *out); /* 0 / -EINVAL */
/* Iterate: *pos starts at 0. Returns 1 with a query, 0 at the end. */
int nbd_meta_next(const struct nbd_meta_req *m, uint32_t *pos, const uint8_t **q, uint32_t *qlen);

/* Option reply header; returns NBD_OPT_REPLY_HDR_LEN. */
size_t nbd_enc_opt_reply(uint8_t *b, uint32_t opt, uint32_t type, uint32_t len);

/* ---- negotiation state machine ------------------------------------------ */

/* What the server knows about an export (filled by the lookup callback). */
struct nbd_export_view {
    uint64_t size;
    uint16_t tflags;
    uint32_t min_block, pref_block, max_payload;
};

struct nbd_neg_ops {
    /* name is NUL-terminated. 0 found, -ENOENT unknown, -EACCES peer not allowed. */
    int (*lookup)(void *ctx, const char *name, struct nbd_export_view *out);
    /* index-th export visible to this peer: copies the name (NUL-terminated,
     * at most cap bytes) and returns its length, or -ENOENT past the end. */
    int (*list)(void *ctx, uint32_t index, char *name, size_t cap);
};

struct nbd_neg {
    uint32_t client_flags;
    bool structured;
    bool meta_alloc; /* base:allocation selected ... */
    char meta_export[NBD_MAX_NAME + 1]; /* ... for this export */
    char export_name[NBD_MAX_NAME + 1]; /* after GO / EXPORT_NAME */
    struct nbd_export_view view; /* of export_name */
};

enum nbd_neg_result {
    NBD_NEG_CONTINUE, /* send out, read the next option */
    NBD_NEG_GO, /* send out, then transmission phase */
    NBD_NEG_CLOSE, /* send out (may be empty), then close */
};

void nbd_neg_init(struct nbd_neg *n, uint32_t client_flags);
/*
 * Handle one option whose header was parsed and whose `len` bytes of data
 * were read. Replies are written to out (cap >= NBD_NEG_OUT_MAX recommended);
 * *outlen is set. Pure apart from the callbacks.
 */
enum nbd_neg_result nbd_neg_option(struct nbd_neg *n, uint32_t opt, const uint8_t *data, uint32_t len,
                                   const struct nbd_neg_ops *ops, void *ctx, uint8_t *out, size_t cap, size_t *outlen);

/* ---- transmission ----------------------------------------------------- */

struct nbd_request {
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t length;
};
/* 0, or -EPROTO for a bad magic (the stream is lost: close). */
int nbd_parse_request(const uint8_t b[NBD_REQ_LEN], struct nbd_request *r);

struct nbd_limits {
    uint64_t size;
    uint32_t min_block;
    uint32_t max_payload;
    uint16_t tflags;
    bool structured;
    bool meta_alloc;
};
/* The limits transmission runs under, from a finished negotiation (GO). */
void nbd_neg_limits(const struct nbd_neg *n, struct nbd_limits *l);

#define NBD_CHECK_CLOSE (-1)
/*
 * Validate a parsed request against the export. Returns 0 if it may be
 * executed, a positive NBD error to reply with (the connection stays up;
 * a WRITE's payload must still be consumed), or NBD_CHECK_CLOSE when the
 * stream cannot be resynchronised (a WRITE payload above max_payload).
 */
int nbd_check_request(const struct nbd_request *r, const struct nbd_limits *l);

/* Map a negative errno from the bdev layer to an NBD error. */
uint32_t nbd_errno(int neg_errno);

/* Reply encoders; each returns the number of bytes written. */
size_t nbd_enc_simple_reply(uint8_t *b, uint32_t error, uint64_t cookie);
size_t nbd_enc_chunk_hdr(uint8_t *b, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len);
/* OFFSET_DATA chunk header (DONE) for `datalen` bytes at `offset`. */
size_t nbd_enc_read_chunk(uint8_t *b, uint64_t cookie, uint64_t offset, uint32_t datalen);
/* ERROR chunk (DONE), no message. */
size_t nbd_enc_error_chunk(uint8_t *b, uint64_t cookie, uint32_t error);

#endif /* DP_NBD_PROTO_H */
