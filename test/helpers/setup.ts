/**
 * Every suite gets its own runtime directory, so the provider daemons that its Terraform runs start (see
 * provider/daemon.ts) are its own, leave soon when idle, and are stopped when the suite ends.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { providerDaemons } from './terraform';

const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mayastor-test-run-'));
process.env.XDG_RUNTIME_DIR = runtimeDir;
process.env.MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS ??= '20';

afterAll(() => {
  providerDaemons(runtimeDir, true);
  fs.rmSync(runtimeDir, { recursive: true, force: true });
});
