import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeStaleTemps, writeFileDurable, writeFileDurableSync } from './durable.ts';
import { sealFlags } from './seal.ts';

const writer = path.resolve(import.meta.dirname, '../test/fixtures/durable-writer.ts');

describe('writeFileDurable', () => {
  it('replaces a file and leaves no temp behind', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-durable-'));
    const f = path.join(dir, 'f');
    await writeFileDurable(f, 'one');
    await writeFileDurable(f, 'two');
    writeFileDurableSync(f, 'three');
    expect(readFileSync(f, 'utf8')).toBe('three');
    expect(readdirSync(dir)).toEqual(['f']);
  });

  it('removes stale temp files left by a crash', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-durable-'));
    // pid 2**22+1 is above Linux's pid_max: certainly a dead writer.
    writeFileSync(path.join(dir, `.f.tmp-${2 ** 22 + 1}-abcd1234`), 'torn');
    writeFileSync(path.join(dir, `tmp_obj_${2 ** 22 + 1}-abcd1234`), 'torn');
    writeFileSync(path.join(dir, `.g.tmp-${process.pid}-abcd1234`), 'a live writer');
    writeFileSync(path.join(dir, 'f'), 'kept');
    expect(await removeStaleTemps(dir)).toBe(2);
    expect(readdirSync(dir).sort()).toEqual([`.g.tmp-${process.pid}-abcd1234`, 'f']);
  });

  it('SIGKILL mid-write leaves the old or the new content, never a torn one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-durable-'));
    const f = path.join(dir, 'state');
    const size = 4 << 20;
    const seen = new Set<number>();
    for (let round = 0; round < 12; round++) {
      // Sealed like a service, so the write path is the one services use (O_DSYNC, no fsync).
      const flags = sealFlags({ entry: writer, configRoot: dir, dataDir: dir, readPaths: [path.resolve(import.meta.dirname, '..')] });
      const child = spawn(process.execPath, [...flags, writer, f, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let acked = -1;
      child.stdout.on('data', (d: Buffer) => {
        const m = /wrote (\d+)\n$/.exec(d.toString());
        if (m) acked = Number(m[1]);
      });
      // Kill at a different moment each round, after at least one acknowledged write.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (acked >= 0) {
            clearInterval(check);
            setTimeout(resolve, 5 + round * 7);
          }
        }, 2);
      });
      const ackedAtKill = acked;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const content = readFileSync(f);
      const nl = content.indexOf(10);
      const n = Number(content.subarray(0, nl).toString());
      const body = content.subarray(nl + 1);
      // Whole: exactly one write's content, never a mix of two.
      expect(body.length).toBe(size);
      expect(body.every((b) => b === n % 251)).toBe(true);
      // Nothing acknowledged is lost: the last acknowledged write or a later one.
      expect(n).toBeGreaterThanOrEqual(ackedAtKill);
      seen.add(n - ackedAtKill);
    }
    expect(seen.size).toBeGreaterThan(0);
  });
});
