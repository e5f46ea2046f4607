/**
 * metrics.ts - Prometheus text exposition (version 0.0.4) for GET /metrics:
 * pool capacity/used/online, replica size/allocated, replica I/O counters (dp_io_stat),
 * HTTP request counts, process metrics (CPU, RSS, heap, start time), and the target limits against
 * abuse (issue 10): the configured limits, connections, refusals by reason, handshake timeouts,
 * accept backoffs and the slot/payload memory held (dp_target_stats).
 */
import type { Context } from './context';
import type { PoolService } from './pools';
import type { NexusService } from './nexuses';
import type { ReplicaService } from './replicas';
import type { ShareService } from './shares';

const NEXUS_STATE_CODE: Record<string, number> = { online: 0, degraded: 1, faulted: 2 };
const CHILD_STATE_CODE: Record<string, number> = { online: 0, degraded: 1, faulted: 2, offline: 3 };

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

class Out {
  private lines: string[] = [];
  private declared = new Set<string>();
  add(name: string, type: 'gauge' | 'counter', help: string, labels: Record<string, string>, value: number): void {
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${esc(v)}"`)
      .join(',');
    this.lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
  }
  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

export class HttpCounters {
  readonly byStatus = new Map<string, number>();
  count(method: string, status: number): void {
    const k = `${method} ${status}`;
    this.byStatus.set(k, (this.byStatus.get(k) ?? 0) + 1);
  }
}

const startSeconds = Date.now() / 1000 - process.uptime();

export async function renderMetrics(
  ctx: Context,
  pools: PoolService,
  replicas: ReplicaService,
  http: HttpCounters,
  more: { nexuses?: NexusService; shares?: ShareService } = {},
): Promise<string> {
  const o = new Out();
  const node = ctx.config.node;
  for (const p of await pools.list()) {
    const l = { node, pool: p.name };
    o.add('mayastor_pool_online', 'gauge', '1 when the pool is online, 0 when faulted', l, p.state === 'online' ? 1 : 0);
    o.add('mayastor_pool_capacity_bytes', 'gauge', 'Data capacity of the pool', l, p.capacityBytes);
    o.add('mayastor_pool_used_bytes', 'gauge', 'Allocated bytes of the pool', l, p.usedBytes);
  }
  for (const r of await replicas.list().catch(() => [])) {
    const l = { node, pool: r.pool, replica: r.uuid };
    o.add('mayastor_replica_size_bytes', 'gauge', 'Size of the replica', l, r.sizeBytes);
    o.add('mayastor_replica_allocated_bytes', 'gauge', 'Bytes allocated to the replica in its pool', l, r.allocatedBytes);
    if (!pools.isOnline(r.pool)) continue;
    try {
      const s = await ctx.dp.ioStat(r.uuid);
      o.add('mayastor_replica_reads_total', 'counter', 'Read requests', l, s.reads);
      o.add('mayastor_replica_writes_total', 'counter', 'Write requests', l, s.writes);
      o.add('mayastor_replica_flushes_total', 'counter', 'Flush requests', l, s.flushes);
      o.add('mayastor_replica_unmaps_total', 'counter', 'Unmap requests', l, s.unmaps);
      o.add('mayastor_replica_read_bytes_total', 'counter', 'Bytes read', l, s.bytesRead);
      o.add('mayastor_replica_written_bytes_total', 'counter', 'Bytes written', l, s.bytesWritten);
      o.add('mayastor_replica_io_errors_total', 'counter', 'Failed requests', l, s.errors);
    } catch {
      /* counters unavailable for this replica */
    }
  }
  if (more.shares) {
    for (const c of await more.shares.connections().catch(() => [])) {
      if (c.protocol === 'nbd')
        o.add('mayastor_nbd_export_connections', 'gauge', 'NBD clients connected to an export', { node, export: c.name }, c.connections);
      else
        o.add('mayastor_nvmf_subsystem_connections', 'gauge', 'NVMe/TCP queues (admin and I/O) connected to a subsystem', { node, nqn: c.name }, c.connections);
    }
  }
  try {
    const lim = await ctx.dp.targetLimits();
    const st = await ctx.dp.targetStats();
    const limit = (name: string, help: string, v: number) => o.add(`mayastor_target_limit_${name}`, 'gauge', help, { node }, v);
    limit('max_connections', 'Configured --max-connections (all target connections of the agent)', lim.maxConnections);
    limit('max_connections_per_export', 'Configured --max-connections-per-export', lim.maxConnectionsPerExport);
    limit('handshake_timeout_seconds', 'Configured --handshake-timeout-ms, in seconds', lim.handshakeTimeoutMs / 1000);
    limit('conn_memory_budget_bytes', 'Configured --conn-memory-budget', lim.connMemoryBudget);
    limit('memory_budget_bytes', 'Configured --memory-budget', lim.memoryBudget);
    limit('fd_headroom', 'Configured --fd-headroom', lim.fdHeadroom);
    limit(
      'writer_grace_ms',
      'Configured --writer-grace-ms (a nexus host keeps its export writer lease this long after its last connection)',
      lim.writerGraceMs ?? 0,
    );
    o.add('mayastor_target_connections', 'gauge', 'Target connections open now (handshake included)', { node }, st.connections);
    o.add('mayastor_target_handshakes', 'gauge', 'Target connections in their handshake now', { node }, st.handshakes);
    o.add('mayastor_target_accepted_total', 'counter', 'Target connections admitted', { node }, st.accepted);
    const refused = 'Target connections refused (closed at once) by reason';
    o.add('mayastor_target_connections_refused_total', 'counter', refused, { node, reason: 'max_connections' }, st.refusedMaxConnections);
    o.add('mayastor_target_connections_refused_total', 'counter', refused, { node, reason: 'max_connections_per_export' }, st.refusedMaxConnectionsPerExport);
    o.add('mayastor_target_connections_refused_total', 'counter', refused, { node, reason: 'fd_headroom' }, st.refusedFdHeadroom);
    o.add('mayastor_target_handshake_timeouts_total', 'counter', 'Connections dropped at the handshake deadline', { node }, st.handshakeTimeouts);
    o.add(
      'mayastor_target_accept_backoffs_total',
      'counter',
      'Times accepting paused for lack of fds or memory (EMFILE/ENFILE/ENOBUFS/ENOMEM)',
      { node },
      st.acceptBackoffs,
    );
    o.add('mayastor_target_memory_bytes', 'gauge', 'Request slot and payload bytes held by target connections', { node }, st.memoryBytes);
    o.add('mayastor_target_writer_leases', 'gauge', 'Exports serving a nexus child whose writer lease is held', { node }, st.writerLeases);
    o.add('mayastor_target_writes_refused_total', 'counter', 'Writes refused because another host holds the export writer lease', { node }, st.writesRefused);
    o.add('mayastor_target_memory_waits_total', 'counter', 'Requests that waited for memory (back-pressure)', { node }, st.memoryWaits);
  } catch {
    /* the data path is stopping */
  }
  if (more.nexuses) {
    for (const { nexus, io } of await more.nexuses.metricsData().catch(() => [])) {
      const l = { node, nexus: nexus.uuid };
      o.add('mayastor_nexus_state', 'gauge', 'Nexus state: 0 online, 1 degraded, 2 faulted', l, NEXUS_STATE_CODE[nexus.state] ?? 2);
      o.add('mayastor_nexus_size_bytes', 'gauge', 'Size of the nexus', l, nexus.sizeBytes);
      o.add('mayastor_nexus_children', 'gauge', 'Children of the nexus', l, nexus.children.length);
      if (io) {
        o.add('mayastor_nexus_reads_total', 'counter', 'Nexus read requests', l, io.reads);
        o.add('mayastor_nexus_writes_total', 'counter', 'Nexus write requests', l, io.writes);
        o.add('mayastor_nexus_flushes_total', 'counter', 'Nexus flush requests', l, io.flushes);
        o.add('mayastor_nexus_io_errors_total', 'counter', 'Failed nexus requests', l, io.errors);
      }
      for (const c of nexus.children) {
        const cl = { node, nexus: nexus.uuid, child: c.uri };
        o.add(
          'mayastor_nexus_child_state',
          'gauge',
          'Child state: 0 online, 1 degraded (rebuilding), 2 faulted, 3 offline',
          cl,
          CHILD_STATE_CODE[c.state] ?? 2,
        );
        o.add('mayastor_nexus_child_rebuild_progress_percent', 'gauge', 'Rebuild progress of a child (100 once in sync)', cl, c.rebuildProgress ?? 0);
        o.add('mayastor_nexus_child_rebuilding', 'gauge', '1 while a rebuild of the child runs', cl, c.rebuildBytesTotal !== undefined ? 1 : 0);
        o.add('mayastor_nexus_child_rebuild_bytes_done', 'gauge', 'Bytes of the nexus range the running rebuild has processed', cl, c.rebuildBytesDone ?? 0);
        o.add('mayastor_nexus_child_rebuild_bytes_total', 'gauge', 'Bytes the running rebuild processes in all', cl, c.rebuildBytesTotal ?? 0);
        o.add('mayastor_nexus_child_rebuild_rate_bytes_per_second', 'gauge', 'Rate of the running rebuild', cl, c.rebuildRate ?? 0);
      }
    }
  }
  for (const [k, v] of http.byStatus) {
    const [method, code] = k.split(' ');
    o.add('mayastor_http_requests_total', 'counter', 'HTTP API requests by method and status', { method, code }, v);
  }
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  o.add('process_cpu_seconds_total', 'counter', 'User and system CPU time', {}, (cpu.user + cpu.system) / 1e6);
  o.add('process_resident_memory_bytes', 'gauge', 'Resident set size', {}, mem.rss);
  o.add('process_heap_bytes', 'gauge', 'V8 heap used', {}, mem.heapUsed);
  o.add('process_start_time_seconds', 'gauge', 'Start time since the epoch', {}, Math.floor(startSeconds));
  return o.text();
}
