#!/usr/bin/env node
'use strict';
/*
 * A real agent process (the compiled dist/ code) with a test hook for the embedded block API:
 * it starts the agent in-process, prints {"event":"ready","url","token","port"} on stdout, then
 * serves JSON-line commands on stdin, one reply line each on stdout:
 *   {"id":1,"op":"write","target":UUID,"offset":N,"data":BASE64}  -> {"id":1,"ok":true}
 *   {"id":2,"op":"read","target":UUID,"offset":N,"length":N}      -> {"id":2,"ok":true,"data":BASE64}
 *   {"id":3,"op":"flush","target":UUID}                            -> {"id":3,"ok":true}
 *   {"id":4,"op":"close"} -> closes devices and the agent, then exits 0
 * Errors: {"id":N,"ok":false,"error":MESSAGE,"code":CODE}.
 * Used by recovery tests so the process that wrote data can be killed with SIGKILL, and the disks are
 * only ever open in one process at a time. Arguments: the agent's command line.
 */
const path = require('node:path');
const readline = require('node:readline');
const dist = path.resolve(__dirname, '../../dist/agent/src');
const { startAgent } = require(path.join(dist, 'main.js'));
const { parseArgs } = require(path.join(dist, 'config.js'));
const { BlockDevice } = require(path.join(dist, 'blockdev.js'));

(async () => {
  const agent = await startAgent(parseArgs(process.argv.slice(2)));
  const devs = new Map();
  const dev = async (t) => {
    if (!devs.has(t)) devs.set(t, BlockDevice.open(t));
    return devs.get(t);
  };
  process.stdout.write(JSON.stringify({ event: 'ready', url: agent.url, token: agent.token, port: agent.port }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    const reply = (o) => process.stdout.write(JSON.stringify({ id: m.id, ...o }) + '\n');
    try {
      if (m.op === 'write') {
        const d = await dev(m.target);
        await d.writeAt(Buffer.from(m.data, 'base64'), m.offset);
        reply({ ok: true });
      } else if (m.op === 'read') {
        const d = await dev(m.target);
        const b = Buffer.alloc(m.length);
        await d.readAt(b, m.offset);
        reply({ ok: true, data: b.toString('base64') });
      } else if (m.op === 'flush') {
        await (await dev(m.target)).flush();
        reply({ ok: true });
      } else if (m.op === 'closedev') {
        const d = devs.get(m.target);
        devs.delete(m.target);
        if (d) await (await d).close();
        reply({ ok: true });
      } else if (m.op === 'close') {
        for (const d of devs.values()) await (await d).close();
        await agent.close();
        reply({ ok: true });
        process.exit(0);
      } else reply({ ok: false, error: `unknown op ${m.op}` });
    } catch (e) {
      reply({ ok: false, error: e.message, code: e.code });
    }
  });
})().catch((e) => {
  process.stderr.write(`embedded-agent: ${e.stack || e}\n`);
  process.exit(1);
});
