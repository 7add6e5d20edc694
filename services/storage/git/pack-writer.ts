// Packfile writer (gitformat-pack(5), version 2): undeltified objects, each
// zlib-deflated, SHA-1 trailer. Streams one object at a time so memory stays at
// one object, not one pack (isomorphic-git's packObjects builds the pack in memory).
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { readRaw, type ObjectType, type Store } from './objects.ts';

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

/** Yields the pack in chunks: header, one chunk per object, trailer. */
export async function* writePack(
  s: Store,
  oids: string[],
  onProgress?: (done: number, total: number) => void,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha1');
  const head = packHeader(oids.length);
  hash.update(head);
  yield head;
  let n = 0;
  for (const oid of oids) {
    const { type, body } = await readRaw(s, oid);
    const chunk = Buffer.concat([objectHeader(type, body.length), deflateSync(body)]);
    hash.update(chunk);
    yield chunk;
    n++;
    if (onProgress) onProgress(n, oids.length);
  }
  yield hash.digest();
}
