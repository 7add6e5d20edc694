/**
 * A first start cut off after `git init` of config.git (a VM killed at that moment) leaves
 * HEAD without main. The next start creates config.git again from the seeded folder and
 * serves it, rather than failing every publish for ever ("Could not find refs/heads/main").
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

describe('storage after a first start cut off after git init', () => {
  it('creates config.git again from the seeded config and serves it', async () => {
    const base = tempDir('kith-first-cut-');
    const configRoot = path.join(base, 'config');
    const dataDir = path.join(base, 'data');
    await seedStorageConfig(configRoot);
    mkdirSync(path.join(dataDir, 'repos'), { recursive: true });
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', path.join(dataDir, 'repos/config.git')]);
    const logs: string[] = [];
    const s = await startStorageService({ configRoot, dataDir, logs });
    try {
      expect(logs.join('\n')).toMatch(/"msg":"created config\.git from the seeded config"/);
      expect(logs.join('\n')).not.toMatch(/Could not find refs\/heads\/main/);
      const clone = path.join(base, 'clone');
      const r = await run('git', ['clone', '-q', s.remote, clone]);
      expect(r.code, r.stderr).toBe(0);
      expect((await run('git', ['log', '--format=%s'], { cwd: clone })).stdout.trim()).toMatch(/Initial configuration/);
    } finally {
      await s.handle.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
