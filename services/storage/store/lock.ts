/**
 * Serialising writers of one branch.
 * - In the process: a promise-chain mutex per key (one per repository + branch).
 * - Across processes: git's own lock-file protocol (`refs/heads/<branch>.lock`, created atomically like git's
 *   O_EXCL open (lockfile.h), here by link(2) of a written temp file), so a second kith process, or real git working in the
 *   bare repository, sees the branch as busy instead of racing the ref move.
 * A lock left by a writer that died (SIGKILL, power loss) is broken when its pid is gone or
 * when it is older than `staleMs`; breakers take turns through `<lock>.break`, so a lock is
 * broken once and a fresh one never by mistake.
 */
import { constants as C, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { LockedError } from './errors.ts';
import { processAlive } from '../../../platform/process.ts';

const chains = new Map<string, Promise<unknown>>();

/** Run `fn` after every earlier `withMutex(key, ...)` call has settled. */
export async function withMutex<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = chains.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  chains.set(key, tail);
  try {
    return await run;
  } finally {
    if (chains.get(key) === tail) chains.delete(key);
  }
}

export interface FileLockOptions {
  /** Give up (LockedError) after waiting this long (default 5000 ms). */
  timeoutMs?: number;
  /** A lock older than this is from a dead writer (default 30000 ms). */
  staleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lock contents this process holds right now. */
const HELD = new Set<string>();


interface LockId {
  ino: number;
  mtimeMs: number;
}

/** The identity of the lock at `file` if it was left by a dead writer, else undefined. */
async function staleLock(file: string, staleMs: number): Promise<LockId | undefined> {
  try {
    const st = await fsp.stat(file);
    const text = await fsp.readFile(file, 'utf8');
    // Our locks say "kith <pid> <token>"; a lock by real git is empty or holds a ref value.
    // A lock with our own pid but a token we do not hold is from an earlier process that
    // had the same pid (PID 1 in an image, a re-exec): dead, whatever its age.
    const m = /^kith (\d+) (\S+)/.exec(text);
    const ours = m !== null && Number(m[1]) === process.pid;
    const dead = (m && (ours ? !HELD.has(text) : processAlive(Number(m[1])) === false)) || Date.now() - st.mtimeMs > staleMs;
    return dead ? { ino: st.ino, mtimeMs: st.mtimeMs } : undefined;
  } catch {
    return undefined; // gone already: the next try tells
  }
}

/** Create `file` holding `content`, atomically: link(2) fails with EEXIST if it exists. */
async function createWith(file: string, content: string): Promise<boolean> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fsp.writeFile(tmp, content, { flag: C.O_WRONLY | C.O_CREAT | C.O_EXCL, mode: 0o644 });
  try {
    await fsp.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/**
 * Remove the stale lock `id` — only that one. Breakers take turns through `<lock>.break`,
 * so two of them cannot both remove a lock and then each other's new one.
 */
async function breakLock(file: string, id: LockId, token: string): Promise<void> {
  const breaker = `${file}.break`;
  if (!(await createWith(breaker, token))) {
    // A breaker holds it for microseconds; one that is old died in between.
    const st = await fsp.stat(breaker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 5000) await fsp.rm(breaker, { force: true });
    return;
  }
  try {
    const st = await fsp.stat(file).catch(() => undefined);
    if (st && st.ino === id.ino && st.mtimeMs === id.mtimeMs) await fsp.rm(file, { force: true });
  } finally {
    await fsp.rm(breaker, { force: true });
  }
}

/**
 * Hold `lockFile` while `fn` runs. The lock is created whole (link of a written temp file),
 * so it always names its holder's pid, and a dead holder's lock is broken at once.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const staleMs = opts.staleMs ?? 30_000;
  const started = Date.now();
  const token = `kith ${process.pid} ${randomBytes(6).toString('hex')}\n`;
  for (let attempt = 0; !(await createWith(lockFile, token)); attempt++) {
    const stale = await staleLock(lockFile, staleMs);
    if (stale) {
      await breakLock(lockFile, stale, token);
      continue;
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockedError(lockFile, waited);
    await sleep(Math.min(5 + attempt * 5, 50));
  }
  HELD.add(token);
  try {
    return await fn();
  } finally {
    // Remove only our own lock.
    const text = await fsp.readFile(lockFile, 'utf8').catch(() => '');
    if (text === token) await fsp.rm(lockFile, { force: true });
    HELD.delete(token);
  }
}
