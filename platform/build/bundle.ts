/**
 * Bundle a service into one sealed-ready ESM file with esbuild: tree-shaken, minified,
 * every dependency inlined, so the bundle runs with nothing but `node` and the file.
 * The metafile gives each bundle's size and its largest contributors.
 */
import * as esbuild from 'esbuild';
import { promises as fsp } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import * as path from 'node:path';

export interface BundleReport {
  service: string;
  outfile: string;
  bytes: number;
  /** Largest inputs by bytes in the output, biggest first. */
  contributors: { input: string; bytes: number }[];
  /** Output bytes per npm package (or 'kith' for our own code). */
  packages: { name: string; bytes: number }[];
}

// CommonJS dependencies call require() for Node built-ins; an ESM bundle has no require,
// so give it one (https://github.com/evanw/esbuild/issues/1921).
export const REQUIRE_SHIM = "import { createRequire as __kithCreateRequire } from 'node:module'; const require = __kithCreateRequire(import.meta.url);";

/**
 * Send imports of Node built-ins (`fs`, `node:fs`) to a namespace whose onLoad says what
 * they become; require() calls of them stay as they are (external).
 */
function resolveBuiltinsTo(build: esbuild.PluginBuild, namespace: string): void {
  build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
    if (!isBuiltin(args.path)) return undefined;
    const id = args.path.startsWith('node:') ? args.path : `node:${args.path}`;
    if (args.kind === 'require-call') return { path: id, external: true };
    return { path: id, namespace };
  });
}

/**
 * Node's built-in modules through require(), not import: importing a built-in from ESM
 * makes Node build an ESM facade of every export (about 90 ms for the ten a service
 * uses, far more under emulation); require() hands over the module object as it is.
 */
export const builtinsViaRequire: esbuild.Plugin = {
  name: 'builtins-via-require',
  setup(build) {
    resolveBuiltinsTo(build, 'kith-builtin');
    build.onLoad({ filter: /.*/, namespace: 'kith-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * Built-ins for a V8 startup snapshot (platform/image/snapshot.ts): each import becomes an
 * object with the module's export names as getters that require() the module on first
 * use. Evaluating the bundle while the snapshot is built then loads no built-in: several
 * (http, dgram) hold native state a snapshot cannot carry, and a value read at build
 * time (a host name, an environment variable) would be frozen into every boot. The names
 * come from this Node, so the bundle is for this Node's version only.
 */
export function lazyBuiltins(): esbuild.Plugin {
  const hostRequire = createRequire(import.meta.url);
  return {
    name: 'lazy-builtins',
    setup(build) {
      resolveBuiltinsTo(build, 'kith-lazy-builtin');
      build.onLoad({ filter: /.*/, namespace: 'kith-lazy-builtin' }, (args) => {
        const names = Object.keys(hostRequire(args.path) as object);
        return {
          loader: 'js',
          contents: `const id = ${JSON.stringify(args.path)}; let real; const lazy = {};
for (const name of ${JSON.stringify(names)}) Object.defineProperty(lazy, name, { enumerable: true, configurable: true, get() { if (real === undefined) { real = require(id); if (require('node:v8').startupSnapshot.isBuildingSnapshot()) (globalThis.__kithBuiltinsAtBuild ??= []).push(id + '.' + name); } return real[name]; } });
module.exports = lazy;`,
        };
      });
    },
  };
}

/**
 * Built-ins a module must not use while it loads, if it is to be snapshotted: what they
 * give is this machine's state (its name and interfaces, random bytes, sockets, processes,
 * terminals), which would be the build host's in every boot, or native state a snapshot
 * cannot carry. Taking a function from fs or zlib (`promisify(gunzip)`) is fine.
 */
const HOST_BOUND_BUILTINS = ['node:os', 'node:crypto', 'node:dns', 'node:net', 'node:http', 'node:https', 'node:http2', 'node:dgram', 'node:tls', 'node:child_process', 'node:worker_threads', 'node:cluster', 'node:tty', 'node:readline', 'node:inspector'];

/**
 * The script a service's startup snapshot is built from: the service's main.ts bundled as
 * one CommonJS file (what \`node --build-snapshot\` takes) whose evaluation defines the
 * service and every module it uses, and whose deserialized main function runs it, as the
 * ESM bundle's entry would. \`entryUrl\` is what the service reports as its bundle.
 */
export async function bundleSnapshotEntry(entry: string, outfile: string, entryUrl: string): Promise<void> {
  const runner = path.resolve(import.meta.dirname, '../runner.ts');
  const configSource = path.resolve(import.meta.dirname, '../config/fs-source.ts');
  await fsp.mkdir(path.dirname(outfile), { recursive: true });
  await esbuild.build({
    stdin: {
      contents: `import def from ${JSON.stringify(path.resolve(entry))};
import { runServiceMain } from ${JSON.stringify(runner)};
import { memoryConfigSource } from ${JSON.stringify(configSource)};
import { startupSnapshot } from 'node:v8';
startupSnapshot.setDeserializeMainFunction(() => { void runServiceMain(def, ${JSON.stringify(entryUrl)}); });
const check = (when, modules) => {
  const early = (globalThis.__kithBuiltinsAtBuild ?? []).filter((use) => modules.includes(use.slice(0, use.indexOf('.'))));
  if (early.length) throw new Error('built-ins used ' + when + ', which a snapshot would freeze: ' + early.join(', '));
};
check('while the bundle loads', ${JSON.stringify(HOST_BOUND_BUILTINS)});
// Warm up: validate the default config once, so the functions that parse and check a
// config are compiled into the snapshot (V8 keeps their bytecode) rather than compiled
// lazily at every start. Node takes the snapshot once this has settled.
// Its results are dropped; the built-ins it loads stay (Node refuses one it cannot carry),
// but not crypto: its pools of random bytes would be the same in every boot.
void def.config.load(memoryConfigSource(def.config.defaults)).then((r) => {
  check('while validating the default config', ['node:crypto']);
  delete globalThis.__kithBuiltinsAtBuild;
  if (!r.ok) throw new Error('the default config does not validate: ' + JSON.stringify(r.issues).slice(0, 500));
});`,
      resolveDir: path.dirname(path.resolve(entry)),
      loader: 'ts',
      sourcefile: 'snapshot-entry.ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    treeShaking: true,
    legalComments: 'none',
    logLevel: 'silent',
    // main.ts runs itself when it is the entry (import.meta.main); here the snapshot's
    // main function does, so that branch (and its top-level await) is dropped.
    define: { 'process.env.NODE_ENV': '"production"', 'import.meta.main': 'false', 'import.meta.url': JSON.stringify(entryUrl) },
    plugins: [lazyBuiltins()],
  });
}

/**
 * Packages a bundle takes from the bundle that loads it instead of holding its own copy:
 * each import of one of `names` reads `globalThis[global][name]`, which the loader sets
 * (platform/config/registry.ts HOST_DEPS). Read once, while the bundle loads.
 */
function depsFromHost(names: string[], global: string): esbuild.Plugin {
  const filter = new RegExp(`^(${names.map((n) => n.replaceAll('.', '\\.')).join('|')})$`);
  return {
    name: 'deps-from-host',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'kith-host-dep' }));
      build.onLoad({ filter: /.*/, namespace: 'kith-host-dep' }, (args) => ({
        loader: 'js',
        contents: `const dep = globalThis[${JSON.stringify(global)}]?.[${JSON.stringify(args.path)}];
if (dep === undefined) throw new Error(${JSON.stringify(`this bundle takes ${args.path} from the bundle that loads it (globalThis.${global}); load it with platform/config/registry.ts loadSpecsFromBundle`)});
module.exports = dep;`,
      }));
    },
  };
}

/**
 * The config registry bundle (platform/config/registry.ts): every services/<name>/config.ts
 * in one ESM file beside the service bundles, loaded by storage at run time, so no service
 * bundle holds another service's code. zod and yaml are storage's own (HOST_DEPS).
 */
export async function bundleRegistry(repoRoot: string, outDir: string): Promise<BundleReport> {
  const { registryEntrySource, REGISTRY_BUNDLE, HOST_DEPS, HOST_DEPS_GLOBAL } = await import('../config/registry.ts');
  return bundleService('config-specs', { contents: registryEntrySource(repoRoot), resolveDir: repoRoot }, outDir, REGISTRY_BUNDLE, [depsFromHost(Object.keys(HOST_DEPS), HOST_DEPS_GLOBAL)]);
}

export async function bundleService(service: string, entry: string | { contents: string; resolveDir: string }, outDir: string, fileName = `${service}.mjs`, extraPlugins: esbuild.Plugin[] = []): Promise<BundleReport> {
  const outfile = path.join(outDir, fileName);
  await fsp.mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    ...(typeof entry === 'string' ? { entryPoints: [entry] } : { stdin: { contents: entry.contents, resolveDir: entry.resolveDir, loader: 'ts', sourcefile: `${service}-entry.ts` } }),
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    treeShaking: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'silent',
    banner: { js: REQUIRE_SHIM },
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [...extraPlugins, builtinsViaRequire],
  });
  const out = result.metafile.outputs[path.relative(process.cwd(), outfile)] ?? Object.values(result.metafile.outputs)[0];
  if (!out) throw new Error(`esbuild produced no output for ${service}`);
  const contributors = Object.entries(out.inputs)
    .map(([input, v]) => ({ input, bytes: v.bytesInOutput }))
    .filter((c) => c.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
  const byPackage = new Map<string, number>();
  for (const c of contributors) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(c.input);
    const name = m ? m[1]! : 'kith';
    byPackage.set(name, (byPackage.get(name) ?? 0) + c.bytes);
  }
  const packages = [...byPackage].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { service, outfile, bytes: out.bytes, contributors, packages };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/**
 * End esbuild's service process (started by the first build, kept for the next): a process
 * about to exec into something else (`kith up`) would leave it behind as a stray child.
 */
export function stopBundler(): Promise<void> {
  return Promise.resolve(esbuild.stop());
}
