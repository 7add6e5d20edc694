/** `kith build`: bundle every service into dist/<service>.mjs and report sizes. */
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { bundleRegistry, bundleService, formatBytes, type BundleReport } from '../../platform/build/bundle.ts';
import { discoverServices } from '../../platform/services.ts';
import { repoRoot } from '../paths.ts';
import { buildUpBundles } from '../up/bundles.ts';

const HELP = `Usage: kith build [--service NAME]... [--out DIR] [--json] [--top N]

Bundles each service (services/<name>/main.ts) with esbuild into one ESM file that runs
with nothing but node: node dist/<name>.mjs --config DIR --data DIR. Also bundles every
service's config spec (services/<name>/config.ts) into dist/config-specs.mjs, which the
storage service checks config pushes with, and (without --service) kith up's own two
processes, its supervisor and its pairing process, into dist/kith-up.cjs and
dist/kith-pki.cjs when their sources changed (kith up does that itself too).

Options:
  --service NAME   build only this service (repeatable; default: all)
  --out DIR        output folder (default: dist/)
  --top N          largest contributors to list per bundle (default 5)
  --json           print one JSON report per bundle
  -h, --help       this help
`;

export async function buildAll(names?: string[], out = path.join(repoRoot, 'dist')): Promise<BundleReport[]> {
  return (await buildEverything(names, out)).services;
}

/** The chosen services' bundles and, always, the config registry beside them. */
export async function buildEverything(names?: string[], out = path.join(repoRoot, 'dist')): Promise<{ services: BundleReport[]; registry: BundleReport }> {
  const all = discoverServices(repoRoot);
  const chosen = names && names.length > 0 ? names.map((n) => {
    const s = all.find((x) => x.name === n);
    if (!s) throw new Error(`no service named '${n}' (have: ${all.map((x) => x.name).join(', ') || 'none'})`);
    return s;
  }) : all;
  const [services, registry] = await Promise.all([Promise.all(chosen.map((s) => bundleService(s.name, s.entry, out))), buildRegistry(out)]);
  return { services, registry };
}

/** dist/config-specs.mjs: every service's config spec, which storage validates pushes with. */
export function buildRegistry(out = path.join(repoRoot, 'dist')): Promise<BundleReport> {
  return bundleRegistry(repoRoot, out);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { service: { type: 'string', multiple: true }, out: { type: 'string' }, json: { type: 'boolean' }, top: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const top = Number(values.top ?? 5);
  const out = values.out ? path.resolve(values.out) : undefined;
  const built = await buildEverything(values.service, out);
  const reports = [...built.services, built.registry];
  for (const r of reports) {
    if (values.json) {
      process.stdout.write(JSON.stringify({ service: r.service, outfile: r.outfile, bytes: r.bytes, packages: r.packages, contributors: r.contributors.slice(0, top) }) + '\n');
      continue;
    }
    process.stdout.write(`${r.service.padEnd(10)} ${formatBytes(r.bytes).padStart(10)}  ${path.relative(process.cwd(), r.outfile)}\n`);
    for (const p of r.packages.slice(0, top)) process.stdout.write(`    ${formatBytes(p.bytes).padStart(10)}  ${p.name}\n`);
  }
  if (reports.length === 0 && !values.json) process.stdout.write('no services to build yet (services/<name>/main.ts)\n');
  if (!values.service) {
    const own = await buildUpBundles(out);
    for (const b of [own.up, own.pki]) {
      if (values.json) process.stdout.write(JSON.stringify({ bundle: path.basename(b.outfile), outfile: b.outfile, bytes: b.bytes, built: b.built }) + '\n');
      else process.stdout.write(`${path.basename(b.outfile).padEnd(10)} ${formatBytes(b.bytes).padStart(10)}  ${path.relative(process.cwd(), b.outfile)}${b.built ? '' : '  (unchanged)'}\n`);
    }
  }
  return 0;
}
