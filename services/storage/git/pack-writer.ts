// Packfile writer (gitformat-pack(5), version 2): entries reused from the stored packs
// where possible (pack-reuse.ts), else zlib-deflated whole objects; SHA-1 trailer. Streams
// one object at a time (isomorphic-git's packObjects builds the pack in memory).
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { readRaw, type ObjectType, type Store } from './objects.ts';
import { ofsDeltaHeader, PackSet, readEntryHeader } from './pack-reuse.ts';


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

/**
 * Yields the pack in chunks: header, one chunk per object, trailer. An object stored in a
 * pack is copied as stored — a delta too, when its base is in this pack (written first,
 * so an OFS_DELTA can point back at it); anything else is read and deflated afresh.
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
  const packs = await (s.packs ??= PackSet.open(s.gitdir));
  const wanted = new Set(oids);
  const written = new Map<string, number>();
  let pos = head.length;
  let n = 0;

  /** The chunks for `oid`, its base's first when it goes out as a delta. */
  async function entry(oid: string, out: Buffer[]): Promise<void> {
    if (written.has(oid)) return;
    const loc = packs.locate(oid);
    if (loc) {
      const h = readEntryHeader(loc.pack.data, loc.offset);
      const raw = loc.pack.data.subarray(loc.offset, loc.end);
      const baseOid = h.kind === 6 ? loc.pack.oidAt.get(h.baseOffset!) : h.kind === 7 ? h.baseOid : undefined;
      if (h.kind >= 1 && h.kind <= 4) return push(oid, raw, out);
      if (baseOid && wanted.has(baseOid)) {
        await entry(baseOid, out);
        if (h.kind === 7) return push(oid, raw, out);
        const body = raw.subarray(h.headerLength + h.baseOffsetLength!);
        return push(oid, Buffer.concat([ofsDeltaHeader(h.size, pos - written.get(baseOid)!), body]), out);
      }
    }
    const { type, body } = await readRaw(s, oid);
    push(oid, Buffer.concat([objectHeader(type, body.length), deflateSync(body)]), out);
  }
  function push(oid: string, chunk: Buffer, out: Buffer[]): void {
    written.set(oid, pos);
    pos += chunk.length;
    hash.update(chunk);
    out.push(chunk);
    n++;
    if (onProgress) onProgress(n, oids.length);
  }

  for (const oid of oids) {
    const out: Buffer[] = [];
    await entry(oid, out);
    for (const chunk of out) yield chunk;
  }
  yield hash.digest();
}
