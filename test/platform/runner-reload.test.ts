/**
 * Config reloads and stopping (platform/runner.ts): stop() lets a reload under way finish,
 * last-good write included, and starts none after; a reload that fails for anything but the
 * config — here its last-good write, the data folder gone — is logged and the service keeps
 * serving with the config in force, instead of an unhandled rejection that ends the process.
 * (A CI run caught the race: a test removed its data folder after stop() while a reload the
 * file watcher had queued was still writing last-good-config.json.)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../platform/log.ts';
import { startService } from '../../platform/runner.ts';
import { defineService } from '../../platform/service.ts';

interface Conf { text: string }

/** A service whose config is one file and whose applyConfig waits for `gate` when set. */
function makeService(applied: string[], gate: { wait?: Promise<void> }) {
  return defineService<Conf>({
    name: 'probe',
    description: 'a config-reload probe',
    listeners: { health: { protocol: 'http', port: 0, description: 'health' } },
    config: {
      defaults: { 'probe/probe.txt': 'one\n' },
      load: async (source) => ({ ok: true, value: { text: (await source.read('probe/probe.txt')) ?? '' } }),
    },
    start: async () => ({
      endpoints: {},
      applyConfig: async (next: Conf) => {
        await gate.wait;
        applied.push(next.text.trim());
      },
      stop: async () => {},
    }),
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(gate: { wait?: Promise<void> }, lines: string[]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'kith-runner-reload-'));
  dirs.push(dir);
  const configRoot = path.join(dir, 'config');
  const dataDir = path.join(dir, 'data');
  mkdirSync(path.join(configRoot, 'probe'), { recursive: true });
  writeFileSync(path.join(configRoot, 'probe/probe.txt'), 'one\n');
  const applied: string[] = [];
  const log = createLogger({ service: 'probe', level: 'debug', write: (line: string) => { lines.push(line); } });
  const handle = await startService(makeService(applied, gate), { configRoot, dataDir, listen: { health: { host: '127.0.0.1', port: 0 } }, log, addresses: ['127.0.0.1'] });
  return { handle, configRoot, dataDir, applied };
}

describe('config reloads and stop()', () => {
  it('stop() waits for a reload under way, its last-good write included, and no reload starts after it', async () => {
    let release!: () => void;
    const gate: { wait?: Promise<void> } = {};
    const s = await start(gate, []);
    gate.wait = new Promise<void>((r) => { release = r; });
    writeFileSync(path.join(s.configRoot, 'probe/probe.txt'), 'two\n');
    const reloading = s.handle.reload();
    let stopped = false;
    const stopping = s.handle.stop().then(() => { stopped = true; });
    await new Promise((r) => setTimeout(r, 200));
    expect(stopped).toBe(false); // the reload is still in applyConfig
    release();
    await stopping;
    expect((await reloading).applied).toBe(true);
    expect(s.applied).toEqual(['two']);
    expect(readFileSync(path.join(s.dataDir, 'last-good-config.json'), 'utf8')).toContain('two');
    // After stop, a reload is refused without touching the data folder.
    rmSync(s.dataDir, { recursive: true, force: true });
    expect(await s.handle.reload()).toMatchObject({ applied: false });
    expect(existsSync(s.dataDir)).toBe(false);
  });

  it('a reload the file watcher starts that fails outside the config is logged; the service serves on', async () => {
    const lines: string[] = [];
    const s = await start({}, lines);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      // last-good-config.json cannot be written: its folder is gone (not a disk fault).
      rmSync(s.dataDir, { recursive: true, force: true });
      writeFileSync(path.join(s.configRoot, 'probe/probe.txt'), 'three\n');
      for (let i = 0; i < 100 && !lines.some((l) => l.includes('config reload failed')); i++) await new Promise((r) => setTimeout(r, 50));
      expect(lines.join('')).toMatch(/config reload failed; serving on with the config in force/);
      expect(unhandled).toEqual([]);
      const health = await (await fetch(`${s.handle.healthUrl}/healthz`)).json() as { lastConfigError?: string };
      expect(health.lastConfigError).toMatch(/reload failed: .*ENOENT/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await s.handle.stop();
    }
  });
});
