import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('init outside a VM', () => {
  it('refuses to mount or reboot when it is not PID 1', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'init.ts')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^kith-init pid=\d+ t=[\d.]+s not PID 1: refusing to run the boot sequence\n$/);
  });
});
