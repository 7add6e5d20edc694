/**
 * A full disk (issue 11, item 10), on small tmpfs mounts the test makes (root; skipped
 * where it cannot mount), with the real git client against the storage service in process:
 * - a pack write that hits ENOSPC is named to the pusher (`remote:` line, unpack reason) and
 *   in the log, and nothing changes;
 * - a config push whose publishing hits ENOSPC is never reported ok: git shows it rejected
 *   with the cause, main stays where it was, the old config stays published;
 * - a head that could not be published (written under the ref while the disk was full)
 *   leaves storage unhealthy with the reason, and is published once space returns, with
 *   no request needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceHandle } from '../../../platform/runner.ts';
import type { StorageConfig } from '../config/schema.ts';
import { run, seedStorageConfig, startStorageService } from './helpers.ts';
import { tempDir } from '../../../test/platform/helpers.ts';

const base = tempDir('kith-disk-full-');
const configRoot = path.join(base, 'config');
const dataDir = path.join(base, 'data');
const mount = (dir: string, size: string) => {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]).status === 0;
};
const canMount = process.getuid?.() === 0 && mount(configRoot, '256k') && mount(dataDir, '4m');

let handle: ServiceHandle<StorageConfig> | undefined;
let remote: string;
const logs: string[] = [];

async function start(): Promise<void> {
  ({ handle, remote } = await startStorageService({ configRoot, dataDir, logs }));
}
const git = (cwd: string, args: string[]) => run('git', ['-c', 'user.name=Owner', '-c', 'user.email=o@home.arpa', '-c', 'init.defaultBranch=main', ...args], { cwd });
const plumb = (cwd: string, args: string[], input?: string) => execFileSync('git', args, { cwd, input, encoding: 'utf8' }).trim();
const health = async () => (await fetch(`${handle!.healthUrl}/healthz`)).json() as Promise<{ status: string; detail?: string }>;

describe.skipIf(!canMount)('a full disk', () => {
  beforeAll(async () => {
    await seedStorageConfig(configRoot);
    await start();
    const r = await git(base, ['clone', '-q', remote, path.join(base, 'clone')]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await handle?.stop();
    spawnSync('umount', [configRoot]);
    spawnSync('umount', [dataDir]);
  });

  it('names ENOSPC to the pusher and in the log when the pack does not fit; nothing changes', async () => {
    await fetch(handle!.endpoints.store! + 'big', { method: 'POST', headers: { authorization: `Bearer ${readFileSync(path.join(dataDir, 'access-token'), 'utf8').trim()}` } });
    const work = path.join(base, 'big');
    await git(base, ['init', '-q', work]);
    writeFileSync(path.join(work, 'blob.bin'), randomBytes(6 << 20));
    await git(work, ['add', '.']);
    await git(work, ['commit', '-qm', '6 MB on a 4 MB disk']);
    const push = await git(work, ['push', remote.replace('/config.git', '/big.git'), 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: kith: the server is out of disk space \(ENOSPC\) while storing the pack; nothing changed/);
    expect(push.stderr).toMatch(/unpack failed|unpacker error/);
    expect(logs.some((l) => /git request failed/.test(l) && /ENOSPC/.test(l))).toBe(true);
    expect((await git(work, ['ls-remote', remote.replace('/config.git', '/big.git')])).stdout).toBe('');
  });

  it('never reports ok for a config push it could not publish; main and the published config stay as they were', async () => {
    const clone = path.join(base, 'clone');
    const head = plumb(clone, ['rev-parse', 'HEAD']);
    mkdirSync(path.join(clone, 'extra'));
    writeFileSync(path.join(clone, 'extra/notes.txt'), 'x'.repeat(400_000)); // over the 256 KiB config disk
    await git(clone, ['add', '.']);
    await git(clone, ['commit', '-qm', 'too big for the config disk']);
    const push = await git(clone, ['push', 'origin', 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/remote: kith: this configuration could not be applied: the kith data disk is full \(ENOSPC\)/);
    expect(push.stderr).toMatch(/\[remote rejected\] main -> main \(not applied: the kith data disk is full \(ENOSPC\)\)/);
    expect((await git(clone, ['ls-remote', 'origin', 'refs/heads/main'])).stdout.split('\t')[0]).toBe(head);
    expect(logs.some((l) => /config push not applied/.test(l) && /ENOSPC/.test(l))).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(path.join(configRoot, 'extra'))).toBe(false);
    expect((await health()).status).toBe('ok');
    await git(clone, ['reset', '-q', '--hard', 'HEAD~1']);
  });

  it('publishes a head it could not publish once space returns, and is unhealthy until then', async () => {
    await handle!.stop();
    const bare = path.join(dataDir, 'repos', 'config.git');
    // A valid commit under the ref, while a filler takes the config disk's space.
    const parent = plumb(bare, ['rev-parse', 'refs/heads/main']);
    const blob = plumb(bare, ['hash-object', '-w', '--stdin'], 'hello\n');
    const extra = plumb(bare, ['mktree'], `100644 blob ${blob}\tnew.txt\n`);
    const tree = plumb(bare, ['mktree'], plumb(bare, ['ls-tree', parent]) + `\n040000 tree ${extra}\textra\n`);
    plumb(bare, ['update-ref', 'refs/heads/main', plumb(bare, ['-c', 'user.name=k', '-c', 'user.email=k@k', 'commit-tree', tree, '-p', parent, '-m', 'while the disk was full'])]);
    const filler = path.join(configRoot, 'filler');
    spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
    await start();
    let sick = await health();
    // Waited for, up to 15 s on a loaded machine.
    for (const end = Date.now() + 15_000; !/ENOSPC/.test(sick.detail ?? '') && Date.now() < end; await new Promise((r) => setTimeout(r, 20))) sick = await health();
    expect(sick.status).toBe('unhealthy');
    expect(sick.detail).toMatch(/ENOSPC|no space/i);
    rmSync(filler);
    const t0 = Date.now();
    while (Date.now() - t0 < 15_000 && !existsSync(path.join(configRoot, 'extra/new.txt'))) await new Promise((r) => setTimeout(r, 100));
    console.log(`published ${Date.now() - t0} ms after space returned`);
    expect(readFileSync(path.join(configRoot, 'extra/new.txt'), 'utf8')).toBe('hello\n');
    expect((await health()).status).toBe('ok');
  });
});
