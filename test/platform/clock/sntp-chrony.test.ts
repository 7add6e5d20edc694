/**
 * PID 1's SNTP client (platform/boot/timekeeper.ts, sntp.ts) against a real NTP server:
 * Debian's chronyd serving its local clock (`local stratum 8`, never touching the host
 * clock: -x) in a network namespace this test makes (unshare -rn: only its own loopback),
 * with dnsmasq there as the resolver for the pool name. The clock-setting step is
 * injected, so the host's clock is never changed.
 * Needs: chrony, dnsmasq-base, util-linux (unshare), iproute2.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = ['chronyd', 'dnsmasq', 'unshare', 'ip'];
const missing = tools.filter((t) => !have(t));
const PROBE = join(import.meta.dirname, 'sntp-probe.ts');

interface ProbeResult { ok: boolean; attempts: number; sets: number[]; lastStart: number; lastMs: number; realNow: number; state: { synchronised: boolean; source: string; server?: string; stratum?: number; offsetMs?: number; lastError?: string }; logs: string[] }

describe.skipIf(missing.length > 0)(`SNTP client against chronyd in a network namespace (needs ${tools.join(', ')})`, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kith-chrony-'));
    writeFileSync(join(dir, 'chrony.conf'), [
      'local stratum 8', 'allow 127.0.0.1', 'bindaddress 127.0.0.1', 'port 123', 'cmdport 0',
      `pidfile ${dir}/chronyd.pid`, `driftfile ${dir}/drift`, '',
    ].join('\n'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** chronyd and dnsmasq in a fresh namespace, then the probe; both daemons end with it. */
  function probe(scenario: string): ProbeResult {
    const script = [
      'set -e', 'ip link set lo up',
      `chronyd -x -d -U -u root -L 0 -f ${dir}/chrony.conf > ${dir}/chronyd-${scenario}.log 2>&1 & c=$!`,
      `dnsmasq -k -d --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --address=/pool.ntp.kith.test/127.0.0.1 --pid-file --user=root > ${dir}/dnsmasq-${scenario}.log 2>&1 & d=$!`,
      'set +e', `"${process.execPath}" "${PROBE}" ${scenario} ${dir}`, 'r=$?', 'kill $c $d', 'wait', 'exit $r',
    ].join('\n');
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as ProbeResult;
  }

  it('sets a clock that is a day behind from chronyd, found through the pool name', () => {
    const r = probe('behind');
    process.stdout.write(`chronyd: synchronised after ${r.attempts} attempt(s), the last taking ${r.lastMs} ms; offset ${r.state.offsetMs} ms; stepped to ${r.sets.length ? Math.round(r.sets.at(-1)! - r.lastStart) : '-'} ms after that attempt began\n`);
    expect(r.ok, r.logs.join('\n')).toBe(true);
    expect(r.state).toMatchObject({ synchronised: true, source: 'ntp', server: '127.0.0.1', stratum: 8 });
    // chronyd serves this machine's clock, read during the last attempt, and an NTP offset is
    // right to within half the round trip: the offset within that attempt's length, the step
    // within its window widened by its length (plus rounding), however slow the machine.
    expect(Math.abs(r.state.offsetMs! - 86_400_000)).toBeLessThanOrEqual(r.lastMs + 2);
    expect(r.sets).toHaveLength(1);
    expect(r.sets[0]!).toBeGreaterThanOrEqual(r.lastStart - r.lastMs - 2);
    expect(r.sets[0]!).toBeLessThanOrEqual(r.lastStart + 2 * r.lastMs + 2);
  }, 70_000);

  it('refuses chronyd\'s time when it is a day before the time saved at the last run', () => {
    const r = probe('future-saved');
    expect(r.ok).toBe(false);
    // Only the boot-time restore moved the clock (forward, to the saved time).
    expect(r.sets).toHaveLength(1);
    expect(r.sets[0]!).toBeGreaterThan(r.realNow + 86_000_000);
    expect(r.state.synchronised).toBe(false);
    expect(r.logs.join('\n')).toMatch(/ntp reply refused .*time never goes backwards across boots/);
  }, 70_000);
});
