// Packfile writer (gitformat-pack(5), version 2): entries reused from the stored packs
// where possible (pack-reuse.ts), copied from the pack file by offset in bounded pieces,
// else zlib-deflated whole objects; SHA-1 trailer. Streams: isomorphic-git's packObjects
// builds the whole pack in memory.
import { createHash } from 'node:crypto';
import { deflateBody } from './zlib-chunks.ts';
import { packsOf, readRaw, type ObjectType, type Store } from './objects.ts';
import { entryHeaderAt, ofsDeltaHeader, type PackFile } from './pack-reuse.ts';
import { readRange } from './file-range.ts';
import { memoryCheckpoint } from '../../../platform/memory-governor.ts';


const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

export function objectHeader(type: ObjectType, size: number): Buffer {
  const bytes: number[] = [];
  let c = (TYPE_CODE[type] << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(c | 0x80);
    c = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(c);
  return Buffer.from(bytes);
}

export function packHeader(count: number): Buffer {
  const b = Buffer.alloc(12);
  b.write('PACK', 0, 'ascii');
  b.writeUInt32BE(2, 4);
  b.writeUInt32BE(count, 8);
  return b;
}

const GATHER = 64 << 10;

/** A piece of the pack: bytes made here, or a range of a stored pack copied as it is. */
type Piece = Buffer | { pack: PackFile; start: number; end: number };

/**
 * Yields the pack in chunks: header, the objects, trailer. An object stored in a pack is
 * copied as stored, read from the pack file in pieces of at most 1 MiB — a delta too, when
 * its base is in this pack (written first, so an OFS_DELTA can point back at it); anything
 * else is read and deflated afresh. The consumer pulls chunks as the client takes them, so
 * memory does not grow with the clone.
 */
export async function* writePack(
  s: Store,
  oids: string[],
  onProgress?: (done: number, total: number) => void,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha1');
  const head = packHeader(oids.length);
  hash.update(head);
  yield head;
  const packs = await packsOf(s);
  const wanted = new Set(oids);
  const written = new Map<string, number>();
  let pos = head.length;
  let n = 0;

  /** The pieces for `oid`, its base's first when it goes out as a delta. */
  async function entry(oid: string, out: Piece[]): Promise<void> {
    if (written.has(oid)) return;
    const loc = packs.locate(oid);
    if (loc) {
      const h = await entryHeaderAt(loc.pack.fh, loc.offset, loc.end);
      const baseOid = h.kind === 6 ? loc.pack.index.oidAt(h.baseOffset!) : h.kind === 7 ? h.baseOid : undefined;
      const whole = { pack: loc.pack, start: loc.offset, end: loc.end };
      if (h.kind >= 1 && h.kind <= 4) return push(oid, [whole], out);
      if (baseOid && wanted.has(baseOid)) {
        await entry(baseOid, out);
        if (h.kind === 7) return push(oid, [whole], out);
        const data = { pack: loc.pack, start: loc.offset + h.headerLength + h.baseOffsetLength!, end: loc.end };
        return push(oid, [ofsDeltaHeader(h.size, pos - written.get(baseOid)!), data], out);
      }
    }
    const { type, body } = await readRaw(s, oid);
    push(oid, [objectHeader(type, body.length), deflateBody(body)], out);
  }
  function push(oid: string, pieces: Piece[], out: Piece[]): void {
    written.set(oid, pos);
    for (const p of pieces) pos += Buffer.isBuffer(p) ? p.length : p.end - p.start;
    out.push(...pieces);
    n++;
    if (onProgress) onProgress(n, oids.length);
  }

  // Small pieces go out gathered into chunks of about 64 KiB: one side-band frame and one
  // socket write for many small entries.
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const take = (b: Buffer) => {
    hash.update(b);
    batch.push(b);
    batchBytes += b.length;
  };
  const gathered = () => {
    const chunk = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
    batch = [];
    batchBytes = 0;
    return chunk;
  };
  for (const oid of oids) {
    memoryCheckpoint();
    const out: Piece[] = [];
    await entry(oid, out);
    for (const p of out) {
      if (Buffer.isBuffer(p)) take(p);
      else {
        const cached = p.pack.fh.peek(p.start, p.end - p.start);
        if (cached) take(cached);
        else for await (const chunk of readRange(p.pack.fh, p.start, p.end)) {
          // A large entry is many 1 MiB pieces between two governor ticks.
          memoryCheckpoint(chunk.length);
          take(chunk);
          if (batchBytes >= GATHER) yield gathered();
        }
      }
      if (batchBytes >= GATHER) yield gathered();
    }
  }
  if (batchBytes) yield gathered();
  yield hash.digest();
}
