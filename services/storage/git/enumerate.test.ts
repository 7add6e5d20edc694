// Object enumeration and pack writing against a repository built with isomorphic-git
// (no git binary): what a fetch sends, where a shallow boundary falls, and that our
// packs index and read back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as git from 'isomorphic-git';
import { enumerateObjects } from './enumerate.ts';
import { openStore, readRaw } from './objects.ts';
import { writePack } from './pack-writer.ts';
import { createRepo } from './repos.ts';

let tmp: string;
let gitdir: string;
const commits: string[] = [];

async function commitWith(files: Record<string, string>, parent: string[]): Promise<string> {
  const entries = [];
  for (const [name, content] of Object.entries(files)) {
    const oid = await git.writeBlob({ fs, gitdir, blob: Buffer.from(content) });
    entries.push({ mode: '100644', path: name, oid, type: 'blob' as const });
  }
  const sub = await git.writeTree({ fs, gitdir, tree: entries });
  const tree = await git.writeTree({ fs, gitdir, tree: [{ mode: '040000', path: 'dir', oid: sub, type: 'tree' }] });
  const who = { name: 'T', email: 't@e', timestamp: 1700000000 + commits.length, timezoneOffset: 0 };
  return git.writeCommit({ fs, gitdir, commit: { tree, parent, author: who, committer: who, message: `c${commits.length}\n` } });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'kith-enum-'));
  gitdir = await createRepo(tmp, 'e');
  let parent: string[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await commitWith({ 'a.txt': 'same\n', [`f${i}.txt`]: `${i}\n` }, parent);
    commits.push(c);
    parent = [c];
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('enumerateObjects', () => {
  it('sends everything reachable for a clone', async () => {
    const r = await enumerateObjects(openStore(gitdir), { wants: [commits[3]], commonHaves: [], clientShallows: [], depth: 0 });
    // 4 commits, 4 root trees, 4 dir trees, a.txt once, f0..f3
    expect(r.oids.length).toBe(4 + 4 + 4 + 1 + 4);
    expect(new Set(r.oids).size).toBe(r.oids.length);
  });

  it('sends only what the client lacks', async () => {
    const r = await enumerateObjects(openStore(gitdir), { wants: [commits[3]], commonHaves: [commits[2]], clientShallows: [], depth: 0 });
    expect(r.oids).toHaveLength(4); // commit, root tree, dir tree, f3.txt
    expect(r.oids[0]).toBe(commits[3]);
  });

  it('cuts at --depth and names the shallow boundary', async () => {
    const r = await enumerateObjects(openStore(gitdir), { wants: [commits[3]], commonHaves: [], clientShallows: [], depth: 2 });
    expect(r.shallow).toEqual([commits[2]]);
    const types = await Promise.all(r.oids.map(async (o) => (await readRaw(openStore(gitdir), o)).type));
    expect(types.filter((t) => t === 'commit')).toHaveLength(2);
  });

  it('unshallows when deepening a shallow client', async () => {
    const r = await enumerateObjects(openStore(gitdir), {
      wants: [commits[3]],
      commonHaves: [commits[3]],
      clientShallows: [commits[3]],
      depth: 1,
      relative: true,
    });
    expect(r.unshallow).toEqual([commits[3]]);
    expect(r.shallow).toEqual([commits[2]]);
    expect(r.oids).toContain(commits[2]);
    expect(r.oids).not.toContain(commits[3]);
  });
});

describe('enumerateObjects over merges', () => {
  it('stops at history the client has even when reached around its tip', async () => {
    // y branches from commits[1]; m merges commits[3] and y. The client has commits[3].
    const y = await commitWith({ 'a.txt': 'same\n', 'y.txt': 'y\n' }, [commits[1]]);
    const m = await commitWith({ 'a.txt': 'same\n', 'm.txt': 'm\n' }, [commits[3], y]);
    const r = await enumerateObjects(openStore(gitdir), { wants: [m], commonHaves: [commits[3]], clientShallows: [], depth: 0 });
    const commitsSent = [];
    for (const o of r.oids) if ((await readRaw(openStore(gitdir), o)).type === 'commit') commitsSent.push(o);
    expect(commitsSent.sort()).toEqual([m, y].sort());
    expect(r.oids).not.toContain(commits[0]);
  });
});

describe('writePack', () => {
  it('writes a pack that isomorphic-git indexes and reads back', async () => {
    const s = openStore(gitdir);
    const { oids } = await enumerateObjects(s, { wants: [commits[3]], commonHaves: [], clientShallows: [], depth: 0 });
    const chunks: Buffer[] = [];
    for await (const c of writePack(s, oids)) chunks.push(c);
    const other = await createRepo(tmp, 'copy');
    await mkdir(path.join(other, 'objects', 'pack'), { recursive: true });
    await writeFile(path.join(other, 'objects', 'pack', 'pack-test.pack'), Buffer.concat(chunks));
    const idx = await git.indexPack({ fs, dir: other, gitdir: other, filepath: 'objects/pack/pack-test.pack' });
    expect(new Set(idx.oids)).toEqual(new Set(oids));
    const c = await git.readCommit({ fs, gitdir: other, oid: commits[3] });
    expect(c.commit.message).toBe('c3\n');
  });
});
