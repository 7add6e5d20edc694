import { describe, expect, it } from 'vitest';
import { decodeSaved, encodeSaved, floorOf, judge, nextPollMs, restore, SOURCE_EPOCH_MS, toSave } from './clock.ts';

const DAY = 86_400_000;
const SAVED = Date.UTC(2026, 11, 1, 12, 0, 0);

describe('clock policy (fixed clock)', () => {
  it('at boot puts a Pi that woke in 1970 forward to the saved time, never back', () => {
    expect(restore({ now: 0, saved: SAVED })).toEqual({ setTo: SAVED, floor: SAVED, source: 'saved' });
    expect(restore({ now: 0 })).toEqual({ setTo: SOURCE_EPOCH_MS, floor: SOURCE_EPOCH_MS, source: 'build' });
    expect(restore({ now: 0, saved: SAVED, notBefore: SAVED + DAY })).toMatchObject({ setTo: SAVED + DAY, source: 'build' });
    // a clock already past the floor is left alone
    expect(restore({ now: SAVED + 5, saved: SAVED })).toEqual({ floor: SAVED, source: 'clock' });
    // a saved time older than the source's own date does not lower the floor
    expect(floorOf({ saved: 1000 })).toBe(SOURCE_EPOCH_MS);
  });

  it('steps to a sane server time and leaves small offsets alone', () => {
    expect(judge(SAVED, 3_600_000, SAVED)).toEqual({ accept: true, step: SAVED + 3_600_000, offsetMs: 3_600_000 });
    expect(judge(SAVED, 40, SAVED)).toEqual({ accept: true, offsetMs: 40 });
    // a box off for a year comes back a year later: fine
    expect(judge(SAVED, 365 * DAY, SAVED)).toMatchObject({ accept: true, step: SAVED + 365 * DAY });
    // a little behind the floor (the saved time was a touch fast): accepted, never below it
    expect(judge(SAVED, -1500, SAVED)).toEqual({ accept: true, step: SAVED, offsetMs: -1500 });
  });

  it('refuses a server that would take time back across boots, or years ahead', () => {
    const back = judge(SAVED, -DAY, SAVED);
    expect(back).toMatchObject({ accept: false, why: expect.stringMatching(/before 2026-12-01T12:00:00.000Z, the time saved at the last run/) });
    expect(judge(SAVED, -10_000, SAVED).accept).toBe(false);
    // an era wrap (2104 → 1968 style) or a broken server's 2106
    expect(judge(SAVED, 80 * 365 * DAY, SAVED)).toMatchObject({ accept: false, why: expect.stringMatching(/more than 20 years after/) });
    expect(judge(SAVED, Number.NaN, SAVED).accept).toBe(false);
  });

  it('polls soon while unsynchronised, seldom once synced, and backs off after RATE', () => {
    expect(nextPollMs({ synced: false, failures: 0 })).toBe(2000);
    expect(nextPollMs({ synced: false, failures: 3 })).toBe(16_000);
    expect(nextPollMs({ synced: false, failures: 50 })).toBe(300_000);
    expect(nextPollMs({ synced: true, failures: 0 })).toBe(1_024_000);
    expect(nextPollMs({ synced: true, failures: 0, kiss: 'RATE' })).toBe(3_600_000);
  });

  it('saves a time never earlier than the last, and reads a saved file defensively', () => {
    expect(toSave(SAVED - 10, SAVED)).toBe(SAVED);
    expect(toSave(SAVED + 10, SAVED)).toBe(SAVED + 10);
    expect(decodeSaved(encodeSaved(SAVED))).toBe(SAVED);
    for (const bad of [undefined, '', '{', 'null', '{"ms":"1"}', '{"ms":-5}', '{"ms":1e300}', '[]']) expect(decodeSaved(bad)).toBeUndefined();
  });
});
