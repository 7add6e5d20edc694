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

