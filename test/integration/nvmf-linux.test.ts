/**
 * NVMe/TCP interop with the Linux kernel (issue 12, "Must show"): one throwaway Linux 6.1 guest
 * (scripts/guest, QEMU TCG, test/helpers/guest.ts) does several checks in one boot:
 *  - the Linux host against our target (an agent with --nvmf-listen: a replica with share "nvmf" and
 *    allowedHosts = the guest's host NQN, at the host's 127.0.0.1, the guest's 10.0.2.2): nvme
 *    discover, a refused host NQN, nvme connect, a raw region written with dd, mkfs.ext4, files,
 *    fsck, nvme disconnect, connect-all, a connection with header and data digests; the host then re-shares the replica over NBD, copies it with
 *    qemu-img and checks the raw region and every file (debugfs) by md5, and e2fsck on the copy;
 *  - the kit: the guest's own nvmet-tcp target (brd ramdisk) on 10.0.2.15:4420 serves the guest's
 *    own nvme-tcp host (write, read back, compare), so a failure further on is ours, not the kit's;
 *  - our initiator against the Linux target (the nvmet port forwarded to a host port): dp-nvmf-check,
 *    an agent process opening the nvmf:// URI through the embedded block API, and a nexus in the agent
 *    with an nvmf:// child shared over NBD; bytes are checked by checksum on both sides (the guest
 *    hashes ranges of its ramdisk on request, the host what it wrote and read).
 * Needs the guest image (scripts/guest/build.sh, run by scripts/setup.sh), dist/ and the native build.
 * GUEST_LOG_DIR=dir keeps the guest console log there.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AgentProcess, MiB, ROOT, cleanup, makeDisk, pattern, tempDir } from '../helpers/agent';
import { Guest, runGuest } from '../helpers/guest';
import { freePort, mustRun } from '../helpers/nbd';

/** The Linux target's subsystem in the guest. */
const LINUX_NQN = 'nqn.2024-01.io.mayastor.test:linux-target';
/** Where the guest wrote before the host came, and where the host writes through the agent. */
const GUEST_REGION = { offset: 16 * MiB, length: 1 * MiB };
const HOST_REGION = { offset: 8 * MiB, length: 4 * MiB };

/** The guest's host NQN (scripts/guest/build.sh writes it to /etc/nvme/hostnqn) and one never allowed. */
const GUEST_HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555';
const DENIED = { nqn: 'nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555', id: '99999999-2222-3333-4444-555555555555' };
/** Our target's device: 64 MiB; ext4 on the first 48 MiB, a raw random MiB at 56 MiB, 2 MiB written with digests at 58 MiB. */
const OUR = { uuid: '0e1e2e3e-0000-4000-8000-00000000a001', size: 64 * MiB, fsMiB: 48, rawMiB: 56, digestAtMiB: 58, digestMiB: 2 };
const OUR_NQN = `nqn.2019-05.io.openebs:${OUR.uuid}`;
const NEXUS = '0e1e2e3e-0000-4000-8000-00000000b001';

let dir: string;
let guest: Guest;
let nvmetPort: number;
let agent: AgentProcess;
let checkTool: string;
let ourPort: number;

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

/** Shell helpers for the guest script: each check prints its output and `@@CHECK name rc=N@@`. */
const GUEST_LIB = String.raw`
check() { name=$1; shift; out=$("$@" 2>&1); rc=$?; echo "$out" | sed 's/^/  | /'; echo "@@CHECK $name rc=$rc@@"; return $rc; }
stage() { echo "@@GUEST stage=$1@@"; }
dev_of() { for c in /sys/class/nvme/nvme*; do [ "$(cat $c/subsysnqn)" = "$1" ] && { echo /dev/$(basename $c)n1; return 0; }; done; return 1; }
wait_dev() { i=0; while ! dev_of "$1" >/dev/null || [ ! -b "$(dev_of "$1")" ]; do i=$((i+1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; dev_of "$1"; }
`;

/** The Linux host against our target at 10.0.2.2:port; each step a check, the hashes as markers. */
function ourTargetScript(port: number): string {
  return String.raw`
stage our-target
P=${port}
SUB=${OUR_NQN}
check discover nvme discover -t tcp -a 10.0.2.2 -s $P --hostnqn=${GUEST_HOSTNQN}
check discover-denied nvme discover -t tcp -a 10.0.2.2 -s $P --hostnqn=${DENIED.nqn} --hostid=${DENIED.id}
check connect-denied nvme connect -t tcp -a 10.0.2.2 -s $P -n $SUB --hostnqn=${DENIED.nqn} --hostid=${DENIED.id}
check connect nvme connect -t tcp -a 10.0.2.2 -s $P -n $SUB --hostnqn=${GUEST_HOSTNQN}
D=$(wait_dev $SUB)
echo "@@SIZE $(( $(cat /sys/block/$(basename $D)/size) * 512 ))@@"
dd if=/dev/urandom of=/tmp/raw bs=64k count=16 2>/dev/null
check raw-write dd if=/tmp/raw of=$D bs=1M seek=${OUR.rawMiB} oflag=direct
echo "@@RAW md5 $(md5sum < /tmp/raw | cut -d' ' -f1)@@"
check mkfs mkfs.ext4 -q -F $D ${OUR.fsMiB}M
check mount mount -t ext4 $D /mnt
mkdir -p /mnt/dir
dd if=/dev/urandom of=/mnt/big bs=64k count=48 2>/dev/null
dd if=/dev/urandom of=/mnt/dir/small bs=1000 count=7 2>/dev/null
echo "written by the Linux nvme-tcp host" > /mnt/dir/text
for f in big dir/small dir/text; do echo "@@FILE $(md5sum < /mnt/$f | cut -d' ' -f1) /$f@@"; done
check sync sync
check umount umount /mnt
check fsck fsck.ext4 -fn $D
check disconnect nvme disconnect -n $SUB
check gone test ! -e $D
# connect-all follows the discovery log: the advertised address (10.0.2.2) must be one the host reaches.
check connect-all nvme connect-all -t tcp -a 10.0.2.2 -s $P --hostnqn=${GUEST_HOSTNQN}
check connect-all-dev wait_dev $SUB
check connect-all-disconnect nvme disconnect -n $SUB
# Header and data digests (CRC32C): the 6.1 host refuses a controller whose ICResp does not echo them.
check digest-connect nvme connect -t tcp -a 10.0.2.2 -s $P -n $SUB --hostnqn=${GUEST_HOSTNQN} --hdr-digest --data-digest
D=$(wait_dev $SUB)
dd if=/dev/urandom of=/tmp/dg bs=64k count=${OUR.digestMiB * 16} 2>/dev/null
check digest-write dd if=/tmp/dg of=$D bs=64k seek=${OUR.digestAtMiB * 16} oflag=direct
check digest-read dd if=$D of=/tmp/dg.back bs=64k skip=${OUR.digestAtMiB * 16} count=${OUR.digestMiB * 16} iflag=direct
check digest-compare cmp /tmp/dg /tmp/dg.back
echo "@@DIGEST md5 $(md5sum < /tmp/dg | cut -d' ' -f1)@@"
check digest-disconnect nvme disconnect -n $SUB
stage our-target-done
`;
}

/**
 * The Linux target: nvmet on a 64 MiB brd ramdisk at 10.0.2.15:4420, any host; first checked by the
 * guest's own host, then zeroed but for a random region, and served; the host asks for hashes of
 * ranges on the console until it says host-done.
 */
function linuxTargetScript(): string {
  const k64 = (n: number) => n / 65536;
  return String.raw`
stage linux-target
N=${LINUX_NQN}
S=/sys/kernel/config/nvmet/subsystems/$N
mkdir $S && echo 1 > $S/attr_allow_any_host && mkdir $S/namespaces/1 &&
  echo -n /dev/ram0 > $S/namespaces/1/device_path && echo 1 > $S/namespaces/1/enable &&
  mkdir /sys/kernel/config/nvmet/ports/1 && cd /sys/kernel/config/nvmet/ports/1 &&
  echo tcp > addr_trtype && echo ipv4 > addr_adrfam && echo 10.0.2.15 > addr_traddr && echo 4420 > addr_trsvcid &&
  ln -s $S subsystems/ && cd /
check nvmet-up test -e /sys/kernel/config/nvmet/ports/1/subsystems/$N
stage linux-target-self
check self-connect nvme connect -t tcp -a 10.0.2.15 -s 4420 -n $N
D=$(wait_dev $N)
dd if=/dev/urandom of=/tmp/self bs=64k count=16 2>/dev/null
check self-write dd if=/tmp/self of=$D bs=64k count=16 oflag=direct
check self-read dd if=$D of=/tmp/self.back bs=64k count=16 iflag=direct
check self-compare cmp /tmp/self /tmp/self.back
check self-disconnect nvme disconnect -n $N
# Zeroed, so that a host write that never landed shows; then a random region for the host to read.
# O_DIRECT: nvmet reaches brd by bio, past the guest's page cache.
dd if=/dev/zero of=/dev/ram0 bs=1M count=64 oflag=direct 2>/dev/null
dd if=/dev/urandom of=/tmp/guest-region bs=64k count=${k64(GUEST_REGION.length)} 2>/dev/null
dd if=/tmp/guest-region of=/dev/ram0 bs=64k seek=${k64(GUEST_REGION.offset)} oflag=direct 2>/dev/null
echo "@@GUEST-REGION md5 $(md5sum < /tmp/guest-region | cut -d' ' -f1)@@"
stage linux-target-serving
echo "@@READY linux-target@@"
# Commands from the host on the console: "hash OFFSET LENGTH" (bytes, 64 KiB multiples), "host-done".
while read -r cmd a b; do
  case $cmd in
    hash) echo "@@HASH $a $b $(dd if=/dev/ram0 bs=64k skip=$((a / 65536)) count=$((b / 65536)) iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)@@" ;;
    host-done) break ;;
  esac
done
stage linux-target-after
`;
}

/** md5 of a range of the guest's ramdisk (the Linux target's namespace), hashed in the guest. */
async function guestHash(offset: number, length: number): Promise<string> {
  guest.send(`hash ${offset} ${length}`);
  return (await guest.waitFor(new RegExp(`^@@HASH ${offset} ${length} ([0-9a-f]{32})@@$`, 'm'), 60000))[1];
}

function checkRc(out: string, name: string): number | undefined {
  const m = new RegExp(`^@@CHECK ${name} rc=(\\d+)@@$`, 'm').exec(out);
  return m ? Number(m[1]) : undefined;
}

/** What check `name` printed (its "  | " lines just before its marker). */
function checkOutput(out: string, name: string): string {
  const lines = out.split('\n');
  const end = lines.findIndex((l) => l.startsWith(`@@CHECK ${name} rc=`));
  let start = end;
  while (start > 0 && lines[start - 1].startsWith('  | ')) start--;
  return lines.slice(start, end).join('\n');
}

/**
 * Our target for the Linux host: an agent with --nvmf-listen (advertising 10.0.2.2, the host as the
 * guest sees it), a pool on a file, a 64 MiB replica shared over nvmf to the guest's host NQN only.
 */
async function startOurTarget(): Promise<void> {
  const r = await agent.client().putReplica(OUR.uuid, { pool: 'p1', sizeBytes: OUR.size, thin: false, share: 'nvmf', allowedHosts: [GUEST_HOSTNQN] });
  const m = new RegExp(`^nvmf://10\\.0\\.2\\.2:(\\d+)/${OUR_NQN}$`).exec(r.uri);
  if (!m) throw new Error(`replica uri ${r.uri}: expected nvmf://10.0.2.2:PORT/${OUR_NQN}`);
  ourPort = Number(m[1]);
}

/** dp-nvmf-check (agent/native/tools, public API only), built by the native build (src/nvmf/module.mk). */
function checkToolPath(): string {
  const tool = path.join(ROOT, 'agent/native/build/dp-nvmf-check');
  if (!fs.existsSync(tool)) throw new Error(`${tool} is missing: run npm run build`);
  return tool;
}

beforeAll(async () => {
  dir = tempDir('mayastor-nvmf-linux-');
  nvmetPort = await freePort();
  checkTool = checkToolPath();
  const dataDir = path.join(dir, 'a');
  const disk = makeDisk(path.join(dataDir, 'disks', 'd0.img'), 128 * MiB);
  const args = ['--nvmf-listen', '127.0.0.1:0', '--nbd-listen', '127.0.0.1:0', '--advertise-host', '10.0.2.2'];
  agent = new AgentProcess({ node: 'a', dataDir, embedded: true, extraArgs: args });
  await agent.start();
  await agent.client().putPool('p1', { disks: [disk] });
  await startOurTarget();
  guest = new Guest({
    script: GUEST_LIB + ourTargetScript(ourPort) + linuxTargetScript(),
    logFile: path.join(process.env.GUEST_LOG_DIR ?? dir, 'guest-console.log'),
    hostfwd: [{ hostPort: nvmetPort, guestPort: 4420 }],
    timeoutMs: 170000,
  });
}, 60000);

afterAll(async () => {
  await guest?.kill();
  await agent?.kill9();
  if (dir && !process.env.GUEST_LOG_DIR) cleanup(dir);
});

test('the kit: the guest nvmet-tcp target serves the guest nvme-tcp host (1 MiB written, read back, compared)', async () => {
  await guest.waitFor(/^@@CHECK self-disconnect rc=\d+@@$/m, 150000);
  const out = guest.output();
  for (const name of ['nvmet-up', 'self-connect', 'self-write', 'self-read', 'self-compare', 'self-disconnect']) {
    expect([name, checkRc(out, name)]).toEqual([name, 0]);
  }
  expect(out).toMatch(/disconnected 1 controller/);
}, 160000);

test('the Linux host against our target: discover lists the subsystem, connect gives a 64 MiB device, mkfs.ext4/mount/write/umount/fsck pass, disconnect is clean', async () => {
  await guest.waitFor(/^@@GUEST stage=our-target-done@@$/m, 150000);
  const out = guest.output();
  for (const name of ['discover', 'connect', 'raw-write', 'mkfs', 'mount', 'sync', 'umount', 'fsck', 'disconnect', 'gone']) {
    expect([name, checkRc(out, name)]).toEqual([name, 0]);
  }
  expect(checkOutput(out, 'discover')).toMatch(new RegExp(`subnqn: +${OUR_NQN}$`, 'm'));
  expect(checkOutput(out, 'discover')).toMatch(new RegExp(`trsvcid: +${ourPort}$`, 'm'));
  expect(checkOutput(out, 'discover')).toMatch(/traddr: +10\.0\.2\.2$/m);
  expect(out).toMatch(new RegExp(`^@@SIZE ${OUR.size}@@$`, 'm'));
  expect(checkOutput(out, 'fsck')).toMatch(/\/dev\/nvme\d+n1: \d+\/\d+ files/);
  expect(checkOutput(out, 'disconnect')).toMatch(/disconnected 1 controller/);
}, 160000);

test('a host NQN that is not allowed is refused at connect and does not see the subsystem in discovery', async () => {
  await guest.waitFor(/^@@GUEST stage=our-target-done@@$/m, 150000);
  const out = guest.output();
  expect(checkRc(out, 'discover-denied')).toBe(0);
  expect(checkOutput(out, 'discover-denied')).not.toContain(OUR_NQN);
  expect(checkRc(out, 'connect-denied')).not.toBe(0);
  expect(checkRc(out, 'connect-denied')).toBeDefined();
}, 160000);

test('nvme connect-all connects through the discovery log (advertised address 10.0.2.2) and disconnects', async () => {
  const out = (await guest.waitFor(/^@@GUEST stage=our-target-done@@$/m, 150000)).input!;
  for (const name of ['connect-all', 'connect-all-dev', 'connect-all-disconnect']) {
    expect([name, checkRc(out, name)]).toEqual([name, 0]);
  }
  expect(checkOutput(out, 'connect-all-disconnect')).toMatch(/disconnected 1 controller/);
}, 160000);

test('the Linux host with header and data digests (CRC32C) connects, writes 2 MiB, reads them back equal and disconnects', async () => {
  const out = (await guest.waitFor(/^@@GUEST stage=our-target-done@@$/m, 150000)).input!;
  for (const name of ['digest-connect', 'digest-write', 'digest-read', 'digest-compare', 'digest-disconnect']) {
    expect([name, checkRc(out, name)]).toEqual([name, 0]);
  }
}, 160000);

test('what the Linux host wrote reads back on the host over NBD (the replica re-shared): raw region, digest region and every file by md5, e2fsck passes', async () => {
  const out = (await guest.waitFor(/^@@GUEST stage=our-target-done@@$/m, 150000)).input!;
  const r = await agent.client().patchReplica(OUR.uuid, { share: 'nbd', allowedHosts: [] });
  expect(r.uri).toMatch(/^nbd:\/\/10\.0\.2\.2:\d+\//);
  const copy = path.join(dir, 'copy.img');
  await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', r.uri.replace('//10.0.2.2:', '//127.0.0.1:'), copy], { timeoutMs: 60000 });
  const image = fs.readFileSync(copy);
  expect(image.length).toBe(OUR.size);
  const raw = /^@@RAW md5 ([0-9a-f]{32})@@$/m.exec(out)![1];
  expect(md5(image.subarray(OUR.rawMiB * MiB, (OUR.rawMiB + 1) * MiB))).toBe(raw);
  const digest = /^@@DIGEST md5 ([0-9a-f]{32})@@$/m.exec(out)![1];
  expect(md5(image.subarray(OUR.digestAtMiB * MiB, (OUR.digestAtMiB + OUR.digestMiB) * MiB))).toBe(digest);
  const files = [...out.matchAll(/^@@FILE ([0-9a-f]{32}) (\/[\w/]+)@@$/gm)];
  expect(files.map((f) => f[2])).toEqual(['/big', '/dir/small', '/dir/text']);
  for (const [, sum, name] of files) {
    const dumped = path.join(dir, 'dumped');
    fs.rmSync(dumped, { force: true });
    await mustRun('debugfs', ['-R', `dump ${name} ${dumped}`, copy]);
    expect([name, md5(fs.readFileSync(dumped))]).toEqual([name, sum]);
  }
  await mustRun('e2fsck', ['-fn', copy]);
}, 160000);

test('the forwarded port reaches the Linux target: an NVMe/TCP ICReq from the host gets an ICResp', async () => {
  await guest.waitFor(/^@@READY linux-target@@$/m, 60000);
  // ICReq (PDU type 0, hlen 128, plen 128, PFV 0, no digests); nvmet answers ICResp (type 1) or closes.
  const icreq = Buffer.alloc(128);
  icreq.writeUInt8(0x00, 0);
  icreq.writeUInt8(128, 2);
  icreq.writeUInt32LE(128, 4);
  const resp = await new Promise<Buffer>((resolve, reject) => {
    const s = net.connect(nvmetPort, '127.0.0.1', () => s.write(icreq));
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 128) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('close', () => reject(new Error(`connection closed after ${got.length} bytes, no ICResp`)));
    s.on('error', reject);
    s.setTimeout(30000, () => s.destroy(new Error('no ICResp within 30 s')));
  });
  expect([resp.readUInt8(0), resp.readUInt8(2), resp.readUInt32LE(4)]).toEqual([0x01, 128, 128]);
});

test('our initiator against the Linux target: dp-nvmf-check writes 4 MiB in 4k..1M requests and reads back the same checksums', async () => {
  await guest.waitFor(/^@@READY linux-target@@$/m, 60000);
  const r = await mustRun(checkTool, [`nvmf://127.0.0.1:${nvmetPort}/${LINUX_NQN}`, '--offset', '0', '--bytes', String(4 * MiB)], { timeoutMs: 60000 });
  expect(r.stdout).toMatch(/^PASSED$/m);
  expect(r.stdout).toContain(`${64 * MiB} bytes`);
  const lines = r.stdout.split('\n').filter((l) => /requests x/.test(l));
  expect(lines.length).toBeGreaterThanOrEqual(3);
  for (const l of lines) {
    const m = /written ([0-9a-f]+) read ([0-9a-f]+) ok/.exec(l);
    expect([l, m?.[1]]).toEqual([l, m?.[2]]);
  }
}, 90000);

test('our initiator in an agent process (embedded block API on the nvmf:// URI): the guest region reads back, the host region lands in the guest ramdisk', async () => {
  const uri = `nvmf://127.0.0.1:${nvmetPort}/${LINUX_NQN}`;
  const guestMd5 = (await guest.waitFor(/^@@GUEST-REGION md5 ([0-9a-f]{32})@@$/m, 60000))[1];
  expect(md5(await agent.read(uri, GUEST_REGION.offset, GUEST_REGION.length))).toBe(guestMd5);
  const data = pattern(12, HOST_REGION.length);
  await agent.write(uri, HOST_REGION.offset, data);
  await agent.io({ op: 'flush', target: uri });
  expect(md5(await agent.read(uri, HOST_REGION.offset, HOST_REGION.length))).toBe(md5(data));
  await agent.io({ op: 'closedev', target: uri });
  expect(await guestHash(HOST_REGION.offset, HOST_REGION.length)).toBe(md5(data));
}, 120000);

test('a nexus in the agent with an nvmf:// child on the Linux target: 4 MiB written over NBD reads back and lands in the guest ramdisk after the child label', async () => {
  await guest.waitFor(/^@@READY linux-target@@$/m, 60000);
  const c = agent.client();
  const n = await c.putNexus(NEXUS, { sizeBytes: 4 * MiB, children: [`nvmf://127.0.0.1:${nvmetPort}/${LINUX_NQN}`], share: 'nbd' });
  expect(n.state).toBe('online');
  const uri = n.deviceUri.replace('//10.0.2.2:', '//127.0.0.1:');
  const data = pattern(34, 4 * MiB);
  const src = path.join(dir, 'nexus-in.img');
  const back = path.join(dir, 'nexus-out.img');
  fs.writeFileSync(src, data);
  await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, uri], { timeoutMs: 60000 });
  await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, back], { timeoutMs: 60000 });
  expect(md5(fs.readFileSync(back))).toBe(md5(data));
  // The child's data starts after its 1 MiB label (agent/native/src/nexus/LABEL.md).
  expect(await guestHash(1 * MiB, 4 * MiB)).toBe(md5(data));
  expect(await c.deleteNexus(NEXUS)).toBe(true);
}, 120000);

test('the guest script ends with status 0', async () => {
  guest.send('host-done');
  const r = await guest.done;
  expect(r.status).toBe(0);
}, 60000);

test("a guest script's exit status and output come back as they are", async () => {
  const r = await runGuest({ script: 'echo "from the guest"; exit 7', logFile: path.join(dir, 'status-console.log'), timeoutMs: 120000 });
  expect(r).toEqual({ status: 7, output: 'from the guest\n' });
}, 130000);

test('a guest that overruns its hard timeout is killed and the error names the stage it was in', async () => {
  const g = new Guest({ script: 'sleep 1000', logFile: path.join(dir, 'timeout-console.log'), timeoutMs: 2000 });
  await expect(g.done).rejects.toThrow(/guest timed out after 2 s in stage '(boot|modules|network|script)'/);
  expect(() => process.kill(g.pid!, 0)).toThrow(/ESRCH/);
  await g.kill();
}, 30000);
