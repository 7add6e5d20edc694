/**
 * The three servers of the calendar benchmark, each loaded with the same events and
 * giving a calendar collection URL, the Authorization to use and the pid whose memory
 * counts:
 *
 * - kith: storage + calendar, each its sealed bundle from dist/ (test/e2e/calendar-stack.ts),
 *   events committed to the store in batches of 1000 (as a git push of an existing
 *   calendar would), then indexed by the calendar from the store.
 * - Radicale (Debian): the multifilesystem layout written directly, auth none; kept under
 *   build/bench-calendar/ with its item cache for the next run over the same events.
 * - Xandikos (Debian): its `--defaults` calendar (a git working tree), events committed
 *   with git, then served.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createStoreClient } from '../../platform/store-client.ts';
import { startCalendarStack } from '../../test/e2e/calendar-stack.ts';
import { freeTcpPort } from '../../test/support/ports.ts';
import type { BenchEvent } from './events.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

export interface BenchServer {
  name: 'kith' | 'radicale' | 'xandikos';
  /** The calendar collection, ending in '/'. */
  collection: string;
  headers: Record<string, string>;
  /** Processes whose memory is measured (the service itself). */
  pids: number[];
  stop(): Promise<void>;
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function waitHttp(url: string, headers: Record<string, string>, ok: (status: number) => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url, { method: 'PROPFIND', headers: { ...headers, depth: '0' }, signal: AbortSignal.timeout(timeoutMs) });
      await r.arrayBuffer();
      if (ok(r.status)) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer in time`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startKith(events: BenchEvent[], progress: (m: string) => void): Promise<BenchServer> {
  const stack = await startCalendarStack();
  const headers = { authorization: basic('kith', stack.token) };
  // Committed as a git push of an existing calendar would be: 1000 files per commit.
  const store = createStoreClient({ url: stack.storageUrl, token: stack.token }, { timeoutMs: 120_000 });
  const meta = { type: 'calendar', props: {}, components: ['VEVENT', 'VTODO', 'VJOURNAL'] };
  const t0 = Date.now();
  await store.batch('calendar', [{ path: 'kith/bench/collection.json', content: JSON.stringify(meta) }], { message: 'bench: calendar' });
  for (let i = 0; i < events.length; i += 1000) {
    const changes = events.slice(i, i + 1000).map((e) => ({ path: `kith/bench/items/${e.name}`, content: e.text }));
    await store.batch('calendar', changes, { message: `bench: events ${i}..${i + changes.length}` });
  }
  progress(`kith: committed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  progress(`kith: ${events.length} events committed to the store; waiting for the calendar's index`);
  const collection = `${stack.dav}kith/bench/`;
  const t1 = Date.now();
  for (;;) {
    const res = await fetch(collection, { method: 'REPORT', headers: { ...headers, depth: '0' }, body: '<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>' });
    const text = await res.text();
    const n = text.split('<D:response>').length - 1;
    if (n >= events.length) break;
    if (Date.now() - t1 > 300_000) throw new Error(`kith indexed only ${n} events in 300 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  progress(`kith: indexed in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  return { name: 'kith', collection, headers, pids: [stack.calendar.child.pid!], stop: () => stack.stop() };
}

export async function startRadicale(events: BenchEvent[], progress: (m: string) => void): Promise<BenchServer> {
  // Radicale's first request builds its item cache (many minutes for 10 000 events on a
  // busy machine): the folder and its cache are kept under build/ for the next run over
  // the same events, as a server that has run a while has them.
  const hash = createHash('sha256');
  for (const e of events) hash.update(e.name).update(e.text);
  const dir = path.join(REPO, 'build', 'bench-calendar', `radicale-${hash.digest('hex').slice(0, 16)}`);
  const coll = path.join(dir, 'collection-root', 'bench', 'cal');
  if (!existsSync(path.join(coll, '.kith-complete'))) {
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(coll, { recursive: true });
    await fsp.writeFile(path.join(coll, '.Radicale.props'), JSON.stringify({ tag: 'VCALENDAR', 'C:supported-calendar-component-set': 'VEVENT,VTODO,VJOURNAL' }));
    for (const e of events) await fsp.writeFile(path.join(coll, e.name), e.text);
  } else progress('radicale: reusing the folder and item cache of an earlier run');
  const port = await freeTcpPort();
  const child = spawn('/usr/bin/python3', ['-m', 'radicale', '--config', '', '--server-hosts', `127.0.0.1:${port}`, '--storage-filesystem-folder', dir, '--auth-type', 'none', '--logging-level', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const headers = { authorization: basic('bench', 'bench') };
  const collection = `http://127.0.0.1:${port}/bench/cal/`;
  // Radicale reads and caches every item on the first request (minutes for 10 000 on a busy machine).
  await waitHttp(collection, headers, (s) => s === 207, 900_000).catch(async (err: Error) => {
    await stopChild(child);
    throw new Error(`${err.message}\n${stderr}`);
  });
  // Radicale builds its item cache on first use: warm it, as a server that has run a while has.
  const t0 = Date.now();
  await (await fetch(collection, { method: 'PROPFIND', headers: { ...headers, depth: '1' } })).text();
  progress(`radicale: ${events.length} events, cache warmed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await fsp.writeFile(path.join(coll, '.kith-complete'), '');
  return { name: 'radicale', collection, headers, pids: [child.pid!], stop: () => stopChild(child) };
}

export async function startXandikos(events: BenchEvent[], progress: (m: string) => void): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kith-bench-xandikos-'));
  const port = await freeTcpPort();
  const run = () => spawn('/usr/bin/xandikos', ['--defaults', '-d', dir, '-l', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const base = `http://127.0.0.1:${port}`;
  const collection = `${base}/user/calendars/calendar/`;
  let child = run();
  await waitHttp(collection, {}, (s) => s === 207);
  await stopChild(child);
  const tree = path.join(dir, 'user', 'calendars', 'calendar');
  for (const e of events) await fsp.writeFile(path.join(tree, e.name), e.text);
  const git = (...args: string[]) => {
    const r = spawnSync('git', ['-C', tree, '-c', 'user.name=bench', '-c', 'user.email=bench@kith.test', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  git('add', '-A');
  git('commit', '-q', '-m', 'bench events');
  child = run();
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  await waitHttp(collection, {}, (s) => s === 207).catch(async (err: Error) => {
    await stopChild(child);
    throw new Error(`${err.message}\n${stderr}`);
  });
  const t0 = Date.now();
  await (await fetch(collection, { method: 'PROPFIND', headers: { depth: '1' } })).text();
  progress(`xandikos: ${events.length} events, first listing in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { name: 'xandikos', collection, headers: {}, pids: [child.pid!], stop: async () => { await stopChild(child); await fsp.rm(dir, { recursive: true, force: true }); } };
}
