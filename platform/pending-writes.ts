/**
 * Writes to the data folder that failed because of the disk, not the data: a read-only
 * folder (EROFS, EACCES, EPERM) or a full one (ENOSPC, EDQUOT). A service must not stop
 * for these — it starts with what it can read and serves — so such a write is kept here,
 * the service reports unhealthy with the reason, and the write is tried again: on a timer,
 * and whenever /healthz is asked (at most once a second), so health shows the disk as it
 * is now. The latest version of each write wins; a success clears it.
 */
import type { Logger } from './log.ts';

/** The errno codes that mean "the disk refused", as opposed to a bug. */
export const DISK_FAULTS = new Set(['EROFS', 'ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EIO']);

export const isDiskFault = (err: unknown): boolean => DISK_FAULTS.has((err as { code?: string })?.code ?? '');

interface Pending {
  write: () => Promise<void>;
  reason: string;
  since: number;
  lastTry: number;
  running?: Promise<void>;
}

export interface PendingWrites {
  /**
   * Run a write now; a disk fault keeps it pending (retried later) instead of throwing.
   * Resolves true when it is on disk. Other errors are bugs and are thrown.
   */
  attempt(name: string, write: () => Promise<void>): Promise<boolean>;
  /** Retry every pending write whose last try is older than `minAgeMs`. */
  retry(minAgeMs?: number): Promise<void>;
  /** undefined when nothing is pending; else what and why, for /healthz. */
  problem(): { detail: string; pending: { write: string; reason: string; since: string }[] } | undefined;
  close(): void;
}

export function createPendingWrites(opts: { log: Logger; now?: () => number; retryMs?: number }): PendingWrites {
  const now = opts.now ?? Date.now;
  const retryMs = opts.retryMs ?? 30_000;
  const pending = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;

  const run = (name: string, p: Pending): Promise<void> => {
    if (p.running) return p.running;
    p.lastTry = now();
    p.running = p.write().then(
      () => {
        if (pending.get(name) === p) pending.delete(name);
        opts.log.info('data folder write done after a disk fault', { write: name, pendingMs: now() - p.since });
        if (pending.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      },
      (err: unknown) => {
        if (!isDiskFault(err)) opts.log.error('data folder write failed', { write: name, error: err });
        p.reason = (err as Error)?.message ?? String(err);
      },
    ).finally(() => { p.running = undefined; });
    return p.running;
  };

  const self: PendingWrites = {
    async attempt(name, write) {
      // One write per name at a time: a retry of an older version never lands after a newer one.
      await pending.get(name)?.running;
      try {
        await write();
        if (pending.delete(name)) opts.log.info('data folder write done after a disk fault', { write: name });
        return true;
      } catch (err) {
        if (!isDiskFault(err)) throw err;
        const prev = pending.get(name);
        const reason = (err as Error).message;
        pending.set(name, { write, reason, since: prev?.since ?? now(), lastTry: now() });
        opts.log.error('cannot write the data folder; serving on, and retrying', { write: name, code: (err as { code?: string }).code, reason, retryMs });
        timer ??= setInterval(() => void self.retry(), retryMs);
        timer.unref();
        return false;
      }
    },
    async retry(minAgeMs = 0) {
      const due = [...pending].filter(([, p]) => now() - p.lastTry >= minAgeMs);
      await Promise.all(due.map(([name, p]) => run(name, p)));
    },
    problem() {
      if (pending.size === 0) return undefined;
      const list = [...pending].map(([write, p]) => ({ write, reason: p.reason, since: new Date(p.since).toISOString() }));
      return { detail: `cannot write the data folder (${list.map((l) => `${l.write}: ${l.reason}`).join('; ')}); free space or make it writable, the write is retried`, pending: list };
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return self;
}
