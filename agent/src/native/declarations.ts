/**
 * declarations.ts - the ONE place that declares the FFI surface of libdatapath.so
 * (agent/native/include/datapath.h) with koffi: struct layouts, function prototypes (control calls
 * run on the control thread, I/O calls on the main thread), constants. Keep it organised by the
 * header's sections. test/unit/native-layout.test.ts checks koffi's view of the structs against the
 * sizes and offsets that datapath.h pins with _Static_assert.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';

/** Struct layouts, verbatim from datapath.h. char arrays decode as strings. */
export const STRUCTS: Record<string, Record<string, string>> = {
  dp_pool_info: {
    name: 'char[128]', // DP_NAME_MAX
    uuid: 'char[37]', // DP_UUID_STR_LEN
    ndisks: 'uint32_t',
    replicas: 'uint32_t',
    cluster_size: 'uint64_t',
    capacity_bytes: 'uint64_t',
    used_bytes: 'uint64_t',
    state: 'uint32_t', // enum dp_pool_state
    reason: 'char[128]', // DP_POOL_REASON_MAX
  },
  dp_replica_info: {
    uuid: 'char[37]',
    pool: 'char[128]',
    size_bytes: 'uint64_t',
    allocated_bytes: 'uint64_t',
    thin: 'uint32_t',
    open_count: 'uint32_t',
    // snapshots (pool format v2, issue 13)
    parent: 'char[37]',
    incarnation: 'char[37]',
    // char pad[6]: koffi's natural alignment puts snapshot_bytes at 272 as C does
    snapshot_bytes: 'uint64_t',
  },
  dp_snapshot_info: {
    uuid: 'char[37]',
    source: 'char[37]',
    parent: 'char[37]',
    pool: 'char[128]',
    group: 'char[37]',
    // char pad[4]: natural alignment (size_bytes at 280)
    size_bytes: 'uint64_t',
    referenced_bytes: 'uint64_t',
    create_time: 'uint64_t',
    nchildren: 'uint32_t',
    children: 'char[160]', // DP_SNAP_CHILDREN_MAX
    reserved: 'uint32_t',
  },
  dp_io_stats: {
    reads: 'uint64_t',
    writes: 'uint64_t',
    flushes: 'uint64_t',
    unmaps: 'uint64_t',
    bytes_read: 'uint64_t',
    bytes_written: 'uint64_t',
    errors: 'uint64_t',
  },
  dp_nexus_info: {
    uuid: 'char[37]',
    size_bytes: 'uint64_t',
    state: 'uint32_t',
    nchildren: 'uint32_t',
    block_size: 'uint32_t',
    rebuilds: 'uint32_t',
    generation: 'uint64_t',
    reason: 'char[128]', // DP_REASON_MAX
    reads: 'uint64_t',
    writes: 'uint64_t',
    flushes: 'uint64_t',
    errors: 'uint64_t',
  },
  dp_nexus_child_info: {
    uri: 'char[256]', // DP_URI_MAX
    state: 'uint32_t',
    rebuild_percent: 'uint32_t',
    reason: 'char[128]',
    rebuild_bytes_done: 'uint64_t',
    rebuild_bytes_total: 'uint64_t',
    rebuild_bytes_copied: 'uint64_t',
    rebuild_rate: 'uint64_t',
    rebuilding: 'uint32_t',
    pad: 'uint32_t',
    reads: 'uint64_t',
    writes: 'uint64_t',
    errors: 'uint64_t',
  },
  // one child of dp_nexus_snapshot's out array (decoded from raw bytes by types.ts snapChildren)
  dp_nexus_snap_child: {
    uri: 'char[256]',
    replica: 'char[64]',
    snapshot: 'char[37]',
    // char pad[3]: natural alignment (skipped at 360)
    skipped: 'uint32_t',
    status: 'int32_t',
    reason: 'char[128]',
  },
  // target limits (issue 10)
  dp_target_limits: {
    max_connections: 'uint32_t',
    max_connections_per_export: 'uint32_t',
    handshake_timeout_ms: 'uint32_t',
    fd_headroom: 'uint32_t',
    conn_memory_budget: 'uint64_t',
    memory_budget: 'uint64_t',
    writer_grace_ms: 'uint32_t',
    pad: 'uint32_t',
  },
  dp_target_stats: {
    connections: 'uint64_t',
    handshakes: 'uint64_t',
    accepted: 'uint64_t',
    refused_max_connections: 'uint64_t',
    refused_max_connections_per_export: 'uint64_t',
    refused_fd_headroom: 'uint64_t',
    handshake_timeouts: 'uint64_t',
    accept_backoffs: 'uint64_t',
    memory_bytes: 'uint64_t',
    memory_waits: 'uint64_t',
    writer_leases: 'uint64_t',
    writes_refused: 'uint64_t',
  },
  dp_writer_lease: {
    host: 'char[256]',
    proto: 'char[8]',
    connected: 'uint32_t',
    grace_left_ms: 'uint32_t',
  },
};
/** Opaque handle types. */
export const OPAQUES = ['dp_desc', 'dp_cq'];

/** Control functions: called in the control thread (blocking C calls). */
export const CONTROL_PROTOS: Record<string, string> = {
  // library lifecycle
  dp_init: 'int dp_init(uint32_t reactors)',
  dp_fini: 'void dp_fini(void)',
  // pools
  dp_pool_create: 'int dp_pool_create(const char *name, const char **disks, uint32_t ndisks, uint64_t cluster_size, _Out_ uint8_t *uuid_out)',
  dp_pool_import: 'int dp_pool_import(const char *name, const char **disks, uint32_t ndisks, _Out_ uint8_t *uuid_out)',
  dp_pool_export: 'int dp_pool_export(const char *name)',
  dp_pool_destroy: 'int dp_pool_destroy(const char *name)',
  dp_pool_stat: 'int dp_pool_stat(const char *name, _Out_ dp_pool_info *out)',
  dp_disk_probe: 'int dp_disk_probe(const char *disk, _Out_ dp_pool_info *out)',
  // replicas
  dp_replica_create: 'int dp_replica_create(const char *pool, const char *uuid, uint64_t size_bytes, uint32_t thin)',
  dp_replica_destroy: 'int dp_replica_destroy(const char *uuid)',
  dp_replica_resize: 'int dp_replica_resize(const char *uuid, uint64_t size_bytes)',
  dp_replica_stat: 'int dp_replica_stat(const char *uuid, _Out_ dp_replica_info *out)',
  dp_pool_replica_at: 'int dp_pool_replica_at(const char *pool, uint32_t index, _Out_ dp_replica_info *out)',
  // snapshots and clones (issue 13)
  dp_snapshot_create: 'int dp_snapshot_create(const char *replica_uuid, const char *snap_uuid, const char *group)',
  dp_snapshot_destroy: 'int dp_snapshot_destroy(const char *snap_uuid)',
  dp_snapshot_stat: 'int dp_snapshot_stat(const char *uuid, _Out_ dp_snapshot_info *out)',
  dp_pool_snapshot_at: 'int dp_pool_snapshot_at(const char *pool, uint32_t index, _Out_ dp_snapshot_info *out)',
  dp_replica_clone: 'int dp_replica_clone(const char *clone_uuid, const char *snap_uuid)',
  dp_replica_revert: 'int dp_replica_revert(const char *replica_uuid, const char *snap_uuid)',
  // descriptors (open/close may wait on a reactor)
  dp_desc_open: 'int dp_desc_open(const char *target, _Out_ dp_desc **out)',
  dp_desc_close: 'void dp_desc_close(dp_desc *desc)',
  // statistics
  dp_io_stat: 'int dp_io_stat(const char *target, _Out_ dp_io_stats *out)',
  // NBD target
  dp_nbd_listen: 'int dp_nbd_listen(const char *host, uint16_t port)',
  dp_nbd_port: 'int dp_nbd_port(void)',
  dp_nbd_share: 'int dp_nbd_share(const char *bdev_name, const char *export_name, const char *allowed_hosts_csv)',
  dp_nbd_unshare: 'int dp_nbd_unshare(const char *export_name)',
  dp_nbd_export_connections: 'int dp_nbd_export_connections(const char *export_name)',
  dp_nbd_shutdown: 'void dp_nbd_shutdown(void)',
  // NVMe/TCP target
  dp_nvmf_listen: 'int dp_nvmf_listen(const char *host, uint16_t port, const char *advertise_host)',
  dp_nvmf_port: 'int dp_nvmf_port(void)',
  dp_nvmf_share: 'int dp_nvmf_share(const char *bdev_name, const char *nqn, const char *uuid, const char *allowed_hosts_csv)',
  dp_nvmf_unshare: 'int dp_nvmf_unshare(const char *nqn)',
  dp_nvmf_export_connections: 'int dp_nvmf_export_connections(const char *nqn)',
  dp_nvmf_shutdown: 'void dp_nvmf_shutdown(void)',
  // target limits (issue 10)
  dp_target_set_limits: 'int dp_target_set_limits(const dp_target_limits *limits)',
  dp_target_get_limits: 'int dp_target_get_limits(_Out_ dp_target_limits *out)',
  dp_target_stats_get: 'int dp_target_stats_get(_Out_ dp_target_stats *out)',
  dp_export_writer_lease: 'int dp_export_writer_lease(const char *bdev_name, _Out_ dp_writer_lease *out)',
  // nexus
  dp_nexus_create: 'int dp_nexus_create(const char *uuid, uint64_t size, const char **children, uint32_t nchildren, uint32_t flags)',
  dp_nexus_open: 'int dp_nexus_open(const char *uuid, uint64_t size, const char **children, uint32_t nchildren)',
  dp_nexus_destroy: 'int dp_nexus_destroy(const char *uuid, uint32_t flags)',
  dp_nexus_stat: 'int dp_nexus_stat(const char *uuid, _Out_ dp_nexus_info *out)',
  dp_nexus_at: 'int dp_nexus_at(uint32_t index, _Out_ dp_nexus_info *out)',
  dp_nexus_child_at: 'int dp_nexus_child_at(const char *uuid, uint32_t index, _Out_ dp_nexus_child_info *out)',
  dp_nexus_add_child: 'int dp_nexus_add_child(const char *uuid, const char *uri, uint32_t flags)',
  dp_nexus_remove_child: 'int dp_nexus_remove_child(const char *uuid, const char *uri)',
  dp_nexus_child_offline: 'int dp_nexus_child_offline(const char *uuid, const char *uri)',
  dp_nexus_child_online: 'int dp_nexus_child_online(const char *uuid, const char *uri, uint32_t flags)',
  dp_nexus_child_fault: 'int dp_nexus_child_fault(const char *uuid, const char *uri)',
  dp_nexus_resize: 'int dp_nexus_resize(const char *uuid, uint64_t new_size)',
  // nexus snapshots (issue 13): `out` is an array of dp_nexus_snap_child, decoded by types.ts snapChildren
  dp_nexus_snapshot: 'int dp_nexus_snapshot(const char *uuid, const char *group, uint32_t deadline_ms, uint32_t flags, _Out_ void *out, uint32_t max_out)',
  dp_nexus_snapshot_destroy: 'int dp_nexus_snapshot_destroy(const char *uuid, const char *group, _Out_ void *out, uint32_t max_out)',
  dp_nexus_label_release: 'int dp_nexus_label_release(const char *uri)',
};

/** Main-thread functions: never block (dp_cq_wait is only ever called through `.async`). */
export const MAIN_PROTOS: Record<string, string> = {
  dp_last_error: 'const char *dp_last_error(void)',
  dp_version: 'const char *dp_version(void)',
  dp_nvmf_host_nqn: 'const char *dp_nvmf_host_nqn(void)',
  // the agent's pid file lock (flock; never blocks)
  dp_lock_file: 'int dp_lock_file(const char *path)',
  dp_unlock_file: 'int dp_unlock_file(int fd, const char *path)',
  dp_desc_size: 'uint64_t dp_desc_size(dp_desc *desc)',
  dp_desc_block_size: 'uint32_t dp_desc_block_size(dp_desc *desc)',
  dp_cq_create: 'dp_cq *dp_cq_create(void)',
  dp_cq_destroy: 'void dp_cq_destroy(dp_cq *cq)',
  dp_io_submit: 'int dp_io_submit(dp_desc *desc, dp_cq *cq, uint32_t op, void *buf, uint64_t offset, uint64_t length, uint64_t tag)',
  dp_cq_wait: 'int dp_cq_wait(dp_cq *cq, _Out_ uint64_t *tags, _Out_ int32_t *results, uint32_t max, int32_t timeout_ms)',
  dp_cq_wake: 'void dp_cq_wake(dp_cq *cq)',
};

export const DP_UUID_STR_LEN = 37;
export const DP_NAME_MAX = 128;
/** datapath.h: dp_nexus_create/add_child/child_online flag; dp_nexus_destroy flag. */
export const DP_NEXUS_FORCE = 0x1;
export const DP_NEXUS_RELEASE = 0x1;
/** datapath.h: dp_nexus_snapshot flag and limits; sizeof(dp_nexus_snap_child). */
export const DP_NEXUS_SNAP_SKIP_UNHEALTHY = 0x1;
export const DP_NEXUS_SNAP_DEADLINE_MAX_MS = 600000;
export const DP_NEXUS_SNAP_CHILD_SIZE = 496;
export const DP_NEXUS_MAX_CHILDREN = 8;

/** Where libdatapath.so is: $MAYASTOR_DATAPATH_LIB, else the shipping build next to the sources. */
export function libraryPath(): string {
  const env = process.env.MAYASTOR_DATAPATH_LIB;
  if (env) return path.resolve(env);
  const candidates = [
    path.resolve(__dirname, '../../native/build/libdatapath.so'), // agent/src/native (ts-jest)
    path.resolve(__dirname, '../../../../agent/native/build/libdatapath.so'), // dist/agent/src/native
  ];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  return candidates[0];
}

export type Fn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

export function declareTypes(k: typeof koffi): void {
  for (const o of OPAQUES) {
    try {
      k.opaque(o);
    } catch {
      /* already declared (module reloaded in the same process) */
    }
  }
  for (const [name, fields] of Object.entries(STRUCTS)) {
    try {
      k.struct(name, fields);
    } catch {
      /* already declared */
    }
  }
}
