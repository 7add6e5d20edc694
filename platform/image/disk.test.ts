import { describe, expect, it } from 'vitest';
import { mbrLayout, sfdiskScript } from './disk.ts';

describe('mbr layout', () => {
  it('aligns partitions on 4 MiB', () => {
    const l = mbrLayout([{ type: 'c', sizeMiB: 256, bootable: true }, { type: '83', sizeMiB: 254 }]);
    expect(l.partitions.map((p) => [p.startSector, p.sectors, p.offsetBytes])).toEqual([[8192, 524288, 4194304], [532480, 520192, 272629760]]);
    expect(l.totalBytes).toBe(516 * 1024 * 1024);
    expect(sfdiskScript(l)).toBe('label: dos\nunit: sectors\n\nstart=8192, size=524288, type=c, bootable\nstart=532480, size=520192, type=83\n');
  });
  it('refuses impossible layouts', () => {
    expect(() => mbrLayout([])).toThrow();
    expect(() => mbrLayout(Array(5).fill({ type: '83', sizeMiB: 1 }))).toThrow();
    expect(() => mbrLayout([{ type: '83', sizeMiB: 0.5 }])).toThrow();
    expect(() => mbrLayout([{ type: '83; rm', sizeMiB: 1 }])).toThrow();
  });
});
