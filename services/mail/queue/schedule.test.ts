import { describe, expect, it } from 'vitest';
import { expired, outcomeOf, retryDelayMs } from './schedule.ts';

describe('retry schedule', () => {
  it('doubles from the initial delay up to the cap', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 9].map((a) => retryDelayMs(a, 60, 600, mid))).toEqual([60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
    expect(retryDelayMs(1, 60, 600, () => 0)).toBe(54_000);
    expect(retryDelayMs(1, 60, 600, () => 1)).toBe(66_000);
  });
  it('reads replies: 2xx ok, 4xx and no reply temporary, 5xx permanent with the enhanced code', () => {
    expect(outcomeOf(250, '250 2.0.0 ok').kind).toBe('ok');
    expect(outcomeOf(451, '451 4.3.0 try later')).toEqual({ kind: 'temp', code: 451, enhanced: '4.3.0', response: '451 4.3.0 try later' });
    expect(outcomeOf(550, '550 5.1.1 no such user')).toEqual({ kind: 'perm', code: 550, enhanced: '5.1.1', response: '550 5.1.1 no such user' });
    expect(outcomeOf(undefined, 'connection refused').kind).toBe('temp');
  });
  it('expires after the configured time', () => {
    expect(expired(0, 5 * 86_400_000 - 1, 5 * 86_400)).toBe(false);
    expect(expired(0, 5 * 86_400_000, 5 * 86_400)).toBe(true);
  });
});
