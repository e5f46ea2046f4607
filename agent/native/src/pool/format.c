/*
 * format.c - (de)serialization of pool labels and metadata slots, crc32c,
 * uuids. Pure functions: no I/O, no reactor, unit-tested on their own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pool/format.h"

/* ---- crc32c: slicing-by-8 over tables built once ------------------------ */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t pf_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = pf_get32(p) ^ crc, hi = pf_get32(p + 4);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
              crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
              crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
              crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* ---- labels ------------------------------------------------------------- */

void pf_label_encode(const struct pf_label *l, uint8_t *b)
{
    memset(b, 0, PF_LABEL_SIZE);
    memcpy(b, PF_LABEL_MAGIC, 8);
    pf_put32(b + 8, l->version);
    pf_put32(b + 12, PF_LABEL_SIZE);
    memcpy(b + 16, l->pool_uuid, 16);
    memcpy(b + 32, l->disk_uuid, 16);
    memcpy(b + 48, l->pool_name, strnlen(l->pool_name, PF_NAME_MAX - 1));
    pf_put32(b + 176, l->disk_index);
    pf_put32(b + 180, l->ndisks);
    pf_put64(b + 184, l->cluster_size);
    pf_put64(b + 192, l->disk_size);
    pf_put64(b + 200, l->data_start);
    pf_put64(b + 208, l->data_clusters);
    pf_put64(b + 216, l->first_cluster);
    pf_put64(b + 224, l->total_clusters);
    pf_put64(b + 232, l->meta_offset);
    pf_put64(b + 240, l->meta_slot_size);
    pf_put64(b + 248, l->create_time);
    for (uint32_t i = 0; i < PF_MAX_DISKS; i++)
        memcpy(b + 256 + 16 * i, l->members[i], 16);
    pf_put32(b + PF_LABEL_CRC_OFF, pf_crc32c(0, b, PF_LABEL_CRC_OFF));
}

int pf_label_decode(const uint8_t *b, struct pf_label *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (memcmp(b, PF_LABEL_MAGIC, 8) != 0)
        return 1;
    if (pf_get32(b + PF_LABEL_CRC_OFF) != pf_crc32c(0, b, PF_LABEL_CRC_OFF)) {
        snprintf(err, errlen, "pool label checksum mismatch (damaged label)");
        return -EINVAL;
    }
    l->version = pf_get32(b + 8);
    if (l->version != PF_VERSION) {
        snprintf(err, errlen, "pool label format version %u is not supported (this build reads %u)",
                 l->version, PF_VERSION);
        return -EINVAL;
    }
    if (pf_get32(b + 12) != PF_LABEL_SIZE) {
        snprintf(err, errlen, "pool label size %u unexpected", pf_get32(b + 12));
        return -EINVAL;
    }
    memcpy(l->pool_uuid, b + 16, 16);
    memcpy(l->disk_uuid, b + 32, 16);
    memcpy(l->pool_name, b + 48, PF_NAME_MAX);
    l->disk_index = pf_get32(b + 176);
    l->ndisks = pf_get32(b + 180);
    l->cluster_size = pf_get64(b + 184);
    l->disk_size = pf_get64(b + 192);
    l->data_start = pf_get64(b + 200);
    l->data_clusters = pf_get64(b + 208);
    l->first_cluster = pf_get64(b + 216);
    l->total_clusters = pf_get64(b + 224);
    l->meta_offset = pf_get64(b + 232);
    l->meta_slot_size = pf_get64(b + 240);
    l->create_time = pf_get64(b + 248);
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
    pf_put32(s + 8, PF_VERSION);
    pf_put32(s + 12, PF_META_HDR_SIZE);
    pf_put64(s + 16, h->seq);
    memcpy(s + 24, h->pool_uuid, 16);
    pf_put64(s + 40, h->used_len);
    pf_put32(s + 48, h->nreplicas);
    pf_put32(s + 52, PF_META_REC_SIZE);
    pf_put32(s + 56, PF_META_MAP_SIZE);
}

/* The crc field (bytes 60..63) counts as zero. */
static uint32_t meta_crc(const uint8_t *s, uint64_t used_len)
{
    static const uint8_t zero[4];
    uint32_t c = pf_crc32c(0, s, 60);
    c = pf_crc32c(c, zero, 4);
    return pf_crc32c(c, s + PF_META_HDR_SIZE, used_len - PF_META_HDR_SIZE);
}

void pf_meta_seal(uint8_t *s, uint64_t used_len)
{
    pf_put64(s + 40, used_len);
    pf_put32(s + 60, meta_crc(s, used_len));
}

size_t pf_meta_put_rec(uint8_t *p, const struct pf_replica_rec *r)
{
    memcpy(p, r->uuid, 16);
    pf_put64(p + 16, r->size);
    pf_put32(p + 24, r->flags);
    pf_put32(p + 28, r->nmap);
    return PF_META_REC_SIZE;
}

void pf_meta_get_rec(const uint8_t *p, struct pf_replica_rec *r)
{
    memcpy(r->uuid, p, 16);
    r->size = pf_get64(p + 16);
    r->flags = pf_get32(p + 24);
    r->nmap = pf_get32(p + 28);
}

int pf_meta_check(const uint8_t *s, uint64_t slot_len, const uint8_t pool_uuid[16],
                  struct pf_meta_hdr *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (memcmp(s, PF_META_MAGIC, 8) != 0) {
        snprintf(err, errlen, "no metadata magic");
        return -EINVAL;
    }
    if (pf_get32(s + 8) != PF_VERSION) {
        snprintf(err, errlen, "metadata format version %u is not supported", pf_get32(s + 8));
        return -EINVAL;
    }
    if (pf_get32(s + 12) != PF_META_HDR_SIZE || pf_get32(s + 52) != PF_META_REC_SIZE ||
        pf_get32(s + 56) != PF_META_MAP_SIZE) {
        snprintf(err, errlen, "metadata header sizes unexpected");
        return -EINVAL;
    }
    h->used_len = pf_get64(s + 40);
    if (h->used_len < PF_META_HDR_SIZE || h->used_len > slot_len) {
        snprintf(err, errlen, "metadata length %llu out of range", (unsigned long long)h->used_len);
        return -EINVAL;
    }
    if (pf_get32(s + 60) != meta_crc(s, h->used_len)) {
        snprintf(err, errlen, "metadata checksum mismatch (torn or damaged write)");
        return -EINVAL;
    }
    if (memcmp(s + 24, pool_uuid, 16) != 0) {
        snprintf(err, errlen, "metadata belongs to another pool");
        return -EINVAL;
    }
    h->seq = pf_get64(s + 16);
    memcpy(h->pool_uuid, s + 24, 16);
    h->nreplicas = pf_get32(s + 48);
    if (h->seq == 0 || h->nreplicas > PF_MAX_REPLICAS) {
        snprintf(err, errlen, "metadata header values out of range");
        return -EINVAL;
    }
    return 0;
}

/* ---- uuids -------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pf_uuid_parse(const char *s, uint8_t out[16])
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

void pf_uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
             u[12], u[13], u[14], u[15]);
}

void pf_uuid_generate(uint8_t out[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(out + got, 16 - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            /* No entropy source: fall back to time and address bits. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)out;
            for (size_t i = got; i < 16; i++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                out[i] = (uint8_t)x;
            }
            got = 16;
        }
    }
    out[6] = (out[6] & 0x0f) | 0x40; /* version 4 */
    out[8] = (out[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

bool pf_uuid_is_nil(const uint8_t u[16])
{
    for (int i = 0; i < 16; i++)
        if (u[i]) return false;
    return true;
}
