/*
 * format.c - (de)serialization of pool labels and metadata slots.
 * Pure functions: no I/O, no reactor, unit-tested on their own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pool/format.h"

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
    if (l->version != PF_VERSION) {
        snprintf(err, errlen, "pool label format version %u is not supported (this build reads %u)",
                 l->version, PF_VERSION);
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
    if (l->pool_name[PF_NAME_MAX - 1] != '\0' || l->pool_name[0] == '\0' ||
        strchr(l->pool_name, '/'))
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
    else if (l->first_cluster > l->total_clusters ||
             l->data_clusters > l->total_clusters - l->first_cluster)
        bad = "cluster range";
    else if (l->data_start % PF_DATA_ALIGN || l->data_start == 0 ||
             l->data_clusters > (UINT64_MAX - l->data_start) / l->cluster_size ||
             l->data_start + l->data_clusters * l->cluster_size > l->disk_size)
        bad = "data area";
    else if (l->meta_offset != PF_META_OFFSET ||
             l->meta_slot_size < pf_meta_slot_size(l->total_clusters) ||
             l->meta_slot_size % 4096 || l->meta_slot_size > pf_meta_slot_size(PF_MAX_CLUSTERS))
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

uint64_t pf_meta_slot_size(uint64_t clusters)
{
    uint64_t n = PF_META_HDR_SIZE + (uint64_t)PF_MAX_REPLICAS * PF_META_REC_SIZE +
                 clusters * PF_META_MAP_SIZE;
    return (n + 4095) & ~(uint64_t)4095;
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
    dp_put_le32(s + 8, PF_VERSION);
    dp_put_le32(s + 12, PF_META_HDR_SIZE);
    dp_put_le64(s + 16, h->seq);
    memcpy(s + 24, h->pool_uuid, 16);
    dp_put_le64(s + 40, h->used_len);
    dp_put_le32(s + 48, h->nreplicas);
    dp_put_le32(s + 52, PF_META_REC_SIZE);
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

size_t pf_meta_put_rec(uint8_t *p, const struct pf_replica_rec *r)
{
    memcpy(p, r->uuid, 16);
    dp_put_le64(p + 16, r->size);
    dp_put_le32(p + 24, r->flags);
    dp_put_le32(p + 28, r->nmap);
    return PF_META_REC_SIZE;
}

void pf_meta_get_rec(const uint8_t *p, struct pf_replica_rec *r)
{
    memcpy(r->uuid, p, 16);
    r->size = dp_get_le64(p + 16);
    r->flags = dp_get_le32(p + 24);
    r->nmap = dp_get_le32(p + 28);
}

int pf_meta_check(const uint8_t *s, uint64_t slot_len, const uint8_t pool_uuid[16],
                  struct pf_meta_hdr *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (memcmp(s, PF_META_MAGIC, 8) != 0) {
        snprintf(err, errlen, "no metadata magic");
        return -EINVAL;
    }
    if (dp_get_le32(s + 8) != PF_VERSION) {
        snprintf(err, errlen, "metadata format version %u is not supported", dp_get_le32(s + 8));
        return -EINVAL;
    }
    if (dp_get_le32(s + 12) != PF_META_HDR_SIZE || dp_get_le32(s + 52) != PF_META_REC_SIZE ||
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
    h->seq = dp_get_le64(s + 16);
    memcpy(h->pool_uuid, s + 24, 16);
    h->nreplicas = dp_get_le32(s + 48);
    if (h->seq == 0 || h->nreplicas > PF_MAX_REPLICAS) {
        snprintf(err, errlen, "metadata header values out of range");
        return -EINVAL;
    }
    return 0;
}
