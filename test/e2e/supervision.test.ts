/**
 * Supervision under `kith up` (issue 11, items 12 and 13): `kith status` tells the truth
 * about a service that was killed twice (live pid, start of kith up and of the current run,
 * restarts, back-off), and `kill -9` of the kith up parent takes every service with it
 * within 2 s (their lifeline closes), the pairing process too; a kith up after that stops a
 * leftover that did not; SIGTERM before the services are ready still stops all cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunInfo } from '../../installer/run-file.ts';
import { childrenOf, processAlive } from '../../platform/process.ts';
import { discoverServices } from '../../platform/services.ts';
import { freePortBase } from '../support/ports.ts';
import { tempDir } from '../platform/helpers.ts';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';

const kith = (data: string, ...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), ...args, '--data', data], { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface StatusRow {
  service: string;
  state: string;
  pid: number | null;
  started: string;
  restarts: number;
  backoff: { waiting: boolean; restartInMs?: number; nextMs: number };
  lastExit?: { code: number | null; signal: string | null; at: string };
  kith: { pid: number; started: string };
}

describe('supervision', () => {
  let up: KithUp;
  beforeAll(async () => { up = await kithUp(); });
  afterAll(async () => { await up?.stop(); });

  const runJson = (): RunInfo => JSON.parse(readFileSync(path.join(up.data, 'run.json'), 'utf8')) as RunInfo;
  const restartedPid = async (service: string, after: number): Promise<number> => {
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const e = up.events.filter((x) => x.event === 'restarted' && x.service === service).at(-1);
      if (e && e.pid !== after) return e.pid as number;
      await sleep(20);
    }
    throw new Error(`${service} was not restarted; events: ${JSON.stringify(up.events)}`);
  };

  it('kith status shows the live pid, both start times, the restarts and the back-off of a service killed twice', async () => {
    const before = kith(up.data, 'status', '--json');
    expect(before.status, before.stderr).toBe(0);
    const upStarted = (JSON.parse(before.stdout.split('\n')[0]!) as StatusRow).kith.started;
    const victim = up.services.get('dns')!;

    process.kill(victim.pid, 'SIGKILL');
    const second = await restartedPid('dns', victim.pid);
    process.kill(second, 'SIGKILL');
    // While it waits to be restarted, run.json (which kith status reads) says so.
    let waiting: RunInfo['services'][number] | undefined;
    // Asked until it is seen, or until the restart came (then it was missed): the state lasts
    // the 1 s back-off, however long kith up took to notice the death on a loaded machine.
    const end = Date.now() + 15_000;
    let restarted = false;
    while (!waiting && !restarted && Date.now() < end) {
      const s = runJson().services.find((x) => x.service === 'dns');
      if (s?.state === 'backing-off') waiting = s;
      else {
        restarted = (s?.state === 'starting' || s?.state === 'ready') && s.pid !== undefined && s.pid !== second;
        await sleep(5);
      }
    }
    expect(waiting, JSON.stringify(runJson())).toBeDefined();
    expect(waiting!.pid).toBeUndefined();
    expect(waiting!.backoffMs).toBe(1000); // 500 ms after the first death, doubled
    expect(waiting!.lastExit?.signal).toBe('SIGKILL');
    expect(Date.parse(waiting!.restartAt!)).toBeGreaterThan(Date.parse(waiting!.lastExit!.at));

    const live = await restartedPid('dns', second);
    const st = kith(up.data, 'status', '--json');
    expect(st.status, st.stdout + st.stderr).toBe(0);
    const rows = st.stdout.trim().split('\n').map((l) => JSON.parse(l) as StatusRow);
    const dns = rows.find((r) => r.service === 'dns')!;
    expect(dns.pid).toBe(live);
    expect(processAlive(live)).toBe(true);
    expect(dns.state).toBe('healthy');
    expect(dns.restarts).toBe(2);
    expect(dns.lastExit?.signal).toBe('SIGKILL');
    expect(dns.backoff).toMatchObject({ waiting: false, nextMs: 2000 });
    expect(dns.kith.started).toBe(upStarted); // kith up's start does not move
    expect(Date.parse(dns.started)).toBeGreaterThan(Date.parse(upStarted));
    const storage = rows.find((r) => r.service === 'storage')!;
    expect(storage).toMatchObject({ state: 'healthy', restarts: 0, pid: up.services.get('storage')!.pid });
    expect(storage.started).not.toBe(dns.started);

    const text = kith(up.data, 'status');
    expect(text.stdout).toMatch(new RegExp(`kith is up \\(pid ${up.child.pid}, since ${upStarted}`));
    expect(text.stdout).toMatch(new RegExp(`dns +healthy +pid ${live} +since ${dns.started} .*restarts 2`));
    expect(text.stdout).toMatch(/last exit: SIGKILL/);
    expect(text.stdout).toMatch(/the next restart would wait 2000 ms/);
    up.services.set('dns', { ...victim, pid: live });
  });

  it('keeps the data folder and every secret in it private', () => {
    const mode = (...p: string[]) => (statSync(path.join(up.data, ...p)).mode & 0o777).toString(8);
    expect(mode()).toBe('700');
    for (const s of up.services.keys()) {
      expect(mode('data', s)).toBe('700');
      expect(mode('data', s, 'last-good-config.json')).toBe('600');
    }
    expect(mode('pki')).toBe('700');
    expect(mode('pki', 'ca.key')).toBe('600');
    expect(mode('data', 'dns', 'links', 'storage.json')).toBe('600');
    expect(mode('data', 'storage', 'clients', 'dns.json')).toBe('600');
  });

  // Gone within 2 s on a quiet machine (the figure is printed); 15 s is only the deadline
  // for a loaded one: a service that missed its lifeline would never go at all.
  it('kill -9 of kith up leaves no service running, nor its pairing process', async () => {
    const services = runJson().services.map((s) => s.pid!);
    expect(services.length).toBe(up.services.size);
    // Every child of kith up: the services and the pairing process (dist/kith-pki.cjs), which run.json leaves out.
    for (let i = 0; i < 150 && !up.events.some((e) => e.event === 'pairing'); i++) await sleep(100);
    const pids = childrenOf(up.child.pid!);
    expect(pids).toEqual(expect.arrayContaining(services));
    expect(pids.filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('kith-pki.cjs'))).toHaveLength(1);
    for (const pid of pids) expect(processAlive(pid)).toBe(true);
    const killed = Date.now();
    process.kill(up.child.pid!, 'SIGKILL');
    while (pids.some((p) => processAlive(p)) && Date.now() - killed < 15_000) await sleep(10);
    const ms = Date.now() - killed;
    expect(pids.filter((p) => processAlive(p)), `still alive ${ms} ms after the kill`).toEqual([]);
    console.log(`every service and the pairing process gone ${ms} ms after kill -9 of kith up`);
    const st = kith(up.data, 'status');
    expect(st.status).toBe(3);
  });

  it('a new kith up on that data folder stops a service an earlier one left running', async () => {
    // A stand-in for a leftover that ignored its lifeline: its argv names this data folder.
    const leftover = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', '--', '--data', path.join(up.data, 'data', 'dns')], { stdio: 'ignore' });
    const info = runJson(); // what the killed kith up left
    info.services = info.services.map((s) => (s.service === 'dns' ? { ...s, pid: leftover.pid! } : s));
    writeFileSync(path.join(up.data, 'run.json'), JSON.stringify(info));
    await sleep(200);
    const st = kith(up.data, 'status');
    expect(st.status).toBe(3);
    expect(st.stdout).toMatch(new RegExp(`kith up \\(pid ${up.child.pid}\\) died and left dns \\(pid ${leftover.pid}\\) running`));
    const base = await freePortBase(discoverServices(repoRoot).length);
    const again = spawn(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'up', '--no-build', '--data', up.data, '--port-base', String(base)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    again.stdout!.on('data', (d) => { out += d; });
    again.stderr!.on('data', (d) => { out += d; });
    try {
      const end = Date.now() + 60_000;
      while (!/kith is up/.test(out) && again.exitCode === null && Date.now() < end) await sleep(50);
      expect(out).toMatch(new RegExp(`stopped pid ${leftover.pid}, left running by an earlier kith up \\(pid ${up.child.pid}\\)`));
      expect(out).toMatch(/kith is up/);
      expect(processAlive(leftover.pid!)).toBe(false);
      expect(runJson().pid).toBe(again.pid);
    } finally {
      leftover.kill('SIGKILL');
      const code = await new Promise<number | null>((resolve) => { again.once('exit', resolve); again.kill('SIGTERM'); });
      expect(code).toBe(0);
    }
  });

  it('SIGTERM while the services are still starting stops them all cleanly', async () => {
    const data = tempDir('kith-up-early-');
    const base = await freePortBase(discoverServices(repoRoot).length);
    const early = spawn(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'up', '--json', '--no-build', '--data', data, '--port-base', String(base)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    early.stdout!.on('data', (d) => { out += d; });
    early.stderr!.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((resolve) => early.once('exit', resolve));
    // run.json appears once the supervisor has started the services (and taken over the signals).
    const end = Date.now() + 60_000;
    while (!existsSync(path.join(data, 'run.json')) && early.exitCode === null && Date.now() < end) await sleep(10);
    const children = childrenOf(early.pid!);
    expect(children.length, out).toBeGreaterThan(0);
    early.kill('SIGTERM');
    expect(await exited, out).toBe(0);
    expect(out).toMatch(/"event":"stopped"/);
    expect(existsSync(path.join(data, 'run.json'))).toBe(false);
    expect(children.filter((p) => processAlive(p))).toEqual([]);
  });
});
