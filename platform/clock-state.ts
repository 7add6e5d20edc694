/**
 * Whether the machine's clock can be trusted, as PID 1's timekeeper (platform/boot/
 * timekeeper.ts) last wrote it to /run/kith/clock.json (tmpfs): services read it — the
 * runner shows it in /healthz, and anything that signs or checks times (certificates,
 * DKIM, TSIG) can wait for `synchronised`. Under `kith up` there is no such file: the host
 * keeps its own time, and the state says so.
 */
import { readFileSync } from 'node:fs';

export const CLOCK_STATE_FILE = '/run/kith/clock.json';

export interface ClockState {
  /** An NTP server's time was accepted this boot. */
  synchronised: boolean;
  /** Where the time came from: ntp, saved (the time saved at the last run), build (the image's floor), host (not an appliance). */
  source: 'ntp' | 'saved' | 'build' | 'clock' | 'host';
  server?: string;
  stratum?: number;
  /** The last accepted sample (ISO time) and its offset before any step, in ms. */
  lastSync?: string;
  offsetMs?: number;
  /** Why the last attempt failed, while unsynchronised. */
  lastError?: string;
}

/** The state from `file`; `{ synchronised: true, source: 'host' }` when there is none (not on an appliance). */
export function readClockState(file = CLOCK_STATE_FILE): ClockState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { synchronised: true, source: 'host' };
    return { synchronised: false, source: 'clock', lastError: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  try {
    const v = JSON.parse(text) as Partial<ClockState>;
    if (typeof v.synchronised === 'boolean' && typeof v.source === 'string') return v as ClockState;
  } catch { /* half-written cannot happen (rename), but a bad file is "unknown" */ }
  return { synchronised: false, source: 'clock', lastError: `${file} is not readable clock state` };
}

/**
 * Whether the clock is synchronised, read at most once a second (per-message callers such
 * as DKIM signing ask often; the file changes rarely).
 */
export function clockSynchronisedGate(read: () => ClockState = () => readClockState(), ttlMs = 1000): () => boolean {
  let at = -Infinity;
  let ok = false;
  return () => {
    const t = performance.now();
    if (t - at >= ttlMs) {
      ok = read().synchronised;
      at = t;
    }
    return ok;
  };
}

/** Thrown when something that stamps a time (a certificate) is asked for while the clock cannot be trusted. */
export class ClockNotSaneError extends Error {
  readonly state: ClockState;
  constructor(what: string, state: ClockState) {
    super(`${what}: the clock is not synchronised yet (time from ${state.source}${state.lastError ? `; ${state.lastError}` : ''}), so the validity dates would be wrong: give the appliance network time (NTP) and try again once /healthz shows clock.synchronised`);
    this.state = state;
  }
}
