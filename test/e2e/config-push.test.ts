/**
 * Configuration by git push, with the real git client: a bad config is refused with
 * file:line in git's own output and nothing changes; a good one is applied live by the
 * running service (within a second on a quiet machine: the figure is printed, not asserted).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../platform/helpers.ts';
import { kithUp, repoRoot, type KithUp } from './kith-up.ts';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=Owner', '-c', 'user.email=owner@home.arpa', ...args], { cwd, encoding: 'utf8', stdio: 'pipe' });

async function until<T>(fn: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

for (const version of ['0', '2']) {
  describe(`config.git over git protocol v${version}`, () => {
    let up: KithUp;
    let clone: string;
    let remote: string;
    beforeAll(async () => {
      up = await kithUp();
      const storage = up.services.get('storage')!;
      remote = storage.endpoints.git!.replace('://', `://kith:${storage.token}@`);
      clone = path.join(tempDir('kith-clone-'), 'config');
      git(path.dirname(clone), '-c', `protocol.version=${version}`, 'clone', '-q', remote, clone);
    });
    afterAll(async () => { await up?.stop(); });

    it('refuses a bad config with file:line in git push output, and nothing changes', async () => {
      const file = path.join(clone, 'storage/storage.yaml');
      const good = readFileSync(file, 'utf8');
      writeFileSync(file, good.replace(/^createOnPush: .*$/m, 'createOnPush: sometimes'));
      git(clone, 'commit', '-qam', 'a bad change');
      const line = good.split('\n').findIndex((l) => l.startsWith('createOnPush:')) + 1;
      const push = spawnSync('git', ['-c', `protocol.version=${version}`, 'push', 'origin', 'main'], { cwd: clone, encoding: 'utf8' });
      expect(push.status).not.toBe(0);
      expect(push.stderr).toContain(`remote:   storage/storage.yaml:${line}: createOnPush:`);
      expect(push.stderr).toMatch(/\[remote rejected\] main -> main \(pre-receive hook declined\)/);
      expect(readFileSync(path.join(up.data, 'config/storage/storage.yaml'), 'utf8')).toBe(good);
      const remoteHead = git(clone, 'ls-remote', 'origin', 'refs/heads/main').split('\t')[0];
      expect(remoteHead).toBe(git(clone, 'rev-parse', 'HEAD~1').trim());
      git(clone, 'reset', '-q', '--hard', 'HEAD~1');
    });

    it('applies a good config live soon after the push', async () => {
      const storage = up.services.get('storage')!;
      const before = (await (await fetch(`${storage.health}/healthz`)).json()) as { configGeneration: number };
      const file = path.join(clone, 'storage/storage.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/^createOnPush: .*$/m, 'createOnPush: true'));
      git(clone, 'commit', '-qam', 'allow creating repositories by push');
      git(clone, '-c', `protocol.version=${version}`, 'push', '-q', 'origin', 'main');
      const pushed = Date.now();
      const gen = await until(async () => {
        const h = (await (await fetch(`${storage.health}/healthz`)).json()) as { configGeneration: number };
        return h.configGeneration > before.configGeneration ? h.configGeneration : undefined;
      }, 15_000); // only a deadline for a loaded machine
      expect(gen).toBeDefined();
      process.stdout.write(`config push (protocol v${version}): applied ${Date.now() - pushed} ms after git push returned\n`);
      // The change is live: a first push to a new name now creates the repository.
      const other = path.join(tempDir('kith-new-'), 'notes');
      execFileSync('git', ['init', '-q', '-b', 'main', other]);
      writeFileSync(path.join(other, 'a.txt'), 'hi\n');
      git(other, 'add', '.');
      git(other, 'commit', '-qm', 'first');
      git(other, 'push', '-q', remote.replace('/config.git', '/notes.git'), 'main');
      expect(git(clone, 'ls-remote', remote.replace('/config.git', '/notes.git'))).toMatch(/refs\/heads\/main/);
    });

    it('keeps the history as the audit log, and git revert + push rolls back', () => {
      git(clone, 'revert', '--no-edit', 'HEAD');
      git(clone, '-c', `protocol.version=${version}`, 'push', '-q', 'origin', 'main');
      const log = git(clone, 'log', '--format=%an|%s', 'origin/main');
      // Services' own commits (mail publishing its records) sit between the first and the owner's.
      const lines = log.trim().split('\n');
      expect(lines.slice(0, 2)).toEqual(['Owner|Revert "allow creating repositories by push"', 'Owner|allow creating repositories by push']);
      expect(lines.at(-1)).toBe('kith|Initial configuration');
      execFileSync('git', ['--git-dir', path.join(up.data, 'data/storage/repos/config.git'), 'fsck', '--full', '--strict'], { stdio: 'pipe' });
      // kith config log tells the same story, with the files each change touched.
      const out = execFileSync(process.execPath, [path.join(repoRoot, 'installer/kith.ts'), 'config', 'log', '--json', '--data', up.data], { encoding: 'utf8' });
      const changes = out.trim().split('\n').map((l) => JSON.parse(l) as { author: string; message: string; files: { path: string; change: string }[] });
      expect(changes.map((c) => c.message).slice(0, 2)).toEqual(['Revert "allow creating repositories by push"\n\nThis reverts commit ' + git(clone, 'rev-parse', 'HEAD~1').trim() + '.', 'allow creating repositories by push']);
      expect(changes.at(-1)!.message).toBe('Initial configuration');
      expect(changes[1]).toMatchObject({ author: 'Owner', files: [{ path: 'storage/storage.yaml', change: 'modified' }] });
    });
  });
}
