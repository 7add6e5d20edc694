import { describe, expect, it } from 'vitest';
import { runSteps, runStepsAsync, type Steps } from './steps.ts';

function* busy(ms: number): Steps<number> {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    n++;
    if (n % 100 === 0) yield;
  }
  return n;
}

describe('steps', () => {
  it('runs to the same result at once or in slices', async () => {
    function* count(): Steps<number> { let s = 0; for (let i = 0; i < 10_000; i++) { s += i; if (i % 7 === 0) yield; } return s; }
    expect(runSteps(count())).toBe(49_995_000);
    expect(await runStepsAsync(count())).toBe(49_995_000);
  });

  it('lets a timer run while 300 ms of work goes on in slices (run at once, it waits for the end)', async () => {
    const t0 = performance.now();
    let firedAt = Infinity;
    setTimeout(() => { firedAt = performance.now() - t0; }, 20);
    await runStepsAsync(busy(300), 8);
    const doneAt = performance.now() - t0;
    expect(firedAt).toBeLessThan(doneAt - 100);
    let syncFiredAt = Infinity;
    const t1 = performance.now();
    setTimeout(() => { syncFiredAt = performance.now() - t1; }, 20);
    runSteps(busy(100));
    await new Promise((r) => setTimeout(r, 30));
    expect(syncFiredAt).toBeGreaterThanOrEqual(100);
  });
});
