/**
 * platform/store-client.ts against the real store HTTP handler over a real socket: read,
 * write and delete with both compare-and-swaps, list, history, one long-poll and the
 * changes stream, repositories, and the errors a caller branches on (conflict, invalid,
 * forbidden). (Here rather than beside the client: platform/ imports no service.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createStoreClient, StoreClientError, type StoreClient } from '../../../platform/store-client.ts';
import { createStoreHttpHandler, type StoreHttpHandler } from '../store/http.ts';
import { openStore } from '../store/store.ts';
import { RefusedError } from '../store/errors.ts';

let tmp: string;
let server: http.Server;
let handler: StoreHttpHandler;
let owner: StoreClient;
let guest: StoreClient;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'kith-store-client-'));
  const root = path.join(tmp, 'repos');
  mkdirSync(root);
  await openStore({ dir: path.join(root, 'cal.git'), create: true });
  await openStore({ dir: path.join(root, 'checked.git'), create: true });
  handler = createStoreHttpHandler({
    root,
    readOnly: [],
    store: { pollMs: 100 },
    // A pre-commit hook like config.git's: refuses files that say "bad".
    storeOptions: (repo) => (repo === 'checked' ? { preCommit: async ({ dir, commit }) => {
      const s = await openStore({ dir, pollMs: 0 });
      for (const e of await s.list('', { at: commit })) {
        const f = await s.read(e.path, { at: commit });
        if (f && Buffer.from(f.content).toString().includes('bad')) throw new RefusedError([`${e.path}:1: says bad`]);
      }
    } } : undefined),
    authorize: (req, access) => {
      const auth = req.headers.authorization;
      if (auth === 'Bearer owner-token') return { author: { name: 'owner', email: 'owner@kith.local' } };
      if (auth === 'Bearer guest-token') return access.write || access.admin ? 'forbidden' : true;
      return false;
    },
  });
  server = http.createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  owner = createStoreClient({ url, token: 'owner-token' });
  guest = createStoreClient({ url, token: 'guest-token' });
});

afterAll(async () => {
  handler.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const caught = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as StoreClientError);

describe('the platform store client', () => {
  it('writes, reads, stats, lists, and keeps history', async () => {
    const w = await owner.write('cal', 'home/event 1.ics', 'BEGIN:VEVENT', { message: 'add event 1' });
    expect(w).toMatchObject({ changed: true, created: true, blob: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const r = await owner.read('cal', 'home/event 1.ics');
    expect([text(r!.content), r!.commit, r!.blob]).toEqual(['BEGIN:VEVENT', w.commit, w.blob]);
    expect(await owner.stat('cal', 'home/event 1.ics')).toEqual({ commit: w.commit, blob: w.blob });
    expect(await owner.read('cal', 'home/nope.ics')).toBeUndefined();
    expect(await owner.stat('cal', 'home/nope.ics')).toBeUndefined();
    const same = await owner.write('cal', 'home/event 1.ics', 'BEGIN:VEVENT');
    expect(same).toMatchObject({ changed: false, commit: w.commit });
    await owner.write('cal', 'work/b.ics', 'B');
    expect((await owner.list('cal')).entries.map((e) => e.path)).toEqual(['home/event 1.ics', 'work/b.ics']);
    expect((await owner.list('cal', 'home/', { recursive: false })).entries.map((e) => e.path)).toEqual(['home/event 1.ics']);
    expect((await owner.list('cal', '', { at: w.commit })).entries.map((e) => e.path)).toEqual(['home/event 1.ics']);
    const h = await owner.history('cal', 'home/event 1.ics');
    expect(h.map((e) => [e.message, e.author.name])).toEqual([['add event 1', 'owner']]);
    expect(text((await owner.read('cal', 'home/event 1.ics', { at: w.commit }))!.content)).toBe('BEGIN:VEVENT');
  });

  it('compare-and-swap on the head (ifMatch) and on the file (expectedBlob): 412 conflict with expected and actual', async () => {
    const a = await owner.read('cal', 'work/b.ics');
    const moved = await owner.write('cal', 'work/c.ics', 'C'); // another file: the head moves
    const stale = await caught(owner.write('cal', 'work/b.ics', 'B2', { ifMatch: a!.commit }));
    expect(stale).toBeInstanceOf(StoreClientError);
    expect([stale!.status, stale!.code, stale!.details]).toEqual([412, 'conflict', expect.objectContaining({ expected: a!.commit, actual: moved.commit })]);
    // The per-file swap still holds: b.ics is unchanged since it was read.
    const ok = await owner.write('cal', 'work/b.ics', 'B2', { expectedBlob: a!.blob });
    expect(ok.changed).toBe(true);
    const lost = await caught(owner.write('cal', 'work/b.ics', 'B3', { expectedBlob: a!.blob }));
    expect([lost!.status, lost!.code]).toEqual([412, 'conflict']);
    expect((await caught(owner.write('cal', 'work/b.ics', 'x', { expectedBlob: null })))!.code).toBe('conflict');
    const del = await owner.delete('cal', 'work/c.ics', { ifMatch: ok.commit, message: 'drop c' });
    expect(del.changed).toBe(true);
    expect(await owner.read('cal', 'work/c.ics')).toBeUndefined();
    expect((await caught(owner.delete('cal', 'work/c.ics')))!.status).toBe(404);
  });

  it('batch: many files (and deletions) as one commit, conditional on the head; the guest may not', async () => {
    const head = (await owner.list('cal')).commit!;
    const files = Array.from({ length: 40 }, (_, i) => ({ path: `batch/e${i}.ics`, content: `E${i}` }));
    const r = await owner.batch('cal', [...files, { path: 'work/b.ics', content: null }], { ifMatch: head, message: 'bulk load' });
    expect(r.changed).toBe(true);
    expect(Object.keys(r.blobs)).toHaveLength(40);
    expect(r.created).toHaveLength(40);
    const h = await owner.history('cal', undefined, { limit: 1 });
    expect([h[0]!.commit, h[0]!.parents, h[0]!.message]).toEqual([r.commit, [head], 'bulk load']);
    expect(Buffer.from((await owner.read('cal', 'batch/e39.ics'))!.content).toString()).toBe('E39');
    expect((await owner.read('cal', 'batch/e7.ics'))!.blob).toBe(r.blobs['batch/e7.ics']);
    expect(await owner.read('cal', 'work/b.ics')).toBeUndefined();
    const stale = await caught(owner.batch('cal', [{ path: 'batch/x.ics', content: 'x' }], { ifMatch: head }));
    expect([stale!.status, stale!.code]).toEqual([412, 'conflict']);
    expect((await caught(guest.batch('cal', [{ path: 'batch/x.ics', content: 'x' }])))!.status).toBe(403);
  });

  it('one long-poll, and the changes stream, see commits as they happen', async () => {
    const head = (await owner.history('cal', undefined, { limit: 1 }))[0]!.commit;
    expect(await owner.watch('cal', { since: head, timeoutS: 0.2 })).toBeUndefined();
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const c of owner.changes('cal', { since: head, signal: ac.signal })) {
        seen.push(c.message);
        if (seen.length === 2) ac.abort();
      }
    })();
    const poll = owner.watch('cal', { since: head, timeoutS: 10 });
    await owner.write('cal', 'x.ics', '1', { message: 'one' });
    await owner.write('cal', 'x.ics', '2', { message: 'two' });
    const p = await poll;
    expect(p!.commits[0]!.message).toBe('one');
    await reading;
    expect(seen).toEqual(['one', 'two']);
  });

  it('repositories: list, create, delete; refusals carry the store\'s code', async () => {
    expect(await owner.repos()).toEqual(['cal', 'checked']);
    expect(await owner.createRepo('notes')).toBe(true);
    expect(await owner.createRepo('notes')).toBe(false);
    expect(await owner.repos()).toContain('notes');
    await owner.deleteRepo('notes');
    expect(await owner.repos()).not.toContain('notes');
    expect((await caught(owner.deleteRepo('notes')))!.code).toBe('no-such-repo');
    expect((await caught(guest.write('cal', 'a', 'b')))!.status).toBe(403);
    expect((await caught(guest.repos()))!.code).toBe('forbidden');
    expect(text((await guest.read('cal', 'x.ics'))!.content)).toBe('2');
    expect((await caught(createStoreClient({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 'nobody' }).read('cal', 'x.ics')))!.status).toBe(401);
  });

  it('a pre-commit hook refusal is code invalid with its issues, and nothing changes', async () => {
    await owner.write('checked', 'ok.txt', 'fine');
    const bad = await caught(owner.write('checked', 'b.txt', 'this is bad'));
    expect([bad!.status, bad!.code, bad!.details.issues]).toEqual([422, 'invalid', ['b.txt:1: says bad']]);
    expect(await owner.read('checked', 'b.txt')).toBeUndefined();
  });
});
