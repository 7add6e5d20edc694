/**
 * Which services exist: one folder per service under services/, each with a main.ts
 * declaration and a config.ts spec. Nothing is listed that has not been built, so `kith up`
 * never fakes one. Discovery is by path (dynamic import), never a static import, so
 * platform/ depends on no service.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ServiceDefinition } from './service.ts';

/** Fixed order, so each service keeps its port block under `kith up --port-base`. */
export const SERVICE_ORDER = ['storage', 'dns', 'mail', 'calendar'] as const;

export interface ServiceEntry {
  name: string;
  entry: string;
  /** Position in the port layout. */
  slot: number;
}

/** Position of each service in the port layout: the known ones first, then the rest by name. */
export function serviceSlots(names: string[]): Map<string, number> {
  const known = SERVICE_ORDER as readonly string[];
  const others = names.filter((n) => !known.includes(n)).sort();
  return new Map(names.map((n) => [n, known.includes(n) ? known.indexOf(n) : known.length + others.indexOf(n)]));
}

export function discoverServices(repoRoot: string): ServiceEntry[] {
  const dir = path.join(repoRoot, 'services');
  const names = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'main.ts'))).map((d) => d.name)
    : [];
  const slots = serviceSlots(names);
  return names.map((name) => ({ name, entry: path.join(dir, name, 'main.ts'), slot: slots.get(name)! })).sort((a, b) => a.slot - b.slot);
}

/** Every service's declaration (the default export of its main.ts), in slot order. */
export async function loadDefinitions(repoRoot: string): Promise<ServiceDefinition<unknown>[]> {
  const defs: ServiceDefinition<unknown>[] = [];
  for (const s of discoverServices(repoRoot)) {
    const mod = (await import(pathToFileURL(s.entry).href)) as { default?: ServiceDefinition<unknown> };
    if (!mod.default) throw new Error(`${s.entry} has no default export (the service definition)`);
    defs.push(mod.default);
  }
  return defs;
}

/** Files of the default config tree, path → content, from every service. */
export function defaultConfigFiles(defs: { config: { defaults: Record<string, string> } }[]): Record<string, string> {
  const files: Record<string, string> = {};
  for (const d of defs) Object.assign(files, d.config.defaults);
  return files;
}
