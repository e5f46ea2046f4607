/**
 * Where a replicated volume's replicas go: a pure function of the nodes (names, zones, pools and their declared
 * capacities) and the volume's needs, so it is tested alone and the same inputs always give the same answer
 * (re-synthesizing never moves data).
 */

import { NEXUS_LABEL_BYTES, NEXUS_MAX_CHILDREN, replicaSizeFor } from '../../agent/api/limits';

/** Every nexus child reserves this much at its start for the nexus label (agent/api/limits.ts). */
export const NEXUS_CHILD_HEADER_BYTES = NEXUS_LABEL_BYTES;
export { NEXUS_MAX_CHILDREN, replicaSizeFor };

export interface PlacementNode {
  readonly name: string;
  readonly zone?: string;
  readonly pools: readonly { readonly name: string; readonly capacityBytes?: number }[];
}

export interface PlacementRequest {
  readonly nodes: readonly PlacementNode[];
  /** Replicas wanted, each on its own node (its own zone when the nodes carry zones). */
  readonly count: number;
  readonly sizeBytes: number;
  /** Thick replicas are never put on a pool declared smaller than a replica. */
  readonly thin: boolean;
  /** Only these pools ("POOL" of any node, or NODE/POOL); undefined: every pool. */
  readonly pools?: readonly { readonly node?: string; readonly pool: string }[];
  /** The node that runs the nexus: it is chosen first. */
  readonly nexusNode?: string;
}

export interface PlacedReplica {
  readonly node: string;
  readonly zone?: string;
  readonly pool: string;
}

/**
 * The nodes and pools for the replicas, in order (the nexus node first when given), or why they cannot be
 * placed (which nodes and pools were excluded, and for what reason).
 */
export function placeReplicas(req: PlacementRequest): { placed: PlacedReplica[] } | { error: string } {
  const reasons: string[] = [];
  const allowed = (node: string, pool: string) => !req.pools || req.pools.some((w) => w.pool === pool && (w.node === undefined || w.node === node));
  const eligible = new Map<string, string>(); // node -> chosen pool
  for (const n of req.nodes) {
    const pools = n.pools.filter((p) => {
      if (!allowed(n.name, p.name)) return false;
      if (!req.thin && p.capacityBytes !== undefined && p.capacityBytes < replicaSizeFor(req.sizeBytes)) {
        reasons.push(
          `${n.name}/${p.name} is too small for a thick replica (capacityBytes ${p.capacityBytes} < ${replicaSizeFor(req.sizeBytes)}: sizeBytes ${req.sizeBytes} + ${NEXUS_CHILD_HEADER_BYTES} for the nexus label)`,
        );
        return false;
      }
      return true;
    });
    if (pools.length === 0) {
      if (n.pools.length === 0) reasons.push(`${n.name} has no pools`);
      else if (req.pools) reasons.push(`${n.name} has no pool allowed by pools`);
      continue;
    }
    // the largest declared capacity wins; otherwise the first pool
    const best = pools.reduce((a, b) => ((b.capacityBytes ?? -1) > (a.capacityBytes ?? -1) ? b : a));
    eligible.set(n.name, best.name);
  }
  const ordered = [...req.nodes];
  if (req.nexusNode !== undefined) ordered.sort((a, b) => (a.name === req.nexusNode ? -1 : b.name === req.nexusNode ? 1 : 0));
  const chosen: PlacementNode[] = [];
  const zones = new Set<string>();
  for (const n of ordered) {
    if (chosen.length === req.count) break;
    if (!eligible.has(n.name) || (n.zone !== undefined && zones.has(n.zone))) continue;
    chosen.push(n);
    if (n.zone !== undefined) zones.add(n.zone);
  }
  if (chosen.length < req.count) {
    const elig = req.nodes.filter((n) => eligible.has(n.name));
    const eligZones = [...new Set(elig.map((n) => n.zone))];
    const domain = req.nodes.some((n) => n.zone !== undefined)
      ? `distinct zones, but only ${eligZones.length} zone(s) have a node with an eligible pool (${eligZones.join(', ') || 'none'})`
      : `distinct nodes, but only ${elig.length} node(s) have an eligible pool (${elig.map((n) => n.name).join(', ') || 'none'})`;
    return { error: `cannot place ${req.count} replica(s) on ${domain}${reasons.length ? `; excluded: ${reasons.join('; ')}` : ''}` };
  }
  return { placed: chosen.map((n) => ({ node: n.name, zone: n.zone, pool: eligible.get(n.name)! })) };
}
