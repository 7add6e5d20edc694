/**
 * Where each object sits in the repository's packs (read from their version-2 .idx files),
 * so a clone or fetch can copy an object's entry as it is stored — compressed, and a
 * delta when its base goes out in the same pack — instead of inflating and deflating it
 * again (gitformat-pack(5)). This is what git's own pack-objects does with reused entries.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import { inflateOfSize } from './zlib-chunks.ts';
import { applyDelta } from './index-pack.ts';
import { blockCache, fdReader, readAt, type CachedReader, type PositionalReader } from './file-range.ts';
import * as path from 'node:path';

/** A stored pack, read through its file handle by offset: never loaded whole. */
export interface PackFile {
  file: string;
  fh: CachedReader;
  /** Bytes in the file (the trailer's 20 included). */
  size: number;
  /** Where its objects are. */
  index: PackIndex;
}

export interface Located {
  pack: PackFile;
  offset: number;
  end: number;
}

/** An entry's header, read from the file: the longest (size varint, OFS offset or REF id) fits 64 bytes. */
export async function entryHeaderAt(fh: PositionalReader | CachedReader, offset: number, end: number): Promise<EntryHeader> {
  const len = Math.min(64, end - offset);
  const buf = ('peek' in fh ? fh.peek(offset, len) : undefined) ?? (await readAt(fh, offset, len));
  const h = readEntryHeader(buf, 0);
  if (h.baseOffset !== undefined) h.baseOffset += offset;
  return h;
}

/**
 * A version-2 .idx held as its bytes (ids sorted, 20 bytes each) and typed arrays, looked up
 * by binary search: no object or hex string per entry. Maps of ids, offsets and ends for a
 * 15,000-object repository were a few MiB of V8 heap live through every clone (issue 16).
 */
const HEX_ID = /^[0-9a-f]{40}$/;

export class PackIndex {
  readonly count: number;
  /** The .idx's ids, sorted: id k at k * 20. */
  private readonly ids: Buffer;
  /** Offset of id k. */
  private readonly offsetOf: Float64Array;
  /** Entry offsets ascending, and which id each is. */
  private readonly sorted: Float64Array;
  private readonly idOf: Uint32Array;
  /** Where the last entry ends (the trailer's start). */
  private readonly dataEnd: number;
  private readonly probe = Buffer.alloc(20);

  constructor(idx: Buffer, packSize: number) {
    if (idx.length < 8 + 1024 + 40 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error('not a version-2 pack index');
    const n = idx.readUInt32BE(8 + 255 * 4);
    const oids = 8 + 1024;
    const offsets = oids + n * 24;
    const large = offsets + n * 4;
    if (large + 40 > idx.length) throw new Error('pack index is truncated');
    this.count = n;
    this.ids = Buffer.from(idx.subarray(oids, oids + n * 20)); // a copy: the rest of the .idx is not kept
    this.offsetOf = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      let off = idx.readUInt32BE(offsets + k * 4);
      if (off & 0x80000000) {
        const at = large + (off & 0x7fffffff) * 8;
        if (at + 8 > idx.length - 40) throw new Error('pack index is truncated');
        off = Number(idx.readBigUInt64BE(at));
      }
      this.offsetOf[k] = off;
    }
    const byOffset = Array.from({ length: n }, (_, k) => k).sort((a, b) => this.offsetOf[a]! - this.offsetOf[b]!);
    this.idOf = Uint32Array.from(byOffset);
    this.sorted = Float64Array.from(byOffset, (k) => this.offsetOf[k]!);
    this.dataEnd = packSize - 20;
  }

  /** The offset of `oid`'s entry, or -1. */
  find(oid: string): number {
    if (!HEX_ID.test(oid)) return -1;
    this.probe.write(oid, 'hex');
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.ids.compare(this.probe, 0, 20, mid * 20, mid * 20 + 20);
      if (c === 0) return this.offsetOf[mid]!;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Position of `offset` among the entry offsets, or -1 when no entry starts there. */
  private slot(offset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const o = this.sorted[mid]!;
      if (o === offset) return mid;
      if (o < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The id of the entry at `offset`. */
  oidAt(offset: number): string | undefined {
    const j = this.slot(offset);
    if (j < 0) return undefined;
    const k = this.idOf[j]!;
    return this.ids.toString('hex', k * 20, k * 20 + 20);
  }

  /** Where the entry at `offset` ends (the next entry's offset, or the trailer). */
  endOf(offset: number): number | undefined {
    const j = this.slot(offset);
    if (j < 0) return undefined;
    return j + 1 < this.count ? this.sorted[j + 1]! : this.dataEnd;
  }
}

export type ObjectKind = 'commit' | 'tree' | 'blob' | 'tag';
const KINDS = ['', 'commit', 'tree', 'blob', 'tag'] as const;

/** Resolved objects kept for deltas that build on them, most recent last. */
const CACHE_BYTES = 16 << 20;
/** Larger objects are never cached: one would push out everything else. */
const CACHE_ONE = 8 << 20;

/**
 * Pack descriptors of a set nobody closed (a request path that forgot) are closed when the
 * set is collected: a leak costs descriptors for a while, never the process.
 */
const unclosed = new FinalizationRegistry<number[]>((fds) => {
  for (const fd of fds) fs.close(fd, () => {});
});

export class PackSet {
  private readonly fds: number[] = [];
  private readonly packs: PackFile[] = [];
  /** Delta bases resolved so far, by "<file>:<offset>" (chains share them); bounded. */
  private readonly cache = new Map<string, { type: ObjectKind; body: Buffer }>();
  private cacheBytes = 0;

  static async open(gitdir: string): Promise<PackSet> {
    const set = new PackSet();
    unclosed.register(set, set.fds, set);
    const dir = path.join(gitdir, 'objects', 'pack');
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.idx')).sort()) {
      const packName = name.replace(/\.idx$/, '.pack');
      if (!names.includes(packName)) continue;
      let fd: number | undefined;
      try {
        const idx = await fsp.readFile(path.join(dir, name));
        const file = path.join(dir, packName);
        fd = await new Promise<number>((resolve, reject) => fs.open(file, 'r', (err, n) => (err ? reject(err) : resolve(n))));
        set.fds.push(fd);
        const fh = blockCache(fdReader(fd));
        const size = await new Promise<number>((resolve, reject) => fs.fstat(fd!, (err, st) => (err ? reject(err) : resolve(st.size))));
        set.packs.push({ file, fh, size, index: new PackIndex(idx, size) });
      } catch {
        // An unreadable pack is simply not reused: its objects are read the slow way.
      }
    }
    return set;
  }

  /** Close the pack files. */
  async close(): Promise<void> {
    unclosed.unregister(this);
    this.packs.length = 0;
    for (const fd of this.fds.splice(0)) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
    this.cache.clear();
    this.cacheBytes = 0;
  }

  /** Drop the resolved objects kept for deltas (objects.ts forgetBodies). */
  forgetBodies(): void {
    this.cache.clear();
    this.cacheBytes = 0;
  }

  has(oid: string): boolean {
    return this.where(oid) !== undefined;
  }

  /**
   * The first pack (by name) that holds `oid`, and where. A binary search per pack: storage
   * consolidates a repository's packs after every push (server.ts), so there are one or a few.
   */
  private where(oid: string): { pack: PackFile; offset: number } | undefined {
    for (const pack of this.packs) {
      const offset = pack.index.find(oid);
      if (offset >= 0) return { pack, offset };
    }
    return undefined;
  }

  /**
   * An object read from its pack by offset with native zlib, deltas resolved; undefined
   * when no pack holds it (it is loose). Only this object's entry (and its delta bases) are
   * read: one object's worth of memory.
   */
  async read(oid: string): Promise<{ type: ObjectKind; body: Buffer } | undefined> {
    const w = this.where(oid);
    return w ? this.readAt(w.pack, w.offset, 0) : undefined;
  }

  /** An object's type without inflating a whole object (a delta's from its base's). */
  async typeOf(oid: string): Promise<ObjectKind | undefined> {
    let w = this.where(oid);
    for (let depth = 0; w && depth < 10_000; depth++) {
      const end = w.pack.index.endOf(w.offset);
      if (end === undefined) return undefined;
      const h = await entryHeaderAt(w.pack.fh, w.offset, end);
      if (h.kind >= 1 && h.kind <= 4) return KINDS[h.kind] as ObjectKind;
      if (h.kind === 6) w = { pack: w.pack, offset: h.baseOffset! };
      else if (h.kind === 7) w = this.where(h.baseOid!);
      else return undefined;
    }
    return undefined;
  }

  private async readAt(pack: PackFile, offset: number, depth: number): Promise<{ type: ObjectKind; body: Buffer }> {
    const key = `${pack.file}:${offset}`;
    const memo = this.cache.get(key);
    if (memo) {
      this.cache.delete(key);
      this.cache.set(key, memo);
      return memo;
    }
    if (depth > 10_000) throw new Error('delta chain too deep');
    const end = pack.index.endOf(offset);
    if (end === undefined) throw new Error(`${path.basename(pack.file)}: no object starts at ${offset}`);
    const h = await entryHeaderAt(pack.fh, offset, end);
    const start = offset + h.headerLength + (h.kind === 6 ? h.baseOffsetLength! : h.kind === 7 ? 20 : 0);
    const data = inflateOfSize(pack.fh.peek(start, end - start) ?? (await readAt(pack.fh, start, end - start)), h.size);
    let out: { type: ObjectKind; body: Buffer };
    if (h.kind >= 1 && h.kind <= 4) out = { type: KINDS[h.kind] as ObjectKind, body: data };
    else {
      const base = h.kind === 6 ? await this.readAt(pack, h.baseOffset!, depth + 1) : await this.read(h.baseOid!);
      if (!base) throw new Error(`delta base ${h.baseOid} is missing`);
      out = { type: base.type, body: applyDelta(base.body, data) };
    }
    // Remember what other deltas are likely to build on (bounded, least recently used out).
    if (out.body.length <= CACHE_ONE) {
      this.cache.set(key, out);
      this.cacheBytes += out.body.length;
      for (const [k, v] of this.cache) {
        if (this.cacheBytes <= CACHE_BYTES) break;
        this.cache.delete(k);
        this.cacheBytes -= v.body.length;
      }
    }
    return out;
  }

  locate(oid: string): Located | undefined {
    const w = this.where(oid);
    if (!w) return undefined;
    return { pack: w.pack, offset: w.offset, end: w.pack.index.endOf(w.offset)! };
  }
}

export interface EntryHeader {
  kind: number;
  size: number;
  /** Bytes of the type/size header. */
  headerLength: number;
  /** OFS_DELTA: the base's offset in the same pack; the bytes the offset took. */
  baseOffset?: number;
  baseOffsetLength?: number;
  /** REF_DELTA: the base's id. */
  baseOid?: string;
}

export function readEntryHeader(data: Buffer, offset: number): EntryHeader {
  let p = offset;
  let b = data[p++]!;
  const kind = (b >> 4) & 7;
  let size = b & 0x0f;
  let shift = 4;
  while (b & 0x80) {
    b = data[p++]!;
    size += (b & 0x7f) * 2 ** shift;
    shift += 7;
  }
  const h: EntryHeader = { kind, size, headerLength: p - offset };
  if (kind === 6) {
    const start = p;
    b = data[p++]!;
    let rel = b & 0x7f;
    while (b & 0x80) {
      b = data[p++]!;
      rel = (rel + 1) * 128 + (b & 0x7f);
    }
    h.baseOffset = offset - rel;
    h.baseOffsetLength = p - start;
  } else if (kind === 7) {
    h.baseOid = data.toString('hex', p, p + 20);
  }
  return h;
}

/** An OFS_DELTA's header and offset field, for a new position of the entry. */
export function ofsDeltaHeader(size: number, relative: number): Buffer {
  const head: number[] = [];
  let c = (6 << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    head.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  head.push(c);
  // The offset: big-endian base-128 with the "+1 per continuation" of gitformat-pack(5).
  const ofs: number[] = [relative & 0x7f];
  let r = Math.floor(relative / 128);
  while (r > 0) {
    r -= 1;
    ofs.unshift(0x80 | (r & 0x7f));
    r = Math.floor(r / 128);
  }
  return Buffer.from([...head, ...ofs]);
}
