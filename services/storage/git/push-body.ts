/**
 * A push request body (gitprotocol-pack(5) "Pushing"), read as it arrives: the command list
 * is kept in memory (it is small and capped), the pack goes straight to a temp file in the
 * repository's objects/pack (opened O_DSYNC, 0600: what is acknowledged later is on disk),
 * hashed on the way so its trailing SHA-1 is checked without reading it again. Memory stays
 * flat whatever the size of the push; `maxPushBytes` is counted while streaming.
 */
import { constants as C, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { DIR_MODE, FILE_MODE } from './private-fs.ts';
import { memoryCheckpoint } from '../../../platform/memory-governor.ts';

/** The command list may not be longer than this (10,000 commands of ~100 bytes fit). */
const MAX_COMMANDS_BYTES = 4 << 20;
/** Writes are gathered to this size: each O_DSYNC write waits for the disk (a journal commit). */
const WRITE_BYTES = 2 << 20;

export interface ReceivedPack {
  /** The temp file holding the pack (tmp_pack_<pid>-<hex>: start-up clean-up knows the name). */
  file: string;
  size: number;
  /** Whether the trailing 20 bytes are the SHA-1 of everything before them. */
  checksumOk: boolean;
  /**
   * Storing it failed (a full disk, a read-only folder): the rest of the body was read and
   * dropped, so that receive-pack can tell the pusher why on the protocol's channels.
   */
  error?: unknown;
}

export type PushBody =
  | { head: Buffer; pack?: ReceivedPack }
  /** Over the limit: the first bytes (the command list, for the answer) and the size seen. */
  | { refused: true; head: Buffer; size: number };

/** Where the command list ends (after its flush-pkt), or undefined while more is needed. */
export function commandListLength(buf: Buffer): number | undefined {
  let p = 0;
  for (;;) {
    if (p + 4 > buf.length) return undefined;
    const n = parseInt(buf.toString('latin1', p, p + 4), 16);
    if (Number.isNaN(n)) return p + 4; // malformed: parseCommands says why
    if (n === 0) return p + 4;
    if (n < 4) {
      p += 4;
      continue;
    }
    if (p + n > buf.length) return undefined;
    p += n;
  }
}

/**
 * Read a push body: commands into memory, the pack to a temp file. Past `limit` bytes the
 * temp file is removed and the rest is read and dropped (up to `drainCap`, so the client
 * gets to read our answer), or the reading stops when `drain` is false.
 */
export async function readPushBody(body: AsyncIterable<Buffer>, gitdir: string, limit: number, opts: { drainCap?: number } = {}): Promise<PushBody> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let headChunks: Buffer[] = [];
  let headBytes = 0;
  let head: Buffer | undefined;
  let size = 0;
  let fh: fsp.FileHandle | undefined;
  let file: string | undefined;
  const hash = createHash('sha1');
  let tail = Buffer.alloc(0); // the last 20 bytes seen: the trailer, if nothing follows
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let packBytes = 0;
  let over = false;
  let writeError: unknown;

  const flush = async () => {
    if (!pendingBytes) return;
    const data = pending;
    pending = [];
    pendingBytes = 0;
    if (!fh) {
      await fsp.mkdir(dir, { recursive: true, mode: DIR_MODE });
      file = path.join(dir, `tmp_pack_${process.pid}-${randomBytes(4).toString('hex')}`);
      fh = await fsp.open(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_DSYNC, FILE_MODE);
    }
    // One gathered write (one wait for the disk), without copying the pieces together.
    for (let i = 0; i < data.length; ) {
      const { bytesWritten } = await fh.writev(data.slice(i, i + 512));
      let left = bytesWritten;
      while (i < data.length && left >= data[i]!.length) left -= data[i++]!.length;
      if (left > 0) data[i] = data[i]!.subarray(left);
    }
  };
  const packData = async (chunk: Buffer) => {
    if (chunk.length === 0 || writeError) return;
    packBytes += chunk.length;
    // Hash all but the last 20 bytes, which may be the trailer.
    if (chunk.length >= 20) {
      hash.update(tail);
      hash.update(chunk.subarray(0, chunk.length - 20));
      tail = Buffer.from(chunk.subarray(chunk.length - 20));
    } else {
      const all = Buffer.concat([tail, chunk]);
      hash.update(all.subarray(0, Math.max(0, all.length - 20)));
      tail = all.subarray(Math.max(0, all.length - 20));
    }
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= WRITE_BYTES) await startFlush();
  };
  // One gathered write in flight while the next is gathered: the wait for the disk overlaps
  // with reading the socket, and memory stays at two batches.
  let inflight: Promise<void> | undefined;
  const startFlush = async () => {
    await inflight;
    if (writeError) return;
    inflight = flush().catch(async (err: unknown) => {
      writeError = err;
      pending = [];
      pendingBytes = 0;
      await closeAndRemove();
    });
  };
  const drop = async () => {
    await inflight;
    await closeAndRemove();
  };
  const closeAndRemove = async () => {
    await fh?.close().catch(() => {});
    fh = undefined;
    if (file) await fsp.rm(file, { force: true });
  };

  try {
    for await (const chunk of body) {
      // A fast client fills many chunks between the governor's timer ticks: check here too.
      memoryCheckpoint(chunk.length);
      size += chunk.length;
      if (size > limit) {
        if (!over) {
          over = true;
          pending = [];
          pendingBytes = 0;
          await drop();
          if (!head) head = Buffer.concat([...headChunks, chunk]).subarray(0, MAX_COMMANDS_BYTES);
          headChunks = [];
        }
        if (size > (opts.drainCap ?? Infinity)) break;
        continue;
      }
      if (head) {
        await packData(chunk);
        continue;
      }
      headChunks.push(chunk);
      headBytes += chunk.length;
      const all = Buffer.concat(headChunks, headBytes);
      const n = commandListLength(all);
      if (n === undefined) {
        if (headBytes > MAX_COMMANDS_BYTES) {
          head = all;
          headChunks = [];
        } else headChunks = [all];
        continue;
      }
      head = all.subarray(0, n);
      headChunks = [];
      await packData(all.subarray(n));
    }
    if (over) return { refused: true, head: head ?? Buffer.alloc(0), size };
    if (!head) head = Buffer.concat(headChunks);
    await startFlush();
    await inflight;
    if (writeError) return { head, pack: { file: file ?? path.join(dir, 'tmp_pack_unwritten'), size: packBytes, checksumOk: false, error: writeError } };
    if (!fh) return { head };
    await fh.close();
    fh = undefined;
    return { head, pack: { file: file!, size: packBytes, checksumOk: packBytes >= 20 && hash.digest().equals(tail) } };
  } catch (err) {
    await drop();
    throw err;
  }
}
