/**
 * Reading an SD-card image as a stream, whatever it is packed in: a raw `.img`, or `.img.gz`
 * (RFC 1952), `.img.xz` (the .xz file format 1.0.4) or `.img.zst` (RFC 8878). The format comes
 * from the file's magic bytes, never from its name alone; a name that promises a packed
 * image whose bytes are something else is refused (a damaged or mislabelled download).
 *
 * Decompression streams: gzip and zstd through node:zlib, xz through the `xz` program as a
 * child process (docs/decisions.md). Nothing is decompressed to a temporary file.
 *
 * The uncompressed size, for the progress bar and the target-size check, comes from the
 * file itself where it says it: zstd's Frame_Content_Size (RFC 8878 §3.1.1.1.4), the xz
 * index (format §4, every stream of the file summed), gzip's ISIZE (RFC 1952 §2.3.1, the
 * size modulo 2^32, so only a hint); else from image.json when the file is in the folder
 * kith image build wrote. The parsers are pure and take hostile bytes: a malformed header
 * is "unknown", never a throw.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Duplex, PassThrough, Transform, pipeline } from 'node:stream';
import zlib from 'node:zlib';

export type ImageFormat = 'raw' | 'gzip' | 'xz' | 'zstd';

const MAGIC: [ImageFormat, number[]][] = [
  ['gzip', [0x1f, 0x8b, 0x08]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

const EXTENSION: Record<string, ImageFormat> = { '.gz': 'gzip', '.xz': 'xz', '.zst': 'zstd' };

/** The format from the first bytes; an error when the name's extension says otherwise. */
export function detectFormat(name: string, head: Buffer): { ok: true; value: ImageFormat } | { ok: false; error: string } {
  const found = MAGIC.find(([, m]) => head.length >= m.length && m.every((b, i) => head[i] === b))?.[0] ?? 'raw';
  const ext = Object.keys(EXTENSION).find((e) => name.toLowerCase().endsWith(e));
  const promised = ext ? EXTENSION[ext]! : undefined;
  if (promised && promised !== found) {
    return { ok: false, error: `its name ends in ${ext} but it is ${found === 'raw' ? 'not compressed' : `${found}-compressed`} (a damaged or incomplete download?)` };
  }
  return { ok: true, value: found };
}

/** RFC 8878 §3.1.1.1: the first frame's Frame_Content_Size, when the compressor wrote it. */
export function zstdContentSize(head: Buffer): number | undefined {
  if (head.length < 6 || head.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = head[4]!;
  if (fhd & 0x08) return undefined; // reserved bit set: not a frame we understand
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (single ? 0 : 1) + dictBytes;
  if (head.length < at + fcsBytes) return undefined;
  switch (fcsBytes) {
    case 1: return head[at]!;
    case 2: return head.readUInt16LE(at) + 256;
    case 4: return head.readUInt32LE(at);
    default: {
      const v = head.readBigUInt64LE(at);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
    }
  }
}

/**
 * RFC 1952 §2.3.1: ISIZE is the size modulo 2^32. Given a lower bound (the end of the
 * image's last partition), the smallest size ≥ it with that remainder.
 */
export function gzipSize(tail: Buffer, atLeast = 0): number | undefined {
  if (tail.length < 4) return undefined;
  const isize = tail.readUInt32LE(tail.length - 4);
  let n = isize;
  while (n < atLeast) n += 2 ** 32;
  return n;
}

/** Read `length` bytes at `offset` of the packed file (shorter at its end). */
export type ReadAt = (offset: number, length: number) => Buffer;

function varint(b: Buffer, at: number): [number, number] | undefined {
  // .xz §1.2: up to 9 bytes, 7 bits each, little end first; no needless trailing zero byte.
  let v = 0;
  for (let i = 0; i < 9 && at + i < b.length; i++) {
    const byte = b[at + i]!;
    v += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return byte === 0 && i > 0 ? undefined : [v, at + i + 1];
  }
  return undefined;
}

/**
 * The uncompressed size of an .xz file from its indexes (.xz §2.1.2.2 footer, §4 index):
 * walking back from the end over stream padding, footer, index and blocks, stream by
 * stream. Undefined when anything does not add up (CRC32s included).
 */
export function xzUncompressedSize(fileBytes: number, readAt: ReadAt): number | undefined {
  if (fileBytes < 32) return undefined;
  let end = fileBytes;
  let total = 0;
  for (let streams = 0; end > 0; streams++) {
    if (streams > 10_000) return undefined;
    // Stream padding: zero bytes in multiples of four.
    while (end >= 4 && readAt(end - 4, 4).readUInt32LE(0) === 0) end -= 4;
    if (end < 24) return undefined;
    const footer = readAt(end - 12, 12);
    if (footer.length !== 12 || footer[10] !== 0x59 || footer[11] !== 0x5a) return undefined;
    if (zlib.crc32(footer.subarray(4, 10)) !== footer.readUInt32LE(0)) return undefined;
    const indexBytes = (footer.readUInt32LE(4) + 1) * 4;
    const indexStart = end - 12 - indexBytes;
    if (indexStart < 12) return undefined;
    const index = readAt(indexStart, indexBytes);
    if (index.length !== indexBytes || index[0] !== 0x00) return undefined;
    if (zlib.crc32(index.subarray(0, indexBytes - 4)) !== index.readUInt32LE(indexBytes - 4)) return undefined;
    const count = varint(index, 1);
    if (!count) return undefined;
    let at = count[1];
    let blocks = 0;
    for (let r = 0; r < count[0]; r++) {
      const unpadded = varint(index, at);
      if (!unpadded) return undefined;
      const size = varint(index, unpadded[1]);
      if (!size || size[1] > indexBytes - 4) return undefined;
      blocks += Math.ceil(unpadded[0] / 4) * 4;
      total += size[0];
      at = size[1];
    }
    const streamStart = indexStart - blocks - 12;
    if (streamStart < 0) return undefined;
    const header = readAt(streamStart, 12);
    if (!MAGIC[1]![1].every((b, i) => header[i] === b) || header[6] !== footer[8] || header[7] !== footer[9]) return undefined;
    end = streamStart;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * The hash for `name` in a `sha256sum` file (`HASH  NAME` or `HASH *NAME` lines; # comments
 * skipped), or the only hash in it when no line names the file (a renamed download).
 */
export function parseSha256File(text: string, name: string): { ok: true; value: string } | { ok: false; error: string } {
  const found: [string, string][] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]{64}) [ *](.+?)\r?$/.exec(line);
    if (!m) return { ok: false, error: `not a sha256sum line: ${JSON.stringify(line.slice(0, 80))}` };
    found.push([m[1]!.toLowerCase(), basename(m[2]!)]);
  }
  const mine = found.find(([, n]) => n === name) ?? (found.length === 1 ? found[0] : undefined);
  return mine ? { ok: true, value: mine[0] } : { ok: false, error: found.length ? `no line for ${name}` : 'no sha256sum line in it' };
}

export interface ImageStream {
  path: string;
  format: ImageFormat;
  /** Bytes of the file as stored (compressed). */
  fileBytes: number;
  /** Uncompressed bytes as the file states them (for gzip a hint modulo 4 GiB); undefined when it does not. */
  bytes?: number;
  /** The decompressed image, once. */
  chunks(): AsyncIterable<Buffer>;
  /** sha256 of the stored file's bytes, once chunks() has been read to its end. */
  fileSha256(): string;
}

/** The size image.json states, when the image sits in the folder kith image build made. */
function statedBeside(path: string): number | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dirname(path), 'image.json'), 'utf8')) as { image?: unknown; download?: unknown; bytes?: unknown };
    const name = basename(path);
    return (meta.image === name || meta.download === name) && Number.isSafeInteger(meta.bytes) && (meta.bytes as number) > 0 ? (meta.bytes as number) : undefined;
  } catch {
    return undefined;
  }
}

/** Open an image for streaming; the format from its magic bytes (an error when the name disagrees). */
export function openImageStream(path: string): ImageStream {
  const fd = openSync(path, 'r');
  let fileBytes: number;
  let format: ImageFormat;
  let bytes: number | undefined;
  try {
    fileBytes = fstatSync(fd).size;
    const readAt: ReadAt = (offset, length) => {
      const b = Buffer.alloc(Math.max(0, Math.min(length, fileBytes - offset)));
      const n = b.length ? readSync(fd, b, 0, b.length, offset) : 0;
      return b.subarray(0, n);
    };
    const f = detectFormat(path, readAt(0, 64));
    if (!f.ok) throw new Error(`${path}: ${f.error}`);
    format = f.value;
    bytes = format === 'raw' ? fileBytes
      : format === 'zstd' ? zstdContentSize(readAt(0, 18)) ?? statedBeside(path)
      : format === 'xz' ? xzUncompressedSize(fileBytes, readAt) ?? statedBeside(path)
      : statedBeside(path) ?? gzipSize(readAt(fileBytes - 4, 4));
  } finally {
    closeSync(fd);
  }
  const hash = createHash('sha256');
  let consumed = false;
  let done = false;
  let digest: string | undefined;
  return {
    path, format, fileBytes, ...(bytes !== undefined ? { bytes } : {}),
    chunks() {
      if (consumed) throw new Error(`${path}: the image stream was already read`);
      consumed = true;
      return decompressed(path, format, hash, () => { done = true; });
    },
    fileSha256() {
      if (!done) throw new Error(`${path}: the file hash is known only after reading it to its end`);
      return (digest ??= hash.digest('hex'));
    },
  };
}

async function* decompressed(path: string, format: ImageFormat, hash: ReturnType<typeof createHash>, onEnd: () => void): AsyncGenerator<Buffer> {
  const tap = new Transform({ transform(c: Buffer, _e, cb) { hash.update(c); cb(null, c); } });
  const xz = format === 'xz' ? xzDecoder(path) : undefined;
  const decoder: Duplex = format === 'gzip' ? zlib.createGunzip()
    : format === 'zstd' ? zlib.createZstdDecompress()
    : xz ? xz.stream : new PassThrough();
  // pipeline, not compose: a decoder failing at the end of its input (a truncated
  // download) must reach the reader as an error, not leave it waiting.
  const out = new PassThrough({ highWaterMark: 4 << 20 });
  pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), tap, decoder, out, () => {});
  try {
    for await (const c of out) yield c as Buffer;
    if (xz) await xz.exited;
    onEnd();
  } catch (err) {
    // A broken pipe to xz is xz refusing the data: its own message says why.
    const why = xz ? await Promise.race([xz.exited.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(r, 500, undefined))]) : undefined;
    if (why) throw why;
    const e = err as NodeJS.ErrnoException;
    if (format === 'raw' || e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw err;
    throw new Error(`${path}: the ${format} data is damaged or cut short (${e.message}): download it again`);
  } finally {
    out.destroy();
    xz?.kill();
  }
}

/**
 * `xz -dc` as a duplex stream: the reference decoder (multi-stream, padding, every check
 * type), already on any Linux that has an .img.xz to write. Its failure is the stream's error.
 */
function xzDecoder(path: string): { stream: Duplex; exited: Promise<void>; kill: () => void } {
  // Its own process group: a Ctrl-C at the terminal is kith flash's to handle (it stops
  // between blocks, and then ends xz), not a decoder error.
  const child = spawn('xz', ['--decompress', '--stdout', '--threads=0'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  // Node takes { writable, readable } here; its type definitions do not list it.
  const stream = Duplex.from({ writable: child.stdin, readable: child.stdout } as unknown as Parameters<typeof Duplex.from>[0]);
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      const err = new Error(e.code === 'ENOENT' ? `${path}: reading an .xz image needs the xz program (Debian: apt-get install xz-utils), or use the .img.zst image` : `xz: ${e.message}`);
      stream.destroy(err);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const err = new Error(`${path}: xz could not decompress it (${signal ?? `exit ${code}`}): ${stderr.trim().replace(/^xz: /, '') || 'no message'}`);
      stream.destroy(err);
      reject(err);
    });
  });
  exited.catch(() => {});
  return { stream, exited, kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill(); } };
}

/** Re-cut a stream into blocks of exactly `size` bytes (the last may be shorter). */
export async function* blocks(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const chunk of source) {
    for (let at = 0; at < chunk.length;) {
      const n = Math.min(size - fill, chunk.length - at);
      chunk.copy(buf, fill, at, at + n);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill) yield buf.subarray(0, fill);
}
