import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { specRegistry } from '../../../platform/config/registry.ts';
import { treeValidator } from '../../../platform/config/validate-tree.ts';
import { ensureConfigRepo, publishCommit, validateCommit } from './config-repo.ts';

const gitc = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

describe('config.git', () => {
  it('is created from the seeded tree, validates commits, and publishes them', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'kith-configrepo-'));
    const work = path.join(base, 'config');
    const gitdir = path.join(base, 'config.git');
    mkdirSync(path.join(work, 'storage'), { recursive: true });
    writeFileSync(path.join(work, 'storage/storage.yaml'), 'createOnPush: false\n');
    const first = await ensureConfigRepo(gitdir, work);
    expect(first.created).toBe(true);
    expect(gitc(base, '--git-dir', gitdir, 'log', '--format=%s')).toBe('Initial configuration');
    gitc(base, '--git-dir', gitdir, 'fsck', '--full', '--strict');

    // A clone, a bad change and a good one, made by the real git client.
    const clone = path.join(base, 'clone');
    gitc(base, 'clone', '-q', gitdir, clone);
    writeFileSync(path.join(clone, 'storage/storage.yaml'), 'createOnPush: maybe\n');
    gitc(clone, 'commit', '-qam', 'bad');
    const bad = gitc(clone, 'rev-parse', 'HEAD');
    gitc(clone, 'push', '-q', gitdir, 'HEAD:refs/heads/try-bad');
    const validate = treeValidator(await specRegistry(), () => ({ addresses: ['127.0.0.1'] }));
    const v = await validateCommit(gitdir, bad, validate);
    expect(v.ok).toBe(false);
    expect(v.issues[0]).toMatchObject({ file: 'storage/storage.yaml', line: 1, field: 'createOnPush' });

    writeFileSync(path.join(clone, 'storage/storage.yaml'), 'createOnPush: true\n');
    mkdirSync(path.join(clone, 'extra'));
    writeFileSync(path.join(clone, 'extra/new.txt'), 'hello\n');
    gitc(clone, 'commit', '-qam', 'good');
    gitc(clone, 'add', 'extra');
    gitc(clone, 'commit', '-qm', 'extra');
    const good = gitc(clone, 'rev-parse', 'HEAD');
    gitc(clone, 'push', '-q', gitdir, 'HEAD:refs/heads/try-good');
    expect((await validateCommit(gitdir, good, validate)).ok).toBe(true);
    expect(await publishCommit(gitdir, good, work)).toEqual(['extra/new.txt', 'storage/storage.yaml']);
    expect(readFileSync(path.join(work, 'storage/storage.yaml'), 'utf8')).toBe('createOnPush: true\n');
    // Publishing the first commit again removes what it does not have.
    expect(await publishCommit(gitdir, first.head, work)).toEqual(['extra/new.txt', 'storage/storage.yaml']);
    expect(existsSync(path.join(work, 'extra'))).toBe(false);
  });

  it('is created again when a first start was cut off after git init (HEAD there, no main)', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'kith-configrepo-'));
    const work = path.join(base, 'config');
    const gitdir = path.join(base, 'config.git');
    mkdirSync(path.join(work, 'storage'), { recursive: true });
    writeFileSync(path.join(work, 'storage/storage.yaml'), 'createOnPush: false\n');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', gitdir]);
    const r = await ensureConfigRepo(gitdir, work);
    expect(r.created).toBe(true);
    expect(gitc(base, '--git-dir', gitdir, 'log', '--format=%s', 'main')).toBe('Initial configuration');
    expect((await ensureConfigRepo(gitdir, work)).created).toBe(false);
    rmSync(base, { recursive: true, force: true });
  });
});
