import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ext4Label, fatLabel } from './blockdev.ts';

function sb(label: Buffer, magic = 0xef53): Buffer {
  const b = Buffer.alloc(2048);
  b.writeUInt16LE(magic, 1024 + 0x38);
  label.copy(b, 1024 + 0x78);
  return b;
}

describe('ext4Label', () => {
  it('reads the volume name', () => {
    expect(ext4Label(sb(Buffer.from('kith-data')))).toBe('kith-data');
    expect(ext4Label(sb(Buffer.from('0123456789abcdefXYZ').subarray(0, 16)))).toBe('0123456789abcdef');
    expect(ext4Label(sb(Buffer.alloc(0)))).toBe('');
  });
  it('says nothing about what is not ext', () => {
    expect(ext4Label(sb(Buffer.from('kith-data'), 0x1234))).toBeUndefined();
    expect(ext4Label(new Uint8Array(0))).toBeUndefined();
    expect(ext4Label(new Uint8Array(1100))).toBeUndefined();
    expect(ext4Label(sb(Buffer.from('x')).subarray(0, 1024 + 0x78 + 15))).toBeUndefined();
  });
  it.skipIf(spawnSync('sh', ['-c', 'command -v mke2fs']).status !== 0)('agrees with mke2fs -L', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-label-'));
    try {
      const img = join(dir, 'fs.img');
      expect(spawnSync('mke2fs', ['-q', '-t', 'ext4', '-L', 'kith-data', '-F', img, '4M']).status).toBe(0);
      const fd = openSync(img, 'r');
      const head = Buffer.alloc(2048);
      readSync(fd, head, 0, 2048, 0);
      closeSync(fd);
      expect(ext4Label(head)).toBe('kith-data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fatLabel', () => {
  it.skipIf(spawnSync('sh', ['-c', 'command -v mkfs.vfat']).status !== 0)('agrees with mkfs.vfat -n (FAT32 and FAT16), and refuses what is not FAT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-fatlabel-'));
    try {
      for (const [bits, size] of [['32', '40000'], ['16', '16384']] as const) {
        const img = join(dir, `fat${bits}.img`);
        expect(spawnSync('mkfs.vfat', ['-F', bits, '-n', 'KITHBOOT', '-C', img, size]).status).toBe(0);
        const fd = openSync(img, 'r');
        const head = Buffer.alloc(512);
        readSync(fd, head, 0, 512, 0);
        closeSync(fd);
        expect(fatLabel(head)).toBe('KITHBOOT');
        const bad = Buffer.from(head); bad[511] = 0;
        expect(fatLabel(bad)).toBeUndefined();
        expect(fatLabel(head.subarray(0, 511))).toBeUndefined();
      }
      expect(fatLabel(Buffer.alloc(512))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
