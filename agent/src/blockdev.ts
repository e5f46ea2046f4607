/**
 * blockdev.ts - embedded block access (the original design's "Descriptor" API).
 *
 *   const dev = await BlockDevice.open(replicaUuid);       // or 'uring:///path', 'malloc:///m?size_mb=8'
 *   const buf = BlockDevice.allocBuffer(8192);
 *   await dev.writeAt(buf, 4096); await dev.flush(); await dev.readAt(buf, 4096);
 *   await dev.close();
 *
 * Every call returns a Promise; the event loop never blocks. No I/O byte passes through JS: the
 * Buffer's memory is handed to the C data path, which reads/writes it from its reactor thread.
 *
 * Design decisions:
 *  - Unaligned requests are REJECTED, never read-modify-written: offset and length must be multiples
 *    of `blockSize` (the C side returns -EINVAL; we check first to name the field). A silent RMW would
 *    turn two concurrent, non-overlapping sub-block writes into lost updates. Callers that need byte
 *    granularity read the enclosing blocks, patch and write them back themselves.
 *  - One completion queue (dp_cq) per process. A single `dp_cq_wait.async` call reaps completions in
 *    batches of up to 64 and resolves promises by tag. The waiter is armed only while I/O is
 *    outstanding: an idle agent keeps no libuv worker thread parked in dp_cq_wait (the pool has only
 *    4 threads by default and fs/dns need them), and pending I/O keeps the process alive as it should.
 *  - Buffers are kept referenced (in the in-flight table) until their completion is reaped, so GC
 *    cannot free memory the reactor is still writing to.
 *  - O_DIRECT needs page-aligned memory. allocBuffer() returns 4096-aligned Buffers (zero copy);
 *    the C layer copies other Buffers through an aligned bounce buffer, so any Buffer works.
 */
import koffi from 'koffi';
import { CqHandle, Datapath, DescHandle, IoOp, NativeError, errnoName } from './native';

const MEM_ALIGN = 4096;
const BATCH = 64;

export class BlockDeviceError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(message: string, code: string, errno = 0) {
    super(message);
    this.name = 'BlockDeviceError';
    this.code = code;
    this.errno = errno;
  }
}

interface InFlight {
  resolve: () => void;
  reject: (e: Error) => void;
  /** Referenced until completion: the C side owns this memory meanwhile. */
  buf: Buffer | null;
  describe: () => string;
}

/** The process's completion queue and its reaper loop. */
class CompletionQueue {
  private static instance: CompletionQueue | undefined;
  private readonly cq: CqHandle;
  private readonly inflight = new Map<number, InFlight>();
  private nextTag = 1;
  private waiting: Promise<void> | undefined;
  private readonly tags = new BigUint64Array(BATCH);
  private readonly results = new Int32Array(BATCH);
  private closed = false;

  private constructor(private readonly dp: Datapath) {
    this.cq = dp.cqCreate();
  }

  static get(dp: Datapath): CompletionQueue {
    if (!CompletionQueue.instance || CompletionQueue.instance.dp !== dp || CompletionQueue.instance.closed) {
      CompletionQueue.instance = new CompletionQueue(dp);
    }
    return CompletionQueue.instance;
  }

  static current(): CompletionQueue | undefined {
    return CompletionQueue.instance;
  }

  get outstanding(): number {
    return this.inflight.size;
  }

  submit(desc: DescHandle, op: IoOp, buf: Buffer | null, offset: number, length: number, describe: () => string): Promise<void> {
    if (this.closed) return Promise.reject(new BlockDeviceError(`${describe()}: the data path is shut down`, 'ESHUTDOWN'));
    const tag = this.nextTag++;
    return new Promise<void>((resolve, reject) => {
      const rc = this.dp.ioSubmit(desc, this.cq, op, buf, offset, length, tag);
      if (rc < 0) {
        const code = errnoName(-rc);
        const detail = this.dp.lastError();
        reject(new BlockDeviceError(`${describe()}: ${detail || code}`, code, -rc));
        return;
      }
      this.inflight.set(tag, { resolve, reject, buf, describe });
      this.arm();
    });
  }

  /** Start the reaper if I/O is outstanding and none is running. */
  private arm(): void {
    if (this.waiting || this.inflight.size === 0 || this.closed) return;
    this.waiting = this.loop().finally(() => {
      this.waiting = undefined;
      this.arm();
    });
  }

  private async loop(): Promise<void> {
    while (this.inflight.size > 0 && !this.closed) {
      let n: number;
      try {
        n = await this.dp.cqWait(this.cq, this.tags, this.results, -1);
      } catch (e) {
        this.failAll(e as Error);
        return;
      }
      if (n < 0) {
        if (n === -4 /* EINTR: dp_cq_wake at shutdown */ && this.closed) return;
        continue;
      }
      for (let i = 0; i < n; i++) {
        const tag = Number(this.tags[i]);
        const res = this.results[i];
        const f = this.inflight.get(tag);
        if (!f) continue;
        this.inflight.delete(tag);
        if (res < 0) {
          const code = errnoName(-res);
          f.reject(new BlockDeviceError(`${f.describe()} failed: ${code}`, code, -res));
        } else f.resolve();
      }
    }
  }

  private failAll(e: Error): void {
    for (const f of this.inflight.values()) f.reject(new BlockDeviceError(`${f.describe()}: ${e.message}`, 'EIO', 5));
    this.inflight.clear();
  }

  /** Wait for in-flight I/O of nobody in particular to drain, then free the queue. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.waiting) {
      this.dp.cqWake(this.cq);
      await this.waiting.catch(() => undefined);
    }
    this.failAll(new Error('the data path is shut down'));
    this.dp.cqDestroy(this.cq);
    if (CompletionQueue.instance === this) CompletionQueue.instance = undefined;
  }
}

/** Free the process's completion queue (call before Datapath.fini()). */
export async function shutdownBlockIo(): Promise<void> {
  await CompletionQueue.current()?.shutdown();
}

export class BlockDevice {
  readonly target: string;
  readonly size: number;
  readonly blockSize: number;
  private desc: DescHandle | undefined;
  private readonly dp: Datapath;
  private readonly cq: CompletionQueue;
  private pending = new Set<Promise<unknown>>();

  private constructor(dp: Datapath, target: string, desc: DescHandle) {
    this.dp = dp;
    this.target = target;
    this.desc = desc;
    this.size = dp.descSize(desc);
    this.blockSize = dp.descBlockSize(desc);
    this.cq = CompletionQueue.get(dp);
  }

  /**
   * Open a replica (by uuid) or a device URI. The data path must be initialised in this process
   * (the agent's startAgent() does it; standalone users call Datapath.load().init()).
   */
  static async open(target: string, dp: Datapath | undefined = Datapath.current()): Promise<BlockDevice> {
    if (!dp || !dp.isInitialised) {
      throw new BlockDeviceError(`open '${target}': the data path is not initialised in this process`, 'ENODEV', 19);
    }
    let desc: DescHandle;
    try {
      desc = await dp.descOpen(target);
    } catch (e) {
      if (e instanceof NativeError) throw new BlockDeviceError(`open '${target}': ${e.message}`, e.code, e.errno);
      throw e;
    }
    return new BlockDevice(dp, target, desc);
  }

  /** A zero-filled Buffer whose memory is 4096-aligned (zero-copy I/O with O_DIRECT). */
  static allocBuffer(length: number): Buffer {
    const raw = Buffer.alloc(length + MEM_ALIGN);
    const addr = Number(koffi.address(raw) % BigInt(MEM_ALIGN));
    const skip = addr === 0 ? 0 : MEM_ALIGN - addr;
    return raw.subarray(skip, skip + length);
  }

  get isOpen(): boolean {
    return this.desc !== undefined;
  }

  /** Read buf.length bytes at offset into buf. */
  readAt(buf: Buffer, offset: number): Promise<void> {
    return this.rw(IoOp.READ, buf, offset);
  }

  /** Write buf at offset. Resolves when the data path acknowledged the write. */
  writeAt(buf: Buffer, offset: number): Promise<void> {
    return this.rw(IoOp.WRITE, buf, offset);
  }

  /** Make every acknowledged write stable. */
  flush(): Promise<void> {
    return this.track(this.cq.submit(this.handle('flush'), IoOp.FLUSH, null, 0, 0, () => `flush of '${this.target}'`));
  }

  /** Discard a range: it reads as zeros afterwards. */
  unmap(offset: number, length: number): Promise<void> {
    return this.range(IoOp.UNMAP, 'unmap', offset, length);
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.range(IoOp.WRITE_ZEROES, 'write-zeroes', offset, length);
  }

  /** Wait for this device's outstanding I/O, then close the descriptor. */
  async close(): Promise<void> {
    const desc = this.desc;
    if (desc === undefined) return;
    this.desc = undefined;
    await Promise.allSettled([...this.pending]);
    await this.dp.descClose(desc);
  }

  // ---- internals ---------------------------------------------------------------------------

  private handle(what: string): DescHandle {
    if (this.desc === undefined) throw new BlockDeviceError(`${what} on '${this.target}': the device is closed`, 'EBADF', 9);
    return this.desc;
  }

  private check(what: string, offset: number, length: number): void {
    const bs = this.blockSize;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new BlockDeviceError(`${what} on '${this.target}': offset ${offset} must be a non-negative integer`, 'EINVAL', 22);
    }
    if (!Number.isSafeInteger(length) || length <= 0) {
      throw new BlockDeviceError(`${what} on '${this.target}': length ${length} must be a positive integer`, 'EINVAL', 22);
    }
    if (offset % bs !== 0 || length % bs !== 0) {
      const field = offset % bs !== 0 ? `offset ${offset}` : `length ${length}`;
      throw new BlockDeviceError(
        `${what} on '${this.target}': ${field} is not a multiple of the block size ${bs} (unaligned I/O is rejected, no read-modify-write)`,
        'EINVAL',
        22,
      );
    }
    if (offset + length > this.size) {
      throw new BlockDeviceError(`${what} on '${this.target}': range ${offset}+${length} is beyond the device size ${this.size}`, 'ERANGE', 34);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const done = () => this.pending.delete(p);
    p.then(done, done);
    return p;
  }

  private async range(op: IoOp, what: string, offset: number, length: number): Promise<void> {
    const desc = this.handle(what);
    this.check(what, offset, length);
    return this.track(this.cq.submit(desc, op, null, offset, length, () => `${what} of ${length} bytes at offset ${offset} on '${this.target}'`));
  }

  private async rw(op: IoOp.READ | IoOp.WRITE, buf: Buffer, offset: number): Promise<void> {
    const what = op === IoOp.READ ? 'read' : 'write';
    if (!Buffer.isBuffer(buf)) throw new BlockDeviceError(`${what} on '${this.target}': buf must be a Buffer`, 'EINVAL', 22);
    const desc = this.handle(what);
    this.check(what, offset, buf.length);
    const describe = () => `${what} of ${buf.length} bytes at offset ${offset} on '${this.target}'`;
    await this.track(this.cq.submit(desc, op, buf, offset, buf.length, describe));
  }
}
