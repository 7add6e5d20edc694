import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { processAlive } from '../platform/process.ts';
import type { ChildStatus } from '../platform/supervisor.ts';
import { tempDir } from '../test/platform/helpers.ts';
import { findLeftovers, readRunFile, RunRecorder, runServices, stopLeftovers, type RunInfo, type RunService } from './run-file.ts';

/** A process that looks like a service of `dataRoot` (its argv has --data <root>/data/<name>). */
function fakeService(dataRoot: string, name: string) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', '--', '--data', path.join(dataRoot, 'data', name)], { stdio: 'ignore' });
  return child;
}

describe('run.json', () => {
  it('records each child: ready only when the ready pid is the live one, back-off while waiting', async () => {
    const root = tempDir('kith-run-');
    const t = Date.parse('2026-01-01T00:00:00Z');
    const children: ChildStatus[] = [
      { name: 'dns', state: 'running', pid: 42, startedAt: t, restarts: 2, lastExit: { code: null, signal: 'SIGKILL', at: t - 10 }, backoffMs: 2000 },
      { name: 'storage', state: 'backing-off', startedAt: t - 5000, restarts: 0, lastExit: { code: 70, signal: null, at: t }, restartAt: t + 500, backoffMs: 500 },
      { name: 'mail', state: 'running', pid: 44, startedAt: t, restarts: 1, backoffMs: 1000 },
    ];
    const ready = new Map<string, RunService>([
      ['dns', { service: 'dns', pid: 42, endpoints: { dns: 'udp://127.0.0.1:53' }, health: 'http://127.0.0.1:1', logs: '/l/dns.log' }],
      ['mail', { service: 'mail', pid: 40, endpoints: {}, health: 'http://127.0.0.1:2', logs: '/l/mail.log' }],
    ]);
    const rows = runServices(children, ready);
    expect(rows.map((r) => [r.service, r.state, r.pid])).toEqual([['dns', 'ready', 42], ['storage', 'backing-off', undefined], ['mail', 'starting', 44]]);
    expect(rows[1]).toMatchObject({ restartAt: '2026-01-01T00:00:00.500Z', backoffMs: 500, lastExit: { code: 70, signal: null } });

    let n = 0;
    const rec = new RunRecorder(root, () => runServices(children, ready).map((r) => ({ ...r, restarts: n })));
    for (n = 1; n <= 5; n++) rec.update();
    await rec.flush();
    const info = (await readRunFile(root))!;
    expect(info.pid).toBe(process.pid);
    expect(info.started).toBe(rec.started);
    expect(info.services[0]!.restarts).toBe(6); // the latest state won
    await rec.remove();
    expect(await readRunFile(root)).toBeUndefined();
  });

  it('a kith up after a crash stops the services the dead one left, and nothing else', async () => {
    const root = tempDir('kith-left-');
    const other = tempDir('kith-other-');
    const leftover = fakeService(root, 'dns');
    const stranger = fakeService(other, 'dns');
    // Both started (exec'd, so their command lines are theirs): waited for, up to 15 s.
    await vi.waitFor(() => {
      expect(readFileSync(`/proc/${leftover.pid}/cmdline`, 'utf8')).toContain(path.join(root, 'data', 'dns'));
      expect(readFileSync(`/proc/${stranger.pid}/cmdline`, 'utf8')).toContain(path.join(other, 'data', 'dns'));
    }, { timeout: 15_000, interval: 20 });
    const info: RunInfo = {
      pid: 999_999_999, started: new Date().toISOString(),
      services: [
        { service: 'dns', state: 'ready', pid: leftover.pid!, started: '', restarts: 0, backoffMs: 500 },
        // A pid reused by a program that is not ours: never touched.
        { service: 'storage', state: 'ready', pid: stranger.pid!, started: '', restarts: 0, backoffMs: 500 },
      ],
    };
    try {
      expect(findLeftovers(root, info)).toEqual([{ service: 'dns', pid: leftover.pid }]);
      expect(await stopLeftovers(root, info, 1000)).toEqual([leftover.pid]);
      await vi.waitFor(() => expect(processAlive(leftover.pid!)).toBe(false), { timeout: 15_000, interval: 20 });
      expect(processAlive(stranger.pid!)).toBe(true);
    } finally {
      leftover.kill('SIGKILL');
      stranger.kill('SIGKILL');
    }
  });
});
