/* test_nexus_label.c - the nexus child label: encoding, checksums, slots, uuids. */
#include <errno.h>

#include "nexus/nexus.h"
#include "testlib.h"

static void sample(struct nx_label *l, uint64_t seq)
{
    memset(l, 0, sizeof *l);
    CHECK_EQ(dp_uuid_parse("0f8c3f3e-4a1b-4c2d-9e8f-0123456789ab", l->nexus_uuid), 0);
    dp_uuid_generate(l->child_id);
    l->seq = seq;
    l->generation = 42;
    l->data_offset = NX_HDR_SIZE;
    l->data_size = 64ull << 20;
    l->flags = NX_LABEL_SYNCED;
    l->block_size = 512;
    l->nmembers = 2;
    dp_uuid_generate(l->members[0]);
    memcpy(l->members[1], l->child_id, 16);
}

TEST(crc32c_known_value)
{
    /* the standard check value of CRC-32C */
    CHECK_EQ(dp_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(dp_crc32c(0, "", 0), 0);
}

TEST(uuid_parse_and_format)
{
    uint8_t b[16];
    char s[37];
    CHECK_EQ(dp_uuid_parse("0F8C3F3E-4A1B-4C2D-9E8F-0123456789AB", b), 0);
    dp_uuid_format(b, s);
    CHECK(!strcmp(s, "0f8c3f3e-4a1b-4c2d-9e8f-0123456789ab"));
    CHECK_EQ(dp_uuid_parse("0f8c3f3e-4a1b-4c2d-9e8f-0123456789a", b), -EINVAL); /* short */
    CHECK_EQ(dp_uuid_parse("0f8c3f3e-4a1b-4c2d-9e8f-0123456789abc", b), -EINVAL); /* long */
    CHECK_EQ(dp_uuid_parse("0f8c3f3e_4a1b-4c2d-9e8f-0123456789ab", b), -EINVAL); /* separator */
    CHECK_EQ(dp_uuid_parse("0f8c3f3e-4a1b-4c2d-9e8f-0123456789ag", b), -EINVAL); /* not hex */
    CHECK_EQ(dp_uuid_parse("", b), -EINVAL);
    CHECK_EQ(dp_uuid_parse(NULL, b), -EINVAL);
    uint8_t a[16], c[16];
    dp_uuid_generate(a);
    dp_uuid_generate(c);
    CHECK(memcmp(a, c, 16) != 0);
}

TEST(encode_decode_roundtrip)
{
    uint8_t *blk = calloc(1, NX_LABEL_BLOCK);
    struct nx_label l, out;
    char why[128];
    sample(&l, 7);
    nx_label_encode(&l, blk);
    CHECK(!memcmp(blk, NX_LABEL_MAGIC, 8));
    CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), 0);
    CHECK(!memcmp(out.nexus_uuid, l.nexus_uuid, 16));
    CHECK(!memcmp(out.child_id, l.child_id, 16));
    CHECK_EQ(out.seq, 7);
    CHECK_EQ(out.generation, 42);
    CHECK_EQ(out.data_size, 64ull << 20);
    CHECK_EQ(out.flags, NX_LABEL_SYNCED);
    CHECK_EQ(out.nmembers, 2);
    CHECK(!memcmp(out.members[1], l.child_id, 16));
    /* everything past the encoded label is zero */
    for (uint32_t i = NX_LABEL_SIZE; i < NX_LABEL_BLOCK; i++)
        CHECK_EQ(blk[i], 0);
    free(blk);
}

TEST(damage_is_detected)
{
    uint8_t *blk = calloc(1, NX_LABEL_BLOCK);
    struct nx_label l, out;
    char why[128];
    /* blank */
    CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -ENOENT);
    sample(&l, 1);
    /* every single-byte flip inside the checksummed area is caught */
    for (uint32_t i = 8; i < NX_LABEL_SIZE; i += 7) {
        nx_label_encode(&l, blk);
        blk[i] ^= 0x10;
        CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -EINVAL);
    }
    nx_label_encode(&l, blk);
    blk[0] = 'X'; /* magic gone: reads as blank */
    CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -ENOENT);
    /* hostile but correctly checksummed fields are rejected */
    l.nmembers = NX_MAX_CHILDREN;
    nx_label_encode(&l, blk);
    blk[88] = 200; /* nmembers */
    uint32_t crc = dp_crc32c(0, blk, NX_LABEL_SIZE - 4);
    memcpy(blk + NX_LABEL_SIZE - 4, &crc, 4); /* little-endian host */
    CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -EINVAL);
    CHECK(strstr(why, "members"));
    sample(&l, 1);
    l.data_offset = 4096;
    nx_label_encode(&l, blk);
    CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -EINVAL);
    CHECK(strstr(why, "data offset"));
    /* a generation that cannot advance, odd block sizes, empty or ragged data sizes */
    struct {
        uint64_t gen;
        uint32_t bs;
        uint64_t size;
        const char *msg;
    } bad[] = {
        { UINT64_MAX, 512, 64ull << 20, "generation" },
        { 1, 0, 64ull << 20, "block size" },
        { 1, 1000, 64ull << 20, "block size" },
        { 1, 1u << 20, 64ull << 20, "block size" },
        { 1, 512, 0, "data size" },
        { 1, 4096, 4096 + 512, "data size" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sample(&l, 1);
        l.generation = bad[i].gen;
        l.block_size = bad[i].bs;
        l.data_size = bad[i].size;
        nx_label_encode(&l, blk);
        CHECK_EQ(nx_label_decode(blk, &out, why, sizeof why), -EINVAL);
        CHECK(strstr(why, bad[i].msg));
    }
    free(blk);
}

TEST(slots_pick_newest_valid)
{
    uint8_t *two = calloc(2, NX_LABEL_BLOCK);
    struct nx_label l, out;
    char why[128];
    CHECK_EQ(nx_label_read_slots(two, &out, why, sizeof why), -ENOENT);
    /* seq 4 -> slot 0, seq 5 -> slot 1 */
    sample(&l, 4);
    l.generation = 10;
    nx_label_encode(&l, two + nx_label_slot_offset(4));
    CHECK_EQ(nx_label_read_slots(two, &out, why, sizeof why), 0);
    CHECK_EQ(out.generation, 10);
    l.seq = 5;
    l.generation = 11;
    nx_label_encode(&l, two + nx_label_slot_offset(5));
    CHECK_EQ(nx_label_read_slots(two, &out, why, sizeof why), 0);
    CHECK_EQ(out.seq, 5);
    CHECK_EQ(out.generation, 11);
    /* a torn write of the newer slot leaves the older one */
    two[NX_LABEL_BLOCK + 60] ^= 1;
    CHECK_EQ(nx_label_read_slots(two, &out, why, sizeof why), 0);
    CHECK_EQ(out.seq, 4);
    CHECK_EQ(out.generation, 10);
    /* a label in the wrong slot does not count */
    memset(two, 0, 2 * NX_LABEL_BLOCK);
    l.seq = 6;
    nx_label_encode(&l, two + NX_LABEL_BLOCK);
    CHECK_EQ(nx_label_read_slots(two, &out, why, sizeof why), -EINVAL);
    CHECK(strstr(why, "wrong slot"));
    free(two);
}

int main(void)
{
    printf("test_nexus_label\n");
    RUN(crc32c_known_value);
    RUN(uuid_parse_and_format);
    RUN(encode_decode_roundtrip);
    RUN(damage_is_detected);
    RUN(slots_pick_newest_valid);
    return 0;
}
