/**
 * PID 1's clock policy — pure: given the local clock, what is known about the time (the
 * time saved on the data partition at the last run, the image's build floor) and an SNTP
 * sample (sntp.ts), what to do. A Pi has no real-time clock: it boots at 1970 (or where
 * the kernel's fake-hwclock left it), so:
 *
 *  - at boot, before any service starts, the clock is put forward to the floor — the
 *    latest of the saved time, the build floor and the clock itself — so time never goes
 *    backwards across boots (restore());
 *  - an SNTP sample is accepted only if it keeps that promise and is sane: never earlier
 *    than the floor (less a small tolerance), never years beyond it (a server saying 2104
 *    or a wrapped era is refused) (judge());
 *  - steps are made when the offset is over STEP_MS; smaller ones are left (no slewing:
 *    the kernel keeps a synced clock within milliseconds for hours);
 *  - the time is saved every hour and at clean stop, never earlier than what was saved.
 *
 * The shell (timekeeper.ts) does the sockets, files and clock_settime.
 */

/** Nothing we build runs before this (the source's own date): the floor with nothing saved. */
export const SOURCE_EPOCH_MS = Date.UTC(2026, 0, 1);
/** A sample further than this past the floor is refused: an appliance does not sleep for 20 years. */
export const MAX_AHEAD_OF_FLOOR_MS = 20 * 365.25 * 86_400_000;
/** Samples earlier than the floor by up to this are taken as "the floor was a little ahead". */
export const BEHIND_FLOOR_TOLERANCE_MS = 2_000;
/** Offsets below this are not stepped. */
export const STEP_MS = 100;
export const SAVE_EVERY_MS = 3_600_000;

export interface ClockFacts {
  /** The local clock now (Unix ms). */
  now: number;
  /** The time saved at the last run, if any. */
  saved?: number;
  /** boot.json's notBefore (the image builder's floor), if any. */
  notBefore?: number;
}

/** The earliest the time can be now. */
export function floorOf(f: Omit<ClockFacts, 'now'>): number {
  return Math.max(SOURCE_EPOCH_MS, f.saved ?? 0, f.notBefore ?? 0);
}

/** At boot: set the clock to the floor if it is behind it. */
export function restore(f: ClockFacts): { setTo?: number; floor: number; source: 'saved' | 'build' | 'clock' } {
  const floor = floorOf(f);
  if (f.now >= floor) return { floor, source: 'clock' };
  return { setTo: floor, floor, source: f.saved !== undefined && f.saved >= floor ? 'saved' : 'build' };
}

export type Judgement =
  | { accept: true; step?: number; offsetMs: number }
  | { accept: false; why: string };

/**
 * What to do with a checked SNTP sample. `serverNow` is the server's time now (local now +
 * offset); `floor` is floorOf() at boot, raised as time goes by (the last saved time).
 */
export function judge(now: number, offsetMs: number, floor: number): Judgement {
  const serverNow = now + offsetMs;
  if (!Number.isFinite(serverNow)) return { accept: false, why: 'no time in the reply' };
  if (serverNow < floor - BEHIND_FLOOR_TOLERANCE_MS) {
    return { accept: false, why: `the server's time ${iso(serverNow)} is before ${iso(floor)}, the time saved at the last run (time never goes backwards across boots)` };
  }
  if (serverNow > floor + MAX_AHEAD_OF_FLOOR_MS) {
    return { accept: false, why: `the server's time ${iso(serverNow)} is more than 20 years after ${iso(floor)}: not believable` };
  }
  if (Math.abs(offsetMs) < STEP_MS) return { accept: true, offsetMs };
  return { accept: true, step: Math.max(serverNow, floor), offsetMs };
}

/** When to ask again: soon while unsynchronised (2 s doubling to 5 min), every 17 min once synced, much later after a RATE kiss. */
export function nextPollMs(s: { synced: boolean; failures: number; kiss?: string }): number {
  if (s.kiss === 'RATE') return 3_600_000;
  if (s.synced && s.failures === 0) return 1024_000;
  return Math.min(300_000, 2000 * 2 ** Math.min(s.failures, 8));
}

/** The time worth saving: never earlier than what was saved before. */
export function toSave(now: number, saved: number | undefined): number {
  return Math.max(now, saved ?? 0);
}

/** The saved-time file's content and its reading (never throws: a bad file is no file). */
export function encodeSaved(ms: number): string {
  return JSON.stringify({ savedAt: new Date(ms).toISOString(), ms }) + '\n';
}

export function decodeSaved(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as { ms?: unknown };
    return typeof v.ms === 'number' && Number.isFinite(v.ms) && v.ms > 0 && v.ms < 8.64e15 ? v.ms : undefined;
  } catch {
    return undefined;
  }
}

function iso(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms);
}
