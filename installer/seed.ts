/**
 * The built-in default config: each service's ConfigSpec.defaults, written into a new
 * config working tree (and committed, so history starts at the defaults). Existing files
 * are never overwritten: the owner's edits win.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ServiceDefinition } from '../platform/service.ts';
import { discoverServices } from '../platform/services.ts';

export async function loadDefinitions(repoRoot: string): Promise<ServiceDefinition<unknown>[]> {
  const defs: ServiceDefinition<unknown>[] = [];
  for (const s of discoverServices(repoRoot)) {
    const mod = (await import(s.entry)) as { default?: ServiceDefinition<unknown> };
    if (!mod.default) throw new Error(`${s.entry} has no default export (the service definition)`);
    defs.push(mod.default);
  }
  return defs;
}

/** Files of the default config tree, path → content, from every service. */
export function defaultConfigFiles(defs: ServiceDefinition<unknown>[]): Record<string, string> {
  const files: Record<string, string> = {};
  for (const d of defs) Object.assign(files, d.config.defaults);
  return files;
}

/**
 * The defaults as `kith up` seeds them: services listen on `host` only, so the local
 * names that mean "this machine" ('self') point there instead of at the LAN address.
 */
export function localDefaults(files: Record<string, string>, host: string): Record<string, string> {
  const out = { ...files };
  if (out['dns/local.yaml'] && host !== '0.0.0.0' && host !== '::') out['dns/local.yaml'] = out['dns/local.yaml'].replace(/\[self\]/g, `[${host}]`);
  return out;
}

/** Write missing default files; returns the paths written. */
export async function seedConfigTree(dir: string, files: Record<string, string>): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, text] of Object.entries(files)) {
    const full = path.join(dir, rel);
    if (existsSync(full)) continue;
    await fsp.mkdir(path.dirname(full), { recursive: true });
    await fsp.writeFile(full, text);
    written.push(rel);
  }
  return written;
}
