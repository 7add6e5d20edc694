import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openStore, type HistoryEntry, type Store } from './store.ts';
import { ConflictError, LimitError, NotFoundError, PathConflictError, PathError } from './errors.ts';

const dec = new TextDecoder();
let tmp: string;
let store: Store;
let clock: number;

beforeEach(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'kith-store-'));
  clock = Date.UTC(2026, 0, 1);
  store = await openStore({ dir: path.join(tmp, 'data.git'), create: true, now: () => (clock += 1000), pollMs: 0 });
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const fsck = (dir: string) => execFileSync('git', ['-C', dir, 'fsck', '--full', '--strict', '--no-dangling'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('store', () => {
  it('refuses to open a missing repository unless asked to create it', async () => {
    await expect(openStore({ dir: path.join(tmp, 'nope.git') })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('writes, reads, lists, deletes, and keeps history', async () => {
    expect(await store.head()).toBeUndefined();
    expect(await store.read('a.txt')).toBeUndefined();
    const w1 = await store.write('a.txt', 'one', { message: 'first' });
    const w2 = await store.write('dir/sub/b.txt', new Uint8Array([1, 2, 3]));
    const w3 = await store.write('a.txt', 'two');
    expect(w1.changed && w2.changed && w3.changed).toBe(true);
    expect(await store.head()).toBe(w3.commit);
    const r = await store.read('a.txt');
    expect(dec.decode(r!.content)).toBe('two');
    expect(r!.commit).toBe(w3.commit);
    expect(r!.blob).toBe(w3.blobs['a.txt']);
    expect([...(await store.read('dir/sub/b.txt'))!.content]).toEqual([1, 2, 3]);
    expect(await store.read('dir')).toBeUndefined(); // a folder is not a file
    expect(dec.decode((await store.read('a.txt', { at: w1.commit }))!.content)).toBe('one');
    expect(await store.list('', { at: w1.commit })).toHaveLength(1);
    await expect(store.read('a.txt', { at: 'e'.repeat(40) })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.read('a.txt', { at: 'HEAD' })).rejects.toThrow(/40 hex/);

    expect((await store.list()).map((e) => e.path)).toEqual(['a.txt', 'dir/sub/b.txt']);
    expect(await store.list('dir/', { recursive: false })).toEqual([{ path: 'dir/sub', blob: expect.any(String), mode: '040000', type: 'tree' }]);
    expect(await store.list('nothing')).toEqual([]);

    // Writing the same content again makes no commit.
    const same = await store.write('a.txt', 'two');
    expect(same).toMatchObject({ commit: w3.commit, changed: false });

    const d = await store.delete('dir/sub/b.txt');
    expect(await store.read('dir/sub/b.txt')).toBeUndefined();
    expect(await store.list()).toEqual([{ path: 'a.txt', blob: w3.blobs['a.txt'], mode: '100644', type: 'blob' }]);
    await expect(store.delete('dir/sub/b.txt')).rejects.toBeInstanceOf(NotFoundError);

    const h = await store.history();
    expect(h.map((e) => e.message)).toEqual(['delete dir/sub/b.txt', 'write a.txt', 'write dir/sub/b.txt', 'first']);
    expect(h.map((e) => e.commit)).toEqual([d.commit, w3.commit, w2.commit, w1.commit]);
    expect(h[0].changes).toEqual([{ path: 'dir/sub/b.txt', type: 'delete', blob: w2.blobs['dir/sub/b.txt'] }]);
    expect(h[1].changes).toEqual([{ path: 'a.txt', type: 'modify', blob: w3.blobs['a.txt'] }]);
    expect(h[3]).toMatchObject({ parents: [], author: { name: 'kith', email: 'kith@localhost' }, time: '2026-01-01T00:00:01.000Z' });

    const ha = await store.history('a.txt', { limit: 10 });
    expect(ha.map((e) => e.commit)).toEqual([w3.commit, w1.commit]);
    expect(ha[1].changes).toEqual([{ path: 'a.txt', type: 'add', blob: w1.blobs['a.txt'] }]);
    expect((await store.history('dir')).map((e) => e.commit)).toEqual([d.commit, w2.commit]);
    expect(await store.history(undefined, { limit: 1 })).toHaveLength(1);
    fsck(store.dir);
  });

  it('writeMany makes one commit for several changes', async () => {
    await store.write('x/1', '1');
    const r = await store.writeMany([
      { path: 'x/1', content: null },
      { path: 'x/2', content: '2' },
      { path: 'y/3', content: '3' },
    ], { message: 'batch', author: { name: 'Ann <evil>', email: 'ann@example.org\n' } });
    expect((await store.list()).map((e) => e.path)).toEqual(['x/2', 'y/3']);
    const [last] = await store.history();
    expect(last).toMatchObject({ commit: r.commit, message: 'batch', author: { name: 'Ann evil', email: 'ann@example.org' } });
    expect(last.changes!.map((c) => `${c.type} ${c.path}`)).toEqual(['delete x/1', 'add x/2', 'add y/3']);
    await expect(store.writeMany([{ path: 'a', content: '1' }, { path: 'a', content: '2' }])).rejects.toBeInstanceOf(PathError);
    await expect(store.writeMany([{ path: 'a', content: '1' }, { path: 'a/b', content: '2' }])).rejects.toBeInstanceOf(PathConflictError);
    await expect(store.writeMany([])).rejects.toThrow(/nothing to write/);
    fsck(store.dir);
  });

  it('refuses file/folder clashes', async () => {
    await store.write('f', 'file');
    await store.write('d/x', 'x');
    await expect(store.write('f/child', 'x')).rejects.toThrow(/f: is a file, not a folder/);
    await expect(store.write('d', 'x')).rejects.toThrow(/d: is a folder/);
    await expect(store.delete('d')).rejects.toBeInstanceOf(PathConflictError);
  });

  it('compare-and-swap on the head and on the blob', async () => {
    await expect(store.write('a', '0', { expectedHead: 'f'.repeat(40) })).rejects.toBeInstanceOf(ConflictError);
    const w1 = await store.write('a', '1', { expectedHead: null });
    await expect(store.write('a', 'x', { expectedHead: null })).rejects.toMatchObject({ expected: null, actual: w1.commit });
    const w2 = await store.write('a', '2', { expectedHead: w1.commit });
    const err = await store.write('a', '3', { expectedHead: w1.commit }).catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ expected: w1.commit, actual: w2.commit, status: 409 });
    expect(err.toJSON()).toMatchObject({ error: 'conflict', expected: w1.commit, actual: w2.commit });
    await expect(store.write('b', 'new', { expectedBlob: w2.blobs.a })).rejects.toMatchObject({ expected: w2.blobs.a, actual: null });
    await store.write('b', 'new', { expectedBlob: null });
    await expect(store.write('b', 'again', { expectedBlob: null })).rejects.toBeInstanceOf(ConflictError);
    await store.delete('a', { expectedBlob: w2.blobs.a });
    expect(dec.decode((await store.read('b'))!.content)).toBe('new');
  });

  it('two concurrent writers with the same expectedHead: exactly one wins', async () => {
    const base = (await store.write('counter', '0')).commit;
    const other = await openStore({ dir: store.dir, pollMs: 0 }); // a second handle on the same repo
    const results = await Promise.allSettled([
      ...Array.from({ length: 5 }, (_, i) => store.write('counter', `a${i}`, { expectedHead: base })),
      ...Array.from({ length: 5 }, (_, i) => other.write('counter', `b${i}`, { expectedHead: base })),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(9);
    for (const l of lost) expect((l as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    expect((await store.history()).length).toBe(2);
  });

  it('concurrent writers without CAS are serialised: no lost update', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.write(`f/${i}`, String(i))));
    expect(await store.list('f')).toHaveLength(20);
    expect(await store.history(undefined, { limit: 100 })).toHaveLength(20);
    fsck(store.dir);
  });

  it('refuses hostile paths with a reason', async () => {
    const bad = ['', '/abs', 'a/../b', '..', './a', 'a//b', 'a/', '.git/config', 'x/.GIT/y', '.git. ', 'GIT~1/x', '.g\u200cit/x', '.gitmodules', 'a\\b', 'nul\u0000', 'line\nbreak', 'a/'.repeat(40) + 'b', 'x'.repeat(300), 'y/'.repeat(10) + 'z'.repeat(1100), '\ud800'];
    for (const p of bad) {
      await expect(store.write(p, 'x'), JSON.stringify(p)).rejects.toBeInstanceOf(PathError);
      await expect(store.read(p), JSON.stringify(p)).rejects.toBeInstanceOf(PathError);
    }
    await expect(store.write(123 as unknown as string, 'x')).rejects.toBeInstanceOf(PathError);
    await expect(store.list('../')).rejects.toBeInstanceOf(PathError);
    // Allowed: dots inside names, unicode, .gitignore
    for (const ok of ['a.b/c..d', 'événement.ics', '.gitignore', '...']) await store.write(ok, 'ok');
    expect(await store.list()).toHaveLength(4);
    fsck(store.dir);
  });

  it('enforces size limits, naming the limit', async () => {
    const small = await openStore({ dir: path.join(tmp, 'small.git'), create: true, limits: { maxFileBytes: 10, maxRepoBytes: 200_000 }, pollMs: 0 });
    await expect(small.write('a', 'x'.repeat(11))).rejects.toThrow(/maxFileBytes = 10/);
    await small.write('a', 'x'.repeat(10));
    const big = await openStore({ dir: small.dir, limits: { maxRepoBytes: 100 }, pollMs: 0 });
    const err = await big.write('b', 'y').catch((e) => e);
    expect(err).toBeInstanceOf(LimitError);
    expect(err.message).toMatch(/maxRepoBytes = 100 /);
    await expect(store.write('m', 'x', { message: 'x'.repeat(5000) })).rejects.toThrow(/maxMessageBytes/);
  });

  it('notifies watchers of every new commit, including ones made by others', async () => {
    const seen: HistoryEntry[] = [];
    const polled = await openStore({ dir: store.dir, pollMs: 20 });
    const unsubscribe = polled.watch((e) => seen.push(e));
    await new Promise((r) => setTimeout(r, 30));
    const a = await store.write('w/a', 'a');
    const b = await store.write('w/b', 'b');
    // A commit by real git, outside this process.
    const env = { ...process.env, GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@y', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@y' };
    const tree = execFileSync('git', ['-C', store.dir, 'rev-parse', `${b.commit}^{tree}`], { encoding: 'utf8' }).trim();
    const c = execFileSync('git', ['-C', store.dir, 'commit-tree', tree, '-p', b.commit, '-m', 'by git'], { encoding: 'utf8', env }).trim();
    execFileSync('git', ['-C', store.dir, 'update-ref', 'refs/heads/main', c]);
    const deadline = Date.now() + 15_000; // waited for; generous for a loaded machine
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    unsubscribe();
    expect(seen.map((e) => e.commit)).toEqual([a.commit, b.commit, c]);
    expect(seen[0].changes).toEqual([{ path: 'w/a', type: 'add', blob: a.blobs['w/a'] }]);
    expect(seen[2].message).toBe('by git');
    const since = await store.commitsSince(a.commit);
    expect(since.commits.map((e) => e.commit)).toEqual([b.commit, c]);
    expect(since.complete).toBe(true);
  });

  it('breaks a lock left by a dead writer, waits for a live one', async () => {
    await store.write('a', '1');
    const lock = path.join(store.dir, 'refs/heads/main.lock');
    writeFileSync(lock, 'kith 999999 deadbeef\n'); // no such pid
    await store.write('a', '2');
    expect(existsSync(lock)).toBe(false);
    writeFileSync(lock, `kith ${process.ppid} other\n`); // alive: another live process
    const s = await openStore({ dir: store.dir, lock: { timeoutMs: 100 }, pollMs: 0 });
    await expect(s.write('a', '3')).rejects.toMatchObject({ code: 'locked', status: 503 });
    rmSync(lock);
  });
});
