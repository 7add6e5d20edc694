// Multi-round want/have negotiation and concurrent pushes with the real git client:
// a client with hundreds of commits the server never saw must still converge and
// receive only what it lacks; two racing pushes must not both win.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createRepo } from '../git/repos.ts';
import { gitv, run, startServer, type TestServer } from './helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

async function commit(dir: string, file: string, content: string, v: 0 | 2): Promise<void> {
  await writeFile(path.join(dir, file), content);
  await gitv(v, dir, ['add', file]);
  await gitv(v, dir, ['commit', '-q', '-m', `${file}: ${content.slice(0, 20)}`]);
}

for (const v of [0, 2] as const) {
  describe(`negotiation, protocol v${v}`, () => {
    it('converges when the client has many commits the server lacks', async () => {
      const name = `nego-v${v}`;
      await createRepo(server.root, name);
      const url = `${server.base}/${name}.git`;
      const work = path.join(server.tmp, name);
      await mkdir(work, { recursive: true });
      await gitv(v, work, ['clone', url, 'a']);
      const a = path.join(work, 'a');
      await commit(a, 'base.txt', 'base\n', v);
      await gitv(v, a, ['push', 'origin', 'main']);
      await gitv(v, work, ['clone', url, 'b']);
      const b = path.join(work, 'b');
      // b: 300 local commits on a side branch, never pushed (fast-import keeps this quick).
      const lines: string[] = [];
      for (let i = 0; i < 300; i++) {
        lines.push(`commit refs/heads/local\ncommitter T <t@e> ${1700000000 + i} +0000\ndata 3\nc${i % 10}\n`);
        if (i === 0) lines.push('from refs/heads/main\n');
        lines.push(`M 100644 inline local${i}.txt\ndata 2\n${i % 10}\n\n`);
      }
      const fi = await import('node:child_process').then(
        (cp) =>
          new Promise<number>((resolve) => {
            const p = cp.spawn('git', ['fast-import', '--quiet'], { cwd: b });
            p.stdin.end(lines.join(''));
            p.on('exit', (code) => resolve(code ?? 1));
          }),
      );
      expect(fi).toBe(0);
      await gitv(v, b, ['checkout', '-q', 'local']);
      // meanwhile a pushes one new commit
      await commit(a, 'new.txt', 'new\n', v);
      await gitv(v, a, ['push', 'origin', 'main']);
      const loose = async () => Number(/^count: (\d+)/m.exec((await gitv(v, b, ['count-objects', '-v'])).stdout)![1]);
      const before = await loose();
      await gitv(v, b, ['-c', 'fetch.unpackLimit=100000', 'fetch', 'origin']);
      expect((await loose()) - before).toBe(3); // commit, root tree, blob
      expect((await gitv(v, b, ['rev-parse', 'origin/main'])).stdout.trim()).toBe(
        (await gitv(v, a, ['rev-parse', 'HEAD'])).stdout.trim(),
      );
    });

    it('lets only one of two racing pushes move a branch', async () => {
      const name = `race-v${v}`;
      await createRepo(server.root, name);
      const url = `${server.base}/${name}.git`;
      const work = path.join(server.tmp, name);
      await mkdir(work, { recursive: true });
      await gitv(v, work, ['clone', url, 'x']);
      await commit(path.join(work, 'x'), 'f', '0\n', v);
      await gitv(v, path.join(work, 'x'), ['push', 'origin', 'main']);
      await gitv(v, work, ['clone', url, 'y']);
      await gitv(v, work, ['clone', url, 'z']);
      await commit(path.join(work, 'y'), 'f', 'y\n', v);
      await commit(path.join(work, 'z'), 'f', 'z\n', v);
      const [ry, rz] = await Promise.all([
        gitv(v, path.join(work, 'y'), ['push', 'origin', 'main'], true),
        gitv(v, path.join(work, 'z'), ['push', 'origin', 'main'], true),
      ]);
      expect([ry.code, rz.code].filter((c) => c === 0).length).toBe(1);
      const fsck = await run('git', ['--git-dir', path.join(server.root, `${name}.git`), 'fsck', '--full', '--strict']);
      expect(fsck.code).toBe(0);
      expect(server.errors).toEqual([]);
    });
  });
}
