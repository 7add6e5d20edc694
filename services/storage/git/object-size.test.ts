/**
 * Object sizes from headers agree with `git cat-file -s` for loose objects, whole packed
 * objects and deltas (OFS and REF, packed by real git), and bad input is an error, never a
 * large allocation: a loose object whose header is junk, an unknown id.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { objectSizer } from './object-size.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 }).trim();

describe('object sizes from headers', () => {
  it('match git cat-file -s for loose, packed and deltified objects', async () => {
    const dir = tempDir('kith-objsize-');
    git(dir, 'init', '-q');
    const text = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');
    for (let i = 0; i < 6; i++) {
      writeFileSync(path.join(dir, 'a.txt'), `${text}\n${'v'.repeat(i * 100)}\n`);
      git(dir, 'add', '.');
      git(dir, 'commit', '-qm', `v${i}`);
    }
    const gitdir = path.join(dir, '.git');
    const all = git(dir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objectsize)').split('\n').map((l) => l.split(' ') as [string, string]);
    const check = async () => {
      const size = objectSizer(gitdir);
      try {
        for (const [oid, n] of all) expect(await size(oid), oid).toBe(Number(n));
      } finally {
        await size.close();
      }
    };
    await check(); // loose
    git(dir, 'gc', '-q', '--aggressive');
    expect(git(dir, 'verify-pack', '-v', ...execFileSync('sh', ['-c', `ls ${gitdir}/objects/pack/*.idx`], { encoding: 'utf8' }).trim().split('\n'))).toMatch(/chain length/);
    await check(); // packed, with OFS deltas
    git(dir, '-c', 'repack.useDeltaBaseOffset=false', 'repack', '-adfq');
    await check(); // packed, with REF deltas
  });

  it('refuses junk without inflating it whole', async () => {
    const dir = tempDir('kith-objsize-bad-');
    mkdirSync(path.join(dir, 'objects/ab'), { recursive: true });
    writeFileSync(path.join(dir, 'objects/ab', 'c'.repeat(38)), deflateSync(Buffer.alloc(64 << 20))); // no header: 64 MiB of zeros
    const size = objectSizer(dir);
    await expect(size('ab' + 'c'.repeat(38))).rejects.toThrow(/header/);
    await expect(size('12'.repeat(20))).rejects.toThrow(/not in the repository/);
    await size.close();
  });
});
