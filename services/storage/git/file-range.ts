/**
 * Reading a stored file by offset (pread through a FileHandle), whole or in bounded pieces:
 * packs are read this way, never loaded whole, so memory does not grow with their size.
 */
import * as fs from 'node:fs';

/** What can be read by offset: a FileHandle, or a plain descriptor through `fdReader`. */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** A reader over a numeric descriptor (its owner closes it; a FileHandle would be closed by GC with an error). */
export const fdReader = (fd: number): PositionalReader => ({
  read: (buffer, offset, length, position) =>
    new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve({ bytesRead })))),
});

/** Exactly `length` bytes at `offset` (fewer only at the end of the file). */
export async function readAt(fh: PositionalReader, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** Pieces of at most this much when a stored range is copied out. */
export const COPY_CHUNK = 1 << 20;

/** The bytes [start, end) of a file, in pieces of at most COPY_CHUNK: memory stays flat whatever the range. */
export async function* readRange(fh: PositionalReader, start: number, end: number): AsyncGenerator<Buffer> {
  for (let at = start; at < end; at += COPY_CHUNK) {
    const piece = await readAt(fh, at, Math.min(COPY_CHUNK, end - at));
    if (piece.length === 0) throw new Error(`the pack ends before offset ${end}`);
    yield piece;
  }
}


/** Blocks a BlockCache reads and keeps. */
const BLOCK = 64 << 10;

/**
 * A reader that reads a file in aligned 64 KiB blocks and keeps the most recently used
 * ones (at most `maxBlocks`, 16 MiB by default): a clone reads thousands of small entries
 * in an order close to, but not, pack order, and each read is a round trip through libuv's
 * thread pool that a loaded machine makes slow. Reads larger than a block go straight to
 * the file.
 */
export interface CachedReader extends PositionalReader {
  /** The bytes [position, position + length) when they are in one cached block (a view, no copy), else undefined. */
  peek(position: number, length: number): Buffer | undefined;
}

export function blockCache(inner: PositionalReader, maxBlocks = 256): CachedReader {
  const blocks = new Map<number, Promise<Buffer>>();
  const ready = new Map<number, Buffer>();
  const block = (n: number): Promise<Buffer> => {
    let b = blocks.get(n);
    if (b) blocks.delete(n); // most recent last
    else {
      b = readAt(inner, n * BLOCK, BLOCK);
      b.then((buf) => blocks.has(n) && ready.set(n, buf), () => blocks.delete(n));
    }
    blocks.set(n, b);
    while (blocks.size > maxBlocks) {
      const old = blocks.keys().next().value!;
      blocks.delete(old);
      ready.delete(old);
    }
    return b;
  };
  return {
    peek(position, length) {
      const n = Math.floor(position / BLOCK);
      const from = position - n * BLOCK;
      if (from + length > BLOCK) return undefined;
      const b = ready.get(n);
      if (!b || from + length > b.length) return undefined;
      return b.subarray(from, from + length);
    },
    async read(buffer, offset, length, position) {
      if (length > BLOCK) return inner.read(buffer, offset, length, position);
      let done = 0;
      while (done < length) {
        const at = position + done;
        const b = await block(Math.floor(at / BLOCK));
        const from = at % BLOCK;
        const n = Math.min(length - done, b.length - from);
        if (n <= 0) break; // end of file
        b.copy(buffer, offset + done, from, from + n);
        done += n;
      }
      return { bytesRead: done };
    },
  };
}
