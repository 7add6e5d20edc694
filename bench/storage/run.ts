/**
 * Storage benchmark: kith storage (the sealed bundle) beside Debian git's `git http-backend`
 * (CGI, behind bench/storage/cgi-host.ts), measured in the same run with the real git
 * client: a full bare clone, a push of the whole history into an empty repository, and an
 * incremental fetch of 10 new commits. Targets (issue 3): kith within 3x of http-backend on
 * clone and push. A benchmark, not a test: it exits 0 whatever the figures.
 *
 *   node bench/storage/run.ts [--commits 2000] [--size-mb 20] [--runs 3] [--json]
 */
import { spawn } from 'node:child_process';
import { readFileSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleService } from '../../platform/build/bundle.ts';
import { median } from '../stats.ts';
import { startBundle, type ServiceProcess } from '../../test/platform/helpers.ts';
import { startCgiHost, type CgiHost } from './cgi-host.ts';
import { startCountingProxy, type CountingProxy } from './count-proxy.ts';
import { benchRepo, type BenchRepo } from './make-repo.ts';
import { sampleRssAnon } from '../../test/platform/rss-anon.ts';
import storage from '../../services/storage/main.ts';

const HELP = `Usage: node bench/storage/run.ts [options]

Measures kith storage (the sealed bundle) against git http-backend (CGI) with the real
git client: full bare clone, push of the whole history into an empty repository, and
an incremental fetch of 10 new commits. The test repository is generated once with git
fast-import and cached under build/bench/storage/.

Options:
  --commits N     commits in the test repository (default 2000)
  --size-mb N     total size of all blob versions in the history, MiB (default 20)
  --runs N        runs per operation; the table shows the median (default 3)
  --no-fetch      skip the incremental fetch
  --json          print the results as JSON instead of a table
  -h, --help      this help

Progress goes to stderr. Target: kith within 3x of http-backend on clone and push
(PASS/FAIL is printed; the exit status is 0 either way).
`;

const repoRoot = path.resolve(import.meta.dirname, '../..');
const cacheDir = path.join(repoRoot, 'build/bench/storage');
const TARGET_RATIO = 3;
const OP_TIMEOUT_MS = 180_000;

type Op = 'push' | 'clone' | 'fetch';
type Server = 'kith' | 'http-backend';

interface Sample { ms: number; up: number; down: number }
type Summary = { ms: number; runsMs: number[]; bytesUp: number; bytesDown: number } | { error: string };
interface OpResult { op: Op; server: Server; samples: Sample[]; error?: string }

const progress = (msg: string) => process.stderr.write(`[bench/storage] ${msg}\n`);

// The client side: the real git, with no user or system config in the way.
function git(args: string[], cwd: string, home: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('git', args, {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), OP_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`git ${args[0]} failed (${signal ?? code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

async function revParse(gitdir: string, ref: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['--git-dir', gitdir, 'rev-parse', ref], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`rev-parse ${ref} failed`))));
  });
}

interface Target {
  server: Server;
  proxy: CountingProxy;
  url(repo: string): string;
  /** Makes `repo` exist and be empty before a push (kith creates it on the first push). */
  prepare(repo: string): Promise<void>;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      commits: { type: 'string', default: '2000' },
      'size-mb': { type: 'string', default: '20' },
      runs: { type: 'string', default: '3' },
      'no-fetch': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const commits = Number(values.commits);
  const sizeMb = Number(values['size-mb']);
  const runs = Number(values.runs);
  if (![commits, sizeMb, runs].every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write('--commits, --size-mb and --runs take positive integers\n');
    return 2;
  }
  const withFetch = !values['no-fetch'];

  const repo = await benchRepo(cacheDir, { commits, sizeMb, extra: 10 }, progress);
  progress(`repository: ${commits} commits, ${(repo.contentBytes / 2 ** 20).toFixed(1)} MiB of blob content, ${(repo.packBytes / 2 ** 20).toFixed(1)} MiB packed`);

  progress('bundling services/storage into build/bench/storage/dist');
  const { outfile } = await bundleService('storage', path.join(repoRoot, 'services/storage/main.ts'), path.join(cacheDir, 'dist'));

  const work = await fsp.mkdtemp(path.join(tmpdir(), 'kith-bench-storage-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    // kith storage, sealed, with limits large enough for the benchmark's repository.
    const config = path.join(work, 'kith-config');
    const data = path.join(work, 'kith-data');
    await fsp.mkdir(path.join(config, 'storage'), { recursive: true });
    await fsp.mkdir(data);
    await fsp.writeFile(path.join(config, 'storage/storage.yaml'), `createOnPush: true\nmaxPushBytes: ${2 ** 30}\nmaxRepoBytes: ${2 ** 32}\n`);
    const kith: ServiceProcess = await startBundle(outfile, ['--config', config, '--data', data, '--listen', 'http=127.0.0.1:0', '--listen', 'health=127.0.0.1:0', '--listen', 'https=127.0.0.1:0'], undefined, [], storage.env);
    cleanups.push(() => kith.stop());
    const token = readFileSync(path.join(data, 'access-token'), 'utf8').trim();
    const kithPort = Number(new URL(kith.ready.endpoints.git!).port);

    const projectRoot = path.join(work, 'http-backend');
    await fsp.mkdir(projectRoot);
    const cgi: CgiHost = await startCgiHost(projectRoot, 'kith', token);
    cleanups.push(() => cgi.close());

    const withAuth = (base: string, name: string) => base.replace('://', `://kith:${token}@`) + `/${name}.git`;
    const kithProxy = await startCountingProxy(kithPort);
    const cgiProxy = await startCountingProxy(Number(new URL(cgi.url).port));
    cleanups.push(() => kithProxy.close(), () => cgiProxy.close());
    const home = path.join(work, 'home');
    await fsp.mkdir(home);
    const targets: Target[] = [
      { server: 'kith', proxy: kithProxy, url: (n) => withAuth(kithProxy.url, n), prepare: async () => {} },
      {
        server: 'http-backend',
        proxy: cgiProxy,
        url: (n) => withAuth(cgiProxy.url, n),
        prepare: async (n) => { await git(['init', '-q', '--bare', '-b', 'main', path.join(projectRoot, `${n}.git`)], work, home); },
      },
    ];

    // Private memory of each server, sampled through the whole run: kith's process, and
    // every git-http-backend with what it forks (upload-pack, pack-objects, index-pack).
    const kithPid = kith.child.pid!;
    const sampler = sampleRssAnon({
      kith: (pid) => pid === kithPid,
      'http-backend': (_pid, p) => p.comm.startsWith('git-http-backen'),
    });
    cleanups.push(async () => sampler.stop());
    const results = new Map<string, OpResult>();
    const result = (op: Op, server: Server) => {
      const k = `${op}/${server}`;
      if (!results.has(k)) results.set(k, { op, server, samples: [] });
      return results.get(k)!;
    };
    const measure = async (op: Op, t: Target, fn: () => Promise<number>): Promise<boolean> => {
      const r = result(op, t.server);
      if (r.error) return false;
      t.proxy.take();
      try {
        const ms = await fn();
        r.samples.push({ ms, ...t.proxy.take() });
        progress(`  ${t.server.padEnd(12)} ${op.padEnd(5)} ${(ms / 1000).toFixed(2)} s`);
        return true;
      } catch (err) {
        r.error = (err as Error).message;
        progress(`  ${t.server.padEnd(12)} ${op.padEnd(5)} FAILED: ${r.error}`);
        return false;
      }
    };

    for (let run = 1; run <= runs; run++) {
      progress(`run ${run}/${runs}`);
      // Alternate which server goes first, so neither always gets a warm page cache.
      for (const t of run % 2 ? targets : [...targets].reverse()) {
        const name = `bench-${run}`;
        const clone = path.join(work, `clone-${t.server}-${run}.git`);
        await t.prepare(name);
        // (b) push of the whole history into an empty repository
        await measure('push', t, () => git(['push', '-q', t.url(name), 'refs/heads/main:refs/heads/main'], repo.gitdir, home));
        // (a) full clone: bare, so the transfer is timed and not a checkout
        const cloned = await measure('clone', t, () => git(['clone', '-q', '--bare', t.url(name), clone], work, home));
        if (cloned && (await revParse(clone, 'refs/heads/main')) !== repo.main) {
          result('clone', t.server).error = 'the clone\'s main is not the pushed commit';
        }
        // (c) incremental fetch of 10 new commits (their push is set-up, not measured)
        if (withFetch && cloned) {
          await git(['push', '-q', t.url(name), 'refs/heads/next:refs/heads/main'], repo.gitdir, home)
            .then(() => measure('fetch', t, () => git(['fetch', '-q', 'origin', '+refs/heads/*:refs/heads/*'], clone, home)))
            .then(async (ok) => {
              if (ok && (await revParse(clone, 'refs/heads/main')) !== repo.next) result('fetch', t.server).error = 'the fetch did not bring the new commits';
            })
            .catch((err: Error) => { result('fetch', t.server).error = `set-up push failed: ${err.message}`; });
        }
        await fsp.rm(clone, { recursive: true, force: true });
      }
    }

    const peakRss = (() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${kith.child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : undefined;
      } catch {
        return undefined;
      }
    })();
    const anon = sampler.peaks();
    report({ commits, sizeMb, runs, repo, results, peakRss, peakAnon: { kith: anon.kith!, httpBackend: anon['http-backend']! }, json: values.json });
    return 0;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await fsp.rm(work, { recursive: true, force: true });
  }
}

function report(o: { commits: number; sizeMb: number; runs: number; repo: BenchRepo; results: Map<string, OpResult>; peakRss?: number; peakAnon: { kith: number; httpBackend: number }; json: boolean }): void {
  const ops: Op[] = ['clone', 'push', 'fetch'];
  const rows = ops.flatMap((op) => {
    const k = o.results.get(`${op}/kith`);
    const h = o.results.get(`${op}/http-backend`);
    if (!k && !h) return [];
    const summary = (r?: OpResult): Summary => r && !r.error && r.samples.length
      ? { ms: median(r.samples.map((s) => s.ms)), runsMs: r.samples.map((s) => Math.round(s.ms)), bytesUp: median(r.samples.map((s) => s.up)), bytesDown: median(r.samples.map((s) => s.down)) }
      : { error: r?.error ?? 'not run' };
    const kith = summary(k);
    const backend = summary(h);
    const ratio = 'ms' in kith && 'ms' in backend ? kith.ms / backend.ms : null;
    const targeted = op !== 'fetch';
    const verdict = !targeted ? null : ratio !== null && ratio <= TARGET_RATIO ? 'PASS' : 'FAIL';
    return [{ op, kith, httpBackend: backend, ratio, target: targeted ? TARGET_RATIO : null, verdict }];
  });
  const repoInfo = { commits: o.commits, sizeMb: o.sizeMb, contentBytes: o.repo.contentBytes, packBytes: o.repo.packBytes };
  if (o.json) {
    process.stdout.write(JSON.stringify({ benchmark: 'storage', runs: o.runs, repository: repoInfo, kithPeakRssBytes: o.peakRss ?? null, peakRssAnonBytes: o.peakAnon, operations: rows }, null, 2) + '\n');
    return;
  }
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const cell = (s: Summary, what: 'time' | 'bytes') =>
    'error' in s ? 'error' : what === 'time' ? sec(s.ms) : mib(s.bytesUp + s.bytesDown);
  const out: string[] = [];
  out.push(`storage benchmark: ${o.commits} commits, ${mib(o.repo.contentBytes)} of blob content (${mib(o.repo.packBytes)} packed), median of ${o.runs} run(s)`);
  out.push('');
  const head = ['operation', 'kith', 'http-backend', 'kith/backend', 'kith bytes', 'backend bytes', `target ≤${TARGET_RATIO}x`];
  const table = [head, ...rows.map((r) => [
    r.op,
    cell(r.kith, 'time'),
    cell(r.httpBackend, 'time'),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
    cell(r.kith, 'bytes'),
    cell(r.httpBackend, 'bytes'),
    r.verdict ?? '(none)',
  ])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) out.push(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  out.push('');
  out.push('bytes: both directions on the wire (HTTP included), counted by a TCP pass-through in front of each server');
  if (o.peakRss !== undefined) out.push(`kith storage peak RSS: ${mib(o.peakRss)}`);
  out.push(`peak RssAnon (private memory, sampled every 50 ms): kith ${mib(o.peakAnon.kith)}, git http-backend and its children ${mib(o.peakAnon.httpBackend)}`);
  for (const r of rows) {
    for (const [who, s] of [['kith', r.kith], ['http-backend', r.httpBackend]] as const) {
      if ('error' in s) out.push(`${r.op} on ${who}: ${s.error}`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}

process.exitCode = await main().catch((err: unknown) => {
  progress(`error: ${(err as Error).stack ?? err}`);
  return 1; // the harness itself broke (a slow or failing kith is reported, exit 0)
});
