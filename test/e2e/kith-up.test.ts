/**
 * The first quick-start command: `kith up` runs every existing service, each sealed in
 * its own process, reports each as JSON, and stops them all on SIGTERM.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverServices } from '../../platform/services.ts';
import { childrenOf, processAlive } from '../../platform/process.ts';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';

describe('kith up', () => {
  let up: KithUp;
  beforeAll(async () => { up = await kithUp(); });
  afterAll(async () => { await up?.stop(); });

  it('reports every existing service, and only those', () => {
    expect([...up.services.keys()].sort()).toEqual(discoverServices(repoRoot).map((s) => s.name).sort());
    for (const s of up.services.values()) {
      expect(s.pid).toBeGreaterThan(0);
      expect(Object.keys(s.endpoints).length).toBeGreaterThan(0);
    }
  });

  it('stays running as the bundled supervisor, in the process it was started as', () => {
    // The one-shot part (installer/kith.ts, from source) execs into dist/kith-up.cjs: same pid,
    // none of the build, CA or TypeScript code left in it (its memory: bench/memory).
    const cmdline = readFileSync(`/proc/${up.child.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.some((a) => a.endsWith(path.join('dist', 'kith-up.cjs'))), cmdline.join(' ')).toBe(true);
    expect(cmdline.some((a) => a.endsWith('.ts'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(up.data, 'run.json'), 'utf8'))).toMatchObject({ pid: up.child.pid });
    expect(existsSync(path.join(up.data, 'up-handoff.json'))).toBe(false); // read once, then gone
    // Nothing the one-shot part started (esbuild's service, the declarations' reader) is left as a zombie child.
    for (const pid of childrenOf(up.child.pid!)) expect(processAlive(pid), `child ${pid}`).toBe(true);
  });

  it('runs each service as its own sealed process, healthy', async () => {
    const pids = new Set<number>();
    for (const s of up.services.values()) {
      pids.add(s.pid);
      const cmdline = readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).toContain('--permission');
      expect(cmdline).toContain('--frozen-intrinsics');
      const res = await fetch(`${s.health}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', service: s.service });
    }
    expect(pids.size).toBe(up.services.size);
  });

  it('prints the storage token, and anonymous access is refused', () => {
    const storage = up.services.get('storage')!;
    expect(storage.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(() => execFileSync('git', ['ls-remote', storage.endpoints.git!], { stdio: 'pipe', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } })).toThrow(/Authentication failed|could not read Username|401/);
    const refs = execFileSync('git', ['ls-remote', storage.endpoints.git!.replace('://', `://kith:${storage.token}@`)], { encoding: 'utf8' });
    expect(refs).toMatch(/refs\/heads\/main/);
  });

  it('kith status reports each service healthy, and a second kith up on the same data is refused', () => {
    const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), ...args, '--data', up.data], { encoding: 'utf8' });
    const st = kith('status', '--json');
    expect(st.status).toBe(0);
    const rows = st.stdout.trim().split('\n').map((l) => JSON.parse(l) as { service: string; state: string; configGeneration: number });
    expect(rows.map((r) => [r.service, r.state])).toEqual([...up.services.keys()].map((n) => [n, 'healthy']));
    const again = kith('up', '--no-build');
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already up/);
  });

  it('restarts a service that dies, and only that one', async () => {
    const [victim, other] = [...up.services.values()];
    process.kill(victim!.pid, 'SIGKILL');
    const end = Date.now() + 15_000;
    let back: Record<string, unknown> | undefined;
    while (Date.now() < end && !back) {
      back = up.events.find((e) => e.event === 'restarted' && e.service === victim!.service);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(back, JSON.stringify(up.events)).toBeDefined();
    expect(up.events.find((e) => e.event === 'exited' && e.service === victim!.service)).toMatchObject({ signal: 'SIGKILL' });
    expect(back!.pid).not.toBe(victim!.pid);
    expect((await fetch(`${victim!.health}/healthz`)).status).toBe(200);
    // The other service never stopped.
    if (other) expect(readFileSync(`/proc/${other.pid}/cmdline`, 'utf8')).toContain('--permission');
    up.services.set(victim!.service, { ...victim!, pid: back!.pid as number });
  });

  it('stops every service on SIGTERM and exits 0', async () => {
    const pids = [...up.services.values()].map((s) => s.pid);
    expect(await up.stop()).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const st = spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'status', '--data', up.data], { encoding: 'utf8' });
    expect(st.status).toBe(3);
    expect(st.stdout).toMatch(/kith is not up/);
  });
});
