/**
 * limits.ts - the numbers every layer checks against (agent, provider, constructs, mayastorctl). The data path
 * defines them in agent/native/include/datapath.h; these mirror it (test/unit/api-grammar.test.ts checks).
 */

/** Sizes and offsets are multiples of this. */
export const SECTOR_BYTES = 512;
/** Sizes beyond 2^53-1 lose bytes as JSON numbers. */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;
/** Every nexus child reserves this much at its start for the nexus label (DP_NEXUS_HEADER_BYTES). */
export const NEXUS_LABEL_BYTES = 1024 * 1024;
/** Children of one nexus (DP_NEXUS_MAX_CHILDREN). */
export const NEXUS_MAX_CHILDREN = 8;
/** Child URIs and device URIs (DP_URI_MAX, NUL excluded). */
export const URI_MAX_BYTES = 255;
/** Pool names (DP_NAME_MAX, NUL excluded; the pool label holds 128 bytes). */
export const POOL_NAME_MAX_BYTES = 127;
/** Disks given for one pool (the data path takes 32; more is refused before it is asked). */
export const POOL_MAX_DISKS = 64;
/** Entries of allowedHosts. */
export const MAX_ALLOWED_HOSTS = 64;
/** The NBD port a nbd:// URI without one means. */
export const NBD_DEFAULT_PORT = 10809;
/** The NVMe/TCP port a nvmf:// URI without one means (IANA's NVMe-oF port). */
export const NVMF_DEFAULT_PORT = 4420;
/** NVMe Qualified Names (NVMF_NQN_MAX: the spec's 223 bytes, NUL excluded). */
export const NQN_MAX_BYTES = 223;

/** Size of a replica that can back a nexus child of a `volumeBytes` volume. */
export function replicaSizeFor(volumeBytes: number): number {
  return volumeBytes + NEXUS_LABEL_BYTES;
}
