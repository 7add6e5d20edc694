import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INIT_SHEBANG } from '../image/plan.ts';
import { run } from '../image/runner.ts';

describe('init outside a VM', () => {
  it('refuses to mount or reboot when it is not PID 1', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'init.ts')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^kith-init pid=\d+ t=[\d.]+s not PID 1: refusing to run the boot sequence\n$/);
  });

  it('bundles as the images ship it, and runs under its shebang flags (--jitless: no WebAssembly, so no fetch)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-init-bundle-'));
    try {
      const out = join(dir, 'init');
      await run([{ kind: 'bundle', entry: join(import.meta.dirname, 'init.ts'), out, guestPath: '/init', banner: INIT_SHEBANG, mode: 0o755 }], () => {});
      const text = readFileSync(out, 'utf8');
      expect(text.split('\n')[0]).toBe(INIT_SHEBANG);
      // undici (fetch) parses HTTP with WebAssembly, which --jitless turns off: PID 1 talks
      // to its services over node:http if it ever must.
      expect(text).not.toMatch(/\bfetch\(|WebAssembly/);
      const flags = INIT_SHEBANG.slice('#!/bin/node'.length).trim().split(/\s+/).filter(Boolean);
      const r = spawnSync(process.execPath, [...flags, out], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/not PID 1: refusing to run the boot sequence\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
