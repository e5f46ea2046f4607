/**
 * The README's main job (`npm start`): start a local agent on a file-backed pool in ./.tmp/demo,
 * create a replica through the HTTP API, write a pattern and read it back through the embedded block
 * API, print each step, stop. The agent runs in this process (startAgent), so the embedded API
 * talks to the same data path that owns the pool: the disk file is only ever open in one process.
 * Re-running is idempotent: the pool and replica are re-imported from ./.tmp/demo and PUT answers 200.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlockDevice } from '../agent/src/blockdev';
import { AgentClient } from '../agent/api/client';
import { parseArgs } from '../agent/src/config';
import { humanBytes as ctlHumanBytes } from '../agent/ctl/format';
import { startAgent } from '../agent/src/main';

const REPLICA = '0d3e5a7c-1f2b-4c6d-8e9f-a0b1c2d3e4f5';
const say = (s: string) => process.stdout.write(s + '\n');

async function main(): Promise<void> {
  const root = path.resolve(process.cwd(), '.tmp/demo');
  const dataDir = path.join(root, 'data');
  const disk = path.join(dataDir, 'disks', 'disk0.img');
  fs.mkdirSync(path.dirname(disk), { recursive: true });
  if (!fs.existsSync(disk)) {
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 256 * 1024 * 1024);
    say(`1. created a 256 MiB sparse disk file ${path.relative(process.cwd(), disk)}`);
  } else say(`1. reusing the disk file ${path.relative(process.cwd(), disk)}`);

  const config = parseArgs(['--node', 'demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn']);
  const agent = await startAgent(config);
  say(`2. agent 'demo' listening on ${agent.url} (token in ${path.relative(process.cwd(), path.join(dataDir, 'token'))}, data path ${agent.ctx.dp.version()})`);
  try {
    const c = new AgentClient({ url: agent.url, token: agent.token, node: 'demo' });
    const pool = await c.putPool('demo', { disks: [disk] });
    say(`3. PUT /v1/pools/demo -> pool ${pool.uuid}: ${pool.state}, capacity ${ctlHumanBytes(pool.capacityBytes)}, used ${ctlHumanBytes(pool.usedBytes)}`);
    const rep = await c.putReplica(REPLICA, { pool: 'demo', sizeBytes: 64 * 1024 * 1024, thin: true, share: 'none' });
    say(`4. PUT /v1/replicas/${REPLICA} -> ${ctlHumanBytes(rep.sizeBytes)} thin replica, uri ${rep.uri}, allocated ${ctlHumanBytes(rep.allocatedBytes)}`);

    const dev = await BlockDevice.open(REPLICA);
    const data = BlockDevice.allocBuffer(1024 * 1024);
    crypto.randomFillSync(data);
    const offset = 8 * 1024 * 1024;
    await dev.writeAt(data, offset);
    await dev.flush();
    say(`5. embedded API: wrote 1 MiB of random bytes at offset 8 MiB and flushed (block size ${dev.blockSize})`);
    const back = BlockDevice.allocBuffer(data.length);
    await dev.readAt(back, offset);
    const same = back.equals(data);
    const digest = crypto.createHash('sha256').update(back).digest('hex').slice(0, 16);
    say(`6. embedded API: read it back: ${same ? 'identical' : 'DIFFERENT'} (sha256 ${digest}...)`);
    await dev.close();
    const after = (await c.getReplica(REPLICA))!;
    say(
      `7. replica allocated ${ctlHumanBytes(after.allocatedBytes)} of ${ctlHumanBytes(after.sizeBytes)}; pool used ${ctlHumanBytes((await c.getPool('demo'))!.usedBytes)}`,
    );
    if (!same) throw new Error('read-back mismatch');
  } finally {
    await agent.close();
    say('8. agent stopped (pool exported; run again to re-import it)');
  }
}

main().catch((e) => {
  process.stderr.write(`main: ${(e as Error).message}\n`);
  process.exit(1);
});
