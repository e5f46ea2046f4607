/* uuid.h - binary uuids (16 bytes) and their canonical 8-4-4-4-12 text. */
#ifndef DP_UTIL_UUID_H
#define DP_UTIL_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define DP_UUID_TEXT 37 /* 36 characters and the NUL */

/* Canonical form only (either case); -EINVAL otherwise. */
int dp_uuid_parse(const char *s, uint8_t out[16]);
/* Lower case. */
void dp_uuid_format(const uint8_t u[16], char out[DP_UUID_TEXT]);
/* Random (version 4). */
void dp_uuid_generate(uint8_t out[16]);
bool dp_uuid_is_nil(const uint8_t u[16]);

#endif
