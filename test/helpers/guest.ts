/**
 * The throwaway Linux guest of scripts/guest (Debian 6.1 kernel, busybox, nvme-cli, nvmet, e2fsprogs)
 * booted under QEMU TCG with a shell script to run. The script's output and exit status come back
 * over the serial console between markers printed by scripts/guest/init; the whole console is
 * streamed to a log file. The guest reaches the host's 127.0.0.1 as 10.0.2.2 and is 10.0.2.15 itself;
 * `hostfwd` forwards host 127.0.0.1 ports to guest ports. A hard timeout kills QEMU and names the
 * stage the guest was in.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './agent';

export const GUEST_DIR = process.env.GUEST_DIR ?? path.join(ROOT, '.tmp/guest');

export interface GuestOptions {
  /** The shell script the guest runs (busybox sh, PATH has nvme, mkfs.ext4, fsck.ext4). */
  script: string;
  /** Console log file (the whole serial console, \r removed). */
  logFile: string;
  hostfwd?: Array<{ hostPort: number; guestPort: number }>;
  /** Hard limit for the whole boot (default 240 s): QEMU is killed and the stage named. */
  timeoutMs?: number;
  memMiB?: number;
}

export interface GuestResult {
  /** The script's exit status. */
  status: number;
  /** What the script printed (between the begin and exit markers). */
  output: string;
}

/** Build the guest image if its inputs changed (scripts/guest/build.sh; cached). */
export function buildGuest(): void {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/guest/build.sh')], { encoding: 'utf8', env: { ...process.env, GUEST_DIR } });
  if (r.status !== 0) throw new Error(`scripts/guest/build.sh failed (${r.status ?? r.signal}):\n${r.stderr}`);
}

/** One file in an uncompressed cpio (newc) archive, then the trailer. */
function cpioNewc(name: string, data: Buffer, mode: number): Buffer {
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const entry = (nm: string, body: Buffer, md: number, ino: number) => {
    const fields = [ino, md, 0, 0, 1, 0, body.length, 0, 0, 0, 0, nm.length + 1, 0];
    const head = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('') + nm + '\0', 'latin1');
    return Buffer.concat([head, pad(head.length), body, pad(body.length)]);
  };
  return Buffer.concat([entry(name, data, mode, 1), entry('TRAILER!!!', Buffer.alloc(0), 0, 0)]);
}

/** QEMUs still running: killed when the test process exits, whatever way it ends. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** A booted guest. `done` settles when QEMU exits; `waitFor` follows the script's output while it runs. */
export class Guest {
  readonly done: Promise<GuestResult>;
  private proc: ChildProcess;
  private consoleText = '';
  private stage = 'boot';
  private exited = false;
  private waiters = new Set<() => void>();
  private tmp: string;
  private log: fs.WriteStream;

  constructor(readonly opts: GuestOptions) {
    buildGuest();
    this.tmp = fs.mkdtempSync(path.join(GUEST_DIR, 'boot-'));
    // The kernel unpacks concatenated archives: the image, then /test.sh (an uncompressed archive
    // must start 4-byte aligned; zeros in between are skipped).
    const image = fs.readFileSync(path.join(GUEST_DIR, 'initramfs.cpio.gz'));
    const initrd = path.join(this.tmp, 'initrd');
    fs.writeFileSync(initrd, Buffer.concat([image, Buffer.alloc((4 - (image.length % 4)) % 4), cpioNewc('test.sh', Buffer.from(opts.script), 0o100755)]));
    const fwd = (opts.hostfwd ?? []).map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-10.0.2.15:${f.guestPort}`).join('');
    const args = [
      ...['-accel', 'tcg', '-cpu', 'max', '-machine', 'q35', '-m', String(opts.memMiB ?? 512), '-smp', '1'],
      ...['-nographic', '-no-reboot', '-vga', 'none', '-kernel', path.join(GUEST_DIR, 'vmlinux'), '-initrd', initrd],
      ...['-append', 'console=ttyS0 panic=-1 quiet loglevel=3'],
      ...['-netdev', `user,id=n0,restrict=off${fwd}`, '-device', 'virtio-net-pci,netdev=n0,romfile='],
    ];
    this.log = fs.createWriteStream(opts.logFile);
    this.proc = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.proc);
    const onData = (d: Buffer) => {
      const text = d.toString('latin1').replace(/\r/g, '');
      this.log.write(text);
      this.consoleText += text;
      const stages = [...this.consoleText.matchAll(/^@@GUEST stage=([\w.-]+)@@$/gm)];
      if (stages.length) this.stage = stages[stages.length - 1][1];
      for (const w of [...this.waiters]) w();
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.proc.stdin!.on('error', () => undefined);
    this.done = new Promise<GuestResult>((resolve, reject) => {
      const limit = opts.timeoutMs ?? 240000;
      // On timeout: kill, and reject once QEMU is gone (close), naming the stage it was in.
      let timedOut: Error | undefined = undefined;
      const timer = setTimeout(() => {
        timedOut = new Error(`guest timed out after ${limit / 1000} s in stage '${this.stage}' (console: ${opts.logFile})`);
        this.proc.kill('SIGKILL');
      }, limit);
      const finish = (err?: Error) => {
        if (this.exited) return;
        live.delete(this.proc);
        clearTimeout(timer);
        this.exited = true;
        for (const w of [...this.waiters]) w();
        this.log.end();
        fs.rmSync(this.tmp, { recursive: true, force: true });
        if (err ?? timedOut) return reject(err ?? timedOut);
        const m = /^@@GUEST exit=(\d+)@@$/m.exec(this.consoleText);
        if (!m) return reject(new Error(`guest stopped without an exit status in stage '${this.stage}' (console: ${opts.logFile})`));
        resolve({ status: Number(m[1]), output: this.output() });
      };
      this.proc.on('error', (e) => finish(new Error(`qemu-system-x86_64: ${e.message}`)));
      this.proc.on('close', () => finish());
    });
    // A caller that only uses waitFor must not see an unhandled rejection.
    this.done.catch(() => undefined);
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** The script's output so far. */
  output(): string {
    const begin = this.consoleText.indexOf('@@GUEST begin@@\n');
    if (begin < 0) return '';
    const rest = this.consoleText.slice(begin + '@@GUEST begin@@\n'.length);
    const end = rest.search(/^@@GUEST exit=\d+@@$/m);
    return end < 0 ? rest : rest.slice(0, end);
  }

  /** Wait until the script's output matches `re`; fails naming the stage if the guest exits or time runs out. */
  waitFor(re: RegExp, timeoutMs = 120000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const check = () => {
        const m = this.output().match(re);
        if (m || this.exited) {
          this.waiters.delete(check);
          clearTimeout(timer);
          if (m) resolve(m);
          else reject(new Error(`guest exited in stage '${this.stage}' before its output matched ${re} (console: ${this.opts.logFile})`));
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`guest output did not match ${re} within ${timeoutMs / 1000} s, stage '${this.stage}' (console: ${this.opts.logFile})`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** A line on the guest console: the script's stdin (`read LINE`). */
  send(line: string): void {
    this.proc.stdin!.write(line + '\r');
  }

  /** Kill QEMU if it still runs and wait for the cleanup. */
  async kill(): Promise<void> {
    if (!this.exited) this.proc.kill('SIGKILL');
    await this.done.catch(() => undefined);
  }
}

/** Boot, run the script to completion, return its status and output. */
export async function runGuest(opts: GuestOptions): Promise<GuestResult> {
  const g = new Guest(opts);
  try {
    return await g.done;
  } finally {
    await g.kill();
  }
}
