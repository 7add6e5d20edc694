/**
 * A long-lived kith process that runs on the developer's machine (`kith up`'s supervisor
 * and its pki child) as one CommonJS bundle under dist/, built from the sources when they
 * changed since the last build. A bundle rather than the .ts sources: Node's TypeScript
 * stripping alone costs such a process ~17 MB (docs/decisions.md, footprint levers), and
 * CommonJS because Node then starts it without its ESM loader (as PID 1's /init).
 *
 * Beside each bundle, `<bundle>.inputs.json` records the SHA-256 of every file esbuild read
 * for it: the bundle is fresh while each of them still hashes the same, so an edit, a
 * checkout or an `npm ci` rebuilds it on the next `kith up`, with or without --no-build.
 * Two `kith up` building at once each write a whole file beside it and rename it over.
 */
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { formatBytes } from './bundle.ts';
import { writeFileDurable } from '../durable.ts';

/** Changes whenever the build options below change, so an older build is not taken as fresh. */
const RECIPE = 'cjs-node26-minify-1';

interface Inputs { recipe: string; esbuild: string; inputs: Record<string, string> }

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const inputsFile = (outfile: string) => `${outfile}.inputs.json`;

/** Whether `outfile` was built by this recipe from the files as they are now under `root`. */
export function bundleIsFresh(root: string, outfile: string): boolean {
  try {
    const have = JSON.parse(readFileSync(inputsFile(outfile), 'utf8')) as Inputs;
    if (have.recipe !== RECIPE || have.esbuild !== esbuild.version || !existsSync(outfile)) return false;
    return Object.entries(have.inputs).every(([rel, hash]) => sha256(path.join(root, rel)) === hash);
  } catch {
    return false;
  }
}

export interface ProcessBundle {
  outfile: string;
  /** Built now (false: the one in place was fresh). */
  built: boolean;
  bytes: number;
}

/**
 * `entry` bundled into `outfile` (Node built-ins external, every package inlined), unless
 * the bundle there is fresh. `root` is the checkout: input paths are kept relative to it.
 */
export async function ensureProcessBundle(root: string, entry: string, outfile: string): Promise<ProcessBundle> {
  if (bundleIsFresh(root, outfile)) return { outfile, built: false, bytes: (await fsp.stat(outfile)).size };
  await fsp.mkdir(path.dirname(outfile), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root, entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node24',
    minify: true, treeShaking: true, legalComments: 'none', metafile: true, write: false, logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const code = result.outputFiles[0];
  if (!code) throw new Error(`esbuild produced no output for ${entry}`);
  const inputs: Inputs = { recipe: RECIPE, esbuild: esbuild.version, inputs: {} };
  for (const rel of Object.keys(result.metafile.inputs)) inputs.inputs[rel] = sha256(path.join(root, rel));
  // Whole files renamed into place (platform/durable.ts): a second kith up building at once never reads half of one.
  await writeFileDurable(outfile, code.contents, { syncDir: false });
  await writeFileDurable(inputsFile(outfile), JSON.stringify(inputs, null, 1) + '\n');
  return { outfile, built: true, bytes: code.contents.length };
}

export const describeProcessBundle = (b: ProcessBundle): string => `${path.basename(b.outfile)} (${formatBytes(b.bytes)}${b.built ? '' : ', unchanged'})`;
