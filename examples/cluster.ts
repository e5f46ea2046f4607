/**
 * Where the example apps find the agents they deploy to. `npm run quickstart` (and the tests) start the agents
 * and write a cluster file; the apps read it from $MAYASTOR_CLUSTER_FILE, else `.tmp/quickstart/cluster.json`
 * at the repository root. The token is not in the file: the provider reads it from $MAYASTOR_TOKEN, so it never
 * lands in the synthesized configuration.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ClusterNode {
  /** Node name (the agent's --node). */
  name: string;
  /** Agent URL, e.g. http://127.0.0.1:9501. */
  url: string;
  zone?: string;
  /** Disks of the node by role (e.g. { data: "/abs/disk0.img" } or { legacy: ..., fresh: ... }). */
  disks: Record<string, string>;
}

export interface Cluster {
  nodes: ClusterNode[];
  /** Absolute path of the Terraform state file (LocalBackend). */
  stateFile: string;
}

export const REPO_ROOT = path.resolve(__dirname, '..');
export const DEFAULT_QUICKSTART_DIR = path.join(REPO_ROOT, '.tmp', 'quickstart');

export function clusterFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.MAYASTOR_CLUSTER_FILE ?? path.join(DEFAULT_QUICKSTART_DIR, 'cluster.json'));
}

/** Reads and checks a cluster file; errors name the file and the field. */
export function loadCluster(file = clusterFilePath()): Cluster {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cluster file ${file}: ${(e as Error).message}. Start the agents first (npm run quickstart writes it), or set MAYASTOR_CLUSTER_FILE.`);
  }
  let c: Cluster;
  try {
    c = JSON.parse(raw) as Cluster;
  } catch (e) {
    throw new Error(`cluster file ${file}: not JSON: ${(e as Error).message}`);
  }
  if (!c || !Array.isArray(c.nodes) || c.nodes.length === 0) throw new Error(`cluster file ${file}: "nodes" must be a non-empty array`);
  c.nodes.forEach((n, i) => {
    if (!n || typeof n.name !== 'string' || typeof n.url !== 'string') throw new Error(`cluster file ${file}: nodes[${i}] needs "name" and "url"`);
    if (!n.disks || typeof n.disks !== 'object') throw new Error(`cluster file ${file}: nodes[${i}].disks must be an object of disk paths`);
  });
  if (typeof c.stateFile !== 'string' || !path.isAbsolute(c.stateFile)) throw new Error(`cluster file ${file}: "stateFile" must be an absolute path`);
  return c;
}
