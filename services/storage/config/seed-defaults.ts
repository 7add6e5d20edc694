/**
 * The one seeding policy (platform/appliance.ts): a registered service that config.git has
 * never held gets its default config as a commit authored by the platform, so a service
 * added by an update (or a new `kith up` tree) starts with its defaults and they are in
 * history like any change. What the owner deleted stays deleted: the services already
 * seeded are remembered in storage's data folder (and, the first time, every service with
 * a folder in config.git counts as seeded).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import git from 'isomorphic-git';
import { writeFileDurable } from '../../../platform/durable.ts';
import type { SpecRegistry } from '../../../platform/config/registry.ts';
import type { TreeValidator } from '../../../platform/config/validate-tree.ts';
import { CONFIG_BRANCH, writeConfigFiles, type ConfigWriteResult } from './config-repo.ts';
import { listTreeFiles } from './git-tree-source.ts';

export const SEEDED_FILE = 'config-seeded.json';
export const PLATFORM_AUTHOR = { name: 'kith platform', email: 'platform@kith.local' };

async function readSeeded(dataDir: string): Promise<Set<string> | undefined> {
  try {
    const v = JSON.parse(await fsp.readFile(path.join(dataDir, SEEDED_FILE), 'utf8')) as { services?: unknown };
    return Array.isArray(v.services) ? new Set(v.services.filter((s): s is string => typeof s === 'string')) : undefined;
  } catch {
    return undefined;
  }
}

export interface SeedOutcome {
  /** Services whose defaults were committed. */
  added: string[];
  result?: ConfigWriteResult;
}

export async function seedNewServices(opts: { gitdir: string; dataDir: string; specs: SpecRegistry; validate: TreeValidator; now?: () => number }): Promise<SeedOutcome> {
  const fs = { promises: fsp };
  const head = await git.resolveRef({ fs, gitdir: opts.gitdir, ref: CONFIG_BRANCH });
  const files = await listTreeFiles(opts.gitdir, head);
  const present = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  const seeded = (await readSeeded(opts.dataDir)) ?? present;
  const fresh = Object.keys(opts.specs).filter((name) => !seeded.has(name) && !present.has(name));
  const remember = async (names: Iterable<string>) =>
    writeFileDurable(path.join(opts.dataDir, SEEDED_FILE), JSON.stringify({ services: [...new Set([...seeded, ...present, ...names])].sort() }) + '\n', { mode: 0o600 });
  if (fresh.length === 0) {
    await remember([]);
    return { added: [] };
  }
  const changes = fresh.flatMap((name) => Object.entries(opts.specs[name]!.defaults).filter(([p]) => !files.has(p)).map(([p, text]) => ({ path: p, content: Buffer.from(text), expectedBlob: null })));
  const result = await writeConfigFiles(opts.gitdir, changes, {
    author: PLATFORM_AUTHOR,
    message: `Add the default configuration of ${fresh.join(', ')}\n\n${changes.map((c) => c.path).join('\n')}`,
    validate: opts.validate,
    ...(opts.now ? { now: opts.now } : {}),
  });
  if (result.ok) await remember(fresh);
  return { added: result.ok ? fresh : [], result };
}
