/**
 * `kith test`: the whole test suite, as CI runs it. Prints the Node version, makes sure
 * the real third-party clients the tests drive are installed (Debian packages listed in
 * test/debian-packages.txt; installed with apt-get when running as root), typechecks,
 * builds the bundles, runs vitest, and ends with one line: 'N passed, N failed, N skipped'.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../paths.ts';

const HELP = `Usage: kith test [--no-install] [--no-typecheck] [-- VITEST ARGS...]

Runs the whole test suite: typecheck (tsc), then vitest (unit tests beside the code and
the real-client suites under test/). Missing Debian packages from test/debian-packages.txt
are installed with apt-get when running as root (--no-install to skip).

Examples:
  kith test                      everything
  kith test -- services/dns      only tests under services/dns

Exit codes: 0 all passed, 1 something failed.
`;

interface PackageLine { pkg: string; probe: string }

export function requiredPackages(): PackageLine[] {
  const file = path.join(repoRoot, 'test', 'debian-packages.txt');
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => {
      const [pkg, probe] = l.split(/\s+/) as [string, string | undefined];
      return { pkg, probe: probe ?? pkg };
    });
}

function missingPackages(): string[] {
  return requiredPackages()
    .filter(({ probe }) => (probe.startsWith('/') ? !existsSync(probe) : spawnSync('sh', ['-c', `command -v ${probe}`]).status !== 0))
    .map(({ pkg }) => pkg);
}

export async function run(argv: string[]): Promise<number> {
  const sep = argv.indexOf('--');
  const own = sep === -1 ? argv : argv.slice(0, sep);
  const passThrough = sep === -1 ? [] : argv.slice(sep + 1);
  const { values } = parseArgs({ args: own, options: { 'no-install': { type: 'boolean' }, 'no-typecheck': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  process.stdout.write(`kith test: node ${process.version} (${process.execPath})\n`);

  const missing = missingPackages();
  if (missing.length > 0) {
    if (values['no-install'] || process.getuid?.() !== 0) {
      process.stderr.write(`kith test: missing Debian packages: ${missing.join(' ')}\n  install them: apt-get update && apt-get install -y ${missing.join(' ')}\n`);
      return 1;
    }
    process.stdout.write(`kith test: installing Debian packages: ${missing.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    if (r.status !== 0) return 1;
  }

  let failed = false;
  if (!values['no-typecheck']) {
    process.stdout.write('kith test: typecheck (tsc --noEmit)\n');
    const tsc = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', path.join(repoRoot, 'tsconfig.json'), '--noEmit'], { stdio: 'inherit', cwd: repoRoot });
    if (tsc.status !== 0) {
      process.stdout.write('kith test: typecheck failed\n');
      failed = true;
    }
  }

  const results = path.join(repoRoot, 'build', 'test-results.json');
  mkdirSync(path.dirname(results), { recursive: true });
  const vitest = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...passThrough],
    { stdio: 'inherit', cwd: repoRoot, env: { ...process.env, PATH: `${path.join(repoRoot, 'node_modules/.bin')}:${process.env.PATH}` } },
  );
  if (vitest.status !== 0) failed = true;

  let passed = 0, fail = 0, skipped = 0;
  try {
    const r = JSON.parse(readFileSync(results, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
    passed = r.numPassedTests;
    fail = r.numFailedTests;
    skipped = r.numPendingTests + r.numTodoTests;
  } catch {
    failed = true;
  }
  if (failed && fail === 0) fail = 1; // typecheck or a suite that failed to load
  process.stdout.write(`\n${passed} passed, ${fail} failed, ${skipped} skipped\n`);
  return failed || passed === 0 ? 1 : 0;
}
