/**
 * A small schema-driven protobuf (proto3) codec, enough for tfplugin6 and go-plugin's internal services.
 * Hand-written instead of protobufjs because the provider is started several times per terraform command
 * and start-up must stay cheap; the message tables below are written from the protocol reference.
 */

export type Scalar = 'string' | 'bytes' | 'bool' | 'int64' | 'uint32' | 'enum';
/**
 * [field number, name, kind, label] — kind is a scalar or a message descriptor; label 'rep', 'map' (string keys) or
 * 'opt' (proto3 `optional`: explicit presence, so a set value is sent even when it is the default, e.g. 0).
 */
export type Field = [number, string, Scalar | MessageDesc | (() => MessageDesc), ('rep' | 'map' | 'opt')?, Scalar?];
export interface MessageDesc {
  name: string;
  fields: Field[];
  byNo?: Map<number, Field>;
}

export function msg(name: string, fields: Field[]): MessageDesc {
  return { name, fields };
}

function kindOf(f: Field): Scalar | MessageDesc {
  const k = f[2];
  return typeof k === 'function' ? k() : k;
}

// ---------------------------------------------------------------------------------------------- writer
class Writer {
  private chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(256, n));
    this.pos = 0;
  }
  varint(v: number | bigint): void {
    this.ensure(10);
    if (typeof v === 'number' && v >= 0 && v <= 0x7fffffff) {
      while (v > 0x7f) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.pos++] = v;
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b > 0x7fn) {
      this.buf[this.pos++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.pos++] = Number(b);
  }
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  finish(): Buffer {
    this.chunks.push(this.buf.subarray(0, this.pos));
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }
}

function isDefault(kind: Scalar, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  switch (kind) {
    case 'string':
      return v === '';
    case 'bytes':
      return (v as Uint8Array).length === 0;
    case 'bool':
      return v === false;
    default:
      return v === 0 || v === 0n;
  }
}

function writeScalar(w: Writer, no: number, kind: Scalar, v: unknown): void {
  switch (kind) {
    case 'string':
      w.varint((no << 3) | 2);
      w.bytes(Buffer.from(v as string, 'utf8'));
      break;
    case 'bytes':
      w.varint((no << 3) | 2);
      w.bytes(v as Uint8Array);
      break;
    case 'bool':
      w.varint(no << 3);
      w.varint(v ? 1 : 0);
      break;
    default:
      w.varint(no << 3);
      w.varint(v as number | bigint);
      break;
  }
}

function writeMessage(w: Writer, desc: MessageDesc, obj: Record<string, unknown>): void {
  for (const f of desc.fields) {
    const [no, name, , label, valueKind] = f;
    const v = obj[name];
    if (v === undefined || v === null) continue;
    const kind = kindOf(f);
    if (label === 'map') {
      for (const [key, val] of Object.entries(v as Record<string, unknown>)) {
        const entry = new Writer();
        writeScalar(entry, 1, 'string', key);
        if (typeof kind === 'object') {
          const sub = new Writer();
          writeMessage(sub, kind, val as Record<string, unknown>);
          entry.varint((2 << 3) | 2);
          entry.bytes(sub.finish());
        } else writeScalar(entry, 2, valueKind ?? kind, val);
        w.varint((no << 3) | 2);
        w.bytes(entry.finish());
      }
    } else if (label === 'rep') {
      for (const item of v as unknown[]) writeOne(w, no, kind, item, true);
    } else {
      writeOne(w, no, kind, v, label === 'opt');
    }
  }
}

function writeOne(w: Writer, no: number, kind: Scalar | MessageDesc, v: unknown, always: boolean): void {
  if (typeof kind === 'object') {
    const sub = new Writer();
    writeMessage(sub, kind, v as Record<string, unknown>);
    w.varint((no << 3) | 2);
    w.bytes(sub.finish());
  } else if (always || !isDefault(kind, v)) {
    writeScalar(w, no, kind, v);
  }
}

export function encode(desc: MessageDesc, obj: Record<string, unknown>): Buffer {
  const w = new Writer();
  writeMessage(w, desc, obj);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------- reader
class Reader {
  pos: number;
  constructor(
    private buf: Uint8Array,
    start: number,
    private end: number,
  ) {
    this.pos = start;
  }
  more(): boolean {
    return this.pos < this.end;
  }
  varint(): bigint | number {
    let result = 0;
    let shift = 0;
    // fast path up to 28 bits, then fall back to bigint arithmetic
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
    let big = BigInt(result >>> 0);
    let s = 28n;
    for (let i = 0; i < 6; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      big |= BigInt(b & 0x7f) << s;
      if (b < 0x80) return big;
      s += 7n;
    }
    throw new Error('protobuf: varint too long');
  }
  len(): [number, number] {
    const n = Number(this.varint());
    if (n < 0 || this.pos + n > this.end) throw new Error('protobuf: length beyond message end');
    const start = this.pos;
    this.pos += n;
    return [start, this.pos];
  }
  skip(wt: number): void {
    switch (wt) {
      case 0:
        this.varint();
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.len();
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${wt}`);
    }
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
  }
}

function num(v: bigint | number, kind: Scalar): number | bigint {
  if (typeof v === 'number') return v;
  if (kind === 'int64') {
    const s = BigInt.asIntN(64, v);
    return s >= BigInt(Number.MIN_SAFE_INTEGER) && s <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s) : s;
  }
  return Number(BigInt.asUintN(32, v));
}

function readScalar(r: Reader, buf: Uint8Array, wt: number, kind: Scalar): unknown {
  if (kind === 'string' || kind === 'bytes') {
    if (wt !== 2) throw new Error('protobuf: wire type mismatch');
    const [s, e] = r.len();
    return kind === 'string' ? Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8') : Buffer.from(buf.subarray(s, e));
  }
  if (wt !== 0) throw new Error('protobuf: wire type mismatch');
  const v = r.varint();
  if (kind === 'bool') return v !== 0 && v !== 0n;
  return num(v, kind);
}

function readMessage(desc: MessageDesc, buf: Uint8Array, start: number, end: number): Record<string, unknown> {
  if (!desc.byNo) desc.byNo = new Map(desc.fields.map((f) => [f[0], f]));
  const out: Record<string, unknown> = {};
  const r = new Reader(buf, start, end);
  while (r.more()) {
    const tag = Number(r.varint());
    const no = tag >>> 3;
    const wt = tag & 7;
    const f = desc.byNo.get(no);
    if (!f) {
      r.skip(wt);
      continue;
    }
    const [, name, , label, valueKind] = f;
    const kind = kindOf(f);
    if (label === 'map') {
      const [s, e] = r.len();
      const er = new Reader(buf, s, e);
      let key = '';
      let val: unknown = typeof kind === 'object' ? {} : undefined;
      while (er.more()) {
        const t = Number(er.varint());
        if (t >>> 3 === 1) key = readScalar(er, buf, t & 7, 'string') as string;
        else if (t >>> 3 === 2) {
          if (typeof kind === 'object') {
            const [ss, ee] = er.len();
            val = readMessage(kind, buf, ss, ee);
          } else val = readScalar(er, buf, t & 7, valueKind ?? kind);
        } else er.skip(t & 7);
      }
      const m = (out[name] ??= {}) as Record<string, unknown>;
      m[key] = val;
      continue;
    }
    let v: unknown;
    if (typeof kind === 'object') {
      if (wt !== 2) throw new Error('protobuf: wire type mismatch');
      const [s, e] = r.len();
      v = readMessage(kind, buf, s, e);
    } else {
      v = readScalar(r, buf, wt, kind);
    }
    if (label === 'rep') ((out[name] ??= []) as unknown[]).push(v);
    else out[name] = v;
  }
  return out;
}

export function decode(desc: MessageDesc, buf: Uint8Array): Record<string, unknown> {
  return readMessage(desc, buf, 0, buf.length);
}
