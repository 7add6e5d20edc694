/**
 * Background consolidation of a repository's packs: every push adds a pack and every store
 * write loose objects, and nothing else ever merges them, so reads slow down as they pile
 * up. This merges all packs and loose objects into one pack (gitformat-pack(5)), copying
 * stored entries as they are — compressed bytes untouched, an OFS_DELTA's base offset
 * rewritten for its new place — and deflating loose objects once. No delta is computed
 * (that would be a real repack); duplicates keep their first copy.
 *
 * Safety: under the push lock of the repository in this process (receive-pack's mutex) and
 * a lock file across processes. The new pack and its .idx are written durably (temp file,
 * fsync, rename; .idx last, so a crash leaves a .pack without .idx that recover.ts removes)
 * before any old pack or loose object is removed; every object is in the new pack first.
 */
import { constants as C, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { crc32, inflateSync } from 'node:zlib';
import { deflateBody } from './zlib-chunks.ts';
import { fsyncDir, writeFileDurable } from '../../../platform/durable.ts';
import { withFileLock, withMutex } from '../store/lock.ts';
import { writeIdx } from './index-pack.ts';
import { objectHeader, packHeader } from './pack-writer.ts';
import { entryHeaderAt, ofsDeltaHeader } from './pack-reuse.ts';
import { readRange } from './file-range.ts';
import { DIR_MODE, FILE_MODE } from './private-fs.ts';
import type { ObjectType } from './objects.ts';

export interface ConsolidateOptions {
  /** Merge when there are at least this many packs (default 8)... */
  minPacks?: number;
  /** ...or at least this many loose objects (default 500). */
  minLoose?: number;
}

export interface ConsolidateResult {
  packsBefore: number;
  looseBefore: number;
  objects: number;
  bytes: number;
  ms: number;
}

interface PackOnDisk {
  pack: string;
  idx: string;
  /** Entry offsets in pack order, with their object ids. */
  entries: { offset: number; oid: string }[];
}

function readIdx(idx: Buffer): { offset: number; oid: string }[] {
  if (idx.length < 8 + 1024 + 40 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error('not a version-2 pack index');
  const n = idx.readUInt32BE(8 + 255 * 4);
  const oids = 8 + 1024;
  const offsets = oids + n * 24;
  const large = offsets + n * 4;
  const out: { offset: number; oid: string }[] = [];
  for (let i = 0; i < n; i++) {
    let off = idx.readUInt32BE(offsets + i * 4);
    if (off & 0x80000000) off = Number(idx.readBigUInt64BE(large + (off & 0x7fffffff) * 8));
    out.push({ oid: idx.toString('hex', oids + i * 20, oids + i * 20 + 20), offset: off });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

async function listPacks(gitdir: string): Promise<PackOnDisk[]> {
  const dir = path.join(gitdir, 'objects', 'pack');
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const out: PackOnDisk[] = [];
  for (const n of names.filter((x) => /^pack-[0-9a-f]{40}\.idx$/.test(x)).sort()) {
    const pack = path.join(dir, n.replace(/\.idx$/, '.pack'));
    if (!names.includes(path.basename(pack))) continue;
    out.push({ pack, idx: path.join(dir, n), entries: readIdx(await fsp.readFile(path.join(dir, n))) });
  }
  return out;
}

async function listLoose(gitdir: string): Promise<{ oid: string; file: string }[]> {
  const objects = path.join(gitdir, 'objects');
  const out: { oid: string; file: string }[] = [];
  for (const d of await fsp.readdir(objects).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{2}$/.test(d)) continue;
    for (const f of await fsp.readdir(path.join(objects, d)).catch(() => [] as string[])) {
      if (/^[0-9a-f]{38}$/.test(f)) out.push({ oid: d + f, file: path.join(objects, d, f) });
    }
  }
  return out;
}

/** Count of packs and loose objects: what decides whether to consolidate. */
export async function packState(gitdir: string): Promise<{ packs: number; loose: number }> {
  const names = await fsp.readdir(path.join(gitdir, 'objects', 'pack')).catch(() => [] as string[]);
  return { packs: names.filter((n) => n.endsWith('.idx')).length, loose: (await listLoose(gitdir)).length };
}

/** Merge the repository's packs and loose objects into one pack, if there are enough of them. */
export function consolidate(gitdir: string, opts: ConsolidateOptions = {}): Promise<ConsolidateResult | undefined> {
  return withMutex(`push:${gitdir}`, () => withFileLock(path.join(gitdir, 'kith-consolidate.lock'), () => consolidateLocked(gitdir, opts), { timeoutMs: 0 }));
}

async function consolidateLocked(gitdir: string, opts: ConsolidateOptions): Promise<ConsolidateResult | undefined> {
  const t0 = performance.now();
  const packs = await listPacks(gitdir);
  const loose = await listLoose(gitdir);
  if (packs.length < (opts.minPacks ?? 8) && loose.length < (opts.minLoose ?? 500)) return undefined;
  if (packs.length + loose.length < 2) return undefined;

  const unique = new Set<string>();
  for (const p of packs) for (const e of p.entries) unique.add(e.oid);
  for (const l of loose) unique.add(l.oid);

  const dir = path.join(gitdir, 'objects', 'pack');
  await fsp.mkdir(dir, { recursive: true, mode: DIR_MODE });
  const tmp = path.join(dir, `tmp_pack_${process.pid}-${randomBytes(4).toString('hex')}`);
  const out = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, FILE_MODE);
  const sha = createHash('sha1');
  let offset = 0;
  const written = new Map<string, { offset: number; crc: number }>();
  const write = async (b: Buffer) => {
    sha.update(b);
    await out.write(b);
    offset += b.length;
  };
  try {
    await write(packHeader(unique.size));
    for (const p of packs) {
      // Entries are copied from the pack file by offset, in bounded pieces: never the whole pack in memory.
      const fh = await fsp.open(p.pack, 'r');
      try {
        const packEnd = (await fh.stat()).size - 20;
        const oidAt = new Map(p.entries.map((e) => [e.offset, e.oid]));
        for (let i = 0; i < p.entries.length; i++) {
          const { offset: at, oid } = p.entries[i]!;
          if (written.has(oid)) continue;
          const end = p.entries[i + 1]?.offset ?? packEnd;
          const h = await entryHeaderAt(fh, at, end);
          let from = at;
          let crc = 0;
          const entryAt = offset;
          if (h.kind === 6) {
            const baseOid = oidAt.get(h.baseOffset!);
            const base = baseOid ? written.get(baseOid) : undefined;
            if (!base) throw new Error(`${path.basename(p.pack)}: the delta at ${at} has no base at ${h.baseOffset}`);
            const head = ofsDeltaHeader(h.size, offset - base.offset);
            crc = crc32(head, crc);
            await write(head);
            from = at + h.headerLength + h.baseOffsetLength!;
          }
          for await (const piece of readRange(fh, from, end)) {
            crc = crc32(piece, crc);
            await write(piece);
          }
          written.set(oid, { offset: entryAt, crc: crc >>> 0 });
        }
      } finally {
        await fh.close();
      }
    }
    for (const l of loose) {
      if (written.has(l.oid)) continue;
      const raw = inflateSync(await fsp.readFile(l.file));
      const nul = raw.indexOf(0);
      const [type] = raw.toString('latin1', 0, nul).split(' ') as [ObjectType];
      const body = raw.subarray(nul + 1);
      const entry = Buffer.concat([objectHeader(type, body.length), deflateBody(body)]);
      written.set(l.oid, { offset, crc: crc32(entry) >>> 0 });
      await write(entry);
    }
    const sum = sha.digest();
    await out.write(sum);
    await out.sync();
    await out.close();
    const name = `pack-${sum.toString('hex')}`;
    const packFile = path.join(dir, `${name}.pack`);
    await fsp.rename(tmp, packFile);
    await fsyncDir(dir);
    const idx = writeIdx([...written].map(([oid, w]) => ({ oid, ...w })), sum);
    await writeFileDurable(path.join(dir, `${name}.idx`), idx, { tempPrefix: 'tmp_idx_', mode: FILE_MODE });
    // Everything is in the new pack, on disk: the old copies can go.
    for (const p of packs) {
      if (p.pack === packFile) continue;
      await fsp.rm(p.idx, { force: true }); // .idx first: a .pack without one is ignored
      await fsp.rm(p.pack, { force: true });
    }
    await fsyncDir(dir);
    // Loose objects: their folders stay (a store writer may be about to write into one).
    const folders = new Set<string>();
    for (const l of loose) {
      await fsp.rm(l.file, { force: true });
      folders.add(path.dirname(l.file));
    }
    for (const f of folders) await fsyncDir(f);
    return { packsBefore: packs.length, looseBefore: loose.length, objects: written.size, bytes: offset + 20, ms: performance.now() - t0 };
  } catch (err) {
    await out.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
