/**
 * Storage streams packs (issue 11 item 3, issue 16): the sealed bundle, started with a V8
 * heap limit of 64 MB, takes a 240 MiB push of incompressible blobs from the real `git
 * push` (in two pushes: a new branch, then a fast-forward) and gives it back to the real
 * `git clone` byte for byte. Before, the push body and whole packs were held in memory
 * (a 185 MiB push peaked at ~700 MB). Peak private memory (RssAnon, sampled) is printed,
 * and held to a generous bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bundleService } from '../../../platform/build/bundle.ts';
import { startBundle, tempDir, writeConfig, type ServiceProcess } from '../../../test/platform/helpers.ts';
import { sampleRssAnon } from '../../../test/platform/rss-anon.ts';
import { run } from './helpers.ts';

const HEAP_MB = 64;
const COMMITS = 6;
const FILES_PER_COMMIT = 5;
const BLOB_BYTES = 8 << 20; // 6 × 5 × 8 MiB = 240 MiB of random data, ~4× the heap limit

const temps: string[] = [];
let svc: ServiceProcess | undefined;
let data = '';

const git = (cwd: string, args: string[]) =>
  run('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { cwd, env: { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } });

/**
 * A repository of COMMITS commits, each adding FILES_PER_COMMIT random blobs. Written as
 * files and `git add`ed at compression level 0 (git fast-import would try to delta every
 * blob against the one before: minutes for random data).
 */
async function makeRepo(dir: string): Promise<void> {
  for (let c = 0; c < COMMITS; c++) {
    mkdirSync(path.join(dir, `c${c}`));
    for (let f = 0; f < FILES_PER_COMMIT; f++) writeFileSync(path.join(dir, `c${c}`, `blob${f}.bin`), randomBytes(BLOB_BYTES));
    writeFileSync(path.join(dir, 'notes.txt'), `commit ${c}\n`);
    const add = await git(dir, ['-c', 'core.compression=0', 'add', '-A']);
    expect(add.code, add.stderr).toBe(0);
    const commit = await git(dir, ['commit', '-q', '-m', `c${c}`]);
    expect(commit.code, commit.stderr).toBe(0);
  }
}

beforeAll(async () => {
  const out = tempDir('kith-stream-bundle-');
  const config = tempDir('kith-stream-config-');
  data = tempDir('kith-stream-data-');
  temps.push(out, config, data);
  const { outfile } = await bundleService('storage', path.join(import.meta.dirname, '../main.ts'), out);
  await writeConfig(config, 'storage/storage.yaml', `createOnPush: true\nmaxPushBytes: ${1 << 30}\nmaxRepoBytes: ${4 * 2 ** 30}\n`);
  // NODE_OPTIONS survives the bundle's sealing re-exec (it keeps its environment).
  svc = await startBundle(outfile, ['--config', config, '--data', data, '--listen', 'http=127.0.0.1:0', '--listen', 'health=127.0.0.1:0', '--listen', 'https=127.0.0.1:0'], 30_000, ['env', `NODE_OPTIONS=--max-old-space-size=${HEAP_MB}`]);
}, 120_000);

afterAll(async () => {
  await svc?.stop();
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe(`a push ${Math.round((COMMITS * FILES_PER_COMMIT * BLOB_BYTES) / 2 ** 20)} MiB big into storage limited to a ${HEAP_MB} MB heap`, () => {
  it('is taken, and cloned back byte-identical, with flat memory', async () => {
    const pid = svc!.child.pid!;
    expect(readFileSync(`/proc/${pid}/environ`, 'latin1')).toContain(`NODE_OPTIONS=--max-old-space-size=${HEAP_MB}`);
    const work = tempDir('kith-stream-work-');
    temps.push(work);
    const src = path.join(work, 'src');
    mkdirSync(src);
    expect((await git(work, ['init', '-q', '-b', 'main', src])).code).toBe(0);
    const t0 = performance.now();
    const times: string[] = [];
    const lap = (what: string) => times.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await makeRepo(src);
    lap('generated');

    const token = readFileSync(path.join(data, 'access-token'), 'utf8').trim();
    const remote = svc!.ready.endpoints.git!.replace('://', `://kith:${token}@`).replace(/\/[^/]*\.git$/, '') + '/big.git';
    const sampler = sampleRssAnon({ storage: (p) => p === pid }, 20);
    try {
      // Two pushes: a new branch with the first half, then a fast-forward with the rest.
      // pack.window=0: random blobs give git nothing to delta against; don't let it try.
      const first = await git(src, ['-c', 'pack.window=0', '-c', 'pack.compression=0', 'push', '-q', remote, `main~${COMMITS / 2}:refs/heads/main`]);
      expect(first.code, first.stderr).toBe(0);
      lap('first push');
      const second = await git(src, ['-c', 'pack.window=0', '-c', 'pack.compression=0', 'push', '-q', remote, 'main:refs/heads/main']);
      expect(second.code, second.stderr).toBe(0);
      lap('second push');
      const clone = path.join(work, 'clone');
      const cloned = await git(work, ['clone', '-q', '--no-checkout', remote, clone]);
      expect(cloned.code, cloned.stderr).toBe(0);
      lap('clone');
      const tree = async (cwd: string) => (await git(cwd, ['rev-parse', 'HEAD^{tree}'])).stdout.trim();
      expect(await tree(clone)).toBe(await tree(src));
      expect((await git(clone, ['rev-parse', 'HEAD'])).stdout.trim()).toBe((await git(src, ['rev-parse', 'main'])).stdout.trim());
      const fsck = await git(clone, ['fsck', '--no-progress']);
      expect(fsck.code, fsck.stderr).toBe(0);
      lap('fsck');
    } finally {
      sampler.stop();
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    const peakAnon = sampler.peaks().storage!;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    console.log(`storage with --max-old-space-size=${HEAP_MB}: ${COMMITS * FILES_PER_COMMIT} blobs of ${BLOB_BYTES} bytes pushed in 2 pushes and cloned; peak RssAnon ${mb(peakAnon)} MB (sampled every 20 ms), VmHWM ${mb(kb('VmHWM') * 1024)} MB, RssAnon now ${mb(kb('RssAnon') * 1024)} MB; at ${times.join(', ')}`);
    // Generous: before streaming this push would have taken ~1 GB.
    expect(peakAnon).toBeLessThan(150e6);
  }, 300_000);
});
