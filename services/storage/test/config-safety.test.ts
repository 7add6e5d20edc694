/**
 * config.git under hostile trees, with the real git client (plumbing: hash-object, mktree,
 * commit-tree) against the storage service started in process (issue 11, item 1):
 * - every path of a pushed tree, in any folder, is checked and refused at push time
 *   (`..`, `.`, `.git` in any case, backslash, over-long names, symlinks), with the path in
 *   git's `remote:` output;
 * - a commit that was never validated (written under the ref by hand) cannot stop storage
 *   from starting: it serves git, reports unhealthy with the reason, keeps the last
 *   published tree, and a pushed fix makes it healthy again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceHandle } from '../../../platform/runner.ts';
import type { StorageConfig } from '../config/schema.ts';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

let base: string;
let handle: ServiceHandle<StorageConfig> | undefined;
let remote: string;
let clone: string;

const configRoot = () => path.join(base, 'config');
const dataDir = () => path.join(base, 'data');
const bare = () => path.join(dataDir(), 'repos', 'config.git');

async function start(): Promise<void> {
  ({ handle, remote } = await startStorageService({ configRoot: configRoot(), dataDir: dataDir() }));
}

/** Local git plumbing in `cwd`, stdin optional (synchronous: never for commands that talk to the in-process server). */
/** git over the network: asynchronous, so the in-process server keeps serving. */
async function netgit(cwd: string, args: string[]): Promise<string> {
  const r = await run('git', args, { cwd });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout.trim();
}
const git = (cwd: string, args: string[], input?: string) => execFileSync('git', ['-c', 'user.name=Owner', '-c', 'user.email=o@home.arpa', ...args], { cwd, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();

/** A commit on top of `parent` whose root tree is `parent`'s plus `extra` entries (mktree lines). */
function commitWith(repo: string, parent: string, extra: string[], message: string): string {
  const root = git(repo, ['ls-tree', parent]).split('\n').filter(Boolean);
  const tree = git(repo, ['mktree'], [...root, ...extra].join('\n') + '\n');
  return git(repo, ['commit-tree', tree, '-p', parent, '-m', message]);
}

/** `junk/../pwned.txt` (and its friends): an entry named `..` inside a folder. */
function dotDotTree(repo: string): string {
  const blob = git(repo, ['hash-object', '-w', '--stdin'], 'pwned\n');
  const inner = git(repo, ['mktree'], `100644 blob ${blob}\tpwned.txt\n`);
  const dotdot = git(repo, ['mktree'], `040000 tree ${inner}\t..\n`);
  return `040000 tree ${dotdot}\tjunk`;
}

beforeAll(async () => {
  base = tempDir('kith-config-safety-');
  await seedStorageConfig(configRoot());
  await start();
  clone = path.join(base, 'clone');
  await netgit(base, ['clone', '-q', remote, clone]);
});
afterAll(async () => {
  await handle?.stop();
});

describe('config.git under hostile trees', () => {
  it('refuses at push time every unsafe path, in any folder, naming it', async () => {
    const head = git(clone, ['rev-parse', 'HEAD']);
    const blob = git(clone, ['hash-object', '-w', '--stdin'], 'x\n');
    const cases: [string, string][] = [
      [dotDotTree(clone), 'junk/..'],
      [`100644 blob ${blob}\t.`, '.'],
      [`100644 blob ${blob}\t.Git`, '.Git'],
      [`040000 tree ${git(clone, ['mktree'], `100644 blob ${blob}\tconfig\n`)}\t.GIT`, '.GIT'],
      [`100644 blob ${blob}\tnotes\\evil.txt`, 'notes\\\\evil.txt'],
      [`100644 blob ${blob}\t${'n'.repeat(300)}`, 'n'.repeat(300)],
      [`120000 blob ${git(clone, ['hash-object', '-w', '--stdin'], '/etc/passwd')}\tlink`, 'link'],
    ];
    for (const [entry, shown] of cases) {
      const bad = commitWith(clone, head, [entry], 'hostile');
      const push = await run('git', ['push', 'origin', `${bad}:refs/heads/main`], { cwd: clone });
      expect(push.code, shown).not.toBe(0);
      expect(push.stderr, shown).toContain(`remote:   ${shown}: `);
      expect(push.stderr).toMatch(/pre-receive hook declined/);
      expect((await netgit(clone, ['ls-remote', 'origin', 'refs/heads/main'])).split('\t')[0]).toBe(head);
    }
    // Nothing was published (the folder holds what config.git's head holds: storage's
    // files and the defaults storage added for the services it had never held), and
    // storage is healthy.
    const inHead = (await netgit(clone, ['ls-tree', '--name-only', head])).trim().split('\n').sort();
    expect(readdirSync(configRoot()).sort()).toEqual(inHead);
    expect((await fetch(`${handle!.healthUrl}/healthz`)).status).toBe(200);
  });

  it('starts and serves git when config.git already holds such a commit; a pushed fix makes it healthy', async () => {
    await handle!.stop();
    // Written under the ref by hand, as a bug or a disk editor could: never validated.
    const good = git(bare(), ['rev-parse', 'refs/heads/main']);
    const bad = commitWith(bare(), good, [dotDotTree(bare())], 'written under the ref');
    git(bare(), ['update-ref', 'refs/heads/main', bad]);
    const published = readFileSync(path.join(configRoot(), 'storage/storage.yaml'), 'utf8');

    await start();
    // Published in the background after start: wait for its verdict.
    let detail = '';
    for (const end = Date.now() + 15_000; !/junk/.test(detail) && Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
      const health = await fetch(`${handle!.healthUrl}/healthz`);
      expect(health.status).toBe(503);
      detail = ((await health.json()) as { detail: string }).detail;
    }
    expect(detail).toMatch(/not published.*junk\/\.\./);
    // git is served: the owner can see the bad head and push a fix.
    expect((await netgit(clone, ['ls-remote', remote, 'refs/heads/main'])).split('\t')[0]).toBe(bad);
    expect(readFileSync(path.join(configRoot(), 'storage/storage.yaml'), 'utf8')).toBe(published);
    expect(existsSync(path.join(configRoot(), 'junk'))).toBe(false);
    expect(existsSync(path.join(base, 'pwned.txt'))).toBe(false);

    await netgit(clone, ['fetch', '-q', remote, 'main']);
    const fixTree = git(clone, ['rev-parse', `${good}^{tree}`]);
    const fix = git(clone, ['commit-tree', fixTree, '-p', bad, '-m', 'remove junk']);
    await netgit(clone, ['push', '-q', remote, `${fix}:refs/heads/main`]);
    expect((await fetch(`${handle!.healthUrl}/healthz`)).status).toBe(200);
    expect(existsSync(path.join(configRoot(), 'junk'))).toBe(false);
  });
});
