/**
 * StorageNode: one node running a mayastor agent, with the pools to create on its disks.
 * Validated when constructed; errors name the property.
 */
import { Construct } from 'constructs';
import { TerraformProvider, Token } from 'cdktf';
import { Pool } from '../l1/pool';
import { diskProblem, nodeNameProblem, poolNameProblem } from '../../agent/api/grammar';
import { describe, fail } from './errors';

const NOT_A_NAME = { kind: 'malformed', message: 'must be a string' } as const;

export interface StoragePoolSpec {
  /** Pool name, unique on the node. */
  readonly name: string;
  /** Disks the pool claims: absolute paths of files or block devices, or `uring:///path` / `aio:///path`. */
  readonly disks: string[];
  /**
   * Usable capacity in bytes, if you know it. Only a placement hint: a thick volume is never placed on a pool
   * declared smaller than the volume.
   */
  readonly capacityBytes?: number;
}

export interface StorageNodeConfig {
  /** Node name, as the agent's `--node` and a key of the provider's `nodes` map. */
  readonly name: string;
  /** URL of the node's agent, e.g. `http://10.0.0.1:9500`. */
  readonly agentUrl: string;
  /** Failure domain (rack, room, zone). Replicated volumes spread replicas over distinct zones. */
  readonly zone?: string;
  /** Pools to create on the node. */
  readonly pools: StoragePoolSpec[];
  /** Provider configuration to use (an aliased MayastorProvider); default: the stack's default one. */
  readonly provider?: TerraformProvider;
}

export class StorageNode extends Construct {
  /** The provider's `nodes` map for a set of nodes: `{ NAME: agentUrl }`. */
  public static providerNodes(nodes: StorageNode[]): { [name: string]: string } {
    const m: { [name: string]: string } = {};
    for (const n of nodes) m[n.name] = n.agentUrl;
    return m;
  }

  public static isStorageNode(x: unknown): x is StorageNode {
    return x instanceof StorageNode;
  }

  public readonly name: string;
  public readonly agentUrl: string;
  public readonly zone?: string;
  public readonly poolSpecs: StoragePoolSpec[];
  public readonly provider?: TerraformProvider;
  private readonly poolResources = new Map<string, Pool>();

  public constructor(scope: Construct, id: string, config: StorageNodeConfig) {
    super(scope, id);
    const bad = (prop: string, detail: string): never => fail(this, 'StorageNode', prop, detail);
    if (config === null || typeof config !== 'object') bad('config', 'a configuration object is required');

    const nameProblem = nodeNameProblem(typeof config.name === 'string' ? config.name : '');
    if (nameProblem) bad('name', `${describe(config.name)} ${nameProblem.message}`);
    if (typeof config.agentUrl !== 'string' || config.agentUrl === '')
      bad('agentUrl', `${describe(config.agentUrl)} must be the agent's URL, e.g. "http://10.0.0.1:9500"`);
    if (!Token.isUnresolved(config.agentUrl)) {
      let u: URL = new URL('http://placeholder');
      let ok = true;
      try {
        u = new URL(config.agentUrl);
      } catch {
        ok = false;
      }
      if (!ok || (u.protocol !== 'http:' && u.protocol !== 'https:')) bad('agentUrl', `${describe(config.agentUrl)} is not an http:// or https:// URL`);
      if (u.pathname !== '/' && u.pathname !== '') bad('agentUrl', `${describe(config.agentUrl)} must not have a path: give the agent's base URL`);
    }
    const zoneProblem = config.zone === undefined ? undefined : nodeNameProblem(typeof config.zone === 'string' ? config.zone : '');
    if (zoneProblem) bad('zone', `${describe(config.zone)} ${zoneProblem.message} (or leave zone out)`);
    if (!Array.isArray(config.pools)) bad('pools', 'must be an array of { name, disks } (it may be empty)');

    const claimed = new Map<string, string>();
    config.pools.forEach((p, i) => {
      const where = `pools[${i}]`;
      if (p === null || typeof p !== 'object') bad(where, 'must be an object { name, disks }');
      const poolProblem = typeof p.name === 'string' ? poolNameProblem(p.name) : NOT_A_NAME;
      if (poolProblem) bad(`${where}.name`, `${describe(p.name)} ${poolProblem.message}`);
      if (this.poolResources.has(p.name)) bad(`${where}.name`, `pool "${p.name}" is given twice on node "${config.name}"`);
      if (!Array.isArray(p.disks) || p.disks.length === 0) bad(`${where}.disks`, `pool "${p.name}" needs at least one disk`);
      p.disks.forEach((d, j) => {
        const dp = typeof d !== 'string' ? NOT_A_NAME : Token.isUnresolved(d) ? undefined : diskProblem(d);
        if (dp) bad(`${where}.disks[${j}]`, `${describe(d)} ${dp.message}`);
        const other = claimed.get(d);
        if (other !== undefined && !Token.isUnresolved(d)) bad(`${where}.disks[${j}]`, `disk ${describe(d)} is already claimed by pool "${other}"`);
        claimed.set(d, p.name);
      });
      if (p.capacityBytes !== undefined && (typeof p.capacityBytes !== 'number' || !Number.isSafeInteger(p.capacityBytes) || p.capacityBytes <= 0)) {
        bad(`${where}.capacityBytes`, `${describe(p.capacityBytes)} must be a positive whole number of bytes`);
      }
      this.poolResources.set(
        p.name,
        new Pool(this, `pool-${p.name}`, { nodeAttribute: config.name, name: p.name, disks: [...p.disks], provider: config.provider }),
      );
    });

    this.name = config.name;
    this.agentUrl = config.agentUrl;
    this.zone = config.zone;
    this.poolSpecs = config.pools.map((p) => ({ ...p, disks: [...p.disks] }));
    this.provider = config.provider;
  }

  /** The mayastor_pool resources of this node, by pool name. */
  public get pools(): Pool[] {
    return [...this.poolResources.values()];
  }

  public hasPool(name: string): boolean {
    return this.poolResources.has(name);
  }

  /** The mayastor_pool resource of a pool; throws naming the pool when the node has none of that name. */
  public pool(name: string): Pool {
    const p = this.poolResources.get(name);
    if (!p) fail(this, 'StorageNode', 'pools', `node "${this.name}" has no pool "${name}" (pools: ${[...this.poolResources.keys()].join(', ') || 'none'})`);
    return p;
  }
}
