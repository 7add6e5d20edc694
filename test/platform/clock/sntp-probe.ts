/**
 * Run inside the test's network namespace (sntp-chrony.test.ts): PID 1's timekeeper against
 * the chronyd there, with the clock-setting step injected (the host's clock is never set).
 * argv: SCENARIO DIR. Prints one JSON line with what happened.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readClockState } from '../../../platform/clock-state.ts';
import { encodeSaved } from '../../../platform/boot/clock.ts';
import { restoreClock, Timekeeper } from '../../../platform/boot/timekeeper.ts';

const [scenario, dir] = process.argv.slice(2) as [string, string];
const here = join(dir, scenario);
mkdirSync(here, { recursive: true });
const savedFile = join(here, 'saved.json');
const stateFile = join(here, 'run/clock.json');
// 'behind': the box's clock is a day behind the real time (as after a boot without network).
// 'future-saved': the time saved at the last run is a day after what the server says.
if (scenario === 'future-saved') writeFileSync(savedFile, encodeSaved(Date.now() + 86_400_000));
let skew = scenario === 'behind' ? -86_400_000 : 0;
const sets: number[] = [];
const logs: string[] = [];
const io = {
  now: () => Date.now() + skew,
  setClock: (ms: number) => { sets.push(ms); skew = ms - Date.now(); return 0; },
  log: (msg: string, f: Record<string, unknown> = {}) => logs.push(`${msg} ${JSON.stringify(f)}`),
};
const boot = restoreClock({ ...io, savedFile });
const keeper = new Timekeeper({
  ...io, savedFile, stateFile,
  // No DHCP here and no configured server: the pool name, resolved through the namespace's dnsmasq.
  dhcpServers: () => [], servers: [], pool: 'pool.ntp.kith.test', resolvers: () => ['127.0.0.1'],
  timeoutMs: 1000,
}, boot);
const until = Date.now() + 20_000;
let ok = false;
let attempts = 0;
// When the last attempt began: the server read its clock after this, so the step and the
// offset are right to within the time since (the test's bound, whatever the machine's speed).
let lastStart = 0;
let lastMs = 0;
while (!ok && Date.now() < until) {
  attempts++;
  lastStart = Date.now();
  ok = await keeper.syncOnce();
  lastMs = Date.now() - lastStart;
  if (!ok) await new Promise((r) => setTimeout(r, 500));
  if (scenario === 'future-saved' && attempts >= 6) break;
}
keeper.stop();
process.stdout.write(JSON.stringify({ ok, attempts, sets, lastStart, lastMs, realNow: Date.now(), state: readClockState(stateFile), logs }) + '\n');
