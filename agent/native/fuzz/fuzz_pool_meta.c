/*
 * fuzz_pool_meta.c - libFuzzer harness for the pool metadata slot parsers:
 * pf_meta_check (header, crc) and pf_meta_walk (records and cluster pairs),
 * which import runs on the slots of disk 0.
 *
 * Input: 4 bytes of geometry, then the slot.
 *   [0]    cluster size = 64 KiB << (b % 15)
 *   [1]    bit 0: block size 4096 (else 512); bit 1: keep the slot's own crc
 *          (else it is resealed over used_len, so the checks behind it are reached)
 *   [2..3] total clusters - 1 (little-endian)
 * The slot's own pool uuid is the one expected.
 *
 * Oracles: an accepted slot (version 1 or 2) re-encodes, from what the walk
 * visited, to the same bytes; every pair is in range and no physical cluster
 * is mapped twice; version 2 records are never RO without THIN and carry an
 * incarnation (parents are checked by the walk: every one a snapshot, no loop).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pool/format.h"

struct model {
    uint8_t *out; /* re-encoding */
    uint64_t off;
    uint64_t rec_off; /* of the record being visited */
    struct pf_replica_rec rec;
    uint32_t ncl, seen_pairs;
    uint64_t pairs;
    uint64_t total;
    uint32_t version;
};

static void finish_rec(struct model *m)
{
    if (m->rec_off) {
        REQUIRE(m->seen_pairs == m->rec.nmap);
        pf_meta_put_rec(m->out + m->rec_off, &m->rec, m->version);
    }
}

static int v_rec(void *ctx, const struct pf_replica_rec *r, uint32_t ncl)
{
    struct model *m = ctx;
    finish_rec(m);
    REQUIRE(ncl >= 1 && ncl <= PF_MAX_REPLICA_CLUSTERS && r->nmap <= ncl);
    REQUIRE(!(r->flags & ~PF_REPLICA_FLAGS) && !dp_uuid_is_nil(r->uuid));
    REQUIRE(m->version == 1 ? !(r->flags & PF_REPLICA_RO) : !dp_uuid_is_nil(r->incarnation));
    REQUIRE(!(r->flags & PF_REPLICA_RO) || (r->flags & PF_REPLICA_THIN));
    m->rec = *r;
    m->ncl = ncl;
    m->seen_pairs = 0;
    m->rec_off = m->off;
    m->off += pf_rec_size(m->version);
    return 0;
}

static void v_pair(void *ctx, uint32_t l, uint32_t pc)
{
    struct model *m = ctx;
    REQUIRE(m->rec_off && l < m->ncl && pc < m->total);
    m->off += pf_meta_put_map(m->out + m->off, l, pc);
    m->seen_pairs++;
    m->pairs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct pf_geom g = {
        .cluster_size = (uint64_t)PF_MIN_CLUSTER << (data[0] % 15),
        .block_size = (data[1] & 1) ? 4096 : 512,
        .total_clusters = 1 + (uint64_t)(data[2] | data[3] << 8),
    };
    bool keep_crc = data[1] & 2;
    size_t len = size - 4;
    uint8_t *s = malloc(len ? len : 1); /* exact size: ASan sees any overrun */
    memcpy(s, data + 4, len);
    uint8_t uuid[16] = { 0 };
    if (len >= PF_META_HDR_SIZE) {
        memcpy(uuid, s + 24, 16);
        uint64_t used = dp_get_le64(s + 40);
        if (!keep_crc && used >= PF_META_HDR_SIZE && used <= len)
            pf_meta_seal(s, used);
    }
    struct pf_meta_hdr h;
    char err[256] = "";
    int rc = pf_meta_check(s, len, uuid, &h, err, sizeof err);
    if (rc < 0) {
        REQUIRE(rc == -EINVAL && err[0]);
        free(s);
        return 0;
    }
    REQUIRE(h.used_len >= PF_META_HDR_SIZE && h.used_len <= len && h.seq > 0 && h.nreplicas <= PF_MAX_REPLICAS);

    uint64_t words = (g.total_clusters + 63) / 64;
    uint64_t *used = calloc(words, 8);
    struct model m = {
        .out = calloc(1, h.used_len), .off = PF_META_HDR_SIZE, .total = g.total_clusters, .version = h.version
    };
    const struct pf_meta_visit v = { v_rec, v_pair, &m };
    rc = pf_meta_walk(s, &h, &g, used, &v, err, sizeof err);
    if (rc == 0) {
        finish_rec(&m);
        uint64_t bits = 0;
        for (uint64_t i = 0; i < words; i++)
            bits += (uint64_t)__builtin_popcountll(used[i]);
        REQUIRE(bits == m.pairs);
        REQUIRE(m.off == h.used_len);
        pf_meta_put_hdr(m.out, &h);
        pf_meta_seal(m.out, h.used_len);
        REQUIRE(!memcmp(m.out, s, h.used_len));
    } else {
        REQUIRE(rc == -EINVAL && err[0]);
    }
    free(m.out);
    free(used);
    free(s);
    return 0;
}
