import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withFileLock } from '../store/lock.ts';
import { recoverRepository } from './recover.ts';

const DEAD = 2 ** 22 + 7; // above Linux's pid_max

describe('start-up recovery', () => {
  it("removes a crash's leftovers and nothing a live process holds", async () => {
    const g = mkdtempSync(path.join(tmpdir(), 'kith-recover-'));
    for (const d of ['objects/pack', 'objects/ab', 'refs/heads', 'refs/tags']) mkdirSync(path.join(g, d), { recursive: true });
    const files: Record<string, string> = {
      'objects/pack/pack-1.pack': 'P', 'objects/pack/pack-1.idx': 'I', // a whole pack: kept
      'objects/pack/pack-2.pack': 'P', // no .idx: removed
      [`objects/pack/tmp_idx_${DEAD}-0123abcd`]: 'x',
      [`objects/ab/tmp_obj_${process.pid}-0123abcd`]: 'x', // our pid, before this start: removed
      [`refs/heads/.main.tmp-${DEAD}-0123abcd`]: 'x',
      'refs/heads/main.lock': `kith ${process.pid} abc\n`, // an earlier process with our pid
      'refs/tags/v1.lock': `kith ${DEAD} abc\n`,
      'refs/heads/other.lock': `kith ${process.ppid} abc\n`, // a live process: kept
      'refs/heads/git.lock': '0123\n', // real git's: kept
    };
    for (const [p, t] of Object.entries(files)) writeFileSync(path.join(g, p), t);
    const removed = (await recoverRepository(g)).sort();
    expect(removed).toEqual([
      `objects/ab/tmp_obj_${process.pid}-0123abcd`, 'objects/pack/pack-2.pack', `objects/pack/tmp_idx_${DEAD}-0123abcd`,
      `refs/heads/.main.tmp-${DEAD}-0123abcd`, 'refs/heads/main.lock', 'refs/tags/v1.lock',
    ].sort());
    for (const kept of ['objects/pack/pack-1.pack', 'objects/pack/pack-1.idx', 'refs/heads/other.lock', 'refs/heads/git.lock']) expect(existsSync(path.join(g, kept))).toBe(true);
  });

  it('a lock left with our own pid by an earlier process does not block a writer', async () => {
    const g = mkdtempSync(path.join(tmpdir(), 'kith-lock-'));
    const lock = path.join(g, 'main.lock');
    writeFileSync(lock, `kith ${process.pid} from-an-earlier-life\n`);
    // timeoutMs 0: a lock it took for a live one would be given up on at the first look
    // (LockedError), so getting it proves the stale lock was broken without any waiting.
    expect(await withFileLock(lock, async () => 'got it', { timeoutMs: 0 })).toBe('got it');
  });
});
