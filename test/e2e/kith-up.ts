/** Start `kith up --json` in a temp data folder and collect what it reports. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { discoverServices } from '../../platform/services.ts';
import type { ReadyInfo } from '../../installer/commands/up.ts';
import { tempDir } from '../platform/helpers.ts';
import { freePortBase } from '../support/ports.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export type UpService = ReadyInfo;

export interface KithUp {
  child: ChildProcess;
  data: string;
  services: Map<string, UpService>;
  events: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/** `kith up` in a temp data folder, on a block of ports free when it starts (test/support/ports.ts). */
export function kithUp(extra: string[] = [], timeoutMs = 90_000): Promise<KithUp> {
  return kithUpIn(repoRoot, tempDir('kith-up-'), { extra, timeoutMs });
}

/** `kith up` of the tree at `root` (its own services), with a given data folder. */
export async function kithUpIn(root: string, data: string, o: { extra?: string[]; timeoutMs?: number; build?: boolean } = {}): Promise<KithUp> {
  const timeoutMs = o.timeoutMs ?? 90_000;
  const discovered = discoverServices(root);
  const expected = discovered.map((s) => s.name);
  const base = await freePortBase(Math.max(...discovered.map((s) => s.slot)) + 1);
  // As the ./kith launcher starts it: `kith up` then turns itself into its bundled supervisor (same pid).
  const child = spawn(process.execPath, [path.join(root, 'installer/kith.ts'), 'up', '--json', ...(o.build ? [] : ['--no-build']), '--data', data, '--port-base', String(base), ...(o.extra ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const services = new Map<string, UpService>();
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`kith up did not report every service in time; stderr:\n${stderr}`)), timeoutMs);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`kith up exited with ${code}; stderr:\n${stderr}`)); });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (typeof rec.service === 'string' && !rec.event) services.set(rec.service, rec as unknown as UpService);
      else events.push(rec);
      if (expected.every((n) => services.has(n))) { clearTimeout(t); resolve(); }
    });
  });
  return {
    child,
    data,
    services,
    events,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    }),
  };
}
