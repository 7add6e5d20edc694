import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleService } from '../build/bundle.ts';
import { sealFlags } from '../seal.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { defaultConfigFiles, loadDefinitions } from '../../platform/services.ts';
import { freeTcpPort } from '../../test/support/ports.ts';
import { snapshotArgs } from './plan.ts';
import { buildServiceSnapshot } from './snapshot.ts';

const REPO = resolve(import.meta.dirname, '../..');

describe('service startup snapshot (built and run by this Node)', () => {
  let tmp: string;
  let bundle: string;
  let config: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kith-snapshot-test-'));
    bundle = (await bundleService('dns', join(REPO, 'services/dns/main.ts'), tmp)).outfile;
    config = join(tmp, 'config');
    seedMissingFiles(config, defaultConfigFiles(await loadDefinitions(REPO)));
  }, 60_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A main.ts declaring a do-nothing service: `imports`, then `body`, then the definition. */
  const fixtureService = (name: string, imports: string, body: string, description: string, config: string): string => {
    const entry = join(tmp, `${name}.ts`);
    writeFileSync(entry, [
      imports,
      `import { defineService } from ${JSON.stringify(join(REPO, 'platform/service.ts'))};`,
      body,
      `export default defineService({ name: 'x', description: ${description}, listeners: {}, config: (${config}) as never, start: async () => ({ endpoints: {}, applyConfig: async () => {}, stop: async () => {} }) });`,
    ].join('\n'));
    return entry;
  };

  it('starts the sealed DNS service from the snapshot, and dig gets its answers', async () => {
    const blob = join(tmp, 'dns.blob');
    const job = { node: process.execPath, entry: join(REPO, 'services/dns/main.ts'), blob, bundle, configDir: config, guestBundle: bundle, listeners: ['health', 'dns'] };
    expect(await buildServiceSnapshot(job)).toMatch(/^snapshot [\d.]+ MB; the sealed service starts from it \(startupMs \{"node":\d+,"modules":\d+,"ready":\d+\}/);

    const port = await freeTcpPort();
    const data = join(tmp, 'data');
    mkdirSync(data);
    const child = spawn(process.execPath, [
      ...sealFlags({ entry: bundle, configRoot: config, dataDir: data }), ...snapshotArgs(blob),
      bundle, '--config', config, '--data', data, '--listen', `dns=127.0.0.1:${port}`, '--listen', 'health=127.0.0.1:0',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { out += d; });
    try {
      const t0 = Date.now();
      while (!out.includes('"msg":"ready"') && child.exitCode === null && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"msg":"ready"');
      const dig = (...a: string[]) => spawnSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', ...a], { encoding: 'utf8' }).stdout;
      // kith.home.arpa is this machine (its own addresses), as the default config says.
      const self = dig('kith.home.arpa', 'A', '+short').trim();
      expect(self).toMatch(/^(\d+\.){3}\d+$/m);
      expect(dig('nope.home.arpa', 'A')).toMatch(/status: NXDOMAIN/);
      expect(dig('kith.home.arpa', 'A', '+tcp', '+short').trim()).toBe(self);
      // Sealed as ever: the permission model is on and the service reads what it read before.
      expect(out).not.toMatch(/uncaught|ERR_ACCESS_DENIED/);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
  }, 60_000);

  it('snapshots every other service too, and each starts sealed from its snapshot', async () => {
    const defs = await loadDefinitions(REPO);
    for (const def of defs.filter((d) => d.name !== 'dns')) {
      const own = (await bundleService(def.name, join(REPO, 'services', def.name, 'main.ts'), tmp)).outfile;
      const blob = join(tmp, `${def.name}.blob`);
      const report = await buildServiceSnapshot({ node: process.execPath, entry: join(REPO, 'services', def.name, 'main.ts'), blob, bundle: own, configDir: config, guestBundle: own, listeners: Object.keys(def.listeners) });
      expect(report, def.name).toMatch(/^snapshot [\d.]+ MB; the sealed service starts from it/);
    }
  }, 60_000);

  it('refuses a bundle that uses a built-in while it loads, naming it, and leaves no blob', async () => {
    // Read once at load: in a snapshot, every boot would see the build host's name.
    const entry = fixtureService('hostname-at-load', `import { hostname } from 'node:os';`, 'const NAME = hostname();', 'NAME', 'undefined');
    const blob = join(tmp, 'x.blob');
    await expect(buildServiceSnapshot({ node: process.execPath, entry, blob, bundle, configDir: config, guestBundle: bundle, listeners: [] }))
      .rejects.toThrow(/built-ins used while the bundle loads, which a snapshot would freeze: node:os\.hostname/);
    expect(existsSync(blob)).toBe(false);
  }, 60_000);

  it('refuses a config check that draws random numbers while the snapshot warms up', async () => {
    // crypto keeps a pool of random bytes: drawn at build time, every boot would share it.
    const entry = fixtureService('random-in-config', `import { randomInt } from 'node:crypto';`, '', "'r'", '{ defaults: {}, load: async () => ({ ok: true, value: randomInt(10) }) }');
    await expect(buildServiceSnapshot({ node: process.execPath, entry, blob: join(tmp, 'r.blob'), bundle, configDir: config, guestBundle: bundle, listeners: [] }))
      .rejects.toThrow(/built-ins used while validating the default config, which a snapshot would freeze: node:crypto\.randomInt/);
  }, 60_000);
});
