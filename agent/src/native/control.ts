/**
 * control.ts - the control thread: every control call of the data path runs here.
 *
 * Threading design (why control calls do not use koffi's `.async` directly):
 *  - dp_last_error() is per *thread*. koffi's `.async` runs a call on some libuv pool thread and a
 *    following dp_last_error() may run on another, so the message would be lost or wrong.
 *  - So every *control* call (dp_init, pools, replicas, desc open/close, stats) runs in one
 *    dedicated worker thread ("control thread") that makes the call synchronously and then reads
 *    dp_last_error() on the same OS thread. The event loop never blocks; control calls are
 *    serialised (one at a time), which also makes multi-step operations predictable.
 *  - The I/O path stays on the main thread: dp_io_submit() never blocks (it queues to a reactor)
 *    and dp_desc_size/block_size are plain reads. Completions are reaped by dp_cq_wait() through
 *    koffi `.async` (see blockdev.ts); dp_cq_wait needs no error message.
 *  - koffi 3 pointers are BigInts, so descriptor handles cross the thread boundary as bigint.
 *  - A native call can block (a reactor that never answers, a peer that never replies). So that the
 *    HTTP API cannot hang forever on one, every control call has a deadline (controlTimeoutMs():
 *    $MAYASTOR_CONTROL_TIMEOUT_MS, default 60 s; dp_init/dp_fini have none). A call past it is
 *    rejected with DatapathTimeoutError (HTTP 504 naming the operation). The worker thread is still
 *    inside that C call and cannot be interrupted, so until it returns every further call is
 *    rejected at once with DatapathBusyError (HTTP 503 naming the stuck operation) instead of
 *    queueing behind it; when the stuck call finally returns, its late result is dropped (logged
 *    through onLateResult) and calls flow again.
 */
import { Worker } from 'node:worker_threads';
import { CONTROL_PROTOS, DP_UUID_STR_LEN, OPAQUES, STRUCTS } from './declarations';
import { DatapathBusyError, DatapathTimeoutError, controlTimeoutMs } from './errors';

/**
 * Code of the control thread. Out-parameters are described by markers in the args:
 *   {out:'struct'} -> an object koffi fills;  {out:'uuid'} -> 37-byte buffer returned as string;
 *   {out:'ptr'}    -> one-element array receiving a pointer;  {out:'bytes', size} -> a zeroed buffer of `size`
 *                     bytes the call fills (arrays of structs), returned as a Uint8Array.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffiPath);
const lib = koffi.load(workerData.libPath);
for (const o of workerData.opaques) { try { koffi.opaque(o); } catch {} }
for (const [n, f] of Object.entries(workerData.structs)) { try { koffi.struct(n, f); } catch {} }
const fns = {};
for (const [n, p] of Object.entries(workerData.protos)) fns[n] = lib.func(p);
const lastError = lib.func('const char *dp_last_error(void)');
parentPort.on('message', (m) => {
  const outs = [];
  const args = m.args.map((a) => {
    if (a && typeof a === 'object' && !Array.isArray(a) && a.out) {
      const v = a.out === 'struct' ? {} : a.out === 'uuid' ? Buffer.alloc(${DP_UUID_STR_LEN}) : a.out === 'bytes' ? Buffer.alloc(a.size) : [null];
      outs.push([a.out, v]);
      return v;
    }
    return a;
  });
  try {
    const ret = fns[m.fn](...args);
    const error = typeof ret === 'number' && ret < 0 ? String(lastError() || '') : '';
    const outVals = outs.map(([kind, v]) => kind === 'uuid' ? v.subarray(0, Math.max(0, v.indexOf(0))).toString('latin1')
      : kind === 'ptr' ? v[0] : kind === 'bytes' ? new Uint8Array(v) : v);
    parentPort.postMessage({ id: m.id, ret: ret === undefined ? 0 : ret, error, outs: outVals });
  } catch (e) {
    parentPort.postMessage({ id: m.id, throw: String(e && e.message || e) });
  }
});
`;

interface Pending {
  fn: string;
  resolve: (v: { ret: number; outs: unknown[]; error: string }) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Calls without a deadline: library start/stop (dp_fini joins the reactors). */
const NO_DEADLINE = new Set(['dp_init', 'dp_fini']);

export type OutMarker = { out: 'struct' | 'uuid' | 'ptr' } | { out: 'bytes'; size: number };

export class ControlThread {
  private worker: Worker;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;
  /** Calls that timed out but are still running in the worker (id -> fn, start). */
  private stuck = new Map<number, { fn: string; since: number }>();
  /** Told when a timed-out call returns after all (its result is dropped). */
  onLateResult: ((fn: string, ms: number, ret: number, error: string) => void) | undefined;

  constructor(libPath: string) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        koffiPath: require.resolve('koffi'),
        libPath,
        structs: STRUCTS,
        opaques: OPAQUES,
        protos: CONTROL_PROTOS,
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; ret: number; error: string; outs: unknown[]; throw?: string }) => {
      const late = this.stuck.get(m.id);
      if (late) {
        this.stuck.delete(m.id);
        this.onLateResult?.(late.fn, Date.now() - late.since, m.ret, m.throw ?? m.error);
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (p.timer) clearTimeout(p.timer);
      if (this.pending.size === 0 && this.stuck.size === 0) this.worker.unref();
      if (m.throw !== undefined) p.reject(new Error(`datapath control thread: ${m.throw}`));
      else p.resolve({ ret: m.ret, outs: m.outs, error: m.error });
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(e);
      }
      this.pending.clear();
      this.stuck.clear();
    };
    this.worker.on('error', (e) => fail(new Error(`datapath control thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => fail(new Error(`datapath control thread exited (${code})`)));
  }

  call(fn: string, args: unknown[], timeoutMs = controlTimeoutMs()): Promise<{ ret: number; outs: unknown[]; error: string }> {
    if (this.dead) return Promise.reject(this.dead);
    // The worker runs one call at a time: behind a stuck call this one would wait just as long.
    for (const s of this.stuck.values()) {
      if (!NO_DEADLINE.has(fn)) return Promise.reject(new DatapathBusyError(fn, s.fn, Date.now() - s.since));
    }
    const id = this.nextId++;
    const since = Date.now();
    return new Promise((resolve, reject) => {
      const p: Pending = { fn, resolve, reject };
      if (!NO_DEADLINE.has(fn)) {
        p.timer = setTimeout(() => {
          if (!this.pending.delete(id)) return;
          if (this.pending.size === 0) this.worker.unref();
          this.stuck.set(id, { fn, since });
          reject(new DatapathTimeoutError(fn, timeoutMs));
        }, timeoutMs);
        p.timer.unref();
      }
      this.pending.set(id, p);
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ id, fn, args });
    });
  }

  /** The call the worker is stuck in (timed out, not yet returned), if any. */
  stuckCall(): { fn: string; forMs: number } | undefined {
    for (const s of this.stuck.values()) return { fn: s.fn, forMs: Date.now() - s.since };
    return undefined;
  }

  async terminate(): Promise<void> {
    this.dead = new Error('datapath is shut down');
    await this.worker.terminate();
  }
}

// ---- the binding ------------------------------------------------------------------------------
