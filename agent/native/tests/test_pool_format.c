/* test_pool_format.c - pool on-disk format: crc32c, labels, metadata slots, uuids. */
#include <errno.h>

#include "pool/format.h"
#include "testlib.h"

TEST(crc32c_vectors)
{
    /* Standard check value and the RFC 3720 (iSCSI) test vectors. */
    CHECK_EQ(dp_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t buf[48];
    memset(buf, 0, 32);
    CHECK_EQ(dp_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK_EQ(dp_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    CHECK_EQ(dp_crc32c(0, buf, 32), 0x46DD794Eu);
    /* Incremental == one shot, at every split point (exercises the tail loop). */
    for (int i = 0; i < 48; i++)
        buf[i] = (uint8_t)(i * 37 + 5);
    uint32_t whole = dp_crc32c(0, buf, 48);
    for (size_t k = 0; k <= 48; k++)
        CHECK_EQ(dp_crc32c(dp_crc32c(0, buf, k), buf + k, 48 - k), whole);
}

static void sample_label(struct pf_label *l)
{
    memset(l, 0, sizeof *l);
    l->version = PF_VERSION;
    dp_uuid_generate(l->pool_uuid);
    dp_uuid_generate(l->disk_uuid);
    strcpy(l->pool_name, "pool-a");
    l->disk_index = 1;
    l->ndisks = 2;
    l->cluster_size = PF_DEFAULT_CLUSTER;
    l->total_clusters = 100;
    l->first_cluster = 40;
    l->data_clusters = 60;
    l->data_start = PF_DATA_ALIGN;
    l->disk_size = PF_DATA_ALIGN + 60ull * PF_DEFAULT_CLUSTER + 4096;
    l->meta_offset = PF_META_OFFSET;
    l->meta_slot_size = pf_meta_slot_size(100);
    dp_uuid_generate(l->members[0]);
    memcpy(l->members[1], l->disk_uuid, 16);
}

TEST(label_roundtrip_and_damage)
{
    static uint8_t b[PF_LABEL_SIZE];
    struct pf_label l, d;
    char err[256];
    sample_label(&l);
    pf_label_encode(&l, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), 0);
    CHECK(memcmp(&l, &d, sizeof l) == 0);

    /* Every single flipped byte inside the covered area is caught. */
    for (size_t i = 8; i < PF_LABEL_SIZE; i += 61) {
        b[i] ^= 0x5a;
        CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
        b[i] ^= 0x5a;
    }
    /* No magic: not a label at all. */
    static uint8_t zero[PF_LABEL_SIZE];
    CHECK_EQ(pf_label_decode(zero, &d, err, sizeof err), 1);

    /* A well-checksummed label with hostile values is still refused. */
    struct pf_label bad = l;
    bad.version = 99;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "version 99"));
    /* Version 1 labels (pools made before snapshots) are read, with their
     * smaller slots. */
    bad = l;
    bad.version = 1;
    bad.meta_slot_size = pf_meta_slot_size_v(1, 100);
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), 0);
    CHECK_EQ(d.version, 1);
    bad.version = 2;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "metadata area"));
    bad = l;
    bad.cluster_size = 3 << 20;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "cluster size"));
    bad = l;
    bad.disk_index = 2;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    bad = l;
    bad.data_clusters = 61;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    bad = l;
    bad.ndisks = 0;
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    bad = l;
    strcpy(bad.pool_name, "a/b");
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "pool name"));
    /* Names the API refuses are refused from disk too (found by fuzz_pool_label). */
    static const char *const bad_names[] = { "..", ".", "a\nb", "tab\there", "del\x7f" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        bad = l;
        memset(bad.pool_name, 0, sizeof bad.pool_name);
        strcpy(bad.pool_name, bad_names[i]);
        pf_label_encode(&bad, b);
        CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "pool name"));
    }
    bad = l;
    memset(bad.members[1], 0, 16);
    pf_label_encode(&bad, b);
    CHECK_EQ(pf_label_decode(b, &d, err, sizeof err), -EINVAL);
    /* Layout constants the format document states. */
    pf_label_encode(&l, b);
    CHECK(memcmp(b, "MAYAPOOL", 8) == 0);
    CHECK_EQ(dp_get_le32(b + 180), 2);
    CHECK_EQ(dp_get_le64(b + 184), PF_DEFAULT_CLUSTER);
}

TEST(meta_slot)
{
    uint8_t pool[16], other[16];
    dp_uuid_generate(pool);
    dp_uuid_generate(other);
    uint64_t slot_len = pf_meta_slot_size(10);
    CHECK_EQ(slot_len % 4096, 0);
    CHECK(slot_len >= PF_META_HDR_SIZE + PF_MAX_REPLICAS * PF_META_REC_SIZE + 80);
    CHECK_EQ(pf_data_start(1, slot_len), PF_DATA_ALIGN);
    CHECK(pf_data_start(0, slot_len) >= PF_META_OFFSET + 2 * slot_len);
    CHECK_EQ(pf_data_start(0, slot_len) % PF_DATA_ALIGN, 0);

    uint8_t *s = calloc(1, slot_len);
    struct pf_meta_hdr h = { .seq = 7, .nreplicas = 1 };
    memcpy(h.pool_uuid, pool, 16);
    pf_meta_put_hdr(s, &h);
    size_t off = PF_META_HDR_SIZE;
    struct pf_replica_rec r = { .size = 12345 * 512, .flags = PF_REPLICA_THIN, .nmap = 2, .create_time = 99 };
    dp_uuid_generate(r.uuid);
    dp_uuid_generate(r.incarnation);
    dp_uuid_generate(r.group);
    dp_uuid_generate(r.source);
    off += pf_meta_put_rec(s + off, &r, PF_VERSION);
    off += pf_meta_put_map(s + off, 0, 9);
    off += pf_meta_put_map(s + off, 3, 4);
    pf_meta_seal(s, off);

    struct pf_meta_hdr g;
    char err[256];
    CHECK_EQ(pf_meta_check(s, slot_len, pool, &g, err, sizeof err), 0);
    CHECK_EQ(g.seq, 7);
    CHECK_EQ(g.used_len, off);
    CHECK_EQ(g.nreplicas, 1);
    struct pf_replica_rec q;
    pf_meta_get_rec(s + PF_META_HDR_SIZE, &q, PF_VERSION);
    CHECK(memcmp(&q, &r, sizeof q) == 0);
    CHECK_EQ(g.version, 2);
    CHECK_EQ(dp_get_le32(s + 8), 2);
    CHECK_EQ(dp_get_le32(s + 52), 112);
    CHECK_EQ(dp_get_le64(s + PF_META_HDR_SIZE + 80), 99);
    CHECK_EQ(dp_get_le32(s + PF_META_HDR_SIZE + 112 + 8 + 4), 4);

    /* Foreign pool, any flipped byte, a wild length: refused. */
    CHECK_EQ(pf_meta_check(s, slot_len, other, &g, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "another pool"));
    for (size_t i = 0; i < off; i++) {
        s[i] ^= 0x01;
        CHECK_EQ(pf_meta_check(s, slot_len, pool, &g, err, sizeof err), -EINVAL);
        s[i] ^= 0x01;
    }
    CHECK_EQ(pf_meta_check(s, off - 1, pool, &g, err, sizeof err), -EINVAL);
    /* A slot shorter than its header is refused before anything is read. */
    CHECK_EQ(pf_meta_check(s, PF_META_HDR_SIZE - 1, pool, &g, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "shorter than its header"));
    /* Bytes past used_len are not covered (stale tails of older commits). */
    s[off + 5] ^= 0xff;
    CHECK_EQ(pf_meta_check(s, slot_len, pool, &g, err, sizeof err), 0);
    memset(s, 0, slot_len);
    CHECK_EQ(pf_meta_check(s, slot_len, pool, &g, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "magic"));
    free(s);
}

/* Records and pairs of a sealed slot, as pf_meta_walk sees them. */
struct walk_count {
    uint32_t recs, pairs;
};
static int count_rec(void *ctx, const struct pf_replica_rec *r, uint32_t ncl)
{
    ((struct walk_count *)ctx)->recs++;
    return 0;
}
static void count_pair(void *ctx, uint32_t l, uint32_t p)
{
    ((struct walk_count *)ctx)->pairs++;
}

static uint32_t walk_version = PF_VERSION;

static int walk(const uint8_t pool[16], const struct pf_replica_rec *recs, uint32_t n, const uint32_t (*pairs)[2],
                size_t extra, struct walk_count *wc, char *err)
{
    static uint8_t s[8192];
    memset(s, 0, sizeof s);
    size_t off = PF_META_HDR_SIZE, k = 0;
    for (uint32_t i = 0; i < n; i++) {
        off += pf_meta_put_rec(s + off, &recs[i], walk_version);
        for (uint32_t j = 0; j < recs[i].nmap; j++, k++)
            off += pf_meta_put_map(s + off, pairs[k][0], pairs[k][1]);
    }
    off += extra;
    struct pf_meta_hdr h = { .version = walk_version, .seq = 2, .nreplicas = n };
    memcpy(h.pool_uuid, pool, 16);
    pf_meta_put_hdr(s, &h);
    pf_meta_seal(s, off);
    CHECK_EQ(pf_meta_check(s, sizeof s, pool, &h, err, 256), 0);
    const struct pf_geom g = { .cluster_size = 64 << 10, .block_size = 512, .total_clusters = 20 };
    uint64_t used[1] = { 0 };
    const struct pf_meta_visit v = { count_rec, count_pair, wc };
    memset(wc, 0, sizeof *wc);
    return pf_meta_walk(s, &h, &g, used, &v, err, 256);
}

TEST(meta_walk_hostile)
{
    uint8_t pool[16];
    dp_uuid_generate(pool);
    char err[256];
    struct walk_count wc;
    struct pf_replica_rec r[2] = {
        { .size = 3 * (64 << 10), .flags = 0, .nmap = 3 },
        { .size = 10 * (64 << 10) - 512, .flags = PF_REPLICA_THIN, .nmap = 2 },
    };
    dp_uuid_generate(r[0].uuid);
    dp_uuid_generate(r[1].uuid);
    dp_uuid_generate(r[0].incarnation);
    dp_uuid_generate(r[1].incarnation);
    const uint32_t ok[5][2] = { { 0, 5 }, { 1, 6 }, { 2, 7 }, { 0, 9 }, { 9, 3 } };
    CHECK_EQ(walk(pool, r, 2, ok, 0, &wc, err), 0);
    CHECK_EQ(wc.recs, 2);
    CHECK_EQ(wc.pairs, 5);

    const struct {
        uint32_t pairs[5][2];
        const char *why;
    } bad_pairs[] = {
        { { { 0, 5 }, { 1, 6 }, { 2, 7 }, { 0, 9 }, { 0, 3 } }, "duplicated" }, /* logical twice */
        { { { 0, 5 }, { 1, 6 }, { 2, 7 }, { 0, 9 }, { 4, 6 } }, "duplicated" }, /* physical twice */
        { { { 0, 5 }, { 1, 6 }, { 2, 7 }, { 0, 9 }, { 10, 3 } }, "out of range" }, /* logical */
        { { { 0, 5 }, { 1, 6 }, { 2, 20 }, { 0, 9 }, { 9, 3 } }, "out of range" }, /* physical */
    };
    for (size_t i = 0; i < sizeof bad_pairs / sizeof bad_pairs[0]; i++) {
        CHECK_EQ(walk(pool, r, 2, bad_pairs[i].pairs, 0, &wc, err), -EINVAL);
        CHECK(strstr(err, bad_pairs[i].why));
    }
    /* The same logical cluster in two replicas is fine (each has its own space). */
    CHECK_EQ(walk(pool, r, 2, (const uint32_t[5][2]){ { 0, 5 }, { 1, 6 }, { 2, 7 }, { 0, 9 }, { 1, 3 } }, 0, &wc, err),
             0);
    CHECK_EQ(walk(pool, r, 2, ok, 8, &wc, err), -EINVAL);
    CHECK(strstr(err, "stray bytes"));

    struct pf_replica_rec b[2] = { r[0], r[1] };
    memcpy(b[1].uuid, b[0].uuid, 16);
    CHECK_EQ(walk(pool, b, 2, ok, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "duplicate uuid"));
    b[1] = r[1];
    memset(b[1].uuid, 0, 16);
    CHECK_EQ(walk(pool, b, 2, ok, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "nil uuid"));
    b[1] = r[1];
    b[1].size = 1000;
    CHECK_EQ(walk(pool, b, 2, ok, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "size out of range"));
    b[1] = r[1];
    b[1].flags = 0x4;
    CHECK_EQ(walk(pool, b, 2, ok, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "unknown flags"));
    b[0] = r[0];
    b[0].nmap = 2; /* thick with a hole */
    CHECK_EQ(walk(pool, b, 1, ok, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "does not match"));
}

/* Version 2: parents, snapshots, incarnations; version 1 slots still load. */
TEST(meta_walk_v2)
{
    uint8_t pool[16];
    dp_uuid_generate(pool);
    char err[256];
    struct walk_count wc;
    const uint32_t pairs[2][2] = { { 0, 5 }, { 1, 6 } };
    struct pf_replica_rec snap = { .size = 4 * (64 << 10), .flags = PF_REPLICA_THIN | PF_REPLICA_RO, .nmap = 2 };
    struct pf_replica_rec rep = { .size = 4 * (64 << 10), .flags = PF_REPLICA_THIN };
    dp_uuid_generate(snap.uuid);
    dp_uuid_generate(rep.uuid);
    dp_uuid_generate(snap.incarnation);
    dp_uuid_generate(rep.incarnation);
    memcpy(rep.parent, snap.uuid, 16);
    struct pf_replica_rec r[2] = { rep, snap }; /* a parent may follow its child */
    CHECK_EQ(walk(pool, r, 2, pairs, 0, &wc, err), 0);
    CHECK_EQ(wc.recs, 2);

    r[0] = rep;
    dp_uuid_generate(r[0].parent);
    CHECK_EQ(walk(pool, r, 2, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "parent is not in the pool"));
    r[0] = rep;
    r[1] = snap;
    memcpy(r[1].parent, rep.uuid, 16); /* parent is writable, and a loop */
    CHECK_EQ(walk(pool, r, 2, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "parent is not a snapshot"));
    struct pf_replica_rec loop[2] = { snap, snap };
    dp_uuid_generate(loop[1].uuid);
    memcpy(loop[0].parent, loop[1].uuid, 16);
    memcpy(loop[1].parent, loop[0].uuid, 16);
    loop[1].nmap = 0;
    CHECK_EQ(walk(pool, loop, 2, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "loops"));
    r[0] = rep;
    memcpy(r[0].parent, rep.uuid, 16);
    CHECK_EQ(walk(pool, r, 1, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "its own parent"));
    r[0] = snap;
    r[0].flags = PF_REPLICA_RO;
    r[0].nmap = 4;
    CHECK_EQ(walk(pool, r, 1, (const uint32_t[4][2]){ { 0, 1 }, { 1, 2 }, { 2, 3 }, { 3, 4 } }, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "must be thin"));
    r[0] = rep;
    memset(r[0].incarnation, 0, 16);
    CHECK_EQ(walk(pool, r, 1, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "nil incarnation"));

    /* Version 1: 32-byte records, no RO flag. */
    walk_version = 1;
    r[0] = rep;
    memset(r[0].parent, 0, 16);
    r[0].nmap = 2;
    CHECK_EQ(walk(pool, r, 1, pairs, 0, &wc, err), 0);
    CHECK_EQ(wc.pairs, 2);
    r[0].flags = PF_REPLICA_THIN | PF_REPLICA_RO;
    CHECK_EQ(walk(pool, r, 1, pairs, 0, &wc, err), -EINVAL);
    CHECK(strstr(err, "unknown flags"));
    walk_version = PF_VERSION;

    /* A newer version is refused, naming it. */
    static uint8_t s[4096];
    struct pf_meta_hdr h = { .version = 3, .seq = 1 };
    memcpy(h.pool_uuid, pool, 16);
    pf_meta_put_hdr(s, &h);
    pf_meta_seal(s, PF_META_HDR_SIZE);
    CHECK_EQ(pf_meta_check(s, sizeof s, pool, &h, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "version 3"));
    /* A version 1 pool's slot holds fewer version 2 records. */
    CHECK_EQ(pf_max_records(2, pf_meta_slot_size(100), 100), PF_MAX_REPLICAS);
    CHECK_EQ(pf_max_records(2, pf_meta_slot_size_v(1, 100), 100), (pf_meta_slot_size_v(1, 100) - 64 - 800) / 112);
    /* ... and all its version 1 records (test_pool_v1big.c: not upgraded then). */
    CHECK_EQ(pf_max_records(1, pf_meta_slot_size_v(1, 100), 100), PF_MAX_REPLICAS);
}

TEST(uuids)
{
    uint8_t u[16], v[16];
    char s[37];
    CHECK_EQ(dp_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950e", u), 0);
    dp_uuid_format(u, s);
    CHECK(strcmp(s, "0f8fad5b-d9cb-469f-a165-70867728950e") == 0);
    CHECK_EQ(dp_uuid_parse("0F8FAD5B-D9CB-469F-A165-70867728950E", v), 0);
    CHECK(memcmp(u, v, 16) == 0);
    const char *bad[] = { "",
                          "0f8fad5b",
                          "0f8fad5b-d9cb-469f-a165-70867728950",
                          "0f8fad5b-d9cb-469f-a165-70867728950e0",
                          "0f8fad5bad9cb-469f-a165-70867728950e",
                          "0f8fad5b-d9cb-469f-a165-70867728950g",
                          "../../../../etc/passwd/aaaaaaaaaaaaa",
                          "0f8fad5b-d9cb-469f-a165-7086772895 e" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(dp_uuid_parse(bad[i], u), -EINVAL);
    CHECK_EQ(dp_uuid_parse(NULL, u), -EINVAL);
    dp_uuid_generate(u);
    dp_uuid_generate(v);
    CHECK(memcmp(u, v, 16) != 0);
    CHECK_EQ(u[6] >> 4, 4);
    CHECK(!dp_uuid_is_nil(u));
    memset(u, 0, 16);
    CHECK(dp_uuid_is_nil(u));
}

int main(void)
{
    printf("test_pool_format\n");
    RUN(crc32c_vectors);
    RUN(label_roundtrip_and_damage);
    RUN(meta_slot);
    RUN(meta_walk_hostile);
    RUN(meta_walk_v2);
    RUN(uuids);
    return 0;
}
