/*
 * format.h - the on-disk format of a pool (see FORMAT.md, which is the
 * normative description; keep the two in step).
 *
 * Everything on disk is little-endian and written through explicit
 * (de)serializers: no struct is ever copied to or from disk as-is, so the
 * in-memory structs below are free to change.
 */
#ifndef DP_POOL_FORMAT_H
#define DP_POOL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/crc32c.h"
#include "util/le.h"
#include "util/uuid.h"

#define PF_VERSION 2u /* written; 1 is read (and upgraded, FORMAT.md) */
#define PF_VERSION_MIN 1u

#define PF_LABEL_MAGIC "MAYAPOOL" /* 8 bytes, no NUL on disk */
#define PF_META_MAGIC "MAYAMETA"
#define PF_LABEL_SIZE 4096u /* label block at offset 0 of every disk */
#define PF_LABEL_CRC_OFF (PF_LABEL_SIZE - 4)
#define PF_META_OFFSET 4096u /* slot A on disk 0; slot B follows */
#define PF_META_HDR_SIZE 64u
#define PF_META_REC_SIZE 112u /* one replica record (version 2) */
#define PF_META_REC_SIZE_V1 32u
#define PF_META_MAP_SIZE 8u /* one {logical, physical} cluster pair */
#define PF_DATA_ALIGN (1u << 20) /* data areas start on a 1 MiB boundary */

#define PF_MAX_DISKS 32u
#define PF_NAME_MAX 128u /* NUL included (= DP_NAME_MAX) */
#define PF_MAX_REPLICAS 4096u
#define PF_MIN_CLUSTER (64u << 10)
#define PF_MAX_CLUSTER (1u << 30)
#define PF_DEFAULT_CLUSTER (4u << 20)
/* Physical cluster numbers use 30 bits (the top two mark states in memory). */
#define PF_MAX_CLUSTERS ((1u << 30) - 2)
/* Logical clusters per replica: bounds the in-memory map (4 bytes each). */
#define PF_MAX_REPLICA_CLUSTERS (1u << 24)

#define PF_REPLICA_THIN 0x1u
#define PF_REPLICA_RO 0x2u /* a snapshot: read-only, never a writable replica */
#define PF_REPLICA_FLAGS (PF_REPLICA_THIN | PF_REPLICA_RO)

/* Test hook: the version create and commits write (1 makes v1 pools for the
 * upgrade tests). */
extern uint32_t pf_write_version;

static inline uint32_t pf_rec_size(uint32_t version)
{
    return version == 1 ? PF_META_REC_SIZE_V1 : PF_META_REC_SIZE;
}

struct pf_label {
    uint32_t version;
    uint8_t pool_uuid[16];
    uint8_t disk_uuid[16];
    char pool_name[PF_NAME_MAX];
    uint32_t disk_index;
    uint32_t ndisks;
    uint64_t cluster_size;
    uint64_t disk_size; /* device size when the pool was created */
    uint64_t data_start; /* byte offset of this disk's first data cluster */
    uint64_t data_clusters; /* clusters on this disk */
    uint64_t first_cluster; /* pool-wide number of this disk's first cluster */
    uint64_t total_clusters; /* clusters of the whole pool */
    uint64_t meta_offset; /* slot A on disk 0 (same value in every label) */
    uint64_t meta_slot_size; /* bytes per slot, multiple of 4096 */
    uint64_t create_time; /* unix seconds, informational */
    uint8_t members[PF_MAX_DISKS][16]; /* disk uuids by index */
};

struct pf_meta_hdr {
    uint32_t version; /* 1 or 2; 0 when encoding means pf_write_version */
    uint64_t seq;
    uint8_t pool_uuid[16];
    uint64_t used_len; /* header + records + maps; the crc covers exactly this */
    uint32_t nreplicas;
};

struct pf_replica_rec {
    uint8_t uuid[16];
    uint64_t size; /* bytes, as requested */
    uint32_t flags; /* PF_REPLICA_THIN | PF_REPLICA_RO */
    uint32_t nmap; /* mapped clusters following the record */
    /* version 2 (zero when read from a version 1 slot) */
    uint8_t parent[16]; /* nil: none; else a snapshot (RO record) of this slot */
    uint8_t incarnation[16]; /* random at create; never nil in version 2 */
    uint8_t group[16]; /* snapshots: the volume snapshot it belongs to, or nil */
    uint64_t create_time; /* unix seconds */
    uint8_t source[16]; /* snapshots: the replica it was taken of */
};

/* Why name is no valid pool name (1..127 bytes, no '/' or control
 * characters, not "." or ".."), or NULL. */
const char *pf_name_problem(const char *name);

/* Label block: buf is PF_LABEL_SIZE bytes. */
void pf_label_encode(const struct pf_label *l, uint8_t *buf);
/*
 * Returns 0 and fills l; 1 if the block is no label at all (no magic);
 * -EINVAL with a message in err for a damaged or unsupported label.
 */
int pf_label_decode(const uint8_t *buf, struct pf_label *l, char *err, size_t errlen);

/* Bytes one metadata slot needs for a pool of `clusters` clusters (the
 * version's record size times PF_MAX_REPLICAS, plus every cluster mapped). */
uint64_t pf_meta_slot_size_v(uint32_t version, uint64_t clusters);
static inline uint64_t pf_meta_slot_size(uint64_t clusters)
{
    return pf_meta_slot_size_v(PF_VERSION, clusters);
}
/* Records of `version` a slot of `slot_size` bytes holds for a pool of
 * `clusters` clusters, every cluster mapped (fewer than PF_MAX_REPLICAS
 * of version 2 for a pool created as version 1). */
uint32_t pf_max_records(uint32_t version, uint64_t slot_size, uint64_t clusters);
/* Byte offset of the first data cluster on disk 0 / on the other disks. */
uint64_t pf_data_start(uint32_t disk_index, uint64_t slot_size);

/* Slot writer: header first, then records each followed by its map pairs. */
void pf_meta_put_hdr(uint8_t *slot, const struct pf_meta_hdr *h);
/* Fills in used_len-covering crc at the end of encoding. */
void pf_meta_seal(uint8_t *slot, uint64_t used_len);
size_t pf_meta_put_rec(uint8_t *p, const struct pf_replica_rec *r, uint32_t version);
static inline size_t pf_meta_put_map(uint8_t *p, uint32_t lcl, uint32_t pcl)
{
    dp_put_le32(p, lcl);
    dp_put_le32(p + 4, pcl);
    return PF_META_MAP_SIZE;
}

/*
 * Check a slot's header and crc: 0 and h filled when valid; -EINVAL with a
 * reason in err otherwise (empty, torn, foreign). `slot_len` bounds used_len.
 */
int pf_meta_check(const uint8_t *slot, uint64_t slot_len, const uint8_t pool_uuid[16], struct pf_meta_hdr *h, char *err,
                  size_t errlen);
void pf_meta_get_rec(const uint8_t *p, struct pf_replica_rec *r, uint32_t version);

/* What the records of a slot must fit: the pool's geometry, from its labels. */
struct pf_geom {
    uint64_t cluster_size; /* power of two */
    uint32_t block_size; /* replica sizes are multiples of it */
    uint64_t total_clusters; /* physical cluster numbers lie below it */
};

/* Called by pf_meta_walk for what passed its checks. */
struct pf_meta_visit {
    /* A record; ncl = its logical cluster count. Nonzero (out of memory)
     * stops the walk with -ENOMEM. */
    int (*rec)(void *ctx, const struct pf_replica_rec *r, uint32_t ncl);
    /* One pair of the record just visited: both numbers in range, neither seen before. */
    void (*pair)(void *ctx, uint32_t lcl, uint32_t pcl);
    void *ctx;
};

/*
 * Validate every record and pair of a slot that pf_meta_check accepted (the
 * crc proves integrity, not sanity: FORMAT.md lists the checks) and visit
 * them in order. `used` is a zeroed bitmap of g->total_clusters bits; on
 * return it marks the physical clusters the slot maps. Returns 0, or
 * -EINVAL / -ENOMEM with the reason in err.
 */
int pf_meta_walk(const uint8_t *slot, const struct pf_meta_hdr *h, const struct pf_geom *g, uint64_t *used,
                 const struct pf_meta_visit *v, char *err, size_t errlen);

/* uuids: 8-4-4-4-12 lowercase/uppercase hex. */

#endif /* DP_POOL_FORMAT_H */
