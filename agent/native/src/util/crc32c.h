/* crc32c.h - CRC-32C (Castagnoli), the checksum of every on-disk structure. */
#ifndef DP_UTIL_CRC32C_H
#define DP_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Standard init/xorout ~0 variant; chain calls by passing the previous result. */
uint32_t dp_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
