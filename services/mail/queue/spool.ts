/**
 * The durable queue on disk: one file per accepted message, written before the 250.
 *
 *   queue/<id>.msg     the message exactly as received (CRLF, dot-unstuffed), then its
 *                      envelope as a JSON trailer and a fixed footer giving the trailer's
 *                      length. Streamed to a temp file opened O_DSYNC (each write reaches
 *                      the disk before it returns, platform/durable.ts explains why not
 *                      fsync) in large writes, then renamed into place: the rename is the
 *                      commit point, so after a crash a message is wholly there or absent.
 *   queue/<id>.state   delivery progress (attempts, next try, recipients done), rewritten
 *                      with writeFileDurable after an attempt that did not finish.
 *
 * A message is removed only once every recipient is delivered or bounced: .msg first,
 * then .state (a .state without its .msg is swept at start). Nothing is buffered whole: a
 * body is streamed in and read back as a stream.
 */
import { randomBytes } from 'node:crypto';
import { constants as C, createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { fsyncDir, removeStaleTemps, writeFileDurable } from '../../../platform/durable.ts';

export interface Envelope {
  id: string;
  /** Reverse path; '' is the null sender (a bounce: never bounced itself). */
  from: string;
  /** Final recipients after alias expansion, with the address the client gave (ORCPT). */
  rcpts: { to: string; orcpt: string }[];
  /** Header lines (each ending CRLF) put before the message when it is sent. */
  prepend: string;
  received: number;
  /** The client: address and HELO name, how it authenticated. */
  client: { ip: string; helo: string; user?: string };
  /** The body has 8-bit content (BODY=8BITMIME) / needs SMTPUTF8. */
  eightBit?: boolean;
  smtputf8?: boolean;
  /**
   * Sign with DKIM as this domain before sending: set when the message was accepted while
   * the clock was not synchronised (a signature's t= would be wrong), so the queue holds it
   * until the clock is, then signs the stored message.
   */
  signAs?: string;
  bytes: number;
}

export interface DeliveryState {
  attempts: number;
  /** Next attempt, ms since the epoch. */
  nextAt: number;
  /** Recipients delivered or already bounced. */
  done: string[];
  lastError?: string;
  /** The DKIM-Signature lines made later for a message with `signAs` (kept so a retry sends the same). */
  dkim?: string;
}

const FOOTER_BYTES = 12; // '\n' + 10-digit length + '\n'
/** Writes are gathered to this size: each O_DSYNC write costs a disk flush. */
const WRITE_CHUNK = 256 * 1024;

export const newId = (now: number) => `${now.toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
const ID = /^[0-9a-z]{9}-[0-9a-f]{12}$/;
export const isQueueId = (s: string) => ID.test(s);

/** Streams one message into the queue; `commit` makes it durable, `abort` drops it. */
export class SpoolWriter {
  readonly id: string;
  private handle: fsp.FileHandle | undefined;
  private opening: Promise<fsp.FileHandle>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  bytes = 0;
  readonly tmp: string;

  readonly dir: string;

  constructor(dir: string, now: number) {
    this.dir = dir;
    this.id = newId(now);
    this.tmp = path.join(dir, `.${this.id}.msg.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    this.opening = fsp.open(this.tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_DSYNC, 0o600);
    this.opening.then((h) => { this.handle = h; }, (err: Error) => { this.failed = err; });
  }

  /** Queue a chunk; resolves when it is safe to take more (back-pressure for the socket). */
  write(chunk: Buffer): Promise<void> | undefined {
    this.bytes += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < WRITE_CHUNK) return undefined;
    return this.flush();
  }

  private flush(extra?: Buffer): Promise<void> {
    const bufs = this.pending;
    if (extra) bufs.push(extra);
    this.pending = [];
    this.pendingBytes = 0;
    if (bufs.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      if (this.failed) throw this.failed;
      const h = this.handle ?? (await this.opening);
      await h.writev(bufs);
    });
    this.writing.catch((err: Error) => { this.failed ??= err; });
    return this.writing;
  }

  /** Write the rest and the envelope, then rename into place: the message is queued. */
  async commit(env: Omit<Envelope, 'id' | 'bytes'>): Promise<Envelope> {
    const full: Envelope = { ...env, id: this.id, bytes: this.bytes };
    const json = Buffer.from(JSON.stringify(full));
    const footer = Buffer.from(`\n${String(json.length).padStart(10, '0')}\n`);
    await this.flush(Buffer.concat([json, footer]));
    if (this.failed) throw this.failed;
    const h = this.handle ?? (await this.opening);
    await h.close();
    this.handle = undefined;
    await fsp.rename(this.tmp, path.join(this.dir, `${this.id}.msg`));
    await fsyncDir(this.dir);
    return full;
  }

  async abort(): Promise<void> {
    this.pending = [];
    await this.writing.catch(() => {});
    const h = this.handle ?? (await this.opening.catch(() => undefined));
    await h?.close().catch(() => {});
    this.handle = undefined;
    await fsp.rm(this.tmp, { force: true });
  }
}

export interface QueuedMessage {
  env: Envelope;
  state: DeliveryState;
  file: string;
  /** Bytes of the message (before the trailer). */
  bodyBytes: number;
}

const unlinkIfThere = (file: string) => fsp.unlink(file).catch((err: NodeJS.ErrnoException) => {
  if (err.code !== 'ENOENT') throw err;
});

export class Spool {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(this.dir);
  }

  writer(now: number): SpoolWriter {
    return new SpoolWriter(this.dir, now);
  }

  private msgFile(id: string) {
    return path.join(this.dir, `${id}.msg`);
  }

  fileOf(id: string): string {
    return this.msgFile(id);
  }

  /** Read one message's envelope and state (undefined when it is gone or unreadable). */
  async load(id: string): Promise<QueuedMessage | undefined> {
    const file = this.msgFile(id);
    let h: fsp.FileHandle;
    try {
      h = await fsp.open(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const { size } = await h.stat();
      if (size < FOOTER_BYTES) return undefined;
      const foot = Buffer.alloc(FOOTER_BYTES);
      await h.read(foot, 0, FOOTER_BYTES, size - FOOTER_BYTES);
      const len = Number(foot.toString('latin1', 1, 11));
      if (!Number.isInteger(len) || len <= 0 || len > size - FOOTER_BYTES) return undefined;
      const json = Buffer.alloc(len);
      await h.read(json, 0, len, size - FOOTER_BYTES - len);
      const env = JSON.parse(json.toString('utf8')) as Envelope;
      const state = await this.readState(id, env);
      return { env, state, file, bodyBytes: size - FOOTER_BYTES - len };
    } catch {
      return undefined;
    } finally {
      await h.close();
    }
  }

  private async readState(id: string, env: Envelope): Promise<DeliveryState> {
    try {
      const s = JSON.parse(await fsp.readFile(path.join(this.dir, `${id}.state`), 'utf8')) as DeliveryState;
      if (typeof s.attempts === 'number' && typeof s.nextAt === 'number' && Array.isArray(s.done)) return s;
    } catch {
      // none yet (first attempt) or torn: start from the envelope
    }
    return { attempts: 0, nextAt: env.received, done: [] };
  }

  async saveState(id: string, state: DeliveryState): Promise<void> {
    await writeFileDurable(path.join(this.dir, `${id}.state`), JSON.stringify(state), { mode: 0o600 });
  }

  /** The message as sent: our header lines, then the stored message. */
  body(m: QueuedMessage): Readable {
    if (m.bodyBytes === 0) return Readable.from([]);
    return createReadStream(m.file, { start: 0, end: Math.max(0, m.bodyBytes - 1), highWaterMark: 64 * 1024 });
  }

  /** Remove a message; `hasState` false skips its (never written) state file. */
  async remove(id: string, hasState = true): Promise<void> {
    await unlinkIfThere(this.msgFile(id));
    if (hasState) await unlinkIfThere(path.join(this.dir, `${id}.state`));
  }

  /** Every queued id; sweeps .state files whose message is gone. */
  async ids(): Promise<string[]> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    const msgs = new Set(names.filter((n) => n.endsWith('.msg')).map((n) => n.slice(0, -4)).filter(isQueueId));
    for (const n of names) {
      if (n.endsWith('.state') && !msgs.has(n.slice(0, -6))) await fsp.rm(path.join(this.dir, n), { force: true });
    }
    return [...msgs].sort();
  }
}
