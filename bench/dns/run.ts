/**
 * DNS benchmark (issue 4): kith DNS (the sealed bundle) beside NSD and dnsmasq, measured in
 * one run with dnsperf over UDP:
 *
 * 1. authoritative: one generated zone (A, AAAA, MX, TXT, CNAME, SRV, a wildcard,
 *    delegations with glue) served by kith, NSD and dnsmasq (translated into dnsmasq
 *    options), the same query file against each;
 * 2. cached forwarding: kith and dnsmasq forwarding to a local NSD upstream, caches warmed
 *    first, then the same cached names against each.
 *
 * Targets: kith ≥ 1.0× dnsmasq and ≥ 0.5× NSD authoritative qps; ≥ 1.0× dnsmasq cached
 * forwarding qps; kith's CPU per query ≤ 1.10× node-udp-echo's in both tests (issue 17),
 * read with the two loaded together on one CPU. A benchmark, not a test: exit 0 whatever
 * the figures; non-zero only when something could not run.
 *
 *   node bench/dns/run.ts [--seconds 10] [--clients 4] [--json] [--help]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { bundleService } from '../../platform/build/bundle.ts';
import { badStarts, median, newStartAt, startOfRound } from '../stats.ts';
import { ask, compare, type Agreement } from './agree.ts';
import { combine, runDnsperf, type Combined, type PerfResult } from './dnsperf.ts';
import { authQueries, dnsmasqOptions, forwardQueries, MIX, upstreamZone, UPSTREAM_ZONE, ZONE, zoneFile, zoneModel } from './fixtures.ts';
import { bundleForProfile, formatSummary, summarize } from './profile.ts';
import { cpuSeconds, startDnsmasq, startEcho, startKith, startNsd, type Running } from './servers.ts';

const HELP = `Usage: node bench/dns/run.ts [options]

Measures kith DNS (the sealed bundle) with dnsperf over UDP against NSD and dnsmasq:
authoritative answers from one generated zone, and cached forwarding (kith and dnsmasq
forwarding to a local NSD, caches warmed first). Servers run one at a time under load;
each server's time is split into interleaved rounds so background load hits all alike
(every other round in reverse order, so no server always goes first). Each round ends
(or, reversed, begins) with kith and node-udp-echo loaded at once on the server CPU, each
by its own dnsperf: kith's CPU per query over echo's (target <= 1.10x) is read off those
slots, where the host's speed of the moment is the same for both.

Options:
  --seconds N     measured seconds per server and test (default 20)
  --clients N     dnsperf clients (-c; default 4)
  --rounds N      interleaved rounds the seconds are split into (default 10); a round
                  may be as short as 0.25 s
  --instances N   fresh processes of every server under test, the rounds split evenly
                  among them (default 5): a process keeps its own speed for its whole
                  life (two identical kith bundles in one run came out up to 8 % apart,
                  either way), so a run's figures average over N of them, as JMH forks N
                  JVMs; each instance is warmed up like the first
  --hosts N       host names in the generated zone (default 2000)
  --no-pin        do not pin with taskset (default: dnsperf and the upstream on CPU 0,
                  the server under test on CPU 1, when there are 2+ CPUs)
  --no-echo       skip the calibration row: node-udp-echo, a Node dgram server that
                  sends each query back as its answer (no DNS work), i.e. the ceiling
                  of any Node UDP server here (kith's CPU per query over echo's has a
                  target of <= 1.10x), and the slot where kith and echo run together
  --control       a second, identical node-udp-echo beside the first (alone, and in the
                  together slot), its ratio to the first computed as kith's: the noise
                  of this run's estimates (1.00 with no noise)
  --qps N         offer each server N queries a second (dnsperf -Q) instead of all it
                  takes: CPU per query compared at the same load (at saturation a
                  slower server batches more datagrams per wake-up, and cpu us/q moves)
  --warmup N      seconds of load on each server before the measured rounds (default 1),
                  after one pass through the whole query file (every query asked once:
                  the measured rounds see a warm server, whatever its speed)
  --trace-gc      run kith and node-udp-echo with --trace-gc: collections and their pauses
                  per round, to tell warm-up from garbage collection in the figures
  --bundle PATH   use this kith DNS bundle instead of building one into build/bench/dns/
  --profile       run kith (a readable bundle, unless --bundle) with --cpu-prof; the
                  .cpuprofile files are kept and summarised on stderr (hot functions
                  with source file:line; also: node bench/dns/profile.ts FILE BUNDLE)
  --keep          keep the temp folder (configs, zone, query files, logs)
  --json          print the results as JSON instead of a table
  -h, --help      this help

Needs the Debian packages dnsperf, nsd and dnsmasq-base (and util-linux's taskset).
Progress goes to stderr. PASS/FAIL is printed per target; the exit status is 0 either way,
non-zero only if something could not run.
`;

const repoRoot = path.resolve(import.meta.dirname, '../..');
/** Queries from the top of each query file asked of every server before the load, to compare answers. */
const SAMPLE = 300;
const progress = (msg: string) => process.stderr.write(`[bench/dns] ${msg}\n`);

type Test = 'authoritative' | 'forwarding';
interface Row extends Combined { test: Test; server: string }
/** ratio: of measured qps (the target); perCpuRatio: of qps per CPU-second, steadier on a shared machine. */
interface Target { name: string; ratio: number; perCpuRatio?: number; need: number; pass: boolean }

function have(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, cmd)));
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    options: {
      seconds: { type: 'string', default: '20' },
      clients: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '10' },
      instances: { type: 'string', default: '5' },
      hosts: { type: 'string', default: '2000' },
      'no-pin': { type: 'boolean', default: false },
      'no-echo': { type: 'boolean', default: false },
      control: { type: 'boolean', default: false },
      warmup: { type: 'string', default: '1' },
      qps: { type: 'string' },
      'trace-gc': { type: 'boolean', default: false },
      bundle: { type: 'string' },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (a.help) { process.stdout.write(HELP); return 0; }
  const seconds = Number(a.seconds);
  const clients = Number(a.clients);
  const rounds = Number(a.rounds);
  const instances = Number(a.instances);
  const hosts = Number(a.hosts);
  const warmup = Number(a.warmup);
  const traceGc = a['trace-gc'];
  const offered = a.qps === undefined ? undefined : Number(a.qps);
  if (offered !== undefined && !(offered > 0)) throw new Usage('--qps must be a positive number');
  if (!Number.isFinite(warmup) || warmup < 0) throw new Usage('--warmup must be 0 or more seconds');
  for (const [k, v] of [['seconds', seconds], ['clients', clients], ['rounds', rounds], ['hosts', hosts]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new Usage(`--${k} must be a positive number`);
  }
  const startsWrong = badStarts(instances, rounds);
  if (startsWrong) throw new Usage(startsWrong);
  // Rounds may be shorter than a second (dnsperf -l takes fractions): the host's speed
  // moves from one second to the next, and kith and echo measured closer together in time
  // see more of the same host.
  const perRound = seconds / rounds;
  if (!Number.isInteger(rounds) || perRound < 0.25) throw new Usage('--rounds must be a whole number, and --seconds / --rounds at least 0.25');

  const missing = ['dnsperf', 'nsd', 'dnsmasq'].filter((c) => !have(c) && !have(`../sbin/${c}`) && !existsSync(`/usr/sbin/${c}`));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt-get install -y dnsperf nsd dnsmasq-base`);
  const pin = !a['no-pin'] && availableParallelism() >= 2 && have('taskset');
  const loadCpu = pin ? '0' : undefined;
  const serverCpu = pin ? '1' : undefined;

  let bundle = a.bundle ? path.resolve(a.bundle) : '';
  if (bundle && !existsSync(bundle)) throw new Error(`no bundle at ${bundle}`);
  if (!bundle && a.profile) {
    progress('bundling services/dns/main.ts, not minified (for --profile)');
    bundle = await bundleForProfile(path.join(repoRoot, 'build/bench/dns/profile'));
  } else if (!bundle) {
    progress('bundling services/dns/main.ts');
    bundle = (await bundleService('dns', path.join(repoRoot, 'services/dns/main.ts'), path.join(repoRoot, 'build/bench/dns/dist'))).outfile;
  }

  const loadBefore = loadavg()[0]!;
  const work = await fsp.mkdtemp(path.join(tmpdir(), 'kith-bench-dns-'));
  const running: Running[] = [];
  const stopAll = async () => { await Promise.all(running.splice(0).map((r) => r.stop())); };
  const profiles: string[] = [];
  try {
    // Fixtures.
    const model = zoneModel(hosts);
    const zone = zoneFile(model);
    const q = authQueries(model, 20_000);
    const dm = dnsmasqOptions(model, q.text);
    const authFile = path.join(work, 'auth-queries.txt');
    await fsp.writeFile(authFile, q.text);
    const upNames = 2000;
    const fq = forwardQueries(upNames);
    const warmFile = path.join(work, 'forward-warm.txt');
    const fwdFile = path.join(work, 'forward-queries.txt');
    await fsp.writeFile(warmFile, fq.warm);
    await fsp.writeFile(fwdFile, fq.measure);
    const records = zone.split('\n').filter((l) => / IN /.test(l)).length;
    progress(`zone ${ZONE}: ${records} records; ${q.text.split('\n').length - 1} queries; dnsmasq: ${dm.summary}`);

    // Every server has a slot of its own in a round; then kith and the echo servers share
    // one more, loaded at once on the server CPU (each by its own dnsperf), so that whatever
    // the host does in that moment it does to all of them alike: the kith/echo target is
    // read off that slot (see TOGETHER below).
    const slotsOf = (live: Running[]): Running[][] => {
      const k = live.find((s) => s.name === 'kith');
      const echoes = live.filter(isEcho);
      return [...live.map((s) => [s]), ...(k && echoes.length ? [[k, ...echoes]] : [])];
    };
    const perf = (server: Running, file: string, extra: Partial<Parameters<typeof runDnsperf>[0]> = {}) =>
      runDnsperf({ server: '127.0.0.1', port: server.port, queryFile: file, clients, cpus: loadCpu, ...extra });

    /**
     * Warm each server up (`prepare`, then JIT and caches: every query of the file once, so
     * a slower server is not measured on questions a faster one already saw, then --warmup
     * seconds of load); then measure in interleaved rounds, split over --instances fresh
     * starts of every server (`starters[i]` starts another `servers[i]`). `track` reads
     * counters of one server, summed over the measured rounds of every instance.
     */
    const measure = async (
      test: Test, servers: Running[], starters: (() => Promise<Running>)[], file: string,
      prepare?: (s: Running) => Promise<void>,
      track?: { server: string; read: (s: Running) => Promise<Record<string, number>> },
    ): Promise<{ rows: Row[]; tracked: Record<string, number>; live: Running[] }> => {
      const live = [...servers];
      const warm = async (s: Running, fresh: boolean) => {
        if (fresh && prepare) await prepare(s);
        if (warmup > 0) await perf(s, file, { maxRuns: 1 });
        if (warmup > 0) await perf(s, file, { seconds: warmup });
      };
      const tracked: Record<string, number> = {};
      let trackFrom: Record<string, number> = {};
      const readTracked = async () => {
        const s = track && live.find((x) => x.name === track.server);
        return s ? track!.read(s) : ({} as Record<string, number>);
      };
      const trackStart = async () => { trackFrom = await readTracked(); };
      const trackEnd = async () => {
        for (const [k, v] of Object.entries(await readTracked())) tracked[k] = (tracked[k] ?? 0) + v - (trackFrom[k] ?? 0);
      };
      // The first instance was prepared by the caller (and its answers checked).
      for (const s of live) await warm(s, false);
      await trackStart();
      // Rows in the order of round 1's slots (not reversed), the together slot's last.
      const runs = new Map<string, PerfResult[]>();
      for (let r = 0; r < rounds; r++) {
        if (newStartAt(r, rounds, instances)) {
          await trackEnd();
          progress(`${test}: instance ${startOfRound(r, rounds, instances) + 1}/${instances}: fresh processes of every server under test`);
          for (let i = 0; i < live.length; i++) {
            const old = live[i]!;
            await old.stop();
            running.splice(running.indexOf(old), 1);
            const fresh = await starters[i]!();
            running.push(fresh);
            live[i] = fresh;
            await warm(fresh, true);
          }
          await trackStart();
        }
        // Every other round in reverse (A B C, C B A, ...): no server always goes first or
        // last, so a position's effect (the idle time before a round, load that rises or
        // falls across a round) is spread over all of them rather than kept by one.
        const slots = slotsOf(live);
        for (const slot of r % 2 === 0 ? slots : [...slots].reverse()) {
          progress(`${test}: ${slot.map((x) => x.name).join(' + ')}, round ${r + 1}/${rounds} (${+perRound.toFixed(2)} s)`);
          const cpu0 = slot.map((s) => cpuSeconds(s.child.pid));
          const gc0 = slot.map((s) => s.gc?.());
          const results = await Promise.all(slot.map((s) => perf(s, file, { seconds: perRound, latencies: true, ...(offered ? { maxQps: offered } : {}) })));
          const cpu1 = slot.map((s) => cpuSeconds(s.child.pid));
          const gc1 = slot.map((s) => s.gc?.());
          slot.forEach((s, i) => {
            const res = results[i]!;
            const [c0, c1, g0, g1] = [cpu0[i], cpu1[i], gc0[i], gc1[i]];
            if (c0 !== undefined && c1 !== undefined) res.serverCpu = c1 - c0;
            if (g0 && g1) res.gc = { count: g1.count - g0.count, ms: g1.ms - g0.ms };
            const key = slot.length > 1 ? togetherName(s.name) : s.name;
            if (!runs.has(key)) runs.set(key, []);
            runs.get(key)!.push(res);
            progress(`  ${key}: ${Math.round(res.qps)} qps, ${res.lost} lost${res.serverCpu !== undefined ? `, server CPU ${Math.round((100 * res.serverCpu) / res.runSeconds)}%, ${((res.serverCpu * 1e6) / Math.max(1, res.completed)).toFixed(2)} us/q` : ''}${res.gc ? `, ${res.gc.count} GCs ${res.gc.ms.toFixed(1)} ms` : ''}`);
          });
        }
      }
      await trackEnd();
      return { rows: [...runs].map(([name, v]) => ({ test, server: name, ...combine(v) })), tracked, live };
    };

    // 1. Authoritative.
    progress('starting kith, NSD and dnsmasq (authoritative)');
    const probe = `ns1.${ZONE}`;
    // kith runs with its defaults (but for a zone-size limit that any --hosts fits under),
    // response rate limiting on: the load comes from
    // 127.0.0.1, a home-network client (recursion.allow), so every answer takes the RRL
    // check and none is limited, as NSD here runs with its RRL off and dnsmasq has none.
    const startKithA = () => startKith({ bundle, dir: path.join(work, 'kith-auth'), zones: { [ZONE]: zone }, dnsYaml: 'upstreams: []\nlimits:\n  zoneRecords: 10000000\n', cpus: serverCpu, profile: a.profile, traceGc, probe });
    const kith = await startKithA();
    running.push(kith);
    const startNsdA = () => startNsd(path.join(work, 'nsd-auth'), { [ZONE]: zone }, serverCpu, probe);
    const nsd = await startNsdA();
    running.push(nsd);
    const startDnsmasqA = () => startDnsmasq(path.join(work, 'dnsmasq-auth'), dm.text, serverCpu, probe);
    const dmA = await startDnsmasqA();
    running.push(dmA);
    const echoStarters = a['no-echo'] ? [] : [() => startEcho(serverCpu, traceGc), ...(a.control ? [() => startEcho(serverCpu, traceGc, 'node-udp-echo-2')] : [])];
    const echoes = async () => {
      const out: Running[] = [];
      for (const start of echoStarters) out.push(await start());
      return out;
    };
    const echoA = await echoes();
    running.push(...echoA);
    const sample = q.text.split('\n').filter(Boolean).slice(0, SAMPLE);
    const agreement: Agreement[] = [];
    const check = async (servers: Running[], ref: Running, questions: string[], ignoreAa: boolean) => {
      const refAnswers = await ask(ref.port, questions);
      for (const s of servers) {
        if (s === ref || isEcho(s)) continue;
        const a = compare(`${s.name} (${ignoreAa ? 'forwarding' : 'authoritative'})`, questions, await ask(s.port, questions), refAnswers, ignoreAa);
        agreement.push(a);
        progress(`${a.server}: ${a.asked - a.differ}/${a.asked} sample answers agree with ${ref.name}${a.examples.length ? `; e.g. ${a.examples.join('; ')}` : ''}`);
      }
    };
    await check(running, nsd, sample, false);
    // kith right before echo (and after it in the reversed rounds): the two whose ratio is
    // a target are measured back to back, under the same moment's load.
    const { rows: authRows } = await measure('authoritative', [nsd, dmA, kith, ...echoA], [startNsdA, startDnsmasqA, startKithA, ...echoStarters], authFile);
    await stopAll();
    if (a.profile) profiles.push(...(await fsp.readdir(kith.dataDir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(kith.dataDir, f)));

    // 2. Cached forwarding, to an NSD upstream on the load generator's CPU (idle once warm).
    progress('starting the upstream (NSD), kith and dnsmasq (forwarding)');
    const upstream = await startNsd(path.join(work, 'nsd-upstream'), { [UPSTREAM_ZONE]: upstreamZone(upNames) }, loadCpu, `ns1.${UPSTREAM_ZONE}`);
    running.push(upstream);
    const upProbe = `name0001.${UPSTREAM_ZONE}`;
    const startKithF = () => startKith({
      bundle, dir: path.join(work, 'kith-forward'), zones: {}, cpus: serverCpu, profile: a.profile, traceGc, probe: upProbe,
      dnsYaml: `upstreams: ["127.0.0.1:${upstream.port}"]\ncache:\n  maxEntries: 50000\n`,
    });
    const kithF = await startKithF();
    running.push(kithF);
    // dnsmasq caches A, AAAA, CNAME and SRV only unless told (--cache-rr, 2.90): TXT too, to be fair.
    const startDnsmasqF = () => startDnsmasq(path.join(work, 'dnsmasq-forward'), `server=127.0.0.1#${upstream.port}\ncache-size=10000\ncache-rr=TXT\n`, serverCpu, upProbe);
    const dmF = await startDnsmasqF();
    running.push(dmF);
    const fwdServers = [kithF, dmF];
    // The calibration row again, under this test's load, for kith/echo per CPU.
    const echoF = await echoes();
    running.push(...echoF);
    const warmCache = async (s: Running) => {
      if (isEcho(s)) return;
      progress(`forwarding: warming ${s.name}'s cache (${fq.distinct} names, twice)`);
      const w = await perf(s, warmFile, { maxRuns: 2, maxQps: 5000 });
      if (w.completed < 2 * fq.distinct) progress(`  warning: only ${w.completed} of ${2 * fq.distinct} warm-up queries answered`);
    };
    for (const s of fwdServers) await warmCache(s);
    await check(fwdServers, upstream, fq.measure.split('\n').filter(Boolean).slice(0, SAMPLE), true);
    const fwd = await measure('forwarding', [dmF, kithF, ...echoF], [startDnsmasqF, startKithF, ...echoStarters], fwdFile, warmCache, {
      server: 'kith', read: (s) => kithCacheCounters((s as Running & { health: string }).health),
    });
    const fwdRows = fwd.rows;
    const kithCache = fwd.tracked;
    fwd.live.find((s) => s.name === 'dnsmasq')?.child.kill('SIGUSR1'); // dnsmasq logs its counters
    await new Promise((r) => setTimeout(r, 300));
    await stopAll();
    if (a.profile) profiles.push(...(await fsp.readdir(kithF.dataDir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(kithF.dataDir, f)));
    const dnsmasqStats = await readDnsmasqStats(dmF.log);

    // Report.
    const rows = [...authRows, ...fwdRows];
    const row = (t: Test, s: string) => rows.find((r) => r.test === t && r.server === s);
    const target = (name: string, t: Test, num: string, den: string, need: number): Target => {
      const a = row(t, num);
      const b = row(t, den);
      const ratio = a && b && b.qps > 0 ? a.qps / b.qps : 0;
      const perCpu = a?.cpuUsPerQuery && b?.cpuUsPerQuery ? b.cpuUsPerQuery / a.cpuUsPerQuery : undefined;
      return { name, ratio, ...(perCpu !== undefined ? { perCpuRatio: perCpu } : {}), need, pass: ratio >= need };
    };
    // kith's CPU per query against Node's own floor (node-udp-echo), in each test, loaded
    // together (the target) and back to back; with --control, the second echo's by the same
    // estimates (the run's noise).
    const perEcho = (server: string): Ratios => {
      const both = (t: Test) => ({
        together: overEcho(row(t, togetherName(server)), row(t, togetherName('node-udp-echo'))),
        apart: overEcho(row(t, server), row(t, 'node-udp-echo')),
      });
      return { authoritative: both('authoritative'), forwarding: both('forwarding') };
    };
    const echoRatios = perEcho('kith');
    const controlRatios = a.control ? perEcho('node-udp-echo-2') : undefined;
    const targets = [
      target('authoritative kith/dnsmasq', 'authoritative', 'kith', 'dnsmasq', 1.0),
      target('authoritative kith/NSD', 'authoritative', 'kith', 'nsd', 0.5),
      target('cached forwarding kith/dnsmasq', 'forwarding', 'kith', 'dnsmasq', 1.0),
    ];
    const setup = {
      seconds: perRound * rounds, rounds, instances, clients, transport: 'udp', ...(offered ? { offered } : {}),
      loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0]!.toFixed(2)), cpus: availableParallelism() },
      pinning: pin ? 'dnsperf and the upstream NSD on CPU 0, the server under test on CPU 1 (taskset)' : 'none',
      zone: { origin: ZONE, records, hosts, queryMix: Object.fromEntries(MIX.map(([c, share]) => [c, share])) },
      dnsmasq: { authoritative: dm.summary, forwarding: 'server=127.0.0.1#UPSTREAM, cache-size=10000, cache-rr=TXT, no-resolv, no-hosts' },
      nsd: 'server-count 1, RRL off',
      kith: 'dns.yaml defaults: RRL on; the load comes from 127.0.0.1, in recursion.allow (the home network), so every answer takes the RRL check and none is limited',
      kithCpuPerQueryOverEcho: echoRatios,
      ...(controlRatios ? { secondEchoOverEcho: controlRatios } : {}),
      forwarding: { upstream: `NSD, zone ${UPSTREAM_ZONE}, ${upNames} names`, distinctQueries: fq.distinct, kithCacheDuringMeasure: kithCache, dnsmasqStats },
      agreement,
      bundle,
      ...(profiles.length ? { profiles } : {}),
    };
    for (const pf of profiles) progress(`${pf}\n${formatSummary(summarize(pf, bundle, 30))}`);
    if (a.json) process.stdout.write(JSON.stringify({ setup, results: rows.map(({ rounds: rr, ...r }) => ({ ...r, roundsQps: rr })), targets }, null, 2) + '\n');
    else process.stdout.write(table(setup, rows, targets, agreement) + echoLines(rows, echoRatios, controlRatios) + `Forwarding served from cache: kith cache counters over the measured rounds ${JSON.stringify(kithCache)}; dnsmasq: ${dnsmasqStats || 'no stats'}\n`);
    return 0;
  } finally {
    await stopAll();
    if (a.keep || a.profile) progress(`kept ${work}`);
    else await fsp.rm(work, { recursive: true, force: true });
  }
}

/** kith's own cache counters (the forwarder's hit/miss/coalesced, and the response cache's hits), from its health endpoint. */
async function kithCacheCounters(health: string): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`${health}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^kith_dns_cache_total\{result="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
    // Answers the response cache gave before the forwarder's record cache was asked at all.
    const responses = /^kith_dns_response_cache_hits_total (\d+)/m.exec(text);
    if (responses) out.responseCacheHit = Number(responses[1]);
    return out;
  } catch {
    return {};
  }
}

/** dnsmasq's counters, logged on SIGUSR1. */
async function readDnsmasqStats(log: string): Promise<string> {
  try {
    const text = await fsp.readFile(log, 'utf8');
    return text.split('\n').filter((l) => /queries forwarded|cache size/.test(l)).map((l) => l.replace(/^.*?dnsmasq\[\d+\]: /, '')).join('; ');
  } catch {
    return '';
  }
}

/**
 * A server's CPU per query over echo's: the whole run's (CPU summed over the rounds, over
 * the answers summed). The rounds' own ratios and their median are given beside it; the
 * median is not the estimate (against --control it strayed further from 1.00 than the
 * whole run's).
 */
interface OverEcho { median: number; wholeRun: number; perRound: number[] }

function overEcho(x: Row | undefined, echo: Row | undefined): OverEcho | undefined {
  const xs = x?.roundsCpuUsPerQuery;
  const es = echo?.roundsCpuUsPerQuery;
  if (!xs || !es || xs.length !== es.length || !x.cpuUsPerQuery || !echo.cpuUsPerQuery) return undefined;
  const perRound = xs.map((v, i) => v / es[i]!);
  return { median: median(perRound), wholeRun: x.cpuUsPerQuery / echo.cpuUsPerQuery, perRound };
}

/**
 * TOGETHER: the kith/echo target is read off the slot where kith and echo are loaded at
 * the same time on the same CPU. Measured back to back instead (each alone, one right after
 * the other), the host's speed moved between the two: a round's ratio had a standard
 * deviation of ~0.2, and a second echo against the first (--control) crossed 1.10 as often
 * as kith did. Loaded together, in two runs, the control's rounds kept within 0.95–1.03
 * and its runs at 0.99–1.00, on a host whose own speed moved ±30 % between rounds (in
 * the same runs, back to back: rounds 0.77–1.59). Both estimates are printed.
 */
type Ratios = Record<Test, { together: OverEcho | undefined; apart: OverEcho | undefined }>;

/** The calibration servers (node-udp-echo, and node-udp-echo-2 with --control). */
function isEcho(s: Running): boolean {
  return s.name.startsWith('node-udp-echo');
}

/** A server's row when loaded in one slot with the others (kith and the echo servers). */
function togetherName(name: string): string {
  return `${name} (together)`;
}

/** kith/echo CPU per query in each test (target <= 1.10), and per round with GC when traced. */
function echoLines(rows: Row[], ratios: Ratios, control: Ratios | undefined): string {
  const out = ['kith CPU per query over node-udp-echo\'s (Node\'s floor; target <= 1.10x) over the whole run, with each round\'s ratio and their median:'];
  const line = (r: OverEcho) => `per round ${r.perRound.map((v) => v.toFixed(2)).join(' / ')}; median ${r.median.toFixed(2)}x`;
  for (const t of ['authoritative', 'forwarding'] as const) {
    const { together, apart } = ratios[t];
    out.push(`  ${t.padEnd(14)} ${together === undefined ? '-' : `${together.wholeRun.toFixed(2)}x  ${together.wholeRun <= 1.1 ? 'PASS' : 'FAIL'}   loaded together on one CPU (${line(together)})`}`);
    if (apart) out.push(`  ${''.padEnd(14)} ${apart.wholeRun.toFixed(2)}x         back to back, each alone (${line(apart)})`);
    const c = control?.[t];
    if (c?.together) out.push(`    control: node-udp-echo-2 over node-udp-echo, the same estimates (this run's noise): together ${c.together.wholeRun.toFixed(2)}x (${line(c.together)})`);
    if (c?.apart) out.push(`             back to back ${c.apart.wholeRun.toFixed(2)}x (${line(c.apart)})`);
    for (const s of ['kith', 'node-udp-echo', 'node-udp-echo-2'].flatMap((n) => [togetherName(n), n])) {
      const x = rows.find((y) => y.test === t && y.server === s);
      if (!x?.roundsCpuUsPerQuery) continue;
      const gc = x.roundsGc ? `; GC per round: ${x.roundsGc.map((g) => `${g.count} (${g.ms.toFixed(1)} ms)`).join(' / ')}` : '';
      out.push(`    ${s.padEnd(26)} us/q per round: ${x.roundsCpuUsPerQuery.map((v) => v.toFixed(2)).join(' / ')}${gc}`);
    }
  }
  out.push('kith: dns.yaml defaults, response rate limiting on; the load comes from 127.0.0.1, a home-network client (recursion.allow), so every answer takes the RRL check and none is limited. NSD: RRL off. dnsmasq: no RRL.', '');
  return out.join('\n') + '\n';
}

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');

function table(setup: { seconds: number; rounds: number; instances: number; clients: number; offered?: number; pinning: string; loadAverage: { before: number; after: number; cpus: number }; dnsmasq: { authoritative: string } }, rows: Row[], targets: Target[], agreement: Agreement[]): string {
  const head = ['test', 'server', 'qps', 'rounds qps', 'avg ms', 'p50 ms', 'p99 ms', 'max ms', 'lost', 'cpu %', 'cpu us/q', 'rcodes'];
  const body = rows.map((r) => [
    r.test, r.server, f0(r.qps), r.rounds.map(f0).join(' / '), f2(r.avgMs), f2(r.p50Ms), f2(r.p99Ms), f2(r.maxMs), f0(r.lost),
    f0(r.serverCpuPct ?? NaN), f2(r.cpuUsPerQuery ?? NaN),
    Object.entries(r.rcodes).map(([k, v]) => `${k} ${((100 * v) / Math.max(1, r.completed)).toFixed(0)}%`).join(' '),
  ]);
  const t = [head, ...body];
  const w = head.map((_, i) => Math.max(...t.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i >= 2 && i <= 10 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  const out = [
    `DNS benchmark (dnsperf, UDP): ${setup.clients} clients, ${setup.seconds} s per server and test in ${setup.rounds} interleaved rounds over ${setup.instances} fresh start${setup.instances === 1 ? '' : 's'} of each server${setup.offered ? `, ${setup.offered} queries/s offered to each (not saturating)` : ''}; pinning: ${setup.pinning}`,
    `1-minute load average ${setup.loadAverage.before} before, ${setup.loadAverage.after} after, on ${setup.loadAverage.cpus} CPUs (above ~2, other work shared the CPUs: qps is noisy, cpu us/q much less so)`,
    `dnsmasq (authoritative) was given: ${setup.dnsmasq.authoritative}`,
    '',
    line(head),
    ...body.map(line),
    '',
    'cpu % = the server\'s CPU use while loaded (100 = one CPU); cpu us/q = its CPU time per answered query.',
    ...(rows.some((r) => r.server === 'node-udp-echo') ? ['node-udp-echo is a calibration row, not a DNS server: Node dgram sending each query back (the ceiling for any Node UDP server).'] : []),
    '',
    `Sample answers agreeing with the reference (NSD; RCODE, AA bit, answer count; ${SAMPLE} queries):`,
    ...agreement.map((g) => `  ${g.server.padEnd(26)} ${g.asked - g.differ}/${g.asked}${g.examples.length ? `  e.g. ${g.examples[0]}` : ''}`),
    '',
    `Targets (on measured qps; "per CPU" compares qps per CPU-second, i.e. inverse cpu us/q, steadier when other work shares the machine):`,
    ...targets.map((x) => `  ${x.name.padEnd(32)} ${x.ratio.toFixed(2).padStart(6)}x  (target >= ${x.need.toFixed(1)}x)  ${x.pass ? 'PASS' : 'FAIL'}${x.perCpuRatio !== undefined ? `   per CPU: ${x.perCpuRatio.toFixed(2)}x` : ''}`),
    '',
  ];
  return out.join('\n');
}

class Usage extends Error {}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  if (e instanceof Usage) {
    process.stderr.write(`${e.message}\n\n${HELP}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`[bench/dns] could not run: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
});
