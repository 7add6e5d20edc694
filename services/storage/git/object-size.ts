/**
 * The size of an object without inflating it: from a loose object's zlib stream only its
 * `<type> <size>\0` header is inflated; from a pack, the entry header gives the size of a
 * whole object, and for a delta the result size is the second varint at the start of the
 * delta data (gitformat-pack(5), "Deltified representation"), of which only the first
 * bytes are inflated. So a config file, or a tree's total, can be measured before anything
 * is read — a 1 GiB blob costs a few hundred bytes of I/O here.
 */
import { constants as Z, inflateSync } from 'node:zlib';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

interface PackIndex {
  pack: string;
  /** Sorted 20-byte object ids, and each one's offset in the pack. */
  oids: Buffer;
  offsets: number[];
  fanout: Uint32Array;
}

/** At most this much inflated output while reading a header (a few hundred input bytes). */
const HEADER_OUTPUT = 1 << 20;

/** Inflate the first `input` bytes as far as they go (never the whole stream). */
function inflateStart(input: Buffer): Buffer {
  try {
    return inflateSync(input, { finishFlush: Z.Z_SYNC_FLUSH, maxOutputLength: HEADER_OUTPUT });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Error('object header does not inflate within 1 MiB');
    throw err;
  }
}

async function readAt(file: string, offset: number, length: number, fh?: fsp.FileHandle): Promise<Buffer> {
  const h = fh ?? (await fsp.open(file, 'r'));
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await h.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    if (!fh) await h.close();
  }
}

function parseIdx(idx: Buffer, pack: string): PackIndex {
  if (idx.length < 8 + 1024 + 40 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error(`${pack}: not a version-2 pack index`);
  const fanout = new Uint32Array(256);
  for (let i = 0; i < 256; i++) fanout[i] = idx.readUInt32BE(8 + i * 4);
  const n = fanout[255]!;
  const oidsAt = 8 + 1024;
  const offAt = oidsAt + n * 24;
  const largeAt = offAt + n * 4;
  const offsets: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    let off = idx.readUInt32BE(offAt + i * 4);
    if (off & 0x80000000) off = Number(idx.readBigUInt64BE(largeAt + (off & 0x7fffffff) * 8));
    offsets[i] = off;
  }
  return { pack, oids: idx.subarray(oidsAt, oidsAt + n * 20), offsets, fanout };
}

function find(ix: PackIndex, oid: Buffer): number | undefined {
  let lo = oid[0] === 0 ? 0 : ix.fanout[oid[0]! - 1]!;
  let hi = ix.fanout[oid[0]!]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = ix.oids.compare(oid, 0, 20, mid * 20, mid * 20 + 20);
    if (c === 0) return ix.offsets[mid];
    if (c > 0) hi = mid; else lo = mid + 1;
  }
  return undefined;
}

export interface ObjectSizer {
  (oid: string): Promise<number>;
  /** Close the packs it opened. */
  close(): Promise<void>;
}

/** Sizes of objects of one repository; pack indexes are read, and packs opened, once per sizer. */
export function objectSizer(gitdir: string): ObjectSizer {
  let packs: Promise<PackIndex[]> | undefined;
  const open = new Map<string, Promise<fsp.FileHandle>>();
  const loadPacks = async () => {
    const dir = path.join(gitdir, 'objects', 'pack');
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    const out: PackIndex[] = [];
    for (const n of names.filter((x) => x.endsWith('.idx'))) {
      const pack = path.join(dir, n.replace(/\.idx$/, '.pack'));
      if (!names.includes(path.basename(pack))) continue;
      out.push(parseIdx(await fsp.readFile(path.join(dir, n)), pack));
    }
    return out;
  };
  const sizer = (async (oid: string) => {
    const loose = path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
    const head = await readAt(loose, 0, 512).catch(() => undefined);
    if (head) {
      const text = inflateStart(head);
      const nul = text.indexOf(0);
      const m = /^(?:blob|tree|commit|tag) (\d+)$/.exec(text.toString('latin1', 0, nul === -1 ? 0 : nul));
      if (!m) throw new Error(`loose object ${oid} has a bad header`);
      return Number(m[1]);
    }
    const want = Buffer.from(oid, 'hex');
    for (const ix of await (packs ??= loadPacks())) {
      const off = find(ix, want);
      if (off === undefined) continue;
      let fh = open.get(ix.pack);
      if (!fh) open.set(ix.pack, (fh = fsp.open(ix.pack, 'r')));
      return entrySize(ix.pack, off, await fh);
    }
    throw new Error(`object ${oid} is not in the repository`);
  }) as ObjectSizer;
  sizer.close = async () => {
    for (const fh of open.values()) await (await fh).close().catch(() => {});
    open.clear();
  };
  return sizer;
}

async function entrySize(pack: string, offset: number, fh: fsp.FileHandle): Promise<number> {
  const buf = await readAt(pack, offset, 600, fh);
  let p = 0;
  let b = buf[p++]!;
  const kind = (b >> 4) & 7;
  let size = b & 0x0f;
  let shift = 4;
  while (b & 0x80) {
    b = buf[p++]!;
    size += (b & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (kind >= 1 && kind <= 4) return size;
  if (kind === 6) while (buf[p++]! & 0x80);
  else if (kind === 7) p += 20;
  else throw new Error(`bad pack entry type ${kind} at ${offset}`);
  const delta = inflateStart(buf.subarray(p));
  let q = 0;
  const varint = () => {
    let v = 0;
    let s = 0;
    for (;;) {
      if (q >= delta.length) throw new Error('delta header does not fit the first bytes');
      const c = delta[q++]!;
      v += (c & 0x7f) * 2 ** s;
      s += 7;
      if (!(c & 0x80)) return v;
    }
  };
  varint(); // the base's size
  return varint();
}
