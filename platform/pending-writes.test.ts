import { describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';
import { createPendingWrites } from './pending-writes.ts';

const fault = (code: string) => Object.assign(new Error(`${code}: refused`), { code });
const quiet = createLogger({ service: 't', write: () => {} });

describe('pending writes', () => {
  it('keeps a write the disk refused, reports it, and clears it when a retry lands', async () => {
    let t = 1000;
    const w = createPendingWrites({ log: quiet, now: () => t });
    let full = true;
    const saved: string[] = [];
    const write = async () => {
      if (full) throw fault('ENOSPC');
      saved.push('v1');
    };
    expect(await w.attempt('snapshot', write)).toBe(false);
    expect(w.problem()?.detail).toMatch(/snapshot: ENOSPC/);
    t += 500;
    full = false;
    await w.retry(1000); // too soon: not tried
    expect(saved).toEqual([]);
    t += 600;
    await w.retry(1000);
    expect(saved).toEqual(['v1']);
    expect(w.problem()).toBeUndefined();
    w.close();
  });

  it('lets the newest version of a write win, and throws what is not a disk fault', async () => {
    const w = createPendingWrites({ log: quiet });
    const saved: string[] = [];
    expect(await w.attempt('x', async () => { throw fault('EROFS'); })).toBe(false);
    expect(await w.attempt('x', async () => { saved.push('new'); })).toBe(true);
    await w.retry();
    expect(saved).toEqual(['new']);
    expect(w.problem()).toBeUndefined();
    await expect(w.attempt('y', async () => { throw new TypeError('a bug'); })).rejects.toThrow('a bug');
    w.close();
  });
});
