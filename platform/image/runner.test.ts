import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './runner.ts';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'kith-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runner', () => {
  it('makes a symbolic link, replacing what was there', async () => {
    const link = join(dir, 'etc/resolv.conf');
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(link, 'old');
    await run([{ kind: 'symlink', path: link, target: '../run/resolv.conf' }], () => {});
    expect(readlinkSync(link)).toBe('../run/resolv.conf');
  });

  it.skipIf(!have('mke2fs') || !have('dumpe2fs'))('makes a read-only ext4 without a journal, and says how much a tree too big for it needs', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    writeFileSync(join(tree, 'bin/prog'), Buffer.alloc(3 * 2 ** 20, 1));
    const out = join(dir, 'root.ext4');
    await run([{ kind: 'make-ext4', out, sizeMiB: 8, label: 'kith-root', from: tree, readOnly: true }], () => {});
    const sb = spawnSync('dumpe2fs', ['-h', out], { encoding: 'utf8' }).stdout;
    expect(sb).toMatch(/Filesystem volume name:\s+kith-root/);
    expect(sb).not.toMatch(/has_journal/);
    expect(sb).toMatch(/Reserved block count:\s+0$/m);
    writeFileSync(join(tree, 'bin/big'), Buffer.alloc(9 * 2 ** 20, 2));
    await expect(run([{ kind: 'make-ext4', out, sizeMiB: 8, label: 'kith-root', from: tree, readOnly: true }], () => {})).rejects.toThrow(/holds 12 MiB for a 8 MiB file system \(kith-root\): give the partition more room/);
  });
});
