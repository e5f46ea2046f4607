/*
 * label.c - the nexus child label (format in LABEL.md).
 *
 * Pure code: encoding, decoding, crc32c, uuids. The bytes come from disk and
 * are treated as hostile: every field is range-checked before use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "nexus/nexus.h"

/* crc32c (Castagnoli, reflected 0x82F63B78), table driven. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t nx_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Canonical 8-4-4-4-12 form only. */
int nx_uuid_parse(const char *s, uint8_t out[16])
{
    if (!s || strlen(s) != 36)
        return -EINVAL;
    int n = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

void nx_uuid_format(const uint8_t in[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 15];
    }
    out[o] = 0;
}

void nx_random_id(uint8_t out[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(out + got, 16 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < 16) { /* no entropy source: still unique enough within a nexus */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid();
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            out[i] = (uint8_t)(x >> 56);
        }
    }
    out[6] = (out[6] & 0x0f) | 0x40; /* version 4 */
    out[8] = (out[8] & 0x3f) | 0x80;
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* Field offsets (LABEL.md). */
enum {
    O_MAGIC = 0, O_VERSION = 8, O_SIZE = 12, O_NEXUS = 16, O_CHILD = 32,
    O_SEQ = 48, O_GEN = 56, O_DATA_OFF = 64, O_DATA_SIZE = 72, O_FLAGS = 80,
    O_BLOCK = 84, O_NMEMBERS = 88, O_RESERVED = 92, O_MEMBERS = 96,
    O_CRC = NX_LABEL_SIZE - 4,
};
_Static_assert(O_MEMBERS + NX_MAX_CHILDREN * 16 <= O_CRC, "label members overflow");

void nx_label_encode(const struct nx_label *l, uint8_t *block)
{
    memset(block, 0, NX_LABEL_BLOCK);
    memcpy(block + O_MAGIC, NX_LABEL_MAGIC, 8);
    put32(block + O_VERSION, NX_LABEL_VERSION);
    put32(block + O_SIZE, NX_LABEL_SIZE);
    memcpy(block + O_NEXUS, l->nexus_uuid, 16);
    memcpy(block + O_CHILD, l->child_id, 16);
    put64(block + O_SEQ, l->seq);
    put64(block + O_GEN, l->generation);
    put64(block + O_DATA_OFF, l->data_offset);
    put64(block + O_DATA_SIZE, l->data_size);
    put32(block + O_FLAGS, l->flags);
    put32(block + O_BLOCK, l->block_size);
    uint32_t n = l->nmembers > NX_MAX_CHILDREN ? NX_MAX_CHILDREN : l->nmembers;
    put32(block + O_NMEMBERS, n);
    for (uint32_t i = 0; i < n; i++)
        memcpy(block + O_MEMBERS + 16 * i, l->members[i], 16);
    put32(block + O_CRC, nx_crc32c(0, block, O_CRC));
}

int nx_label_decode(const uint8_t *block, struct nx_label *out, char *why, size_t whylen)
{
    if (memcmp(block + O_MAGIC, NX_LABEL_MAGIC, 8) != 0) {
        snprintf(why, whylen, "no nexus label");
        return -ENOENT;
    }
    uint32_t crc = get32(block + O_CRC);
    if (crc != nx_crc32c(0, block, O_CRC)) {
        snprintf(why, whylen, "label checksum mismatch");
        return -EINVAL;
    }
    uint32_t version = get32(block + O_VERSION);
    if (version != NX_LABEL_VERSION) {
        snprintf(why, whylen, "unsupported label version %u", version);
        return -EINVAL;
    }
    if (get32(block + O_SIZE) != NX_LABEL_SIZE) {
        snprintf(why, whylen, "bad label size %u", get32(block + O_SIZE));
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->nexus_uuid, block + O_NEXUS, 16);
    memcpy(out->child_id, block + O_CHILD, 16);
    out->seq = get64(block + O_SEQ);
    out->generation = get64(block + O_GEN);
    out->data_offset = get64(block + O_DATA_OFF);
    out->data_size = get64(block + O_DATA_SIZE);
    out->flags = get32(block + O_FLAGS);
    out->block_size = get32(block + O_BLOCK);
    out->nmembers = get32(block + O_NMEMBERS);
    if (out->data_offset != NX_HDR_SIZE) {
        snprintf(why, whylen, "label data offset %llu is not %llu",
                 (unsigned long long)out->data_offset, (unsigned long long)NX_HDR_SIZE);
        return -EINVAL;
    }
    if (out->nmembers > NX_MAX_CHILDREN) {
        snprintf(why, whylen, "label lists %u members (max %u)", out->nmembers, NX_MAX_CHILDREN);
        return -EINVAL;
    }
    if (out->flags & ~(NX_LABEL_SYNCED | NX_LABEL_CLEAN)) {
        snprintf(why, whylen, "unknown label flags 0x%x", out->flags);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < out->nmembers; i++)
        memcpy(out->members[i], block + O_MEMBERS + 16 * i, 16);
    return 0;
}

int nx_label_read_slots(const uint8_t *two_blocks, struct nx_label *out, char *why, size_t whylen)
{
    struct nx_label l[2];
    char w[2][96];
    int r[2];
    for (int i = 0; i < 2; i++)
        r[i] = nx_label_decode(two_blocks + i * NX_LABEL_BLOCK, &l[i], w[i], sizeof w[i]);
    /* a slot is valid only where its seq parity matches its position */
    for (int i = 0; i < 2; i++)
        if (r[i] == 0 && nx_label_slot_offset(l[i].seq) != (uint64_t)i * NX_LABEL_BLOCK) {
            snprintf(w[i], sizeof w[i], "label seq %llu in the wrong slot", (unsigned long long)l[i].seq);
            r[i] = -EINVAL;
        }
    int best = -1;
    for (int i = 0; i < 2; i++)
        if (r[i] == 0 && (best < 0 || l[i].seq > l[best].seq))
            best = i;
    if (best >= 0) {
        *out = l[best];
        return 0;
    }
    if (r[0] == -ENOENT && r[1] == -ENOENT) {
        snprintf(why, whylen, "no nexus label");
        return -ENOENT;
    }
    snprintf(why, whylen, "%s", r[0] != -ENOENT ? w[0] : w[1]);
    return -EINVAL;
}
