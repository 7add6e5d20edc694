import { describe, expect, it } from 'vitest';
import { readCpio, writeCpio } from './cpio.ts';

describe('cpio newc', () => {
  const entries = [
    { path: 'init', type: 'file' as const, mode: 0o755, data: Buffer.from('#!/bin/node\n') },
    { path: 'bin', type: 'dir' as const, mode: 0o755 },
    { path: 'dev/console', type: 'chardev' as const, mode: 0o600, major: 5, minor: 1 },
    { path: 'dev', type: 'dir' as const, mode: 0o755 },
    { path: 'lib64', type: 'symlink' as const, target: 'lib' },
  ];
  it('writes sorted, root-owned entries that read back', () => {
    const bytes = Buffer.concat(writeCpio(entries));
    expect(bytes.length % 4).toBe(0);
    expect(bytes.subarray(0, 6).toString()).toBe('070701');
    const r = readCpio(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((m) => m.path)).toEqual(['bin', 'dev', 'dev/console', 'init', 'lib64']);
    expect(r.value.every((m) => m.uid === 0 && m.gid === 0)).toBe(true);
    expect(r.value.find((m) => m.path === 'init')!.data.toString()).toBe('#!/bin/node\n');
    expect(r.value.find((m) => m.path === 'init')!.mode).toBe(0o100755);
    expect(r.value.find((m) => m.path === 'dev/console')!.mode).toBe(0o020600);
    expect(r.value.find((m) => m.path === 'lib64')!.data.toString()).toBe('lib');
    // deterministic
    expect(Buffer.concat(writeCpio([...entries].reverse())).equals(bytes)).toBe(true);
  });
  it('matches the byte layout of a known header', () => {
    const [first] = writeCpio([{ path: 'a', type: 'file', mode: 0o644, data: Buffer.from('x') }]);
    expect(first.toString('latin1')).toBe('070701' + '00000001' + '000081a4' + '00000000'.repeat(2) + '00000001' + '00000000' + '00000001' + '00000000'.repeat(4) + '00000002' + '00000000' + 'a\0');
  });
  it('refuses bad paths and rejects broken archives', () => {
    expect(() => writeCpio([{ path: '/abs', type: 'dir', mode: 0o755 }])).toThrow();
    expect(() => writeCpio([{ path: 'a/../b', type: 'dir', mode: 0o755 }])).toThrow();
    const good = Buffer.concat(writeCpio(entries));
    for (let cut = 0; cut < good.length; cut += 5) expect(readCpio(good.subarray(0, cut)).ok).toBe(false);
    const bad = Buffer.from(good); bad.write('zzzzzzzz', 14, 'latin1');
    expect(readCpio(bad).ok).toBe(false);
  });
});
