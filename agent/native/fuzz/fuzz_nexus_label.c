/*
 * fuzz_nexus_label.c - libFuzzer harness for the nexus child label parsers
 * (src/nexus/label.c: nx_label_decode, nx_label_read_slots), which read the
 * first two blocks of every nexus child, possibly written by another node.
 *
 * Input: the two label slots. A slot shorter than a block is zero-padded;
 * each slot whose input is shorter than NX_LABEL_SIZE gets a valid magic and
 * crc so the fuzzer reaches the value checks behind them. Oracles: an
 * accepted label is in range and survives encode -> decode unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nexus/nexus.h"

static void check_accepted(const struct nx_label *l)
{
    REQUIRE(l->data_offset == NX_HDR_SIZE && l->nmembers <= NX_MAX_CHILDREN);
    REQUIRE(!(l->flags & ~(NX_LABEL_SYNCED | NX_LABEL_CLEAN | NX_LABEL_RELEASED)));
    uint8_t *b = malloc(NX_LABEL_BLOCK);
    struct nx_label again;
    char why[128];
    nx_label_encode(l, b);
    REQUIRE(nx_label_decode(b, &again, why, sizeof why) == 0);
    REQUIRE(!memcmp(l, &again, sizeof again));
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *two = calloc(2, NX_LABEL_BLOCK); /* exact size: ASan sees any overrun */
    for (int i = 0; i < 2; i++) {
        size_t from = (size_t)i * NX_LABEL_BLOCK;
        size_t n = size > from ? size - from : 0;
        if (n > NX_LABEL_BLOCK)
            n = NX_LABEL_BLOCK;
        uint8_t *b = two + from;
        memcpy(b, data + from, n);
        if (n < NX_LABEL_SIZE) {
            memcpy(b, NX_LABEL_MAGIC, 8);
            dp_put_le32(b + NX_LABEL_SIZE - 4, dp_crc32c(0, b, NX_LABEL_SIZE - 4));
        }
    }
    struct nx_label l;
    char why[128] = "";
    for (int i = 0; i < 2; i++) {
        int rc = nx_label_decode(two + (size_t)i * NX_LABEL_BLOCK, &l, why, sizeof why);
        if (rc == 0)
            check_accepted(&l);
        else
            REQUIRE((rc == -ENOENT || rc == -EINVAL) && why[0]);
    }
    int rc = nx_label_read_slots(two, &l, why, sizeof why);
    if (rc == 0) {
        check_accepted(&l);
        REQUIRE(nx_label_slot_offset(l.seq) < 2 * NX_LABEL_BLOCK);
    } else {
        REQUIRE((rc == -ENOENT || rc == -EINVAL) && why[0]);
    }
    free(two);
    return 0;
}
