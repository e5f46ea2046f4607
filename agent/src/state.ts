/**
 * state.ts - the agent's own state in DATA_DIR/state.json: which pools (name, disks) it owns and
 * the replica specs the disks do not carry (share, allowed hosts). Sizes, thinness and allocation
 * live in the pool metadata on the disks; state.json only lists what to re-import.
 *
 * Writes are atomic and durable: write state.json.tmp, fsync it, rename over state.json, fsync the
 * directory. Writes are serialised; a crash leaves either the old or the new file.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Share } from '../api/types';

export interface PoolRecord {
  name: string;
  uuid: string;
  /** As the user gave them (GET answers these; PUT compares them). */
  disks: string[];
  /** Canonical paths handed to the data path. */
  devices: string[];
}

export interface ReplicaRecord {
  uuid: string;
  pool: string;
  share: Share;
  allowedHosts: string[];
  /** Informational copies (the pool metadata is the truth). */
  sizeBytes: number;
  thin: boolean;
}

export interface NexusRecord {
  uuid: string;
  sizeBytes: number;
  /** The current children (kept in step with add/remove through the children endpoints). */
  children: string[];
  share: Share;
  /** Who may connect to the share (issue 14); absent: everyone (and in records written before it). */
  allowedHosts?: string[];
}

export interface AgentState {
  version: 1;
  node: string;
  pools: PoolRecord[];
  replicas: ReplicaRecord[];
  /** Nexuses to reopen at start (absent in files written before nexuses existed). */
  nexuses?: NexusRecord[];
  /** Extension point for later modules (nexuses, shares): they keep their records here. */
  [key: string]: unknown;
}

export class StateStore {
  readonly file: string;
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly dataDir: string) {
    this.file = path.join(dataDir, 'state.json');
  }

  /** Read state.json; a missing file is the empty state. A corrupt file is an error (never overwritten). */
  load(node: string): AgentState {
    let raw: string;
    try {
      raw = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, node, pools: [], replicas: [] };
      throw e;
    }
    let s: AgentState;
    try {
      s = JSON.parse(raw) as AgentState;
    } catch (e) {
      throw new Error(`${this.file} is not valid JSON (${(e as Error).message}); refusing to start over it`);
    }
    if (!s || s.version !== 1 || !Array.isArray(s.pools) || !Array.isArray(s.replicas)) {
      throw new Error(`${this.file}: unknown format (expected version 1 with pools and replicas)`);
    }
    return s;
  }

  /** Persist a snapshot durably. Serialised: concurrent saves land in call order. */
  save(state: AgentState): Promise<void> {
    const text = JSON.stringify(state, null, 2) + '\n';
    const run = this.chain.then(() => this.write(text));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(text: string): Promise<void> {
    const tmp = this.file + '.tmp';
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, this.file);
    const dir = await fs.promises.open(this.dataDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
