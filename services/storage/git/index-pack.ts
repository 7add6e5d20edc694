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
 */
import { createHash } from 'node:crypto';
import { crc32, inflateSync } from 'node:zlib';

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

interface Entry {
  offset: number;
  end: number;
  kind: number;
  /** Where the compressed data starts (after the header and any delta base). */
  dataStart: number;
  /**
   * Inflated data, kept only where it is needed later: a delta's instructions, and whole
   * commits, trees and tags. A whole blob is hashed at once and re-inflated only if a
   * delta builds on it, so a push never holds every blob of a pack in memory.
   */
  data?: Buffer;
  /** Set once known: at parse time for whole objects, at resolution for deltas. */
  type?: string;
  oid?: string;
  baseOffset?: number;
  baseOid?: string;
  crc: number;
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

/** Parse a whole pack (with its trailing SHA-1, already checked) into entries. */
function parsePack(pack: Buffer, limits: InflateLimits): Entry[] {
  const objName = limits.names?.maxObjectBytes ?? 'maxObjectBytes';
  const totalName = limits.names?.maxInflatedBytes ?? 'maxInflatedBytes';
  let total = 0;
  const count_ = (n: number, bytes: number, what: string) => {
    if (bytes > limits.maxObjectBytes) throw new PackError(`object ${n} ${what} ${bytes} bytes, over the limit ${objName} = ${limits.maxObjectBytes} bytes: push smaller files, or raise the limit`);
    total += bytes;
    if (total > limits.maxInflatedBytes) throw new PackError(`the pushed objects inflate to more than ${limits.maxInflatedBytes} bytes, over the limit ${totalName}: push less at a time, or raise the limit`);
  };
  if (pack.length < 32 || pack.toString('latin1', 0, 4) !== 'PACK') throw new PackError('not a packfile');
  const version = pack.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new PackError(`pack version ${version} is not supported`);
  const count = pack.readUInt32BE(8);
  const limit = pack.length - 20;
  const entries: Entry[] = [];
  let off = 12;
  for (let n = 0; n < count; n++) {
    const start = off;
    if (off >= limit) throw new PackError(`pack ends after ${n} of ${count} objects`);
    let b = pack[off++]!;
    const kind = (b >> 4) & 7;
    let size = b & 0x0f;
    let shift = 4;
    while (b & 0x80) {
      if (off >= limit || shift > 49) throw new PackError('bad object header');
      b = pack[off++]!;
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let baseOffset: number | undefined;
    let baseOid: string | undefined;
    if (kind === OFS_DELTA) {
      b = pack[off++]!;
      let rel = b & 0x7f;
      while (b & 0x80) {
        if (off >= limit) throw new PackError('bad delta offset');
        b = pack[off++]!;
        rel = (rel + 1) * 128 + (b & 0x7f);
      }
      baseOffset = start - rel;
      if (baseOffset < 12 || baseOffset >= start) throw new PackError('delta base offset out of range');
    } else if (kind === REF_DELTA) {
      if (off + 20 > limit) throw new PackError('truncated delta base id');
      baseOid = pack.toString('hex', off, off + 20);
      off += 20;
    } else if (kind < 1 || kind > 4) {
      throw new PackError(`object type ${kind} is not valid`);
    }
    // Whole objects are counted at their declared size before inflating (zlib may not
    // produce more than that); delta instructions are small and their result is counted below.
    if (kind >= 1 && kind <= 4) count_(n + 1, size, 'inflates to');
    else if (size > limits.maxObjectBytes) count_(n + 1, size, 'has a delta of');
    let data: Buffer;
    let consumed: number;
    try {
      const r = inflateSync(pack.subarray(off, limit), { info: true, maxOutputLength: Math.max(size, 1) + 1 }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      data = r.buffer;
      consumed = r.engine.bytesWritten;
    } catch (err) {
      throw new PackError(`object ${n + 1} does not inflate: ${(err as Error).message}`);
    }
    if (data.length !== size) throw new PackError(`object ${n + 1} inflates to ${data.length} bytes, its header says ${size}`);
    const dataStart = off;
    off += consumed;
    const e: Entry = { offset: start, end: off, kind, dataStart, baseOffset, baseOid, crc: crc32(pack.subarray(start, off)) >>> 0 };
    if (kind >= 1 && kind <= 4) {
      e.type = TYPES[kind]!;
      e.oid = objectId(e.type, data);
      if (e.type !== 'blob') e.data = data;
    } else {
      count_(n + 1, deltaResultSize(data), 'is a delta whose result is');
      e.data = data;
    }
    entries.push(e);
  }
  if (off !== limit) throw new PackError('trailing bytes after the last object');
  return entries;
}

function objectId(type: string, body: Buffer): string {
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

/**
 * Index `pack` (the bytes of objects/pack/pack-X.pack, checksum already verified): every
 * object id in it, and the bytes of its .idx. Pure: the caller writes the files.
 */
export interface IndexedPack {
  oids: string[];
  idx: Buffer;
  /** The pack's commits, trees and tags, resolved: connectivity checks walk these. */
  structure: { oid: string; type: 'commit' | 'tree' | 'tag'; body: Buffer }[];
}

export function indexPack(pack: Buffer, limits: InflateLimits = DEFAULT_INFLATE_LIMITS): IndexedPack {
  const entries = parsePack(pack, limits);
  const byOffset = new Map<number, number>();
  const byOid = new Map<string, number>();
  entries.forEach((e, i) => {
    byOffset.set(e.offset, i);
    if (e.oid) byOid.set(e.oid, i);
  });

  // Bodies of resolved objects that deltas may build on: commits, trees and tags are kept
  // (the connectivity check walks them); blobs only in a bounded, recently-used cache, and
  // re-inflated or re-resolved from the pack when a delta needs one that was dropped.
  const kept = new Map<number, Buffer>();
  const recent = new Map<number, Buffer>();
  let recentBytes = 0;
  const RECENT_LIMIT = 32 << 20;
  const remember = (i: number, body: Buffer) => {
    if (entries[i]!.type !== 'blob') return void kept.set(i, body);
    recent.set(i, body);
    recentBytes += body.length;
    for (const [k, b] of recent) {
      if (recentBytes <= RECENT_LIMIT) break;
      recent.delete(k);
      recentBytes -= b.length;
    }
  };
  const bodyOf = (i: number, depth = 0): Buffer => {
    const e = entries[i]!;
    const cached = kept.get(i) ?? recent.get(i);
    if (cached) return cached;
    if (depth > 10_000) throw new PackError('delta chain too deep');
    let body: Buffer;
    if (e.kind >= 1 && e.kind <= 4) body = e.data ?? inflateSync(pack.subarray(e.dataStart, e.end));
    else body = applyDelta(bodyOf(baseIndexOf(e)!, depth + 1), e.data!);
    remember(i, body);
    return body;
  };
  const baseIndexOf = (e: Entry): number | undefined => {
    if (e.baseOffset !== undefined) {
      const j = byOffset.get(e.baseOffset);
      if (j === undefined) throw new PackError(`object at ${e.offset}: no object starts at its base offset ${e.baseOffset}`);
      return j;
    }
    return e.baseOid !== undefined ? byOid.get(e.baseOid) : undefined;
  };
  for (let i = 0; i < entries.length; i++) if (entries[i]!.data && entries[i]!.type && entries[i]!.type !== 'blob') kept.set(i, entries[i]!.data!);

  // Deltas until nothing more resolves (a REF_DELTA's base may come later in the pack).
  let pending = entries.map((_, i) => i).filter((i) => !entries[i]!.oid);
  while (pending.length > 0) {
    const next: number[] = [];
    for (const i of pending) {
      const e = entries[i]!;
      const j = baseIndexOf(e);
      const base = j !== undefined ? entries[j]! : undefined;
      if (!base?.oid) {
        next.push(i);
        continue;
      }
      e.type = base.type;
      const body = applyDelta(bodyOf(j!), e.data!);
      e.oid = objectId(e.type!, body);
      byOid.set(e.oid, i);
      remember(i, body);
    }
    if (next.length === pending.length) {
      const e = entries[next[0]!]!;
      throw new PackError(e.baseOid ? `thin pack: delta base ${e.baseOid} is not in the pack (push with a full pack)` : 'delta chain does not resolve');
    }
    pending = next;
  }
  const resolved = entries.map((e) => ({ type: e.type!, oid: e.oid! }));

  const idx = writeIdx(entries.map((e, i) => ({ oid: resolved[i]!.oid, crc: e.crc, offset: e.offset })), pack.subarray(pack.length - 20));
  const order = entries.map((_, i) => i).sort((a, b) => (resolved[a]!.oid < resolved[b]!.oid ? -1 : 1));
  const structure: IndexedPack['structure'] = [];
  for (const [i, body] of kept) structure.push({ oid: entries[i]!.oid!, type: entries[i]!.type as 'commit' | 'tree' | 'tag', body });
  return { oids: order.map((i) => resolved[i]!.oid), idx, structure };
}

/** A version-2 .idx (gitformat-pack(5), "Version 2 pack-*.idx files") for a pack's entries and its checksum. */
export function writeIdx(objects: { oid: string; crc: number; offset: number }[], packChecksum: Buffer): Buffer {
  const order = [...objects].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const n = order.length;
  const large = order.filter((o) => o.offset >= 0x80000000);
  const idx = Buffer.alloc(8 + 256 * 4 + n * 28 + large.length * 8 + 40);
  let w = 0;
  idx.writeUInt32BE(0xff744f63, w); w += 4;
  idx.writeUInt32BE(2, w); w += 4;
  const fanout = new Array<number>(256).fill(0);
  for (const o of order) fanout[parseInt(o.oid.slice(0, 2), 16)]!++;
  let acc = 0;
  for (let b = 0; b < 256; b++) {
    acc += fanout[b]!;
    idx.writeUInt32BE(acc, w);
    w += 4;
  }
  for (const o of order) { idx.write(o.oid, w, 'hex'); w += 20; }
  for (const o of order) { idx.writeUInt32BE(o.crc >>> 0, w); w += 4; }
  let li = 0;
  for (const o of order) {
    idx.writeUInt32BE(o.offset >= 0x80000000 ? (0x80000000 | li++) >>> 0 : o.offset, w);
    w += 4;
  }
  for (const o of large) { idx.writeBigUInt64BE(BigInt(o.offset), w); w += 8; }
  packChecksum.copy(idx, w); w += 20;
  createHash('sha1').update(idx.subarray(0, w)).digest().copy(idx, w);
  return idx;
}
