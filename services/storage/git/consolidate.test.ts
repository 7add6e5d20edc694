/**
 * Pack consolidation (issue 11, item 8) checked with the real git: ten pushes (each its own
 * pack, with OFS deltas inside) and store writes (loose objects) become one pack; the
 * repository holds exactly the same objects, `git fsck --full --strict` is clean, and a
 * clone over HTTP has the whole history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRepo } from './repos.ts';
import { consolidate, packState } from './consolidate.ts';
import { openStore } from '../store/store.ts';
import { gitv, startServer, type TestServer } from '../test/helpers.ts';

let server: TestServer;
let gitdir: string;
const objects = (dir: string) => execFileSync('git', ['--git-dir', dir, 'cat-file', '--batch-all-objects', '--batch-check'], { encoding: 'utf8' }).split('\n').sort().join('\n');

beforeAll(async () => {
  server = await startServer();
  gitdir = await createRepo(server.root, 'notes');
});
afterAll(async () => {
  await server?.close();
});

describe('pack consolidation', () => {
  it('merges every pack and loose object into one, losing nothing', async () => {
    const work = path.join(server.tmp, 'work');
    await gitv(2, server.tmp, ['init', '-q', work]);
    const big = Array.from({ length: 2000 }, (_, i) => `line ${i} of a file that changes a little each time`).join('\n');
    for (let push = 0; push < 10; push++) {
      for (let c = 0; c < 2; c++) {
        writeFileSync(path.join(work, 'notes.txt'), `${big}\nchange ${push}.${c}\n`);
        await gitv(2, work, ['add', '.']);
        await gitv(2, work, ['commit', '-qm', `change ${push}.${c}`]);
      }
      await gitv(2, work, ['push', '-q', `${server.base}/notes.git`, 'main']);
    }
    const store = await openStore({ dir: gitdir, branch: 'data' });
    for (let i = 0; i < 20; i++) await store.write(`items/${i}.txt`, `item ${i}\n`);
    const before = await packState(gitdir);
    expect(before.packs).toBe(10);
    expect(before.loose).toBeGreaterThan(40);
    const all = objects(gitdir);

    const r = await consolidate(gitdir, { minPacks: 8 });
    console.log(`consolidated ${r!.packsBefore} packs and ${r!.looseBefore} loose objects into one pack of ${r!.objects} objects (${r!.bytes} bytes) in ${r!.ms.toFixed(0)} ms`);
    expect(await packState(gitdir)).toEqual({ packs: 1, loose: 0 });
    expect(objects(gitdir)).toBe(all);
    execFileSync('git', ['--git-dir', gitdir, 'fsck', '--full', '--strict'], { stdio: 'pipe' });
    const verify = execFileSync('git', ['verify-pack', '-v', ...readdirSync(path.join(gitdir, 'objects/pack')).filter((f) => f.endsWith('.idx')).map((f) => path.join(gitdir, 'objects/pack', f))], { encoding: 'utf8' });
    expect(verify).toMatch(/chain length = 1: \d+ objects?/); // the pushed deltas are still deltas

    const clone = path.join(server.tmp, 'clone');
    await gitv(2, server.tmp, ['clone', '-q', `${server.base}/notes.git`, clone]);
    expect((await gitv(2, clone, ['log', '--format=%s'])).stdout.trim().split('\n')).toHaveLength(20);
    expect((await store.read('items/19.txt'))!.content).toEqual(new TextEncoder().encode('item 19\n'));
    // Nothing to do now: under the thresholds.
    expect(await consolidate(gitdir)).toBeUndefined();
  });
});
