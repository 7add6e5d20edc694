/**
 * Where each object sits in the repository's packs (read from their version-2 .idx files),
 * so a clone or fetch can copy an object's entry as it is stored — compressed, and a
 * delta when its base goes out in the same pack — instead of inflating and deflating it
 * again (gitformat-pack(5)). This is what git's own pack-objects does with reused entries.
 */
import { promises as fsp } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { applyDelta } from './index-pack.ts';
import * as path from 'node:path';

export interface PackFile {
  data: Buffer;
  /** Object id at each entry offset. */
  oidAt: Map<number, string>;
  /** Entry offsets in pack order, to find where an entry ends. */
  sorted: number[];
}

export interface Located {
  pack: PackFile;
  offset: number;
  end: number;
}

function parseIdx(idx: Buffer): { oid: string; offset: number }[] {
  if (idx.length < 8 + 1024 + 40 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error('not a version-2 pack index');
  const n = idx.readUInt32BE(8 + 255 * 4);
  const oids = 8 + 1024;
  const offsets = oids + n * 24;
  const large = offsets + n * 4;
  if (large + 40 > idx.length) throw new Error('pack index is truncated');
  const out: { oid: string; offset: number }[] = [];
  for (let i = 0; i < n; i++) {
    let off = idx.readUInt32BE(offsets + i * 4);
    if (off & 0x80000000) off = Number(idx.readBigUInt64BE(large + (off & 0x7fffffff) * 8));
    out.push({ oid: idx.toString('hex', oids + i * 20, oids + i * 20 + 20), offset: off });
  }
  return out;
}

export type ObjectKind = 'commit' | 'tree' | 'blob' | 'tag';
const KINDS = ['', 'commit', 'tree', 'blob', 'tag'] as const;

export class PackSet {
  private readonly where = new Map<string, { pack: PackFile; offset: number }>();
  private readonly ends = new Map<PackFile, Map<number, number>>();
  /** Delta bases resolved so far, by pack and offset (chains share them). */
  private readonly bases = new Map<PackFile, Map<number, { type: ObjectKind; body: Buffer }>>();
  private baseBytes = 0;

  static async open(gitdir: string): Promise<PackSet> {
    const set = new PackSet();
    const dir = path.join(gitdir, 'objects', 'pack');
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.idx')).sort()) {
      const packName = name.replace(/\.idx$/, '.pack');
      if (!names.includes(packName)) continue;
      try {
        const entries = parseIdx(await fsp.readFile(path.join(dir, name)));
        const data = await fsp.readFile(path.join(dir, packName));
        const pack: PackFile = { data, oidAt: new Map(entries.map((e) => [e.offset, e.oid])), sorted: entries.map((e) => e.offset).sort((a, b) => a - b) };
        const ends = new Map<number, number>();
        pack.sorted.forEach((off, i) => ends.set(off, pack.sorted[i + 1] ?? data.length - 20));
        set.ends.set(pack, ends);
        for (const e of entries) if (!set.where.has(e.oid)) set.where.set(e.oid, { pack, offset: e.offset });
      } catch {
        // An unreadable pack is simply not reused: its objects are read the slow way.
      }
    }
    return set;
  }

  /**
   * An object read straight from its pack with native zlib, deltas resolved; undefined when
   * no pack holds it (it is loose: ask isomorphic-git).
   */
  read(oid: string): { type: ObjectKind; body: Buffer } | undefined {
    const w = this.where.get(oid);
    return w ? this.readAt(w.pack, w.offset, 0) : undefined;
  }

  private readAt(pack: PackFile, offset: number, depth: number): { type: ObjectKind; body: Buffer } {
    const memo = this.bases.get(pack)?.get(offset);
    if (memo) return memo;
    if (depth > 10_000) throw new Error('delta chain too deep');
    const h = readEntryHeader(pack.data, offset);
    const start = offset + h.headerLength + (h.kind === 6 ? h.baseOffsetLength! : h.kind === 7 ? 20 : 0);
    const data = inflateSync(pack.data.subarray(start, this.ends.get(pack)!.get(offset)!));
    let out: { type: ObjectKind; body: Buffer };
    if (h.kind >= 1 && h.kind <= 4) out = { type: KINDS[h.kind] as ObjectKind, body: data };
    else {
      const base = h.kind === 6 ? this.readAt(pack, h.baseOffset!, depth + 1) : this.read(h.baseOid!);
      if (!base) throw new Error(`delta base ${h.baseOid} is missing`);
      out = { type: base.type, body: applyDelta(base.body, data) };
    }
    // Remember what other deltas are likely to build on (bounded).
    if (out.type !== 'blob' && this.baseBytes + out.body.length < 32 << 20) {
      let m = this.bases.get(pack);
      if (!m) this.bases.set(pack, (m = new Map()));
      m.set(offset, out);
      this.baseBytes += out.body.length;
    }
    return out;
  }

  locate(oid: string): Located | undefined {
    const w = this.where.get(oid);
    if (!w) return undefined;
    return { pack: w.pack, offset: w.offset, end: this.ends.get(w.pack)!.get(w.offset)! };
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
