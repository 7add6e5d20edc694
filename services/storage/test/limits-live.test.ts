/**
 * storage.yaml's limits, changed by a push to config.git, apply to the very next request
 * (issue 11, item 4), with the real git client against the storage service in process:
 * - maxPushBytes lowered to 1 MiB: the next 3 MB push is refused on git's own channels, so
 *   `git push` prints `remote: kith: ... over the limit maxPushBytes = 1048576 bytes
 *   (storage/storage.yaml: maxPushBytes)` (not "RPC failed; HTTP 413"), and a 3 MB store
 *   PUT is 413 naming the same limit;
 * - maxRepoBytes, read nowhere before, refuses a push and a store write that would pass it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceHandle } from '../../../platform/runner.ts';
import { createStoreClient, StoreClientError, type StoreClient } from '../../../platform/store-client.ts';
import type { StorageConfig } from '../config/schema.ts';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

let base: string;
let handle: ServiceHandle<StorageConfig>;
let remote: string;
let owner: StoreClient;

async function git(cwd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return run('git', ['-c', 'user.name=Owner', '-c', 'user.email=o@home.arpa', '-c', 'init.defaultBranch=main', ...args], { cwd });
}
async function ok(cwd: string, args: string[]): Promise<void> {
  const r = await git(cwd, args);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

/** Change storage.yaml in the clone of config.git and push it. */
async function setLimits(clone: string, limits: Record<string, number>): Promise<void> {
  const file = path.join(clone, 'storage/storage.yaml');
  let text = readFileSync(file, 'utf8');
  for (const [k, v] of Object.entries(limits)) text = text.replace(new RegExp(`^${k}: .*$`, 'm'), `${k}: ${v}`);
  writeFileSync(file, text);
  await ok(clone, ['commit', '-qam', `limits ${JSON.stringify(limits)}`]);
  await ok(clone, ['push', '-q', 'origin', 'main']);
}

beforeAll(async () => {
  base = tempDir('kith-limits-');
  const configRoot = path.join(base, 'config');
  await seedStorageConfig(configRoot);
  const s = await startStorageService({ configRoot, dataDir: path.join(base, 'data') });
  ({ handle, remote } = s);
  owner = createStoreClient({ url: s.url, token: s.token });
  await owner.createRepo('big');
  await owner.createRepo('notes');
  await ok(base, ['clone', '-q', remote, path.join(base, 'config-clone')]);
});
afterAll(async () => {
  await handle?.stop();
});

describe('limits from config.git, live', () => {
  it('a lowered maxPushBytes refuses the very next push on git\'s own channel, naming the limit and its file', async () => {
    await setLimits(path.join(base, 'config-clone'), { maxPushBytes: 1048576 });
    const work = path.join(base, 'big');
    await ok(base, ['init', '-q', work]);
    writeFileSync(path.join(work, 'blob.bin'), randomBytes(3 << 20));
    await ok(work, ['add', '.']);
    await ok(work, ['commit', '-qm', '3 MB']);
    const push = await git(work, ['push', remote.replace('/config.git', '/big.git'), 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: kith: this push is \d+ bytes, over the limit maxPushBytes = 1048576 bytes \(storage\/storage\.yaml: maxPushBytes\)/);
    expect(push.stderr).toMatch(/\[remote rejected\] main -> main \(push too large\)/);
    expect(push.stderr).not.toMatch(/RPC failed|unexpected disconnect/);
    // The store API has the same limit, at once.
    const put = await owner.write('notes', 'big.bin', randomBytes(3 << 20)).then(() => undefined, (e: unknown) => e as StoreClientError);
    expect([put?.status, put?.code]).toEqual([413, 'too-large']);
    expect(put?.message).toMatch(/over the limit storage\/storage\.yaml: maxPushBytes = 1048576 bytes/);
  });

  it('maxRepoBytes refuses a push and a store write that would grow a repository past it', async () => {
    await setLimits(path.join(base, 'config-clone'), { maxPushBytes: 67108864, maxRepoBytes: 500000 });
    const work = path.join(base, 'big');
    const push = await git(work, ['push', remote.replace('/config.git', '/big.git'), 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: kith: .*over the limit maxRepoBytes \(storage\/storage\.yaml: maxRepoBytes\) = 500000 bytes/);
    const put = await owner.write('notes', 'big.bin', randomBytes(600_000)).then(() => undefined, (e: unknown) => e as StoreClientError);
    expect([put?.status, put?.details.limit]).toEqual([413, 'maxRepoBytes']);
    // Raised again: the same push goes through.
    await setLimits(path.join(base, 'config-clone'), { maxRepoBytes: 268435456 });
    await ok(work, ['push', '-q', remote.replace('/config.git', '/big.git'), 'main']);
  });
});
