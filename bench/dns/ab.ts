/**
 * Two kith DNS bundles side by side in the same run, for a change whose effect is smaller
 * than the noise between runs of bench/dns (a few per cent): both answer the same load at
 * the same time on one CPU, with node-udp-echo as the third, so the host's speed of the
 * moment hits all three alike. Prints CPU per query of each, their ratios to echo, and
 * B/A (whole run and the median of the per-round ratios). A benchmark, not a test: exit 0
 * whatever the figures.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { badStarts, median, newStartAt } from '../stats.ts';
import { runDnsperf } from './dnsperf.ts';
import { authQueries, forwardQueries, upstreamZone, UPSTREAM_ZONE, ZONE, zoneFile, zoneModel } from './fixtures.ts';
import { cpuSeconds, startEcho, startKith, startNsd, type Running } from './servers.ts';

const HELP = `Usage: node bench/dns/ab.ts --a BUNDLE --b BUNDLE [options]

Runs two kith DNS bundles (e.g. main's and a change's, each made with bundleService into
its own folder) and node-udp-echo under the same dnsperf load, all three loaded at once in
each round (each by its own dnsperf), and prints CPU microseconds per query: A, B, echo,
A/echo, B/echo and B/A. Pinned as bench/dns: dnsperf (and NSD) on CPU 0, the servers on
CPU 1, where they share the host's speed of the moment.

Options:
  --a PATH, --b PATH   the two dns.mjs bundles
  --test T             forwarding (default; cached answers from an NSD upstream) or
                       authoritative (bench/dns's generated zone)
  --rounds N           rounds (default 8)
  --instances N        fresh processes of A, B and echo, the rounds split evenly among
                       them (default 4): each process keeps its own speed for its life
                       (the same bundle as A and B came out 8 % apart, either way, with one)
  --seconds N          seconds per round (per server and round with --apart; default 3)
  --apart              load one server at a time instead, back to back, every other round
                       in reverse order (a round's ratio then moves ~0.2 with the host)
  -h, --help           this help
`;

const { values: a } = parseArgs({
  options: {
    a: { type: 'string' }, b: { type: 'string' }, test: { type: 'string', default: 'forwarding' },
    rounds: { type: 'string', default: '8' }, instances: { type: 'string', default: '4' }, seconds: { type: 'string', default: '3' }, apart: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (!a.a || !a.b || !['forwarding', 'authoritative'].includes(a.test!)) {
  process.stderr.write('ab: give --a and --b (two dns.mjs bundles) and --test forwarding|authoritative; see --help\n');
  process.exit(2);
}
const rounds = Number(a.rounds);
const seconds = Number(a.seconds);
const instances = Number(a.instances);
const startsWrong = badStarts(instances, rounds);
if (startsWrong) {
  process.stderr.write(`ab: ${startsWrong}\n`);
  process.exit(2);
}
const work = await fsp.mkdtemp(path.join(tmpdir(), 'kith-bench-dns-ab-'));
const running: Running[] = [];
try {
  const file = path.join(work, 'queries.txt');
  const bundles = [['A', path.resolve(a.a)], ['B', path.resolve(a.b)]] as const;
  let startKiths: (() => Promise<Running>)[];
  if (a.test === 'forwarding') {
    await fsp.writeFile(file, forwardQueries(2000).measure);
    const up = await startNsd(path.join(work, 'nsd'), { [UPSTREAM_ZONE]: upstreamZone(2000) }, '0', `ns1.${UPSTREAM_ZONE}`);
    running.push(up);
    startKiths = bundles.map(([name, bundle]) => async () => ({ ...(await startKith({ bundle, dir: path.join(work, name), zones: {}, cpus: '1', probe: `ns1.${UPSTREAM_ZONE}`, dnsYaml: `upstreams: ["127.0.0.1:${up.port}"]\ncache:\n  maxEntries: 50000\n` })), name }));
  } else {
    const model = zoneModel(2000);
    await fsp.writeFile(file, authQueries(model, 20_000).text);
    startKiths = bundles.map(([name, bundle]) => async () => ({ ...(await startKith({ bundle, dir: path.join(work, name), zones: { [ZONE]: zoneFile(model) }, cpus: '1', probe: `ns1.${ZONE}`, dnsYaml: 'upstreams: []\nlimits:\n  zoneRecords: 10000000\n' })), name }));
  }
  const starters = [...startKiths, () => startEcho('1')];
  const perf = (s: Running, extra: Partial<Parameters<typeof runDnsperf>[0]>) =>
    runDnsperf({ server: '127.0.0.1', port: s.port, queryFile: file, clients: 4, cpus: '0', ...extra });
  /** Start every server anew and warm it: every query once (slowly, so a forwarder's outstanding-query cap is not hit), once at full speed, then 2 s of load. */
  const startAll = async (): Promise<Running[]> => {
    const out: Running[] = [];
    for (const start of starters) {
      const s = await start();
      running.push(s);
      out.push(s);
    }
    for (const s of out) {
      await perf(s, { maxRuns: 1, maxQps: 20_000 });
      await perf(s, { maxRuns: 1 });
      await perf(s, { seconds: 2 });
    }
    return out;
  };
  let servers = await startAll();
  const us = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    if (newStartAt(r, rounds, instances)) {
      await Promise.all(running.splice(running.length - servers.length).map((s) => s.stop()));
      servers = await startAll();
    }
    const slots = a.apart ? (r % 2 === 0 ? servers : [...servers].reverse()).map((s) => [s]) : [servers];
    for (const slot of slots) {
      const c0 = slot.map((s) => cpuSeconds(s.child.pid)!);
      const res = await Promise.all(slot.map((s) => perf(s, { seconds })));
      const c1 = slot.map((s) => cpuSeconds(s.child.pid)!);
      slot.forEach((s, i) => us.get(s.name)!.push(((c1[i]! - c0[i]!) * 1e6) / Math.max(1, res[i]!.completed)));
    }
    process.stderr.write(`round ${r + 1}: ${[...us].map(([n, v]) => `${n} ${v.at(-1)!.toFixed(2)}`).join('  ')} us/q\n`);
  }
  const sum = (v: number[]) => v.reduce((x, y) => x + y, 0);
  const A = us.get('A')!, B = us.get('B')!, E = us.get(servers.at(-1)!.name)!;
  process.stdout.write(
    `${a.test}, ${rounds} rounds of ${seconds} s (${a.apart ? 'one server at a time' : 'all loaded at once'}) over ${instances} instance${instances === 1 ? '' : 's'}: CPU us/query A ${(sum(A) / rounds).toFixed(2)}, B ${(sum(B) / rounds).toFixed(2)}, echo ${(sum(E) / rounds).toFixed(2)}\n` +
    `A/echo ${(sum(A) / sum(E)).toFixed(3)}  B/echo ${(sum(B) / sum(E)).toFixed(3)}  B/A ${(sum(B) / sum(A)).toFixed(3)} (median of per-round B/A ${median(A.map((x, i) => B[i]! / x)).toFixed(3)})\n`,
  );
} finally {
  await Promise.all(running.map((r) => r.stop()));
  await fsp.rm(work, { recursive: true, force: true });
}
