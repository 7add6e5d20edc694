import { afterEach, describe, expect, it, vi } from 'vitest';
import { coarseClock } from './coarse-clock.ts';

describe('the coarse clock', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('reads the real clock once per tick, not per call, and no more after stop()', () => {
    vi.useFakeTimers();
    let t = 1_000;
    let reads = 0;
    const clock = coarseClock(() => { reads++; return t; }, 100);
    t = 1_050;
    for (let i = 0; i < 1000; i++) expect(clock.now()).toBe(1_000);
    expect(reads).toBe(1);
    vi.advanceTimersByTime(100);
    expect(clock.now()).toBe(1_050);
    expect(reads).toBe(2);
    clock.stop();
    t = 2_000;
    vi.advanceTimersByTime(1_000);
    expect(clock.now()).toBe(1_050);
    expect(reads).toBe(2);
  });
});
