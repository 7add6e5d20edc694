import { describe, expect, it, vi } from 'vitest';
import { runSteps, runStepsAsync, type Steps } from './steps.ts';

describe('steps', () => {
  it('runs to the same result at once or in slices', async () => {
    function* count(): Steps<number> { let s = 0; for (let i = 0; i < 10_000; i++) { s += i; if (i % 7 === 0) yield; } return s; }
    expect(runSteps(count())).toBe(49_995_000);
    expect(await runStepsAsync(count())).toBe(49_995_000);
  });

  it('lets a timer run while the work goes on in slices (run at once, it waits for the end)', async () => {
    // Work that goes on until it sees the timer has fired (or 10 s, a deadline for a loaded
    // machine): in slices, the timer gets in, so the work sees it and ends.
    let fired = false;
    function* untilFired(capMs: number): Steps<boolean> {
      const end = performance.now() + capMs;
      let n = 0;
      while (!fired && performance.now() < end) {
        if (++n % 100 === 0) yield;
      }
      return fired;
    }
    setTimeout(() => { fired = true; }, 20);
    expect(await runStepsAsync(untilFired(10_000), 8)).toBe(true);
    // Run at once, the timer cannot get in: the work runs to its end (100 ms), never seeing it.
    fired = false;
    setTimeout(() => { fired = true; }, 20);
    expect(runSteps(untilFired(100))).toBe(false);
    await vi.waitFor(() => expect(fired).toBe(true), { timeout: 15_000, interval: 5 });
  });
});
