/**
 * A service is one folder: a throwaway `echo` service, added to a temporary copy of the
 * tree with no edit anywhere else, is run by `kith up`, its config is validated on push
 * (file:line), both image plans include it, and — added after config.git already existed —
 * its defaults become a commit in config.git by the platform (the one seeding policy).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../platform/helpers.ts';
import { repoRoot } from './kith-up.ts';
import { kithUpIn, type KithUp } from './kith-up.ts';

const ECHO_MAIN = `/** A throwaway service for the seams test: answers HTTP with its configured greeting. */
import { createServer } from 'node:http';
import { runServiceMain } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';
import echoConfig, { type EchoConfig } from './config.ts';

const echo = defineService<EchoConfig>({
  name: 'echo',
  description: 'says its greeting',
  listeners: {
    health: { protocol: 'http', port: 9199, description: 'health and metrics' },
    http: { protocol: 'http', port: 8199, description: 'the greeting' },
  },
  config: echoConfig,
  async start(ctx) {
    const server = createServer((_req, res) => res.end(ctx.config().greeting + '\\n'));
    await new Promise<void>((r) => server.listen(ctx.listen.http!.port, ctx.listen.http!.host, r));
    const port = (server.address() as { port: number }).port;
    return { endpoints: { http: \`http://\${ctx.listen.http!.host}:\${port}\` }, stop: () => new Promise<void>((r) => server.close(() => r())) };
  },
});
export default echo;
if (import.meta.main) await runServiceMain(echo, import.meta.url);
`;

const ECHO_CONFIG = `import { z } from 'zod';
import { loadYamlFile } from '../../platform/config/yaml.ts';
import type { ConfigSpec } from '../../platform/config/spec.ts';

const Schema = z.object({ greeting: z.string().max(40) }).strict();
export type EchoConfig = z.infer<typeof Schema>;

const spec: ConfigSpec<EchoConfig> = {
  defaults: { 'echo/echo.yaml': 'greeting: hello from echo\\n' },
  load: (source) => loadYamlFile(source, 'echo/echo.yaml', Schema),
};
export default spec;
`;

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('a new service is one folder', () => {
  let tree: string;
  let up: KithUp | undefined;
  let data: string;

  beforeAll(() => {
    tree = tempDir('kith-tree-');
    // The tree as committed (and what this work tree adds), without build products.
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot }).toString().split('\0').filter(Boolean);
    const tar = spawnSync('sh', ['-c', `tar --null -T - -cf - | tar -xf - -C '${tree}'`], { cwd: repoRoot, input: files.join('\0') });
    if (tar.status !== 0) throw new Error(`copying the tree: ${tar.stderr}`);
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules'));
    data = tempDir('kith-up-');
  });
  afterAll(async () => {
    await up?.stop();
  });

  it('kith up runs it, and storage adds its defaults to an existing config.git as a platform commit', async () => {
    // First without echo: config.git is made from the other services' defaults.
    up = await kithUpIn(tree, data, { build: true });
    await up.stop();
    const configGit = path.join(data, 'data/storage/repos/config.git');
    expect(git(tree, '--git-dir', configGit, 'ls-tree', '--name-only', 'main')).not.toMatch(/^echo$/m);

    mkdirSync(path.join(tree, 'services/echo'));
    writeFileSync(path.join(tree, 'services/echo/main.ts'), ECHO_MAIN);
    writeFileSync(path.join(tree, 'services/echo/config.ts'), ECHO_CONFIG);
    up = await kithUpIn(tree, data, { build: true });
    const echo = up.services.get('echo');
    expect(echo, 'kith up reports echo').toBeDefined();
    expect(await (await fetch(echo!.endpoints.http!)).text()).toBe('hello from echo\n');
    const log = git(tree, '--git-dir', configGit, 'log', '--format=%an|%s', 'main');
    expect(log.split('\n')[0]).toBe('kith platform|Add the default configuration of echo');
    expect(git(tree, '--git-dir', configGit, 'show', 'main:echo/echo.yaml')).toBe('greeting: hello from echo\n');
  }, 240_000);

  it('refuses a bad push to its config with file:line, and applies a good one live', async () => {
    const storage = up!.services.get('storage')!;
    const url = storage.endpoints.git!.replace('://', `://kith:${storage.token}@`);
    const clone = path.join(tempDir('kith-clone-'), 'config');
    git(tree, 'clone', '-q', url, clone);
    writeFileSync(path.join(clone, 'echo/echo.yaml'), 'greeting: [1, 2]\n');
    git(clone, 'commit', '-qam', 'bad greeting');
    const bad = spawnSync('git', ['push', 'origin', 'HEAD:main'], { cwd: clone, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/echo\/echo\.yaml:1: greeting: /);

    writeFileSync(path.join(clone, 'echo/echo.yaml'), 'greeting: hi again\n');
    git(clone, 'commit', '-qam', 'good greeting');
    const good = spawnSync('git', ['push', 'origin', 'HEAD:main'], { cwd: clone, encoding: 'utf8' });
    expect(good.status, good.stderr).toBe(0);
    const echo = up!.services.get('echo')!;
    let text = '';
    for (const end = Date.now() + 15_000; text !== 'hi again\n' && Date.now() < end; ) {
      text = await (await fetch(echo.endpoints.http!)).text();
      if (text !== 'hi again\n') await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toBe('hi again\n');
  }, 60_000);

  it('both image plans include it', () => {
    const kith = (...args: string[]) => spawnSync(path.join(tree, 'node_modules/.bin/node'), [path.join(tree, 'installer/kith.ts'), ...args], { cwd: tree, encoding: 'utf8' });
    const rpi = kith('image', 'build', '--target', 'rpi', '--dry-run');
    expect(rpi.status, rpi.stderr).toBe(0);
    expect(rpi.stdout).toMatch(/dist\/echo\.mjs -> .*\/kith\/echo\.mjs/);
    const boot = JSON.parse(/write-boot-config .*?(\{.*\})/.exec(rpi.stdout)?.[1] ?? 'null') as { services?: { name: string }[] } | null;
    if (boot) expect(boot.services?.map((s) => s.name)).toContain('echo');
    const kvm = kith('image', 'build', '--target', 'kvm', '--service', 'echo', '--dry-run');
    expect(kvm.status, kvm.stderr).toBe(0);
    expect(kvm.stdout).toMatch(/dist\/echo\.mjs -> .*\/kith\/echo\.mjs/);
    expect(readFileSync(path.join(tree, 'services/echo/main.ts'), 'utf8')).toBe(ECHO_MAIN); // nothing rewrote the folder
  }, 60_000);
});
