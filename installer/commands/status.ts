/** `kith status`: is kith up, and is each service healthy? */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { pidAlive, readRunFile } from '../run-file.ts';

const HELP = `Usage: kith status [--data DIR] [--json]

Shows each service of a running \`kith up\`: its pid, health, config generation and
endpoints (from <data>/run.json and each service's /healthz).

Options:
  --data DIR   the kith data folder (default: .kith)
  --json       one JSON object per service
  -h, --help   this help

Exit codes: 0 every service healthy, 1 one is not, 3 kith is not up.
`;

interface Health {
  status?: string;
  configGeneration?: number;
  lastConfigError?: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const dataRoot = path.resolve(values.data ?? '.kith');
  const info = await readRunFile(dataRoot);
  if (!info || !pidAlive(info.pid)) {
    if (values.json) process.stdout.write(JSON.stringify({ up: false, data: dataRoot }) + '\n');
    else process.stdout.write(`kith is not up (data folder ${dataRoot}); start it with ./kith up\n`);
    return 3;
  }
  let allOk = true;
  if (!values.json) process.stdout.write(`kith is up (pid ${info.pid}, since ${info.started})\n`);
  for (const s of info.services) {
    let health: Health = {};
    let state = 'unreachable';
    try {
      const res = await fetch(`${s.health}/healthz`, { signal: AbortSignal.timeout(2000) });
      health = (await res.json()) as Health;
      state = res.ok ? 'healthy' : 'unhealthy';
    } catch {
      // unreachable: counted below
    }
    if (state !== 'healthy') allOk = false;
    if (values.json) {
      process.stdout.write(JSON.stringify({ service: s.service, pid: s.pid, state, configGeneration: health.configGeneration, lastConfigError: health.lastConfigError, endpoints: s.endpoints }) + '\n');
      continue;
    }
    process.stdout.write(`  ${s.service.padEnd(9)} ${state.padEnd(12)} pid ${String(s.pid).padEnd(8)} config #${health.configGeneration ?? '?'}  ${Object.values(s.endpoints).join('  ')}\n`);
    if (health.lastConfigError) process.stdout.write(`    last refused config: ${health.lastConfigError}\n`);
  }
  return allOk ? 0 : 1;
}
