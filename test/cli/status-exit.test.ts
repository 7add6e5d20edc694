/**
 * `kith status` exit codes, each its own (scripts tell "a service is unhealthy" from "kith is
 * not up" from "this machine is not paired"). Nothing here leaves loopback: without a
 * pairing, status stops before it connects.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'installer/kith.ts'), ...args], { encoding: 'utf8' });
const dir = mkdtempSync(path.join(tmpdir(), 'kith-status-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kith status exit codes', () => {
  it('3 when no kith up runs with that data folder', () => {
    const r = kith('status', '--data', dir);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/kith is not up/);
    expect(JSON.parse(kith('status', '--data', dir, '--json').stdout)).toMatchObject({ up: false });
  });

  it('4, not 1 (unhealthy), when this machine is not paired with the appliance', () => {
    const r = kith('status', '--host', '127.0.0.1', '--port', '7299', '--dir', path.join(dir, 'no-pairing'));
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^kith status: this machine is not paired .*run `kith pair` first/);
  });

  it('64 when --host comes without --port', () => {
    const r = kith('status', '--host', '127.0.0.1');
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/--host needs --port/);
  });
});
