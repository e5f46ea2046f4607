/*
 * label.c - the nexus child label (format in LABEL.md).
 *
 * Pure code: encoding and decoding. The bytes come from disk and
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

/* Field offsets (LABEL.md). */
enum {
    O_MAGIC = 0,
    O_VERSION = 8,
    O_SIZE = 12,
    O_NEXUS = 16,
    O_CHILD = 32,
    O_SEQ = 48,
    O_GEN = 56,
    O_DATA_OFF = 64,
    O_DATA_SIZE = 72,
    O_FLAGS = 80,
    O_BLOCK = 84,
    O_NMEMBERS = 88,
    O_RESERVED = 92,
    O_MEMBERS = 96,
    O_CRC = NX_LABEL_SIZE - 4,
};
_Static_assert(O_MEMBERS + NX_MAX_CHILDREN * 16 <= O_CRC, "label members overflow");

void nx_label_encode(const struct nx_label *l, uint8_t *block)
{
    memset(block, 0, NX_LABEL_BLOCK);
    memcpy(block + O_MAGIC, NX_LABEL_MAGIC, 8);
    dp_put_le32(block + O_VERSION, NX_LABEL_VERSION);
    dp_put_le32(block + O_SIZE, NX_LABEL_SIZE);
    memcpy(block + O_NEXUS, l->nexus_uuid, 16);
    memcpy(block + O_CHILD, l->child_id, 16);
    dp_put_le64(block + O_SEQ, l->seq);
    dp_put_le64(block + O_GEN, l->generation);
    dp_put_le64(block + O_DATA_OFF, l->data_offset);
    dp_put_le64(block + O_DATA_SIZE, l->data_size);
    dp_put_le32(block + O_FLAGS, l->flags);
    dp_put_le32(block + O_BLOCK, l->block_size);
    uint32_t n = l->nmembers > NX_MAX_CHILDREN ? NX_MAX_CHILDREN : l->nmembers;
    dp_put_le32(block + O_NMEMBERS, n);
    for (uint32_t i = 0; i < n; i++)
        memcpy(block + O_MEMBERS + 16 * i, l->members[i], 16);
    dp_put_le32(block + O_CRC, dp_crc32c(0, block, O_CRC));
}

int nx_label_decode(const uint8_t *block, struct nx_label *out, char *why, size_t whylen)
{
    if (memcmp(block + O_MAGIC, NX_LABEL_MAGIC, 8) != 0) {
        snprintf(why, whylen, "no nexus label");
        return -ENOENT;
    }
    uint32_t crc = dp_get_le32(block + O_CRC);
    if (crc != dp_crc32c(0, block, O_CRC)) {
        snprintf(why, whylen, "label checksum mismatch");
        return -EINVAL;
    }
    uint32_t version = dp_get_le32(block + O_VERSION);
    if (version != NX_LABEL_VERSION) {
        snprintf(why, whylen, "unsupported label version %u", version);
        return -EINVAL;
    }
    if (dp_get_le32(block + O_SIZE) != NX_LABEL_SIZE) {
        snprintf(why, whylen, "bad label size %u", dp_get_le32(block + O_SIZE));
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->nexus_uuid, block + O_NEXUS, 16);
    memcpy(out->child_id, block + O_CHILD, 16);
    out->seq = dp_get_le64(block + O_SEQ);
    out->generation = dp_get_le64(block + O_GEN);
    out->data_offset = dp_get_le64(block + O_DATA_OFF);
    out->data_size = dp_get_le64(block + O_DATA_SIZE);
    out->flags = dp_get_le32(block + O_FLAGS);
    out->block_size = dp_get_le32(block + O_BLOCK);
    out->nmembers = dp_get_le32(block + O_NMEMBERS);
    if (out->data_offset != NX_HDR_SIZE) {
        snprintf(why, whylen, "label data offset %llu is not %llu", (unsigned long long)out->data_offset,
                 (unsigned long long)NX_HDR_SIZE);
        return -EINVAL;
    }
    if (out->nmembers > NX_MAX_CHILDREN) {
        snprintf(why, whylen, "label lists %u members (max %u)", out->nmembers, NX_MAX_CHILDREN);
        return -EINVAL;
    }
    /* The next generation bump must not wrap: a wrapped child would look stale. */
    if (out->generation == UINT64_MAX) {
        snprintf(why, whylen, "label generation %llu cannot advance", (unsigned long long)out->generation);
        return -EINVAL;
    }
    if (out->block_size < 512 || out->block_size > 65536 || (out->block_size & (out->block_size - 1))) {
        snprintf(why, whylen, "label block size %u is not a power of two in 512..65536", out->block_size);
        return -EINVAL;
    }
    if (out->data_size == 0 || out->data_size % out->block_size) {
        snprintf(why, whylen, "label data size %llu is not a positive multiple of %u",
                 (unsigned long long)out->data_size, out->block_size);
        return -EINVAL;
    }
    if (out->flags & ~(NX_LABEL_SYNCED | NX_LABEL_CLEAN | NX_LABEL_RELEASED)) {
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
