/**
 * index-pack for a received packfile, with Node's native zlib: parse every entry
 * (gitformat-pack(5)), resolve OFS_DELTA and REF_DELTA chains, hash each object, and write
 * the version-2 .idx (byte for byte what `git index-pack` writes). isomorphic-git's
 * indexPack does the same in pure JS and was most of the time of a push.
 *
 * A thin pack (a delta against an object the pack does not carry) is refused: we
 * advertise no-thin.
 *
 * Decompression bombs: every object's inflated size is known before it is inflated — a
 * whole object's from its entry header, a delta's result from the second varint of its
 * (small) instruction stream — and checked against `maxObjectBytes`, and their sum against
 * `maxInflatedBytes`, before any large buffer is allocated. zlib is never let to produce
 * more than the entry header declares.
 *
 * Memory does not grow with the pack: it is read from its file through a bounded window
 * (small entries inflated at once from the window, large ones streamed through zlib and
 * hashed as they come), bodies are kept only within budgets, and whatever a delta needs
 * that was not kept is inflated again from the file.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { crc32, createInflate } from 'node:zlib';
import { inflateKnown } from './inflater.ts';
import { BodyArena } from './body-arena.ts';
import { COPY_CHUNK, readAt } from './file-range.ts';
import { memoryCheckpoint } from '../../../platform/memory-governor.ts';

type ObjectKind = 'commit' | 'tree' | 'blob' | 'tag';

const TYPES = ['', 'commit', 'tree', 'blob', 'tag'] as const;
const OFS_DELTA = 6;
const REF_DELTA = 7;

export class PackError extends Error {
  override name = 'PackError';
}

export interface InflateLimits {
  /** Largest object, inflated (a whole object or a delta's result), bytes. */
  maxObjectBytes: number;
  /** All objects of the pack together, inflated, bytes. */
  maxInflatedBytes: number;
  /** How each limit is named in messages (e.g. "storage/storage.yaml: maxObjectBytes"). */
  names?: { maxObjectBytes?: string; maxInflatedBytes?: string };
}

export const DEFAULT_INFLATE_LIMITS: InflateLimits = { maxObjectBytes: 100 << 20, maxInflatedBytes: 1 << 30 };

/**
 * A git delta's header (gitformat-pack(5)): the base size and the result size, two
 * varints, and where the instructions start. Read without applying the delta.
 */
export function deltaHeader(delta: Buffer): { baseSize: number; resultSize: number; start: number } {
  let p = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (p >= delta.length) throw new PackError('truncated delta header');
      const b = delta[p++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return v;
      if (shift > 49) throw new PackError('delta size too large');
    }
  };
  const baseSize = varint();
  const resultSize = varint();
  return { baseSize, resultSize, start: p };
}

/** The result size a delta declares (its second header varint), read without applying it. */
export function deltaResultSize(delta: Buffer): number {
  return deltaHeader(delta).resultSize;
}

/**
 * The entries of a pack in pack order, one slot per entry in typed arrays rather than an
 * object and hex strings per entry: a 15,000-object push held ~10 MiB of V8 heap in those
 * (Entry objects, Maps keyed by offset and by hex id), most of its peak over idle
 * (bench/storage, issue 16). Grows by doubling: a header's object count is not trusted.
 */
class Entries {
  n = 0;
  /** Where each entry starts, where it ends, and where its compressed data starts (after the header and any delta base). */
  offset = new Float64Array(0);
  end = new Float64Array(0);
  dataStart = new Float64Array(0);
  /** The inflated size its header declares (a delta's: its instructions). */
  size = new Float64Array(0);
  /** The pack type code (1–4 whole, 6 OFS_DELTA, 7 REF_DELTA). */
  kind = new Uint8Array(0);
  /** The object's type code (1–4) once known: at parse time for whole objects, at resolution for deltas; 0 before. */
  type = new Uint8Array(0);
  crc = new Uint32Array(0);
  /** An OFS_DELTA's base, by index (its offset is looked up at parse time); -1 otherwise. */
  base = new Int32Array(0);
  /** Object ids, 20 bytes each, valid where `type` is set. */
  oid = Buffer.alloc(0);
  /** A REF_DELTA's base id (hex), by index: rare (we advertise ofs-delta). */
  readonly refBase = new Map<number, string>();
  /**
   * Inflated data, kept only within a budget: commits, trees and tags (the connectivity
   * check walks them) and small delta instructions. Anything else is inflated again from
   * the pack file when a delta needs it, so a push never holds its pack in memory.
   */
  readonly data = new Map<number, Buffer>();

  add(offset: number, kind: number, base: number): number {
    if (this.n === this.kind.length) this.grow(Math.max(1024, this.n * 2));
    const i = this.n++;
    this.offset[i] = offset;
    this.kind[i] = kind;
    this.base[i] = base;
    return i;
  }

  /** The index of the entry starting at `offset`, or -1 (entries are in offset order). */
  at(offset: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const o = this.offset[mid]!;
      if (o === offset) return mid;
      if (o < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  setOid(i: number, digest: Buffer): void {
    digest.copy(this.oid, i * 20);
  }

  hex(i: number): string {
    return this.oid.toString('hex', i * 20, i * 20 + 20);
  }

  private grow(cap: number): void {
    const f64 = (a: Float64Array) => { const b = new Float64Array(cap); b.set(a); return b; };
    this.offset = f64(this.offset);
    this.end = f64(this.end);
    this.dataStart = f64(this.dataStart);
    this.size = f64(this.size);
    const u8 = (a: Uint8Array) => { const b = new Uint8Array(cap); b.set(a); return b; };
    this.kind = u8(this.kind);
    this.type = u8(this.type);
    const crc = new Uint32Array(cap);
    crc.set(this.crc);
    this.crc = crc;
    const base = new Int32Array(cap);
    base.set(this.base);
    this.base = base;
    const oid = Buffer.alloc(cap * 20);
    this.oid.copy(oid);
    this.oid = oid;
  }
}

/** Where a pack is read from: a Buffer, or a file by offset (bounded reads). */
export interface PackSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /** Reads `length` bytes at `offset` into `into` (from its start), when the source can; returns how many. */
  readInto?(into: Buffer, offset: number, length: number): Promise<number>;
}

export const bufferSource = (b: Buffer): PackSource => ({ size: b.length, read: async (o, l) => b.subarray(o, Math.min(b.length, o + l)) });
export const fileSource = (fh: FileHandle, size: number): PackSource => ({
  size,
  read: (o, l) => readAt(fh, o, Math.max(0, Math.min(size, o + l) - o)),
  async readInto(into, o, l) {
    let got = 0;
    for (const want = Math.max(0, Math.min(size, o + l) - o); got < want;) {
      const { bytesRead } = await fh.read(into, got, want - got, o + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  },
});

/** Entries are parsed from a window of the pack this large, read again as the parse moves on. */
const WINDOW = 4 << 20;
/** Objects up to this size are inflated at once from the window; larger ones streamed. */
const SMALL = 1 << 20;
/** Inflated commits, trees and tags kept for the connectivity check, and delta data kept for resolution. */
const KEPT_BYTES = 16 << 20;
const DELTA_BYTES = 16 << 20;

/**
 * A window over the pack, refilled as the parse moves on. A file source refills one buffer
 * in place rather than reading into a new 4 MiB Buffer each time: those lived until a major
 * GC, several at once in a push (issue 16). So a Buffer `get` returned is valid only until
 * the next `get`: the parse uses each before asking for more.
 */
class Window {
  private buf: Buffer = Buffer.alloc(0);
  private own: Buffer | undefined;
  private at = 0;
  private readonly src: PackSource;
  private readonly limit: number;
  constructor(src: PackSource, limit: number) {
    this.src = src;
    this.limit = limit;
  }
  /** Bytes [off, off + len), cut at the limit. */
  async get(off: number, len: number): Promise<Buffer> {
    const end = Math.min(off + len, this.limit);
    if (off < this.at || end > this.at + this.buf.length) {
      const want = Math.min(Math.max(end - off, WINDOW), this.limit - off);
      if (this.src.readInto) {
        if (!this.own || this.own.length < want) this.own = Buffer.allocUnsafeSlow(Math.max(want, WINDOW));
        this.buf = this.own.subarray(0, await this.src.readInto(this.own, off, want));
      } else this.buf = await this.src.read(off, want);
      this.at = off;
    }
    return this.buf.subarray(off - this.at, end - this.at);
  }
}

/**
 * Inflate one entry's data streamed from the pack, in bounded pieces: each output chunk
 * goes to `onData` and is not kept here. Returns the compressed bytes it took. Refuses
 * more output than `size` as soon as it appears.
 */
async function inflateStreamed(src: PackSource, start: number, limit: number, size: number, onData: (chunk: Buffer) => void, crcSeed: number): Promise<{ consumed: number; crc: number }> {
  const z = createInflate();
  let out = 0;
  let over = false;
  z.on('data', (c: Buffer) => {
    // A large object inflates to many chunks between the governor's timer ticks (a 12.8 MB
    // blob: 800): every 2 MiB of them the usage is read, so their garbage is collected as it goes.
    memoryCheckpoint(c.length);
    out += c.length;
    if (out > size) {
      over = true;
      z.destroy();
    } else onData(c);
  });
  const ended = new Promise<void>((resolve, reject) => {
    z.once('end', resolve);
    z.once('error', reject);
    z.once('close', () => (over ? reject(new PackError('inflates to more than its header says')) : undefined));
  });
  ended.catch(() => {});
  let fed = start;
  let crc = crcSeed;
  let used = 0;
  while (fed < limit && !over) {
    const chunk = await src.read(fed, Math.min(COPY_CHUNK, limit - fed));
    fed += chunk.length;
    // A zlib error destroys the stream without calling back the write in flight (a hostile
    // pack hung its push this way, found by the fuzz test): the error ends the wait too.
    await Promise.race([new Promise<void>((resolve) => z.write(chunk, () => resolve())), ended]);
    if (over) break;
    crc = crc32(chunk.subarray(0, z.bytesWritten - used), crc);
    used = z.bytesWritten;
    if (used < fed - start) break; // the stream ended inside this chunk
  }
  if (!over) z.end();
  await ended;
  if (out !== size) throw new PackError(`inflates to ${out} bytes, its header says ${size}`);
  return { consumed: used, crc };
}

/** Apply a git delta (gitformat-pack(5), "Deltified representation") to `base`. */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  const head = deltaHeader(delta);
  let p = head.start;
  if (head.baseSize !== base.length) throw new PackError(`delta base is ${base.length} bytes, the delta expects ${head.baseSize}`);
  const out = Buffer.allocUnsafe(head.resultSize);
  let o = 0;
  while (p < delta.length) {
    const op = delta[p++]!;
    if (op & 0x80) {
      let off = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) off |= delta[p++]! << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size |= delta[p++]! << (8 * i);
      off >>>= 0;
      if (size === 0) size = 0x10000;
      if (p > delta.length || off + size > base.length || o + size > out.length) throw new PackError('delta copy out of range');
      base.copy(out, o, off, off + size);
      o += size;
    } else if (op > 0) {
      if (p + op > delta.length || o + op > out.length) throw new PackError('delta insert out of range');
      delta.copy(out, o, p, p + op);
      p += op;
      o += op;
    } else {
      throw new PackError('delta opcode 0 is reserved');
    }
  }
  if (o !== out.length) throw new PackError('delta result is shorter than it says');
  return out;
}

/** Parse every entry of a pack (its trailing SHA-1 already checked), reading it through a bounded window. */
async function parsePack(src: PackSource, limits: InflateLimits, arena: BodyArena): Promise<Entries> {
  const objName = limits.names?.maxObjectBytes ?? 'maxObjectBytes';
  const totalName = limits.names?.maxInflatedBytes ?? 'maxInflatedBytes';
  let total = 0;
  const count_ = (n: number, bytes: number, what: string) => {
    if (bytes > limits.maxObjectBytes) throw new PackError(`object ${n} ${what} ${bytes} bytes, over the limit ${objName} = ${limits.maxObjectBytes} bytes: push smaller files, or raise the limit`);
    total += bytes;
    if (total > limits.maxInflatedBytes) throw new PackError(`the pushed objects inflate to more than ${limits.maxInflatedBytes} bytes, over the limit ${totalName}: push less at a time, or raise the limit`);
  };
  if (src.size < 32) throw new PackError('not a packfile');
  const head = await src.read(0, 12);
  if (head.toString('latin1', 0, 4) !== 'PACK') throw new PackError('not a packfile');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new PackError(`pack version ${version} is not supported`);
  const count = head.readUInt32BE(8);
  const limit = src.size - 20;
  const win = new Window(src, limit);
  const entries = new Entries();
  let keptBytes = 0;
  let deltaBytes = 0;
  let off = 12;
  for (let n = 0; n < count; n++) {
    memoryCheckpoint();
    const start = off;
    if (off >= limit) throw new PackError(`pack ends after ${n} of ${count} objects`);
    // The longest header (size varint + OFS offset, or + REF id) fits 64 bytes.
    const hb = await win.get(off, 64);
    let p = 0;
    let b = hb[p++]!;
    const kind = (b >> 4) & 7;
    let size = b & 0x0f;
    let shift = 4;
    while (b & 0x80) {
      if (p >= hb.length || shift > 49) throw new PackError('bad object header');
      b = hb[p++]!;
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let base = -1;
    let baseOid: string | undefined;
    if (kind === OFS_DELTA) {
      if (p >= hb.length) throw new PackError('bad delta offset');
      b = hb[p++]!;
      let rel = b & 0x7f;
      while (b & 0x80) {
        if (p >= hb.length) throw new PackError('bad delta offset');
        b = hb[p++]!;
        rel = (rel + 1) * 128 + (b & 0x7f);
      }
      const baseOffset = start - rel;
      if (baseOffset < 12 || baseOffset >= start) throw new PackError('delta base offset out of range');
      base = entries.at(baseOffset);
      if (base < 0) throw new PackError(`object at ${start}: no object starts at its base offset ${baseOffset}`);
    } else if (kind === REF_DELTA) {
      if (p + 20 > hb.length) throw new PackError('truncated delta base id');
      baseOid = hb.toString('hex', p, p + 20);
      p += 20;
    } else if (kind < 1 || kind > 4) {
      throw new PackError(`object type ${kind} is not valid`);
    }
    const headCrc = crc32(hb.subarray(0, p));
    off = start + p;
    const whole = kind >= 1 && kind <= 4;
    // Whole objects are counted at their declared size before inflating (zlib may not
    // produce more than that); delta instructions are small and their result is counted below.
    if (whole) count_(n + 1, size, 'inflates to');
    else if (size > limits.maxObjectBytes) count_(n + 1, size, 'has a delta of');
    const type = whole ? TYPES[kind]! : undefined;
    const keep = whole ? type !== 'blob' && keptBytes + size <= KEPT_BYTES : deltaBytes + size <= DELTA_BYTES;
    let data: Buffer | undefined;
    let oid: Buffer | undefined;
    let consumed = -1;
    let crc = 0;
    if (size <= SMALL) {
      // Usually the whole compressed stream is in the window: inflate it at once. A stream
      // longer than the window holds (odd but valid deflate) is streamed below.
      const input = await win.get(off, size + (size >> 4) + 1024);
      try {
        const r = inflateKnown(input, size);
        consumed = r.consumed;
        crc = crc32(input.subarray(0, consumed), headCrc);
        if (whole) oid = objectId(type!, r.buffer);
        else count_(n + 1, deltaResultSize(r.buffer), 'is a delta whose result is');
        if (keep) data = r.buffer;
      } catch (err) {
        if (err instanceof PackError) throw err;
        const truncated = (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' && off + input.length < limit;
        if (!truncated) throw new PackError(`object ${n + 1} does not inflate: ${(err as Error).message}`);
      }
    }
    if (consumed < 0) {
      const hash = whole ? createHash('sha1').update(`${type} ${size}\0`) : undefined;
      const kept: Buffer[] = [];
      let first: Buffer | undefined;
      try {
        const r = await inflateStreamed(src, off, limit, size, (c) => {
          hash?.update(c);
          if (keep) kept.push(c);
          // A delta's header (two varints) is in its first bytes.
          if (!whole && (!first || first.length < 32)) first = first ? Buffer.concat([first, c]) : c;
        }, headCrc);
        consumed = r.consumed;
        crc = r.crc;
      } catch (err) {
        if (err instanceof PackError && /^object /.test(err.message)) throw err;
        throw new PackError(`object ${n + 1} does not inflate: ${(err as Error).message}`);
      }
      if (whole) oid = hash!.digest();
      else count_(n + 1, deltaResultSize(first ?? Buffer.alloc(0)), 'is a delta whose result is');
      if (keep) data = Buffer.concat(kept);
    }
    const i = entries.add(start, kind, base);
    entries.end[i] = off + consumed;
    entries.dataStart[i] = off;
    entries.size[i] = size;
    entries.crc[i] = crc >>> 0;
    if (baseOid !== undefined) entries.refBase.set(i, baseOid);
    off += consumed;
    if (whole) {
      entries.type[i] = kind;
      entries.setOid(i, oid!);
    }
    if (data) {
      // Commits, trees and tags stay until the connectivity check: copied out of the pool slab zlib's output sits in (body-arena.ts).
      if (whole) data = arena.add(data);
      entries.data.set(i, data);
      if (whole) keptBytes += data.length;
      else deltaBytes += data.length;
    }
  }
  if (off !== limit) throw new PackError('trailing bytes after the last object');
  return entries;
}

function objectId(type: string, body: Buffer): Buffer {
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest();
}

/**
 * Index `pack` (the bytes of objects/pack/pack-X.pack, checksum already verified): every
 * object id in it, and the bytes of its .idx. Pure: the caller writes the files.
 */
export interface IndexedPack {
  oids: string[];
  /** Each object's type: the connectivity check needs no blob's body. */
  types: Map<string, ObjectKind>;
  idx: Buffer;
  /** The pack's commits, trees and tags, resolved: connectivity checks walk these. */
  structure: { oid: string; type: 'commit' | 'tree' | 'tag'; body: Buffer }[];
}

export async function indexPack(pack: Buffer | PackSource, limits: InflateLimits = DEFAULT_INFLATE_LIMITS): Promise<IndexedPack> {
  const src = Buffer.isBuffer(pack) ? bufferSource(pack) : pack;
  const arena = new BodyArena();
  const E = await parsePack(src, limits, arena);
  // Objects by id, only for REF_DELTA bases (a pack with none needs no such map).
  const byOid = E.refBase.size > 0 ? new Map<string, number>() : undefined;
  if (byOid) for (let i = 0; i < E.n; i++) if (E.type[i]) byOid.set(E.hex(i), i);

  // Bodies of resolved objects that deltas may build on: commits, trees and tags are kept
  // within a budget (the connectivity check walks them); the rest only in a bounded,
  // recently-used cache, and re-inflated or re-resolved from the pack when a delta needs
  // one that was dropped.
  const kept = new Map<number, Buffer>();
  let keptBytes = 0;
  const recent = new Map<number, Buffer>();
  let recentBytes = 0;
  const RECENT_LIMIT = 16 << 20;
  const BLOB = 3;
  const remember = (i: number, body: Buffer) => {
    if (E.type[i] !== BLOB && keptBytes + body.length <= KEPT_BYTES) {
      kept.set(i, arena.add(body)); // a delta's result is a pool slice: keeping it would pin its slab
      keptBytes += body.length;
      return;
    }
    recent.set(i, body);
    recentBytes += body.length;
    for (const [k, b] of recent) {
      if (recentBytes <= RECENT_LIMIT) break;
      recent.delete(k);
      recentBytes -= b.length;
    }
  };
  const inflated = async (i: number): Promise<Buffer> => E.data.get(i) ?? inflateKnown(await src.read(E.dataStart[i]!, E.end[i]! - E.dataStart[i]!), E.size[i]!).buffer;
  const baseIndexOf = (i: number): number | undefined => {
    if (E.base[i]! >= 0) return E.base[i]!;
    const ref = E.refBase.get(i);
    return ref !== undefined ? byOid!.get(ref) : undefined;
  };
  const bodyOf = async (i: number, depth = 0): Promise<Buffer> => {
    const cached = kept.get(i) ?? recent.get(i);
    if (cached) return cached;
    if (depth > 10_000) throw new PackError('delta chain too deep');
    let body: Buffer;
    if (E.kind[i]! <= 4) body = await inflated(i);
    else body = applyDelta(await bodyOf(baseIndexOf(i)!, depth + 1), await inflated(i));
    remember(i, body);
    return body;
  };
  for (const [i, data] of E.data) {
    if (E.type[i] && E.type[i] !== BLOB) {
      kept.set(i, data);
      keptBytes += data.length;
    }
  }

  // Deltas until nothing more resolves (a REF_DELTA's base may come later in the pack).
  let pending: number[] = [];
  for (let i = 0; i < E.n; i++) if (!E.type[i]) pending.push(i);
  while (pending.length > 0) {
    const next: number[] = [];
    for (const i of pending) {
      memoryCheckpoint();
      const j = baseIndexOf(i);
      if (j === undefined || !E.type[j]) {
        next.push(i);
        continue;
      }
      E.type[i] = E.type[j]!;
      const body = applyDelta(await bodyOf(j), await inflated(i));
      E.data.delete(i); // resolved: its instructions are not needed again
      E.setOid(i, objectId(TYPES[E.type[i]!]!, body));
      byOid?.set(E.hex(i), i);
      remember(i, body);
    }
    if (next.length === pending.length) {
      const ref = E.refBase.get(next[0]!);
      throw new PackError(ref ? `thin pack: delta base ${ref} is not in the pack (push with a full pack)` : 'delta chain does not resolve');
    }
    pending = next;
  }
  recent.clear();

  const hex = Array.from({ length: E.n }, (_, i) => E.hex(i));
  const order = Array.from({ length: E.n }, (_, i) => i).sort((a, b) => (hex[a]! < hex[b]! ? -1 : hex[a]! > hex[b]! ? 1 : 0));
  const idx = sortedIdx(order.length, (k, into, at) => E.oid.copy(into, at, order[k]! * 20, order[k]! * 20 + 20), (k) => E.crc[order[k]!]!, (k) => E.offset[order[k]!]!, await src.read(src.size - 20, 20));
  const structure: IndexedPack['structure'] = [];
  for (const [i, body] of kept) structure.push({ oid: hex[i]!, type: TYPES[E.type[i]!] as 'commit' | 'tree' | 'tag', body });
  const types = new Map<string, ObjectKind>();
  for (let i = 0; i < E.n; i++) types.set(hex[i]!, TYPES[E.type[i]!] as ObjectKind);
  return { oids: order.map((i) => hex[i]!), types, idx, structure };
}

/** A version-2 .idx (gitformat-pack(5), "Version 2 pack-*.idx files") for a pack's entries and its checksum. */
export function writeIdx(objects: { oid: string; crc: number; offset: number }[], packChecksum: Buffer): Buffer {
  const order = [...objects].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  return sortedIdx(order.length, (k, into, at) => into.write(order[k]!.oid, at, 'hex'), (k) => order[k]!.crc, (k) => order[k]!.offset, packChecksum);
}

/** The .idx for `n` objects already in id order, each read through accessors (no object per entry needed). */
function sortedIdx(n: number, oidInto: (k: number, into: Buffer, at: number) => unknown, crcOf: (k: number) => number, offsetOf: (k: number) => number, packChecksum: Buffer): Buffer {
  let nLarge = 0;
  for (let k = 0; k < n; k++) if (offsetOf(k) >= 0x80000000) nLarge++;
  const idx = Buffer.alloc(8 + 256 * 4 + n * 28 + nLarge * 8 + 40);
  let w = 0;
  idx.writeUInt32BE(0xff744f63, w); w += 4;
  idx.writeUInt32BE(2, w); w += 4;
  const fanoutAt = w;
  w += 256 * 4;
  const oidsAt = w;
  for (let k = 0; k < n; k++) { oidInto(k, idx, w); w += 20; }
  const fanout = new Array<number>(256).fill(0);
  for (let k = 0; k < n; k++) fanout[idx[oidsAt + k * 20]!]!++;
  let acc = 0;
  for (let b = 0; b < 256; b++) {
    acc += fanout[b]!;
    idx.writeUInt32BE(acc, fanoutAt + b * 4);
  }
  for (let k = 0; k < n; k++) { idx.writeUInt32BE(crcOf(k) >>> 0, w); w += 4; }
  let li = 0;
  for (let k = 0; k < n; k++) {
    const o = offsetOf(k);
    idx.writeUInt32BE(o >= 0x80000000 ? (0x80000000 | li++) >>> 0 : o, w);
    w += 4;
  }
  for (let k = 0; k < n; k++) {
    const o = offsetOf(k);
    if (o >= 0x80000000) { idx.writeBigUInt64BE(BigInt(o), w); w += 8; }
  }
  packChecksum.copy(idx, w); w += 20;
  createHash('sha1').update(idx.subarray(0, w)).digest().copy(idx, w);
  return idx;
}
