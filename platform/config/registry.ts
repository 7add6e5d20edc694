/**
 * The registry of every service's config spec, by the one convention: the default export
 * of `services/<name>/config.ts`. Storage validates a push to config.git against all of
 * them, `kith up` and PID 1 seed their defaults, `kith image build --config` checks a tree:
 * none of them imports a service's source.
 *
 * Running from source (tests, the installer), the registry is read from the services
 * folder. In a bundle it is its own file, `config-specs.mjs`, built beside the service
 * bundles (`kith build`, platform/build/bundle.ts) and loaded at run time: so
 * dist/storage.mjs holds no other service's code, and a service added to the tree reaches
 * storage's validation by being built, with no edit anywhere else.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as yaml from 'yaml';
import * as zod from 'zod';
import type { ConfigSpec } from './spec.ts';

export type SpecRegistry = Readonly<Record<string, ConfigSpec<unknown>>>;

/** The registry bundle's file name, beside the service bundles (dist/, /kith/ in images). */
export { REGISTRY_BUNDLE } from '../seal.ts';
import { REGISTRY_BUNDLE } from '../seal.ts';

/** Every services/<name>/config.ts, by service name, sorted. */
export function specFiles(repoRoot: string): { name: string; file: string }[] {
  const dir = path.join(repoRoot, 'services');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'config.ts')))
    .map((d) => ({ name: d.name, file: path.join(dir, d.name, 'config.ts') }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

function checked(name: string, where: string, spec: unknown): ConfigSpec<unknown> {
  const s = spec as Partial<ConfigSpec<unknown>> | undefined;
  if (!s || typeof s.load !== 'function' || typeof s.defaults !== 'object') {
    throw new Error(`${where} does not default-export a ConfigSpec for ${name} ({ defaults, load }; platform/config/spec.ts)`);
  }
  return s as ConfigSpec<unknown>;
}

/** From source: import every services/<name>/config.ts. */
export async function loadSpecsFromSource(repoRoot: string): Promise<SpecRegistry> {
  const out: Record<string, ConfigSpec<unknown>> = {};
  for (const { name, file } of specFiles(repoRoot)) {
    out[name] = checked(name, file, ((await import(pathToFileURL(file).href)) as { default?: unknown }).default);
  }
  return out;
}

/** The source of the registry bundle's entry: one static import per service. */
export function registryEntrySource(repoRoot: string): string {
  const files = specFiles(repoRoot);
  return [
    ...files.map((f, i) => `import s${i} from ${JSON.stringify(f.file)};`),
    `export const specs = { ${files.map((f, i) => `${JSON.stringify(f.name)}: s${i}`).join(', ')} };`,
  ].join('\n') + '\n';
}

/**
 * Packages the registry bundle does not hold but takes from the bundle that loads it,
 * through this global, set only while it loads: storage's own zod and yaml, so the
 * process holds one copy of each, not two (issue 16: ~5 MB of private memory idle).
 * The build (platform/build/bundle.ts bundleRegistry) turns their imports into reads of it.
 */
export const HOST_DEPS_GLOBAL = '__kithRegistryDeps';
export const HOST_DEPS: Readonly<Record<string, object>> = { zod, yaml };

/** From a built registry bundle. */
export async function loadSpecsFromBundle(file: string): Promise<SpecRegistry> {
  let mod: { specs?: Record<string, unknown> };
  const g = globalThis as Record<string, unknown>;
  g[HOST_DEPS_GLOBAL] = HOST_DEPS;
  try {
    mod = (await import(pathToFileURL(file).href)) as typeof mod;
  } catch (err) {
    // A process started from a V8 startup snapshot has no dynamic import(); require() of
    // an ES module without top-level await works there.
    if (!/dynamic import|ERR_VM_DYNAMIC_IMPORT/i.test(String((err as Error)?.message ?? err) + String((err as { code?: string })?.code))) throw err;
    mod = createRequire(file)(file) as typeof mod;
  } finally {
    delete g[HOST_DEPS_GLOBAL];
  }
  if (!mod.specs) throw new Error(`${file} is not a config registry bundle (no 'specs' export); rebuild with kith build`);
  return Object.fromEntries(Object.entries(mod.specs).map(([n, s]) => [n, checked(n, file, s)]));
}

/** Where the registry bundle sits for a bundle at `bundleUrl`. */
export function registryBesideBundle(bundleUrl: string): string {
  return path.join(path.dirname(fileURLToPath(bundleUrl)), REGISTRY_BUNDLE);
}

let cached: Promise<SpecRegistry> | undefined;

/**
 * The registry for this process: from source when running as TypeScript (this file is
 * .ts), else the bundle beside the running bundle. Loaded once.
 */
export function specRegistry(): Promise<SpecRegistry> {
  cached ??= import.meta.url.endsWith('.ts')
    ? loadSpecsFromSource(path.resolve(fileURLToPath(import.meta.url), '../../..'))
    : loadSpecsFromBundle(registryBesideBundle(import.meta.url));
  return cached;
}
