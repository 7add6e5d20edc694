/**
 * Secrets at rest (issue 11, item 14, storage's part): what storage writes that can hold a
 * secret — the published config folder (TSIG keys live there), config.git's packs and
 * objects, every repository, its own data folder — is 0600 files in 0700 folders, whatever
 * the umask, and what an older version left readable is made private at start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceHandle } from '../../../platform/runner.ts';
import { createStoreClient } from '../../../platform/store-client.ts';
import type { StorageConfig } from '../config/schema.ts';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

const base = tempDir('kith-modes-');
const configRoot = path.join(base, 'config');
const dataDir = path.join(base, 'data');
let handle: ServiceHandle<StorageConfig> | undefined;

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
function walk(dir: string, out: string[] = []): string[] {
  out.push(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}
/** Every entry under `dir` whose mode is not 0600 (files) / 0700 (folders). */
const loose = (dir: string) => walk(dir).filter((p) => mode(p) !== (statSync(p).isDirectory() ? '700' : '600')).map((p) => `${path.relative(base, p)} ${mode(p)}`);

beforeAll(async () => {
  process.umask(0o022);
  await seedStorageConfig(configRoot);
  // What an older version left: a readable key in the published folder.
  mkdirSync(path.join(configRoot, 'extra'), { recursive: true });
  writeFileSync(path.join(configRoot, 'extra/old.key'), 'secret: c2VjcmV0\n');
  chmodSync(path.join(configRoot, 'extra/old.key'), 0o644);
  ({ handle } = await startStorageService({ configRoot, dataDir }));
});
afterAll(async () => {
  await handle?.stop();
});

describe('storage keeps secrets private', () => {
  it('0600 files and 0700 folders for config.git, its packs and objects, the published copies and its data folder', async () => {
    const token = readFileSync(path.join(dataDir, 'access-token'), 'utf8').trim();
    const remote = handle!.endpoints.git!.replace('://', `://kith:${token}@`);
    const clone = path.join(base, 'clone');
    expect((await run('git', ['clone', '-q', remote, clone])).code).toBe(0);
    mkdirSync(path.join(clone, 'extra/keys'), { recursive: true });
    writeFileSync(path.join(clone, 'extra/keys/tsig.key'), 'secret: bmV3IHNlY3JldA==\n');
    await run('git', ['add', '.'], { cwd: clone });
    await run('git', ['commit', '-qm', 'a secret'], { cwd: clone });
    const push = await run('git', ['push', 'origin', 'main'], { cwd: clone });
    expect(push.code, push.stderr).toBe(0);
    // A loose object too: a write through the store API.
    await createStoreClient({ url: handle!.endpoints.store!.replace(/\/store\/$/, ''), token }).write('config', 'extra/keys/api.key', 'secret: YXBp\n');
    expect(readdirSync(path.join(dataDir, 'repos/config.git/objects/pack')).some((f) => f.endsWith('.pack'))).toBe(true);
    expect(loose(dataDir)).toEqual([]);
    expect(loose(configRoot)).toEqual([]);
    expect(readFileSync(path.join(configRoot, 'extra/keys/tsig.key'), 'utf8')).toMatch(/bmV3/);
  });
});
