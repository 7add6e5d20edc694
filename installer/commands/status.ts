/**
 * `kith status`: is kith up, since when, and how is each service (live pid, current run,
 * restarts, back-off, health)? Of the `kith up` beside it (its data folder's run.json), or of a
 * paired appliance (--remote, --appliance or --host), asked by mutual TLS with the client
 * certificate `kith pair` gave this machine (the supervisor's GET /status, which probes each
 * service's health on the appliance itself).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readOwnerToken } from '../../platform/owner.ts';
import { askAppliance, REMOTE_HELP, REMOTE_OPTIONS, wantsRemote } from '../paired.ts';
import { findLeftovers, pidAlive, readRunFile, type RunInfo } from '../run-file.ts';
import { probeHealth, type ApplianceStatus, type Probe } from '../../platform/run-state.ts';

const HELP = `Usage: kith status [--data DIR] [--json]
       kith status --remote|--appliance NAME|--host ADDR --port N [--dir DIR] [--json]

Shows a running \`kith up\`: its pid and since when it runs, and for each service its live
pid, when its current run started, how many times it was restarted, whether it is
waiting to be restarted (back-off), its health, config generation and endpoints
(from <data>/run.json, which kith up keeps current, and each service's /healthz).
With --remote, --appliance or --host: the same of a paired appliance on the network, by
mutual TLS with this machine's client certificate from \`kith pair\`.

Options:
  --data DIR         the kith data folder (default: .kith)
${REMOTE_HELP}  --json             one JSON object per service
  -h, --help         this help

Exit codes: 0 every service healthy, 1 one is not, 2 no appliance answered, 3 kith is not
up (with --remote: the appliance refused or failed the request), 4 this machine is not
paired with that appliance, 64 usage error.
`;

/** "3m 12s" */
export function ago(fromMs: number, nowMs: number): string {
  let s = Math.max(0, Math.round((nowMs - fromMs) / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= size || parts.length > 0) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ');
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...REMOTE_OPTIONS,
  } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (wantsRemote(values)) {
    const asked = await askAppliance<ApplianceStatus>(values);
    if ('error' in asked) {
      process.stderr.write(`kith status: ${asked.error}\n`);
      return asked.code;
    }
    const { status: st, target } = asked;
    if (!values.json) process.stdout.write(`${st.appliance} (${target.host}, by mutual TLS):\n`);
    return show(st, st.probes, values.json === true);
  }
  const dataRoot = path.resolve(values.data ?? '.kith');
  const info = await readRunFile(dataRoot);
  if (!info || !pidAlive(info.pid)) {
    // A kith up that died without stopping (kill -9, a crash) may have left services running.
    const left = info ? findLeftovers(dataRoot, info) : [];
    if (values.json) process.stdout.write(JSON.stringify({ up: false, data: dataRoot, ...(left.length > 0 ? { leftovers: left } : {}) }) + '\n');
    else {
      process.stdout.write(`kith is not up (data folder ${dataRoot}); start it with ./kith up\n`);
      if (left.length > 0) process.stdout.write(`  kith up (pid ${info!.pid}) died and left ${left.map((l) => `${l.service} (pid ${l.pid})`).join(', ')} running; the next kith up stops them\n`);
    }
    return 3;
  }
  const token = await readOwnerToken(dataRoot);
  const probes = await Promise.all(info.services.map((s) => probeHealth(s, token)));
  return show(info, probes, values.json === true);
}

/** Print kith up's state and each service's; the exit code (0 all healthy, 1 not). */
function show(info: RunInfo, probes: Probe[], json: boolean): number {
  const values = { json };
  const now = Date.now();
  let allOk = true;
  if (!values.json) process.stdout.write(`kith is up (pid ${info.pid}, since ${info.started}, ${ago(Date.parse(info.started), now)})\n`);
  info.services.forEach((s, i) => {
    const { state, health } = probes[i] ?? { state: 'unknown', health: {} };
    if (state !== 'healthy') allOk = false;
    const restartInMs = s.restartAt ? Math.max(0, Date.parse(s.restartAt) - now) : undefined;
    if (values.json) {
      process.stdout.write(JSON.stringify({
        service: s.service, state, pid: s.pid ?? null, started: s.started, restarts: s.restarts,
        backoff: { waiting: s.state === 'backing-off', ...(restartInMs !== undefined ? { restartInMs, restartAt: s.restartAt } : {}), nextMs: s.backoffMs },
        ...(s.lastExit ? { lastExit: s.lastExit } : {}),
        configGeneration: health.configGeneration, lastConfigError: health.lastConfigError, ...(health.detail ? { detail: health.detail } : {}),
        endpoints: s.endpoints ?? {}, kith: { pid: info.pid, started: info.started },
      }) + '\n');
      return;
    }
    const pid = s.pid !== undefined ? `pid ${s.pid}` : 'no pid';
    const since = `since ${s.started} (${ago(Date.parse(s.started), now)})`;
    process.stdout.write(`  ${s.service.padEnd(9)} ${state.padEnd(12)} ${pid.padEnd(10)} ${since}  restarts ${s.restarts}  config #${health.configGeneration ?? '?'}\n`);
    if (s.endpoints) process.stdout.write(`    ${Object.values(s.endpoints).join('  ')}\n`);
    if (s.lastExit) process.stdout.write(`    last exit: ${s.lastExit.signal ?? `code ${s.lastExit.code}`} at ${s.lastExit.at}\n`);
    if (s.state === 'backing-off') process.stdout.write(`    back-off: restarting in ${restartInMs} ms (waits ${s.backoffMs} ms)\n`);
    else if (s.restarts > 0) process.stdout.write(`    back-off: the next restart would wait ${s.backoffMs} ms\n`);
    if (health.detail && state !== 'healthy') process.stdout.write(`    ${health.detail}\n`);
    if (health.lastConfigError) process.stdout.write(`    last refused config: ${health.lastConfigError}\n`);
  });
  return allOk ? 0 : 1;
}
