/*
 * format.c - (de)serialization of pool labels and metadata slots.
 * Pure functions: no I/O, no reactor, unit-tested on their own.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pool/format.h"

uint32_t pf_write_version = PF_VERSION;

/* ---- names --------------------------------------------------------------- */

_Static_assert(PF_NAME_MAX == 128, "pf_name_problem's message states the limit");

const char *pf_name_problem(const char *name)
{
    if (!name || !name[0])
        return "must not be empty";
    size_t n = strnlen(name, PF_NAME_MAX);
    if (n >= PF_NAME_MAX)
        return "longer than 127 characters";
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return "not a valid name";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f)
            return "must not contain '/' or control characters";
    }
    return NULL;
}

/* ---- labels ------------------------------------------------------------- */

void pf_label_encode(const struct pf_label *l, uint8_t *b)
{
    memset(b, 0, PF_LABEL_SIZE);
    memcpy(b, PF_LABEL_MAGIC, 8);
    dp_put_le32(b + 8, l->version);
    dp_put_le32(b + 12, PF_LABEL_SIZE);
    memcpy(b + 16, l->pool_uuid, 16);
    memcpy(b + 32, l->disk_uuid, 16);
    memcpy(b + 48, l->pool_name, strnlen(l->pool_name, PF_NAME_MAX - 1));
    dp_put_le32(b + 176, l->disk_index);
    dp_put_le32(b + 180, l->ndisks);
    dp_put_le64(b + 184, l->cluster_size);
    dp_put_le64(b + 192, l->disk_size);
    dp_put_le64(b + 200, l->data_start);
    dp_put_le64(b + 208, l->data_clusters);
    dp_put_le64(b + 216, l->first_cluster);
    dp_put_le64(b + 224, l->total_clusters);
    dp_put_le64(b + 232, l->meta_offset);
    dp_put_le64(b + 240, l->meta_slot_size);
    dp_put_le64(b + 248, l->create_time);
    for (uint32_t i = 0; i < PF_MAX_DISKS; i++)
        memcpy(b + 256 + 16 * i, l->members[i], 16);
    dp_put_le32(b + PF_LABEL_CRC_OFF, dp_crc32c(0, b, PF_LABEL_CRC_OFF));
}

int pf_label_decode(const uint8_t *b, struct pf_label *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (memcmp(b, PF_LABEL_MAGIC, 8) != 0)
        return 1;
    if (dp_get_le32(b + PF_LABEL_CRC_OFF) != dp_crc32c(0, b, PF_LABEL_CRC_OFF)) {
        snprintf(err, errlen, "pool label checksum mismatch (damaged label)");
        return -EINVAL;
    }
    l->version = dp_get_le32(b + 8);
    if (l->version < PF_VERSION_MIN || l->version > PF_VERSION) {
        snprintf(err, errlen, "pool label format version %u is not supported (this build reads %u to %u)", l->version,
                 PF_VERSION_MIN, PF_VERSION);
        return -EINVAL;
    }
    if (dp_get_le32(b + 12) != PF_LABEL_SIZE) {
        snprintf(err, errlen, "pool label size %u unexpected", dp_get_le32(b + 12));
        return -EINVAL;
    }
    memcpy(l->pool_uuid, b + 16, 16);
    memcpy(l->disk_uuid, b + 32, 16);
    memcpy(l->pool_name, b + 48, PF_NAME_MAX);
    l->disk_index = dp_get_le32(b + 176);
    l->ndisks = dp_get_le32(b + 180);
    l->cluster_size = dp_get_le64(b + 184);
    l->disk_size = dp_get_le64(b + 192);
    l->data_start = dp_get_le64(b + 200);
    l->data_clusters = dp_get_le64(b + 208);
    l->first_cluster = dp_get_le64(b + 216);
    l->total_clusters = dp_get_le64(b + 224);
    l->meta_offset = dp_get_le64(b + 232);
    l->meta_slot_size = dp_get_le64(b + 240);
    l->create_time = dp_get_le64(b + 248);
    for (uint32_t i = 0; i < PF_MAX_DISKS; i++)
        memcpy(l->members[i], b + 256 + 16 * i, 16);

    /* The crc only proves the block is intact; the values are still hostile. */
    const char *bad = NULL;
    if (l->pool_name[PF_NAME_MAX - 1] != '\0' || pf_name_problem(l->pool_name))
        bad = "pool name";
    else if (l->ndisks == 0 || l->ndisks > PF_MAX_DISKS)
        bad = "disk count";
    else if (l->disk_index >= l->ndisks)
        bad = "disk index";
    else if (l->cluster_size < PF_MIN_CLUSTER || l->cluster_size > PF_MAX_CLUSTER ||
             (l->cluster_size & (l->cluster_size - 1)))
        bad = "cluster size";
    else if (l->total_clusters == 0 || l->total_clusters > PF_MAX_CLUSTERS)
        bad = "cluster count";
    else if (l->first_cluster > l->total_clusters || l->data_clusters > l->total_clusters - l->first_cluster)
        bad = "cluster range";
    else if (l->data_start % PF_DATA_ALIGN || l->data_start == 0 ||
             l->data_clusters > (UINT64_MAX - l->data_start) / l->cluster_size ||
             l->data_start + l->data_clusters * l->cluster_size > l->disk_size)
        bad = "data area";
    else if (l->meta_offset != PF_META_OFFSET ||
             l->meta_slot_size < pf_meta_slot_size_v(l->version, l->total_clusters) || l->meta_slot_size % 4096 ||
             l->meta_slot_size > pf_meta_slot_size(PF_MAX_CLUSTERS))
        bad = "metadata area";
    else if (l->disk_index == 0 && l->data_start < pf_data_start(0, l->meta_slot_size))
        bad = "data area";
    else if (memcmp(l->members[l->disk_index], l->disk_uuid, 16) != 0)
        bad = "member list";
    if (bad) {
        snprintf(err, errlen, "pool label has an invalid %s", bad);
        return -EINVAL;
    }
    return 0;
}

/* ---- metadata slots ----------------------------------------------------- */

uint64_t pf_meta_slot_size_v(uint32_t version, uint64_t clusters)
{
    uint64_t n = PF_META_HDR_SIZE + (uint64_t)PF_MAX_REPLICAS * pf_rec_size(version) + clusters * PF_META_MAP_SIZE;
    return (n + 4095) & ~(uint64_t)4095;
}

uint32_t pf_max_records(uint32_t version, uint64_t slot_size, uint64_t clusters)
{
    uint64_t fixed = PF_META_HDR_SIZE + clusters * PF_META_MAP_SIZE;
    uint64_t n = slot_size > fixed ? (slot_size - fixed) / pf_rec_size(version) : 0;
    return n < PF_MAX_REPLICAS ? (uint32_t)n : PF_MAX_REPLICAS;
}

uint64_t pf_data_start(uint32_t disk_index, uint64_t slot_size)
{
    if (disk_index != 0)
        return PF_DATA_ALIGN;
    uint64_t end = PF_META_OFFSET + 2 * slot_size;
    return (end + PF_DATA_ALIGN - 1) & ~(uint64_t)(PF_DATA_ALIGN - 1);
}

void pf_meta_put_hdr(uint8_t *s, const struct pf_meta_hdr *h)
{
    memset(s, 0, PF_META_HDR_SIZE);
    memcpy(s, PF_META_MAGIC, 8);
    uint32_t version = h->version ? h->version : pf_write_version;
    dp_put_le32(s + 8, version);
    dp_put_le32(s + 12, PF_META_HDR_SIZE);
    dp_put_le64(s + 16, h->seq);
    memcpy(s + 24, h->pool_uuid, 16);
    dp_put_le64(s + 40, h->used_len);
    dp_put_le32(s + 48, h->nreplicas);
    dp_put_le32(s + 52, pf_rec_size(version));
    dp_put_le32(s + 56, PF_META_MAP_SIZE);
}

/* The crc field (bytes 60..63) counts as zero. */
static uint32_t meta_crc(const uint8_t *s, uint64_t used_len)
{
    static const uint8_t zero[4];
    uint32_t c = dp_crc32c(0, s, 60);
    c = dp_crc32c(c, zero, 4);
    return dp_crc32c(c, s + PF_META_HDR_SIZE, used_len - PF_META_HDR_SIZE);
}

void pf_meta_seal(uint8_t *s, uint64_t used_len)
{
    dp_put_le64(s + 40, used_len);
    dp_put_le32(s + 60, meta_crc(s, used_len));
}

size_t pf_meta_put_rec(uint8_t *p, const struct pf_replica_rec *r, uint32_t version)
{
    memcpy(p, r->uuid, 16);
    dp_put_le64(p + 16, r->size);
    dp_put_le32(p + 24, r->flags);
    dp_put_le32(p + 28, r->nmap);
    if (version == 1)
        return PF_META_REC_SIZE_V1;
    memcpy(p + 32, r->parent, 16);
    memcpy(p + 48, r->incarnation, 16);
    memcpy(p + 64, r->group, 16);
    dp_put_le64(p + 80, r->create_time);
    memcpy(p + 88, r->source, 16);
    memset(p + 104, 0, 8);
    return PF_META_REC_SIZE;
}

/* Returns false if reserved bytes are not zero. */
static bool get_rec(const uint8_t *p, struct pf_replica_rec *r, uint32_t version)
{
    memset(r, 0, sizeof *r);
    memcpy(r->uuid, p, 16);
    r->size = dp_get_le64(p + 16);
    r->flags = dp_get_le32(p + 24);
    r->nmap = dp_get_le32(p + 28);
    if (version == 1)
        return true;
    memcpy(r->parent, p + 32, 16);
    memcpy(r->incarnation, p + 48, 16);
    memcpy(r->group, p + 64, 16);
    r->create_time = dp_get_le64(p + 80);
    memcpy(r->source, p + 88, 16);
    return dp_get_le64(p + 104) == 0;
}

void pf_meta_get_rec(const uint8_t *p, struct pf_replica_rec *r, uint32_t version)
{
    get_rec(p, r, version);
}

int pf_meta_check(const uint8_t *s, uint64_t slot_len, const uint8_t pool_uuid[16], struct pf_meta_hdr *h, char *err,
                  size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (slot_len < PF_META_HDR_SIZE) {
        snprintf(err, errlen, "metadata slot of %llu bytes is shorter than its header", (unsigned long long)slot_len);
        return -EINVAL;
    }
    if (memcmp(s, PF_META_MAGIC, 8) != 0) {
        snprintf(err, errlen, "no metadata magic");
        return -EINVAL;
    }
    uint32_t version = dp_get_le32(s + 8);
    if (version < PF_VERSION_MIN || version > PF_VERSION) {
        snprintf(err, errlen, "metadata format version %u is not supported (this build reads %u to %u)", version,
                 PF_VERSION_MIN, PF_VERSION);
        return -EINVAL;
    }
    if (dp_get_le32(s + 12) != PF_META_HDR_SIZE || dp_get_le32(s + 52) != pf_rec_size(version) ||
        dp_get_le32(s + 56) != PF_META_MAP_SIZE) {
        snprintf(err, errlen, "metadata header sizes unexpected");
        return -EINVAL;
    }
    h->used_len = dp_get_le64(s + 40);
    if (h->used_len < PF_META_HDR_SIZE || h->used_len > slot_len) {
        snprintf(err, errlen, "metadata length %llu out of range", (unsigned long long)h->used_len);
        return -EINVAL;
    }
    if (dp_get_le32(s + 60) != meta_crc(s, h->used_len)) {
        snprintf(err, errlen, "metadata checksum mismatch (torn or damaged write)");
        return -EINVAL;
    }
    if (memcmp(s + 24, pool_uuid, 16) != 0) {
        snprintf(err, errlen, "metadata belongs to another pool");
        return -EINVAL;
    }
    h->version = version;
    h->seq = dp_get_le64(s + 16);
    memcpy(h->pool_uuid, s + 24, 16);
    h->nreplicas = dp_get_le32(s + 48);
    if (h->seq == 0 || h->nreplicas > PF_MAX_REPLICAS) {
        snprintf(err, errlen, "metadata header values out of range");
        return -EINVAL;
    }
    return 0;
}

static inline bool bit_test_set(uint64_t *b, uint64_t i)
{
    bool was = b[i >> 6] >> (i & 63) & 1;
    b[i >> 6] |= 1ull << (i & 63);
    return was;
}

/* Why a record cannot be loaded, or NULL. seen: the n records before it;
 * room: bytes of the slot left for its pairs. */
static const char *rec_problem(const struct pf_replica_rec *r, uint64_t ncl, const struct pf_geom *g,
                               const uint8_t *const *seen, uint32_t n, uint64_t room, uint32_t version)
{
    if (dp_uuid_is_nil(r->uuid))
        return "nil uuid";
    for (uint32_t j = 0; j < n; j++)
        if (!memcmp(seen[j], r->uuid, 16))
            return "duplicate uuid";
    if (r->size == 0 || r->size % g->block_size || ncl > PF_MAX_REPLICA_CLUSTERS)
        return "size out of range";
    if (r->flags & ~(version == 1 ? PF_REPLICA_THIN : PF_REPLICA_FLAGS))
        return "unknown flags";
    /* A thick replica maps every cluster, unless it overlays a snapshot
     * (version 2: its unwritten clusters are the parent's). */
    bool partial_ok = (r->flags & PF_REPLICA_THIN) || (version >= 2 && !dp_uuid_is_nil(r->parent));
    if (r->nmap > ncl || (!partial_ok && r->nmap != ncl))
        return "cluster count does not match its size";
    if ((uint64_t)r->nmap * PF_META_MAP_SIZE > room)
        return "cluster map runs past the end";
    if (version == 1)
        return NULL;
    if (dp_uuid_is_nil(r->incarnation))
        return "nil incarnation";
    if ((r->flags & PF_REPLICA_RO) && !(r->flags & PF_REPLICA_THIN))
        return "a snapshot must be thin";
    if (!memcmp(r->parent, r->uuid, 16))
        return "its own parent";
    return NULL;
}

/* Every parent is a snapshot of this slot; no chain loops. */
static int parents_problem(const uint8_t *const *rec, uint32_t n, char *err, size_t errlen)
{
    int32_t *pi = malloc(((size_t)n + 1) * sizeof *pi);
    if (!pi) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char u[DP_UUID_TEXT];
    int ret = 0;
    for (uint32_t i = 0; i < n && !ret; i++) {
        pi[i] = -1;
        if (dp_uuid_is_nil(rec[i] + 32))
            continue;
        for (uint32_t j = 0; j < n; j++)
            if (!memcmp(rec[j], rec[i] + 32, 16))
                pi[i] = (int32_t)j;
        dp_uuid_format(rec[i], u);
        if (pi[i] < 0) {
            snprintf(err, errlen, "replica %s: parent is not in the pool", u);
            ret = -EINVAL;
        } else if (!(dp_get_le32(rec[pi[i]] + 24) & PF_REPLICA_RO)) {
            snprintf(err, errlen, "replica %s: parent is not a snapshot", u);
            ret = -EINVAL;
        }
    }
    for (uint32_t i = 0; i < n && !ret; i++) {
        uint32_t steps = 0;
        for (int32_t k = pi[i]; k >= 0 && !ret; k = pi[k])
            if (++steps > n) {
                dp_uuid_format(rec[i], u);
                snprintf(err, errlen, "replica %s: its parent chain loops", u);
                ret = -EINVAL;
            }
    }
    free(pi);
    return ret;
}

int pf_meta_walk(const uint8_t *s, const struct pf_meta_hdr *h, const struct pf_geom *g, uint64_t *used,
                 const struct pf_meta_visit *v, char *err, size_t errlen)
{
    const uint8_t **seen = malloc(((size_t)h->nreplicas + 1) * sizeof *seen);
    uint64_t *lseen = NULL; /* logical clusters of the current record */
    uint64_t lseen_words = 0, off = PF_META_HDR_SIZE;
    uint32_t version = h->version ? h->version : PF_VERSION, rsize = pf_rec_size(version);
    int ret;
    char u[DP_UUID_TEXT];
    if (!seen)
        goto nomem;
    for (uint32_t i = 0; i < h->nreplicas; i++) {
        if (off + rsize > h->used_len) {
            snprintf(err, errlen, "replica record %u runs past the end", i);
            ret = -EINVAL;
            goto out;
        }
        struct pf_replica_rec rec;
        bool clean = get_rec(s + off, &rec, version);
        seen[i] = s + off;
        off += rsize;
        dp_uuid_format(rec.uuid, u);
        uint64_t ncl = rec.size / g->cluster_size + (rec.size % g->cluster_size != 0);
        const char *bad = clean ? rec_problem(&rec, ncl, g, seen, i, h->used_len - off, version) : "reserved bytes set";
        if (bad) {
            snprintf(err, errlen, "replica %s: %s", u, bad);
            ret = -EINVAL;
            goto out;
        }
        uint64_t words = (ncl + 63) / 64;
        if (rec.nmap && words > lseen_words) {
            uint64_t *n = realloc(lseen, words * 8);
            if (!n)
                goto nomem;
            memset(n + lseen_words, 0, (words - lseen_words) * 8);
            lseen = n;
            lseen_words = words;
        }
        if (v->rec(v->ctx, &rec, (uint32_t)ncl) != 0)
            goto nomem;
        const uint8_t *pairs = s + off;
        for (uint32_t k = 0; k < rec.nmap; k++, off += PF_META_MAP_SIZE) {
            uint32_t l = dp_get_le32(s + off), pc = dp_get_le32(s + off + 4);
            if (l >= ncl || pc >= g->total_clusters || bit_test_set(lseen, l) || bit_test_set(used, pc)) {
                snprintf(err, errlen, "replica %s: cluster pair %u (%u -> %u) out of range or duplicated", u, k, l, pc);
                ret = -EINVAL;
                goto out;
            }
            v->pair(v->ctx, l, pc);
        }
        for (uint32_t k = 0; k < rec.nmap; k++) { /* the next record starts clean */
            uint32_t l = dp_get_le32(pairs + (size_t)k * PF_META_MAP_SIZE);
            lseen[l >> 6] &= ~(1ull << (l & 63));
        }
    }
    ret = 0;
    if (off != h->used_len) {
        snprintf(err, errlen, "%" PRIu64 " stray bytes after the last record", h->used_len - off);
        ret = -EINVAL;
    } else if (version >= 2) {
        ret = parents_problem(seen, h->nreplicas, err, errlen);
    }
    goto out;
nomem:
    snprintf(err, errlen, "out of memory");
    ret = -ENOMEM;
out:
    free(lseen);
    free(seen);
    return ret;
}
