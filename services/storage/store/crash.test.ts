/**
 * Crash safety and cross-process writers, checked by the real `git` (Debian: git):
 * - a child writing in a loop is SIGKILLed several times, mid-write; after each kill
 *   `git fsck --full --strict` is clean and every write the child acknowledged (printed
 *   after `write` resolved) is in the branch's history;
 * - two processes writing at once lose nothing; two processes racing with the same
 *   expectedHead: exactly one wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openStore } from './store.ts';

const WRITER = path.join(import.meta.dirname, 'test-writer.ts');
let tmp: string;
let gitdir: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'kith-store-crash-'));
  gitdir = path.join(tmp, 'data.git');
  await openStore({ dir: gitdir, create: true, pollMs: 0 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const git = (...args: string[]) => execFileSync('git', ['-C', gitdir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * git fsck --full --strict (stderr included) must exit 0 and say nothing, except — right
 * after a kill — "bad sha1 file" for the temp file of a durable write the dead writer had
 * not renamed yet (platform/durable.ts names it `.<name>.tmp-<pid>-<hex>`; git only knows
 * its own `tmp_obj_*`). The next openStore removes those (cleanup.ts).
 */
function fsckClean(deadPid?: number): void {
  const out = execFileSync('sh', ['-c', 'git -C "$0" fsck --full --strict --no-dangling 2>&1; echo "exit=$?"', gitdir], { encoding: 'utf8' });
  const lines = out.trim().split('\n');
  expect(lines.pop()).toBe('exit=0');
  const garbage = new RegExp(`^bad sha1 file: \\./objects/[0-9a-f]{2}/\\.[0-9a-f]{38}\\.tmp-${deadPid ?? 'none'}-[0-9a-f]+$`);
  expect(lines.filter((l) => !garbage.test(l))).toEqual([]);
}

function start(args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [WRITER, gitdir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => {
    if (code) console.error(err);
    r(code);
  }));
  return { child, lines, exited };
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('store crash safety (SIGKILL) and several processes', () => {
  it('after each SIGKILL: fsck --strict clean, every acknowledged write in history', async () => {
    const acked = new Map<number, string>();
    let next = 0;
    for (let round = 0; round < 6; round++) {
      const w = start(['loop', String(next), '100000', 'crash']);
      const want = 3 + round * 2;
      await waitFor(() => w.lines.length >= want, 30_000);
      // Kill at a different point of the next write each round.
      if (round % 2 === 1) await new Promise((r) => setTimeout(r, round));
      w.child.kill('SIGKILL');
      await w.exited;
      const killed = w.child.pid;
      for (const l of w.lines) {
        const [, i, c] = l.split(' ');
        acked.set(Number(i), c!);
        next = Math.max(next, Number(i) + 1);
      }
      next += 1; // the killed write's index may or may not have landed: don't reuse it
      fsckClean(killed);
      const history = new Set(git('rev-list', 'refs/heads/main').trim().split('\n'));
      for (const [i, c] of acked) expect(history.has(c), `acknowledged write ${i} (${c})`).toBe(true);
      const subjects = new Set(git('log', '--format=%s', 'refs/heads/main').trim().split('\n'));
      for (const i of acked.keys()) expect(subjects.has(`crash write ${i}`)).toBe(true);
    }
    expect(acked.size).toBeGreaterThanOrEqual(3 + 5 * 2);
    // Reopening cleans dead writers' temp files and a dead writer's lock; writing still works.
    const store = await openStore({ dir: gitdir, pollMs: 0 });
    await store.write('after/crash', 'ok');
    const leftovers = readdirSync(path.join(gitdir, 'refs/heads')).filter((n) => n !== 'main');
    expect(leftovers).toEqual([]);
    fsckClean();
  });

  it('two processes writing at once lose no write', async () => {
    const before = Number(git('rev-list', '--count', 'refs/heads/main').trim());
    const a = start(['loop', '0', '15', 'A']);
    const b = start(['loop', '0', '15', 'B']);
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    const commits = [...a.lines, ...b.lines].map((l) => l.split(' ')[2]!);
    expect(commits).toHaveLength(30);
    const history = git('rev-list', 'refs/heads/main').trim().split('\n');
    expect(history.length).toBe(before + 30);
    for (const c of commits) expect(history).toContain(c);
    fsckClean();
  });

  it('two processes racing with the same expectedHead: exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const base = git('rev-parse', 'refs/heads/main').trim();
      const racers = ['P', 'Q', 'R'].map((t) => start(['cas', base, `${t}${round}`]));
      for (const r of racers) expect(await r.exited).toBe(0);
      const results = racers.map((r) => r.lines[0]!.split(' '));
      const won = results.filter(([k]) => k === 'won');
      expect(won).toHaveLength(1);
      const head = git('rev-parse', 'refs/heads/main').trim();
      expect(won[0]![1]).toBe(head);
      for (const [k, actual] of results) if (k === 'lost') expect(actual).toBe(head);
      expect(git('rev-parse', `${head}^`).trim()).toBe(base);
    }
    fsckClean();
  });
});
