/*
 * fuzz_pool_label.c - libFuzzer harness for pf_label_decode, the pool label
 * parser (the first block of every pool disk, possibly written elsewhere).
 *
 * The input is the label block. Inputs shorter than a block are zero-padded
 * and get a valid magic and crc, so the fuzzer reaches the value checks
 * behind them; a full block is taken as it is (crc path included). An
 * accepted label must satisfy what import relies on, and re-encode to a
 * block that decodes to the same label.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pool/format.h"

static void check_accepted(const struct pf_label *l)
{
    REQUIRE(l->version >= PF_VERSION_MIN && l->version <= PF_VERSION);
    REQUIRE(l->pool_name[PF_NAME_MAX - 1] == '\0' && !pf_name_problem(l->pool_name));
    REQUIRE(l->ndisks >= 1 && l->ndisks <= PF_MAX_DISKS && l->disk_index < l->ndisks);
    REQUIRE(l->cluster_size >= PF_MIN_CLUSTER && l->cluster_size <= PF_MAX_CLUSTER &&
            !(l->cluster_size & (l->cluster_size - 1)));
    REQUIRE(l->total_clusters >= 1 && l->total_clusters <= PF_MAX_CLUSTERS);
    REQUIRE(l->first_cluster + l->data_clusters <= l->total_clusters);
    /* The data area lies inside the disk, computed without overflow. */
    uint64_t bytes, end;
    REQUIRE(!__builtin_mul_overflow(l->data_clusters, l->cluster_size, &bytes));
    REQUIRE(!__builtin_add_overflow(l->data_start, bytes, &end) && end <= l->disk_size);
    REQUIRE(l->data_start % PF_DATA_ALIGN == 0 && l->data_start > 0);
    /* The slots hold the largest table and stay clear of disk 0's data. */
    REQUIRE(l->meta_offset == PF_META_OFFSET && l->meta_slot_size % 4096 == 0);
    REQUIRE(l->meta_slot_size >= pf_meta_slot_size_v(l->version, l->total_clusters));
    REQUIRE(l->disk_index != 0 || l->data_start >= pf_data_start(0, l->meta_slot_size));
    REQUIRE(!memcmp(l->members[l->disk_index], l->disk_uuid, 16));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = calloc(1, PF_LABEL_SIZE); /* exact size: ASan sees any overrun */
    memcpy(b, data, size < PF_LABEL_SIZE ? size : PF_LABEL_SIZE);
    if (size < PF_LABEL_SIZE) {
        memcpy(b, PF_LABEL_MAGIC, 8);
        dp_put_le32(b + PF_LABEL_CRC_OFF, dp_crc32c(0, b, PF_LABEL_CRC_OFF));
    }
    struct pf_label l, again;
    char err[256] = "";
    int rc = pf_label_decode(b, &l, err, sizeof err);
    if (rc == 0) {
        check_accepted(&l);
        uint8_t *e1 = malloc(PF_LABEL_SIZE), *e2 = malloc(PF_LABEL_SIZE);
        pf_label_encode(&l, e1);
        REQUIRE(pf_label_decode(e1, &again, err, sizeof err) == 0);
        pf_label_encode(&again, e2);
        REQUIRE(!memcmp(e1, e2, PF_LABEL_SIZE));
        REQUIRE(!strcmp(l.pool_name, again.pool_name));
        free(e1);
        free(e2);
    } else {
        REQUIRE(rc == 1 || (rc == -EINVAL && err[0]));
    }
    free(b);
    return 0;
}
