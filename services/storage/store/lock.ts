/**
 * Serialising writers of one branch.
 * - In the process: a promise-chain mutex per key (one per repository + branch).
 * - Across processes: git's own lock-file protocol (`refs/heads/<branch>.lock`, created with
 *   O_EXCL; see git's lockfile.h), so a second kith process, or real git working in the
 *   bare repository, sees the branch as busy instead of racing the ref move.
 * A lock left by a writer that died (SIGKILL, power loss) is broken when its pid is gone or
 * when it is older than `staleMs`.
 */
import { constants as C, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { LockedError } from './errors.ts';

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

function pidAlive(pid: number): boolean | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ESRCH') return false;
    return code === 'EPERM' ? true : undefined; // EPERM: alive, someone else's; else unknown
  }
}

/** Is the lock at `file` left by a dead writer? */
async function isStale(file: string, staleMs: number): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
    // Our locks say "kith <pid> <token>"; a lock by real git is empty or holds a ref value.
    const m = /^kith (\d+) /.exec(text);
    if (m && pidAlive(Number(m[1])) === false) return true;
    return Date.now() - st.mtimeMs > staleMs;
  } catch {
    return false; // gone already: the next O_EXCL try tells
  }
}

/**
 * Hold `lockFile` (O_EXCL) while `fn` runs. Note: two processes that break the same stale
 * lock at the same moment may both enter; that needs a crash plus a race, and the ref move
 * re-reads the ref just before writing as a second check.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const staleMs = opts.staleMs ?? 30_000;
  const started = Date.now();
  const token = `kith ${process.pid} ${randomBytes(6).toString('hex')}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const h = await fsp.open(lockFile, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
      try {
        await h.writeFile(token);
      } finally {
        await h.close();
      }
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      if (await isStale(lockFile, staleMs)) {
        await fsp.rm(lockFile, { force: true });
        continue;
      }
      const waited = Date.now() - started;
      if (waited >= timeoutMs) throw new LockedError(lockFile, waited);
      await sleep(Math.min(5 + attempt * 5, 50));
    }
  }
  try {
    return await fn();
  } finally {
    // Remove only our own lock (a stale-breaker may have replaced it in the race above).
    const text = await fsp.readFile(lockFile, 'utf8').catch(() => '');
    if (text === token) await fsp.rm(lockFile, { force: true });
  }
}
