/**
 * config.git at scale (issue 11, item 5), with the real git client (mktree, commit-tree)
 * against the storage service in process:
 * - a 100,000-file commit is refused at push, naming maxConfigFiles, in well under a second
 *   of server time, and storage keeps serving;
 * - publishing is incremental: only the paths that differ between the published commit and
 *   the new one are written (a file the commit did not change is not even looked at);
 * - git is served while a large tree is being published after a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceHandle } from '../../../platform/runner.ts';
import type { StorageConfig } from '../config/schema.ts';
import { publishCommit } from '../config/config-repo.ts';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

const base = tempDir('kith-config-scale-');
const configRoot = path.join(base, 'config');
const dataDir = path.join(base, 'data');
const bare = path.join(dataDir, 'repos', 'config.git');
let handle: ServiceHandle<StorageConfig> | undefined;
let remote: string;

async function start(): Promise<void> {
  ({ handle, remote } = await startStorageService({ configRoot, dataDir }));
}
const plumb = (cwd: string, args: string[], input?: string) => execFileSync('git', ['-c', 'user.name=O', '-c', 'user.email=o@o', ...args], { cwd, input, encoding: 'utf8', maxBuffer: 64 << 20 }).trim();

/** A commit on `parent` with a folder `dir` of `n` files (one blob, n names). */
function commitMany(repo: string, parent: string, dir: string, n: number, content = 'x\n'): string {
  const blob = plumb(repo, ['hash-object', '-w', '--stdin'], content);
  const lines = Array.from({ length: n }, (_, i) => `100644 blob ${blob}\tf${String(i).padStart(6, '0')}.txt`);
  const sub = plumb(repo, ['mktree'], lines.join('\n') + '\n');
  const root = plumb(repo, ['ls-tree', parent]).split('\n').filter((l) => !l.endsWith(`\t${dir}`));
  const tree = plumb(repo, ['mktree'], [...root, `040000 tree ${sub}\t${dir}`].join('\n') + '\n');
  return plumb(repo, ['commit-tree', tree, '-p', parent, '-m', `${n} files in ${dir}`]);
}

beforeAll(async () => {
  await seedStorageConfig(configRoot);
  await start();
  const r = await run('git', ['clone', '-q', remote, path.join(base, 'clone')]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await handle?.stop();
});

describe('config.git at scale', () => {
  it('refuses a 100,000-file commit at push, naming maxConfigFiles', async () => {
    const clone = path.join(base, 'clone');
    const head = plumb(clone, ['rev-parse', 'HEAD']);
    const many = commitMany(clone, head, 'many', 100_000);
    const t0 = performance.now();
    const push = await run('git', ['push', 'origin', `${many}:refs/heads/main`], { cwd: clone });
    const ms = performance.now() - t0;
    console.log(`100,000-file push refused in ${ms.toFixed(0)} ms (git client included)`);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: {3}many\/f\d{6}\.txt: config\.git would hold more than 10000 files, over the limit maxConfigFiles/);
    // Only against a refusal that grows worse than linearly with the files: 30 s is over ten
    // times the figure printed above (2.4 s here under load), for a slower, busier CI machine.
    expect(ms).toBeLessThan(30_000);
    expect(existsSync(path.join(configRoot, 'many'))).toBe(false);
    expect((await fetch(`${handle!.healthUrl}/healthz`)).status).toBe(200);
  });

  it('publishes only the paths that changed', async () => {
    const head = plumb(bare, ['rev-parse', 'refs/heads/main']);
    const a = commitMany(bare, head, 'lots', 2000);
    const work = path.join(base, 'work');
    mkdirSync(work);
    let t0 = performance.now();
    const before = plumb(bare, ['ls-tree', '-r', '--name-only', head]).trim().split('\n').length;
    expect(await publishCommit(bare, a, work)).toHaveLength(2000 + before);
    const fullMs = performance.now() - t0;
    // One file changed in b; a hand edit to another file must not be looked at.
    const blob = plumb(bare, ['hash-object', '-w', '--stdin'], 'changed\n');
    const lots = plumb(bare, ['ls-tree', `${a}:lots`]).replace(/^(100644 blob )[0-9a-f]{40}(\tf000007\.txt)$/m, `$1${blob}$2`);
    const root = plumb(bare, ['ls-tree', a]).split('\n').filter((l) => !l.endsWith('\tlots'));
    const b = plumb(bare, ['commit-tree', plumb(bare, ['mktree'], [...root, `040000 tree ${plumb(bare, ['mktree'], lots + '\n')}\tlots`].join('\n') + '\n'), '-p', a, '-m', 'one file']);
    writeFileSync(path.join(work, 'lots/f000001.txt'), 'edited by hand\n');
    t0 = performance.now();
    expect(await publishCommit(bare, b, work, a)).toEqual(['lots/f000007.txt']);
    const incMs = performance.now() - t0;
    console.log(`publish of 2,001 files: ${fullMs.toFixed(0)} ms; of the one changed path: ${incMs.toFixed(0)} ms`);
    expect(readFileSync(path.join(work, 'lots/f000007.txt'), 'utf8')).toBe('changed\n');
    expect(readFileSync(path.join(work, 'lots/f000001.txt'), 'utf8')).toBe('edited by hand\n');
    // Without `from` (start-up), the folder is compared file by file: the hand edit loses.
    expect(await publishCommit(bare, b, work)).toEqual(['lots/f000001.txt']);
  });

  it('serves git while it publishes a large tree after a restart', async () => {
    await handle!.stop();
    const head = plumb(bare, ['rev-parse', 'refs/heads/main']);
    plumb(bare, ['update-ref', 'refs/heads/main', commitMany(bare, head, 'lots', 3000)]);
    await start();
    const t0 = performance.now();
    const ls = await run('git', ['ls-remote', remote, 'refs/heads/main'], { cwd: base });
    const lsMs = performance.now() - t0;
    const during = existsSync(path.join(configRoot, 'lots')) ? readdirSync(path.join(configRoot, 'lots')).length : 0;
    console.log(`ls-remote answered in ${lsMs.toFixed(0)} ms while ${during} of 3,000 files were published`);
    expect(ls.code).toBe(0);
    while (!existsSync(path.join(configRoot, 'lots/f002999.txt'))) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(path.join(configRoot, 'lots'))).toHaveLength(3000);
    rmSync(path.join(base, 'work'), { recursive: true, force: true });
  });
});
