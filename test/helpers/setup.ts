/**
 * Every suite gets its own runtime directory, so the provider daemons that its Terraform runs start (see
 * provider/daemon.ts) are its own, leave soon when idle, and are stopped when the suite ends.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-test-run-'));
process.env.XDG_RUNTIME_DIR = runtimeDir;
process.env.MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS ??= '20';

afterAll(() => {
  spawnSync('pkill', ['-KILL', '-f', `[-]-daemon ${runtimeDir}/`]);
  fs.rmSync(runtimeDir, { recursive: true, force: true });
});
