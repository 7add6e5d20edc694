/**
 * Reading a stored file by offset (pread through a FileHandle), whole or in bounded pieces:
 * packs are read this way, never loaded whole, so memory does not grow with their size.
 */
import type { promises as fsp } from 'node:fs';

/** Exactly `length` bytes at `offset` (fewer only at the end of the file). */
export async function readAt(fh: fsp.FileHandle, offset: number, length: number): Promise<Buffer> {
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
export async function* readRange(fh: fsp.FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  for (let at = start; at < end; at += COPY_CHUNK) {
    const piece = await readAt(fh, at, Math.min(COPY_CHUNK, end - at));
    if (piece.length === 0) throw new Error(`the pack ends before offset ${end}`);
    yield piece;
  }
}

