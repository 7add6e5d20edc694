// Measures a clone of a 2,000-commit repository (10,000 objects) through the handler,
// under protocol v0 and v2: isomorphic-git reads packs with a pure-JS inflate and
// our writer sends undeltified objects, so this is the number to watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { createRepo } from '../git/repos.ts';
import { gitv, run, startServer, type TestServer } from './helpers.ts';

const COMMITS = 2000;
let server: TestServer;
let gitdir: string;

function fastImport(gitdir: string, stream: string): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn('git', ['--git-dir', gitdir, 'fast-import', '--quiet'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.stdin.end(stream);
    p.on('exit', (code) => resolve(code ?? 1));
  });
}

beforeAll(async () => {
  server = await startServer();
  gitdir = await createRepo(server.root, 'big');
  // Written straight into the bare repository by git: a realistic, deltified pack.
  const parts: string[] = [];
  for (let i = 0; i < COMMITS; i++) {
    const file = `dir${i % 10}/sub${i % 7}/f${i % 50}.txt`;
    const data = `commit ${i}\n` + 'line\n'.repeat(i % 30);
    parts.push(`commit refs/heads/main\nmark :${i + 1}\ncommitter T <t@e> ${1700000000 + i} +0000\ndata ${String(i).length + 1}\nc${i}\n`);
    if (i) parts.push(`from :${i}\n`);
    parts.push(`M 100644 inline ${file}\ndata ${Buffer.byteLength(data)}\n${data}\n`);
  }
  expect(await fastImport(gitdir, parts.join(''))).toBe(0);
});
afterAll(async () => {
  await server?.close();
});

describe(`clone of a ${COMMITS}-commit repository`, () => {
  for (const v of [0, 2] as const) {
    it(`completes under protocol v${v}`, async () => {
      const dest = path.join(server.tmp, `big-v${v}`);
      const t0 = performance.now();
      await gitv(v, server.tmp, ['clone', '-q', '--bare', `${server.base}/big.git`, dest]);
      const ms = Math.round(performance.now() - t0);
      console.log(`clone of ${COMMITS} commits (protocol v${v}): ${ms} ms`);
      expect((await run('git', ['--git-dir', dest, 'rev-list', '--count', 'main'])).stdout.trim()).toBe(String(COMMITS));
      expect((await run('git', ['--git-dir', dest, 'fsck', '--strict'])).code).toBe(0);
      expect(ms).toBeLessThan(45_000); // only against a hang: over ten times the 1-4.2 s printed here (under load)
    });
  }

  it('fetches one new commit on top of that history quickly', async () => {
    const dest = path.join(server.tmp, 'big-v2');
    const tip = (await run('git', ['--git-dir', gitdir, 'rev-parse', 'main'])).stdout.trim();
    const stream = `commit refs/heads/main\ncommitter T <t@e> 1800000000 +0000\ndata 4\nnew\nfrom ${tip}\nM 100644 inline new.txt\ndata 4\nnew\n\n`;
    expect(await fastImport(gitdir, stream)).toBe(0);
    // What makes it quick is that only the new objects come: fewer than git's unpackLimit
    // arrive as loose objects and no pack is added (a re-sent history would be a pack of
    // 10,000). The times are printed, and bounded only against a hang.
    const objects = async () => Object.fromEntries((await run('git', ['--git-dir', dest, 'count-objects', '-v'])).stdout.trim().split('\n').map((l) => l.split(': ')).map(([k, n]) => [k, Number(n)]));
    const before = await objects();
    for (const v of [0, 2] as const) {
      const t0 = performance.now();
      await gitv(v, server.tmp, ['--git-dir', dest, 'fetch', '-q', 'origin', '+refs/heads/main:refs/heads/main']);
      const ms = Math.round(performance.now() - t0);
      console.log(`incremental fetch after ${COMMITS} commits (protocol v${v}): ${ms} ms`);
      expect(ms).toBeLessThan(10_000); // 15 times the slowest figure printed here (0.05-0.65 s, under load)
    }
    const after = await objects();
    expect(after.packs).toBe(before.packs);
    expect(after.count! - before.count!).toBe(3); // the commit, its tree and new.txt
    expect((await run('git', ['--git-dir', dest, 'rev-list', '--count', 'main'])).stdout.trim()).toBe(String(COMMITS + 1));
  });
});
