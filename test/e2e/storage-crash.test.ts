/**
 * Crash safety of kith storage with the real git client (DESIGN.md "Durability": what is
 * acknowledged is on disk first). Round after round, git pushes — one commit, several refs
 * at once, or a multi-megabyte pack — and the sealed storage process is SIGKILLed at a
 * random moment 0–300 ms into the push, then restarted on the same data folder. After every
 * round the server's bare repository passes `git fsck --full --strict`, and every ref git
 * reported as pushed (`ok` in report-status) is there, at that commit or at a later one we
 * tried to push, with its objects readable. Temp files a kill leaves behind must not pile up.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBundle, tempDir, writeConfig, type ServiceProcess } from '../platform/helpers.ts';
import { repoRoot } from './kith-up.ts';
import { prng } from '../support/prng.ts';

const ROUNDS = 15;
const bundle = path.join(repoRoot, 'dist/storage.mjs');

const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=Owner', '-c', 'user.email=owner@home.arpa', ...args], { cwd, encoding: 'utf8', stdio: 'pipe', env: gitEnv });


interface PushOutcome { code: number | null; acked: Map<string, string>; stderr: string; ms: number }

/** `git push --porcelain`; a ref counts as acknowledged only if git printed it as pushed. */
function push(cwd: string, url: string, refspecs: string[], shas: Map<string, string>): { done: Promise<PushOutcome> } {
  const child = spawn('git', ['push', '--porcelain', url, ...refspecs], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: gitEnv });
  const t0 = Date.now();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<PushOutcome>((resolve) => {
    child.once('exit', (code) => {
      const acked = new Map<string, string>();
      // --porcelain: "<flag>\t<from>:<to>\t<summary>"; ' ' fast-forward, '*' new ref, '+' forced.
      for (const line of stdout.split('\n')) {
        const m = /^([ *+])\t[^:]*:(\S+)\t/.exec(line);
        if (m && shas.has(m[2]!)) acked.set(m[2]!, shas.get(m[2]!)!);
      }
      resolve({ code, acked, stderr, ms: Date.now() - t0 });
    });
  });
  return { done };
}

/** Every file whose name says it is a leftover: durable-write temps, git lock files. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.tmp-|\.lock$|^tmp_|^\.tmp/.test(name)) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

/** A .pack with no .idx (or the reverse) is dead weight nothing will ever read or remove. */
function orphanPacks(gitdir: string): string[] {
  const dir = path.join(gitdir, 'objects/pack');
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir);
  return names.filter((n) => (n.endsWith('.pack') && !names.includes(n.replace(/\.pack$/, '.idx'))) || (n.endsWith('.idx') && !names.includes(n.replace(/\.idx$/, '.pack'))));
}

describe('kith storage survives SIGKILL during pushes', () => {
  let svc: ServiceProcess | undefined;
  let config: string;
  let data: string;
  let work: string;
  let token: string;
  const serverRepo = () => path.join(data, 'repos/crash.git');
  const url = () => svc!.ready.endpoints.git!.replace('://', `://kith:${token}@`).replace('/config.git', '/crash.git');

  const start = async () => {
    svc = await startBundle(bundle, ['--config', config, '--data', data, '--listen', 'http=127.0.0.1:0', '--listen', 'health=127.0.0.1:0', '--listen', 'https=127.0.0.1:0']);
  };

  beforeAll(async () => {
    config = tempDir('kith-crash-config-');
    data = tempDir('kith-crash-data-');
    work = path.join(tempDir('kith-crash-work-'), 'w');
    temps.push(config, data, path.dirname(work));
    await writeConfig(config, 'storage/storage.yaml', 'createOnPush: true\n');
    await start();
    token = readFileSync(path.join(data, 'access-token'), 'utf8').trim();
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    writeFileSync(path.join(work, 'README'), 'crash test\n');
    git(work, 'add', '.');
    git(work, 'commit', '-qm', 'first');
    git(work, 'push', '-q', url(), 'main');
  });

  const temps: string[] = [];
  afterAll(async () => {
    await svc?.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });

  it(`keeps every acknowledged push and a clean repository over ${ROUNDS} kills`, async () => {
    const rnd = prng(20261123);
    const random = (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i += 4) b.writeUInt32LE((rnd() * 2 ** 32) >>> 0, i);
      return b;
    };
    // Per ref: the last value git reported as pushed, and values tried since (a kill after
    // the ref moved but before the report leaves the ref at one of those: also correct).
    const acked = new Map<string, string>([['refs/heads/main', git(work, 'rev-parse', 'HEAD').trim()]]);
    const triedSince = new Map<string, Set<string>>();
    const summary: string[] = [];
    let ackedRounds = 0;

    for (let round = 1; round <= ROUNDS; round++) {
      const kind = round % 3 === 0 ? 'large' : round % 3 === 1 ? 'single' : 'several-refs';
      const refspecs: string[] = [];
      if (kind === 'large') {
        // A multi-megabyte pack, on its own branch so that a cut push does not make every
        // later push carry it too.
        git(work, 'checkout', '-q', '-b', `bulk-${round}`, 'main');
        writeFileSync(path.join(work, `blob-${round}.bin`), random((1 + Math.floor(rnd() * 3)) << 20));
        git(work, 'add', '.');
        git(work, 'commit', '-qm', `round ${round} (${kind})`);
        git(work, 'checkout', '-q', 'main');
        refspecs.push(`bulk-${round}`);
      } else {
        writeFileSync(path.join(work, 'log.txt'), `round ${round}\n`.repeat(round * 20));
        git(work, 'add', '.');
        git(work, 'commit', '-qm', `round ${round} (${kind})`);
        refspecs.push('main');
      }
      if (kind === 'several-refs') {
        git(work, 'branch', '-f', `topic-${round}`);
        git(work, 'tag', '-a', '-m', `tag ${round}`, `v${round}`);
        refspecs.push(`topic-${round}`, `refs/tags/v${round}`);
      }
      const shas = new Map<string, string>();
      for (const spec of refspecs) {
        const full = spec.startsWith('refs/') ? spec : `refs/heads/${spec}`;
        shas.set(full, git(work, 'rev-parse', full).trim());
      }
      for (const [ref, sha] of shas) {
        if (!triedSince.has(ref)) triedSince.set(ref, new Set());
        triedSince.get(ref)!.add(sha);
      }

      const delay = Math.floor(rnd() * 300);
      const p = push(work, url(), refspecs, shas);
      const victim = svc!;
      const exited = new Promise((r) => (victim.child.exitCode !== null ? r(null) : victim.child.once('exit', r)));
      await new Promise((r) => setTimeout(r, delay));
      victim.child.kill('SIGKILL');
      await exited;
      const outcome = await p.done;
      const afterKill = leftovers(data).length;
      for (const [ref, sha] of outcome.acked) {
        acked.set(ref, sha);
        triedSince.set(ref, new Set());
      }
      if (outcome.acked.size) ackedRounds++;

      await start();
      // The repository is whole: no torn object, no ref to a missing object.
      const fsck = execFileSync('git', ['--git-dir', serverRepo(), 'fsck', '--full', '--strict', '--no-dangling', '--no-progress'], { encoding: 'utf8', stdio: 'pipe' });
      expect(fsck).toBe('');
      // Every acknowledged ref is there (or moved on to a later commit we pushed), readable.
      const remote = new Map(git(work, 'ls-remote', url()).trim().split('\n').filter(Boolean).map((l) => {
        const [sha, ref] = l.split('\t');
        return [ref!, sha!] as const;
      }));
      for (const [ref, sha] of acked) {
        const now = remote.get(ref);
        expect([sha, ...(triedSince.get(ref) ?? [])], `round ${round}: ${ref}`).toContain(now);
        execFileSync('git', ['--git-dir', serverRepo(), 'cat-file', '-e', `${sha}^{commit}`], { stdio: 'pipe' });
        execFileSync('git', ['--git-dir', serverRepo(), 'rev-list', '--objects', '--quiet', sha], { stdio: 'pipe' });
      }
      summary.push(`round ${round} ${kind} kill@${delay}ms push=${outcome.code === 0 ? 'ok' : 'cut'} in ${outcome.ms}ms acked=${outcome.acked.size} leftovers after kill=${afterKill} after restart=${leftovers(data).length} orphan-packs=${orphanPacks(serverRepo()).length}`);
    }

    // A last, uninterrupted push lands, and a fresh clone holds exactly what we have.
    git(work, 'push', '-q', url(), 'main');
    const clone = path.join(tempDir('kith-crash-clone-'), 'c');
    temps.push(path.dirname(clone));
    git(path.dirname(clone), 'clone', '-q', '--bare', url(), clone);
    expect(git(clone, 'rev-parse', 'refs/heads/main').trim()).toBe(git(work, 'rev-parse', 'HEAD').trim());

    const left = leftovers(data);
    const orphans = orphanPacks(serverRepo());
    console.log(`storage crash test:\n  ${summary.join('\n  ')}\n  rounds with acknowledged pushes: ${ackedRounds}/${ROUNDS}\n  leftovers now: ${JSON.stringify(left)}\n  orphan packs now: ${JSON.stringify(orphans)}`);
    // What a kill leaves behind is swept at start-up (services/storage/git/recover.ts).
    expect(left).toEqual([]);
    expect(orphans).toEqual([]);
  }, 120_000);
});
