/**
 * Output chunk sizes for zlib calls whose result size is known (a pack entry's header
 * gives it) or bounded (a deflated body is about its input's size). Node's zlib writes its
 * output into chunks of 16 KB by default, one set per call: thousands of small objects per
 * push or clone made that most of storage's garbage (bench/storage: push peak RssAnon
 * 145 → 79 MiB with chunks sized to the object).
 */
import { deflateSync } from 'node:zlib';
import { inflateKnown } from './inflater.ts';

/** A chunk that holds `expected` bytes in one piece, between zlib's minimum and 64 KB. */
export function chunkFor(expected: number): number {
  return Math.max(64, Math.min(expected, 64 << 10));
}

/** Inflate an object whose header says it is `size` bytes (through one reused engine, inflater.ts); a stream that does not inflate to that size throws. */
export function inflateOfSize(input: Buffer, size: number): Buffer {
  return inflateKnown(input, size).buffer;
}

/** Deflate an object body (the result is about as large as the body, or smaller). */
export function deflateBody(body: Buffer): Buffer {
  return deflateSync(body, { chunkSize: chunkFor(body.length + 64) });
}
