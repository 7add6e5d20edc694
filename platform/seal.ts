/**
 * Sealing: a service runs with the least authority Node can enforce.
 *
 * - no code generation from strings (eval, new Function): --disallow-code-generation-from-strings
 * - frozen intrinsics (no prototype tampering): --frozen-intrinsics
 * - the permission model (https://nodejs.org/api/permissions.html): the file system limited
 *   to the service's bundle, its config (read), the clock state (read) and its data folder (write); no child
 *   processes, workers, addons, FFI, WASI or inspector; network allowed (it is a server).
 *
 * These are process flags, so a bundle started as `node dist/x.mjs ...` re-executes itself
 * with them through process.execve: the same PID, replaced in place, so no child process.
 */
import * as path from 'node:path';
import { CLOCK_STATE_FILE } from './clock-state.ts';

export interface SealPaths {
  /** The bundle (or entry script) being run. */
  entry: string;
  configRoot: string;
  dataDir: string;
  /** Storage publishes the config working tree, so it may write there. */
  writableConfig?: boolean;
  /** Extra read-only paths (e.g. TLS material). */
  readPaths?: string[];
  /** Extra node flags the service declares (ServiceDefinition.nodeFlags). */
  nodeFlags?: string[];
}

/** platform/config/registry.ts REGISTRY_BUNDLE (not imported: this module stays tiny for every bundle). */
export const REGISTRY_BUNDLE = 'config-specs.mjs';

const FIXED_FLAGS = ['--permission', '--allow-net', '--disallow-code-generation-from-strings', '--frozen-intrinsics'];

/**
 * Node 26's permission model refuses an allowed path outright when another allowed path's
 * name begins with it (`/kith/config` beside `/kith/config-specs.mjs`: reading /kith/config
 * is denied). Such a pair is a layout to change, not flags to pass: say which two.
 */
export function clashingGrants(paths: string[]): [string, string] | undefined {
  for (const a of paths) for (const b of paths) if (b !== a && b.startsWith(a) && b[a.length] !== '/' && !a.endsWith('/')) return [a, b];
  return undefined;
}

/** The node flags that seal a service with these paths. */
export function sealFlags(p: SealPaths): string[] {
  const abs = (x: string) => path.resolve(x);
  // The service that owns config (storage) validates every service's config with the
  // registry bundle built beside its own (platform/config/registry.ts).
  const registry = p.writableConfig ? [path.join(path.dirname(abs(p.entry)), REGISTRY_BUNDLE)] : [];
  // Every service may read whether the clock is synchronised (PID 1 writes it; platform/clock-state.ts).
  const reads = [abs(p.entry), abs(p.configRoot), abs(p.dataDir), ...registry, CLOCK_STATE_FILE, ...(p.readPaths ?? []).map(abs)];
  const writes = [abs(p.dataDir), ...(p.writableConfig ? [abs(p.configRoot)] : [])];
  for (const list of [reads, writes]) {
    const clash = clashingGrants(list);
    if (clash) throw new Error(`cannot seal with both ${clash[0]} and ${clash[1]} allowed: Node's permission model would refuse ${clash[0]}; move one of them`);
  }
  return [
    ...FIXED_FLAGS,
    ...reads.map((r) => `--allow-fs-read=${r}`),
    ...writes.map((w) => `--allow-fs-write=${w}`),
    ...(p.nodeFlags ?? []),
    // The memory governor (platform/memory-governor.ts) collects garbage past a soft limit.
    '--expose-gc',
    // The permission model and frozen intrinsics are flagged experimental: the warning is noise in our logs.
    '--disable-warning=ExperimentalWarning',
  ];
}

/** True when this process runs under the permission model with the sealing flags. */
export function isSealed(): boolean {
  const p = (process as { permission?: unknown }).permission;
  return p !== undefined && FIXED_FLAGS.every((f) => process.execArgv.includes(f));
}

const REEXEC_MARK = 'KITH_SEALING';

/**
 * Make sure this process is sealed: if it is not, replace it with a sealed copy of itself
 * (never returns in that case). Throws if a sealed re-exec did not take.
 */
export function ensureSealed(p: SealPaths): void {
  if (isSealed()) return;
  if (process.env[REEXEC_MARK] === '1') {
    throw new Error('sealing failed: re-executed with the permission flags but they are not in force');
  }
  if (typeof process.execve !== 'function') {
    throw new Error(`sealing needs process.execve (Node ≥ 22.15 on Unix); this is Node ${process.version}`);
  }
  // A node flag the environment's NODE_OPTIONS already sets is left to it (a test or an
  // operator lowering storage's heap cap): flags on the command line would override it.
  const env = process.env.NODE_OPTIONS ?? '';
  const nodeFlags = p.nodeFlags?.filter((f) => !env.includes(`${f.split('=')[0]}=`));
  const args = [process.execPath, ...sealFlags({ ...p, ...(nodeFlags ? { nodeFlags } : {}) }), path.resolve(p.entry), ...process.argv.slice(2)];
  process.execve(process.execPath, args, { ...process.env, [REEXEC_MARK]: '1' });
}
