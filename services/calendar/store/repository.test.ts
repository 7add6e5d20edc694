import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../platform/log.ts';
import { memoryStoreClient } from './memory-client.ts';
import { openCacheText, Repository, itemPath, metaPath, sealCacheText } from './repository.ts';

const log = createLogger({ service: 'calendar', level: 'error' });
const open = async (client: ReturnType<typeof memoryStoreClient>) => {
  const r = new Repository({ client, dataDir: mkdtempSync(path.join(tmpdir(), 'kith-cal-repo-')), log, summarize: () => ({ uid: 'u' }) });
  await r.open();
  return r;
};
const isM = (x: unknown): x is { changes: unknown[] } => typeof x === 'object' && x !== null && 'changes' in x;

describe('the calendar index over the store', () => {
  it('a cached text left empty or torn by a power cut is not used: the store is read again', async () => {
    for (const text of ['', 'BEGIN:VCALENDAR\r\n', 'é\n\u0000x']) expect(openCacheText(sealCacheText(text))).toBe(text);
    const good = sealCacheText('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n');
    for (const bad of ['', good.slice(0, 40), good.slice(0, -3), good.replace('END', 'end'), 'BEGIN:VCALENDAR\r\n', good.replace('kith-text-sha256 ', 'x')]) expect(openCacheText(bad), JSON.stringify(bad)).toBeUndefined();

    const client = memoryStoreClient();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'kith-cal-repo-'));
    const a = new Repository({ client, dataDir, log, summarize: () => ({ uid: 'u' }) });
    await a.open();
    await a.mutate(() => ({ changes: [{ path: metaPath('kith', 'c'), content: JSON.stringify({ type: 'calendar', props: {} }) }], message: 'mk', result: undefined }), isM as never);
    await a.mutate(() => ({ changes: [{ path: itemPath('kith', 'c', 'one.ics'), content: 'the text' }], message: 'one', result: undefined }), isM as never);
    const blob = a.collections.get('kith/c')!.items.get('one.ics')!.blob;
    await a.stop();
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    const files = walk(dataDir).filter((f) => f.endsWith(blob));
    expect(files.length, 'the text is cached in the data folder').toBe(1);
    expect(readFileSync(files[0]!, 'utf8')).toBe(sealCacheText('the text'));
    // A restart after a power cut: the cache file is there, with nothing in it.
    writeFileSync(files[0]!, '');
    const c = new Repository({ client, dataDir, log, summarize: () => ({ uid: 'u' }) });
    await c.open();
    expect(await c.textAt(itemPath('kith', 'c', 'one.ics'), blob)).toBe('the text');
    await c.stop();
  });

  it('sync tokens from before a restart still give the changes since (log, then listing diff)', async () => {
    const client = memoryStoreClient();
    const a = await open(client);
    const put = (repo: Repository, name: string, content: string | null) => repo.mutate(() => ({ changes: [{ path: itemPath('kith', 'c', name), content }], message: name, result: undefined }), isM as never);
    await a.mutate(() => ({ changes: [{ path: metaPath('kith', 'c'), content: JSON.stringify({ type: 'calendar', props: {} }) }], message: 'mk', result: undefined }), isM as never);
    await put(a, 'one.ics', 'x1');
    const token = a.head!;
    await put(a, 'two.ics', 'x2');
    await put(a, 'one.ics', null);
    expect([...(await a.changedSince(token, 'kith/c/'))!].sort()).toEqual(['kith/c/items/one.ics', 'kith/c/items/two.ics']);
    await a.stop();
    // "Restart": a new index over the same store; the token is older than its log.
    const b = await open(client);
    expect(b.collections.get('kith/c')!.items.size).toBe(1);
    expect([...(await b.changedSince(token, 'kith/c/'))!].sort()).toEqual(['kith/c/items/one.ics', 'kith/c/items/two.ics']);
    expect(await b.changedSince('f'.repeat(40), 'kith/c/')).toBeUndefined();
    expect(await b.changedSince(b.head!, 'kith/c/')).toEqual(new Set());
    await b.stop();
  });

  it('a write conditional on a head someone else moved is retried after catching up', async () => {
    const client = memoryStoreClient();
    const a = await open(client);
    await a.mutate(() => ({ changes: [{ path: metaPath('kith', 'c'), content: JSON.stringify({ type: 'calendar', props: {} }) }], message: 'mk', result: undefined }), isM as never);
    // Someone else commits (a restore, a git push).
    await client.batch('calendar', [{ path: itemPath('kith', 'c', 'other.ics'), content: 'o' }], { message: 'other' });
    await a.mutate(() => ({ changes: [{ path: itemPath('kith', 'c', 'mine.ics'), content: 'm' }], message: 'mine', result: undefined }), isM as never);
    expect([...a.collections.get('kith/c')!.items.keys()].sort()).toEqual(['mine.ics', 'other.ics']);
    expect(a.head).toBe(client.commits[client.commits.length - 1]!.commit);
    await a.stop();
  });

  it('an index opened on an empty store picks up commits made before its watch reached the store', async () => {
    const client = memoryStoreClient();
    const a = await open(client);
    expect(a.head).toBeUndefined();
    // A bulk load (the bench, a restore of a whole calendar) right after the start.
    await client.batch('calendar', [{ path: metaPath('kith', 'c'), content: JSON.stringify({ type: 'calendar', props: {} }) }], { message: 'mk' });
    await client.batch('calendar', [{ path: itemPath('kith', 'c', 'one.ics'), content: 'x1' }, { path: itemPath('kith', 'c', 'two.ics'), content: 'x2' }], { message: 'load' });
    a.startWatching();
    for (let i = 0; i < 200 && (a.collections.get('kith/c')?.items.size ?? 0) < 2; i++) await new Promise((r) => setTimeout(r, 25));
    expect([...a.collections.get('kith/c')!.items.keys()].sort()).toEqual(['one.ics', 'two.ics']);
    expect(a.head).toBe(client.commits[1]!.commit);
    await a.stop();
  });
});
