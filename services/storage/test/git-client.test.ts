// Real `git` client against the smart-HTTP handler, under protocol v0 and v2:
// clone (empty, full, shallow), incremental fetch size, branches, tags, deletes,
// non-fast-forward policy, --atomic, pre-receive refusal, and fsck of the result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { createRepo, repoPath } from '../git/repos.ts';
import type { HookResult, PreReceiveInput } from '../git/receive-pack.ts';
import { gitv, run, startServer, type TestServer } from './helpers.ts';

let server: TestServer;
const hookCalls: PreReceiveInput['updates'][] = [];
let hook: (i: PreReceiveInput) => Promise<HookResult> = async () => ({ ok: true });
const postCalls: number[] = [];

beforeAll(async () => {
  server = await startServer({
    hooks: {
      preReceive: async (i) => {
        hookCalls.push(i.updates);
        return hook(i);
      },
      postReceive: (i) => {
        postCalls.push(i.updates.length);
      },
    },
  });
});
afterAll(async () => {
  await server?.close();
});

async function commitFiles(dir: string, files: Record<string, string>, msg: string, v: 0 | 2): Promise<string> {
  for (const [f, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
    await writeFile(path.join(dir, f), content);
  }
  await gitv(v, dir, ['add', '-A']);
  await gitv(v, dir, ['commit', '-q', '-m', msg]);
  return (await gitv(v, dir, ['rev-parse', 'HEAD'])).stdout.trim();
}

async function lsRemote(v: 0 | 2, cwd: string, url: string): Promise<Map<string, string>> {
  const out = (await gitv(v, cwd, ['ls-remote', url])).stdout;
  const m = new Map<string, string>();
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [oid, name] = line.split('\t');
    m.set(name, oid);
  }
  return m;
}

for (const v of [0, 2] as const) {
  describe(`git client, protocol v${v}`, () => {
    const name = `repo-v${v}`;
    let work: string;
    let url: string;
    let gitdir: string;

    beforeAll(async () => {
      gitdir = await createRepo(server.root, name);
      work = path.join(server.tmp, `work-v${v}`);
      await mkdir(work, { recursive: true });
      url = `${server.base}/${name}.git`;
    });

    it('clones an empty repository', async () => {
      const r = await gitv(v, work, ['clone', url, 'empty']);
      expect(r.stderr).toContain('empty repository');
    });

    it('pushes to the empty repository and clones it back', async () => {
      const a = path.join(work, 'empty');
      const files: Record<string, string> = {};
      for (let i = 0; i < 12; i++) files[`dir${i % 3}/sub/file${i}.txt`] = `content ${i}\n`.repeat(i + 1);
      await commitFiles(a, files, 'first', v);
      await commitFiles(a, { 'dir0/sub/file0.txt': 'changed\n' }, 'second', v);
      const head = await commitFiles(a, { 'README': 'hello\n' }, 'third', v);
      await gitv(v, a, ['push', 'origin', 'main']);
      const r = await gitv(v, work, ['clone', url, 'b']);
      expect(r.code).toBe(0);
      expect((await gitv(v, path.join(work, 'b'), ['rev-parse', 'HEAD'])).stdout.trim()).toBe(head);
      expect((await gitv(v, path.join(work, 'b'), ['rev-parse', '--abbrev-ref', 'HEAD'])).stdout.trim()).toBe('main');
    });

    it('shallow-clones with --depth 1, then unshallows', async () => {
      await gitv(v, work, ['clone', '--depth', '1', url, 'shallow']);
      const dir = path.join(work, 'shallow');
      expect((await gitv(v, dir, ['rev-list', '--count', 'HEAD'])).stdout.trim()).toBe('1');
      expect((await gitv(v, dir, ['rev-parse', '--is-shallow-repository'])).stdout.trim()).toBe('true');
      await gitv(v, dir, ['fetch', '--unshallow']);
      expect((await gitv(v, dir, ['rev-list', '--count', 'HEAD'])).stdout.trim()).toBe('3');
      expect((await gitv(v, dir, ['fsck', '--strict'])).code).toBe(0);
      await gitv(v, work, ['clone', '--depth', '1', url, 'shallow2']); // fetched into below
    });

    it('an incremental fetch sends only the new objects', async () => {
      const a = path.join(work, 'empty');
      const head = await commitFiles(a, { 'dir1/sub/file1.txt': 'new content\n' }, 'fourth', v);
      await gitv(v, a, ['push', 'origin', 'main']);
      const b = path.join(work, 'b');
      const loose = async () => Number(/^count: (\d+)/m.exec((await gitv(v, b, ['count-objects', '-v'])).stdout)![1]);
      const before = await loose();
      // Unpack fetched objects as loose ones so they can be counted exactly.
      await gitv(v, b, ['-c', 'fetch.unpackLimit=100000', 'fetch', 'origin']);
      // commit + root tree + dir1 + dir1/sub + the blob
      expect((await loose()) - before).toBe(5);
      expect((await gitv(v, b, ['rev-parse', 'origin/main'])).stdout.trim()).toBe(head);
      // A shallow clone fetching without --deepen keeps its boundary and gets the new commit.
      const sh = path.join(work, 'shallow2');
      await gitv(v, sh, ['fetch', 'origin']);
      expect((await gitv(v, sh, ['rev-list', '--count', 'origin/main'])).stdout.trim()).toBe('2');
      expect((await gitv(v, sh, ['rev-parse', '--is-shallow-repository'])).stdout.trim()).toBe('true');
      await gitv(v, sh, ['fetch', '--deepen', '1', 'origin']);
      expect((await gitv(v, sh, ['rev-list', '--count', 'origin/main'])).stdout.trim()).toBe('3');
    });

    it('pushes a new branch and deletes it', async () => {
      const a = path.join(work, 'empty');
      await gitv(v, a, ['push', 'origin', 'main:refs/heads/feature']);
      expect((await lsRemote(v, work, url)).has('refs/heads/feature')).toBe(true);
      await gitv(v, a, ['push', 'origin', ':feature']);
      expect((await lsRemote(v, work, url)).has('refs/heads/feature')).toBe(false);
    });

    it('pushes lightweight and annotated tags, and clones get them', async () => {
      const a = path.join(work, 'empty');
      await gitv(v, a, ['tag', 'light']);
      await gitv(v, a, ['tag', '-a', '-m', 'release one', 'v1.0']);
      await gitv(v, a, ['push', 'origin', 'light', 'v1.0']);
      const refs = await lsRemote(v, work, url);
      const head = (await gitv(v, a, ['rev-parse', 'HEAD'])).stdout.trim();
      expect(refs.get('refs/tags/light')).toBe(head);
      expect(refs.get('refs/tags/v1.0^{}')).toBe(head);
      expect(refs.get('refs/tags/v1.0')).not.toBe(head);
      await gitv(v, work, ['clone', url, 'tags']);
      const tags = (await gitv(v, path.join(work, 'tags'), ['tag', '-l'])).stdout.trim().split('\n');
      expect(tags).toEqual(['light', 'v1.0']);
      expect((await gitv(v, path.join(work, 'tags'), ['cat-file', '-t', 'v1.0'])).stdout.trim()).toBe('tag');
    });

    it('refuses non-fast-forward pushes, with or without --force, and --atomic moves nothing', async () => {
      const a = path.join(work, 'empty');
      const before = (await lsRemote(v, work, url)).get('refs/heads/main');
      await gitv(v, a, ['reset', '-q', '--hard', 'HEAD~1']);
      await commitFiles(a, { 'rewrite.txt': 'x\n' }, 'rewrite', v);
      const plain = await gitv(v, a, ['push', 'origin', 'main'], true);
      expect(plain.code).not.toBe(0);
      const forced = await gitv(v, a, ['push', '--force', 'origin', 'main'], true);
      expect(forced.code).not.toBe(0);
      expect(forced.stderr).toContain('non-fast-forward');
      const atomic = await gitv(v, a, ['push', '--atomic', 'origin', '+main:main', 'main:refs/heads/atomic-new'], true);
      expect(atomic.code).not.toBe(0);
      const refs = await lsRemote(v, work, url);
      expect(refs.get('refs/heads/main')).toBe(before);
      expect(refs.has('refs/heads/atomic-new')).toBe(false);
    });

    it('allows --force when the repository config allows it', async () => {
      const a = path.join(work, 'empty');
      await run('git', ['config', '--file', path.join(gitdir, 'config'), 'receive.denyNonFastForwards', 'false']);
      await gitv(v, a, ['push', '--force', 'origin', 'main']);
      const head = (await gitv(v, a, ['rev-parse', 'HEAD'])).stdout.trim();
      expect((await lsRemote(v, work, url)).get('refs/heads/main')).toBe(head);
      await run('git', ['config', '--file', path.join(gitdir, 'config'), '--unset', 'receive.denyNonFastForwards']);
    });

    it('shows pre-receive refusals as remote: lines and moves no ref', async () => {
      const a = path.join(work, 'empty');
      hook = async (i) =>
        i.updates.some((u) => u.ref === 'refs/heads/blocked')
          ? { ok: false, messages: ['dns/zones/home.arpa.zone:3: bad record', 'push refused'] }
          : { ok: true };
      try {
        await commitFiles(a, { 'blocked.txt': 'b\n' }, 'blocked', v);
        const r = await gitv(v, a, ['push', 'origin', 'HEAD:refs/heads/blocked'], true);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('remote: dns/zones/home.arpa.zone:3: bad record');
        expect(r.stderr).toContain('remote: push refused');
        expect(r.stderr).toContain('pre-receive hook declined');
        expect((await lsRemote(v, work, url)).has('refs/heads/blocked')).toBe(false);
        // A hook that throws refuses the push too, and says why.
        hook = async () => {
          throw new Error('validator crashed');
        };
        const t = await gitv(v, a, ['push', 'origin', 'HEAD:refs/heads/throws'], true);
        expect(t.code).not.toBe(0);
        expect(t.stderr).toContain('remote: pre-receive hook failed: validator crashed');
        expect((await lsRemote(v, work, url)).has('refs/heads/throws')).toBe(false);
        // The hook can read pushed content.
        let seen: string | null = null;
        hook = async (i) => {
          const f = await i.readFile(i.updates[0].newOid, 'blocked.txt');
          seen = f ? Buffer.from(f).toString() : null;
          return { ok: true };
        };
        await gitv(v, a, ['push', 'origin', 'HEAD:refs/heads/allowed']);
        expect(seen).toBe('b\n');
      } finally {
        hook = async () => ({ ok: true });
      }
    });

    it('leaves a repository that git fsck --full --strict accepts', async () => {
      const r = await run('git', ['--git-dir', gitdir, 'fsck', '--full', '--strict']);
      expect(r.stderr).not.toMatch(/error|missing|broken/i);
      expect(r.code).toBe(0);
      const packs = await readdir(path.join(gitdir, 'objects', 'pack'));
      expect(packs.filter((p) => p.endsWith('.pack')).length).toBe(packs.filter((p) => p.endsWith('.idx')).length);
      expect(server.errors).toEqual([]);
    });
  });
}

describe('dulwich (second independent client)', () => {
  it('clones and pushes', async () => {
    await createRepo(server.root, 'dul');
    const url = `${server.base}/dul.git`;
    const work = path.join(server.tmp, 'dul');
    await mkdir(work, { recursive: true });
    // Seed with git, then clone and push with dulwich.
    await gitv(2, work, ['clone', url, 'seed']);
    await commitFiles(path.join(work, 'seed'), { 'a.txt': 'a\n' }, 'seed', 2);
    await gitv(2, path.join(work, 'seed'), ['push', 'origin', 'main']);
    const py = `
import sys
from dulwich import porcelain
url, target = sys.argv[1], sys.argv[2]
r = porcelain.clone(url, target)
with open(target + '/b.txt', 'w') as f:
    f.write('from dulwich\\n')
porcelain.add(r, [target + '/b.txt'])
porcelain.commit(r, message=b'dulwich commit', author=b'D <d@example.invalid>', committer=b'D <d@example.invalid>')
porcelain.push(r, url, b'refs/heads/main')
print(r.head().decode())
`;
    const res = await run('/usr/bin/python3', ['-c', py, url, path.join(work, 'dclone')], { cwd: work });
    expect(res.stderr).not.toMatch(/Traceback/);
    expect(res.code).toBe(0);
    const pushed = res.stdout.trim().split('\n').pop();
    const refs = await lsRemote(2, work, url);
    expect(refs.get('refs/heads/main')).toBe(pushed);
    const fsck = await run('git', ['--git-dir', repoPath(server.root, 'dul'), 'fsck', '--full', '--strict']);
    expect(fsck.code).toBe(0);
  });
});
