/**
 * Calendar benchmark: kith calendar beside Radicale and Xandikos (both from Debian), in
 * one run, over the same N events (bench/calendar/events.ts) and the same client (Node's
 * fetch with keep-alive, C requests in flight):
 *
 *   query      calendar-query, a random one-week time range, getetag (what a client
 *              asks when it shows a week)
 *   multiget   calendar-multiget of 20 random events with calendar-data
 *   sync       sync-collection from a token taken after loading (nothing changed: the
 *              common poll), and one full initial sync-collection timed on its own
 *
 * Prints throughput, p50/p99 latency, peak RssAnon of each server process during its
 * workloads, and kith's ratios. Targets (issue 13): kith ≥ 5× Radicale's throughput,
 * p99 under 50 ms, ≤ 64 MB RSS. A benchmark, not a test: it exits 0 whatever the figures.
 *
 *   node bench/calendar/run.ts [--events 10000] [--seconds 5] [--concurrency 4] [--json]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { prng } from '../../test/support/prng.ts';
import { SPAN_DAYS, SPAN_START, benchEvents, type BenchEvent } from './events.ts';
import { startKith, startRadicale, startXandikos, type BenchServer } from './servers.ts';

const HELP = `Usage: node bench/calendar/run.ts [options]

kith calendar vs Radicale vs Xandikos over the same events: calendar-query (one week),
calendar-multiget (20 events) and sync-collection, with throughput, p50/p99 latency,
peak RssAnon and ratios. Needs Debian's radicale, xandikos and git, and dist/ built
(./kith build).

Options:
  --events N        events in the calendar (default 10000)
  --seconds S       seconds per workload per server (default 5)
  --concurrency C   requests in flight (default 4)
  --only LIST       servers, comma-separated (default kith,radicale,xandikos)
  --json            results as JSON
  -h, --help        this help
`;

const progress = (m: string) => process.stderr.write(`[bench/calendar] ${m}\n`);

interface WorkloadResult { requests: number; errors: number; seconds: number; rps: number; p50: number; p99: number }
interface ServerResult { server: string; peakRssAnonKiB: number; initialSyncMs: number; workloads: Record<string, WorkloadResult> }

function rssAnonKiB(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const utc = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

type MakeRequest = (rand: () => number) => { method: string; url: string; headers: Record<string, string>; body: string; check: (status: number, text: string) => boolean };

async function runWorkload(s: BenchServer, make: MakeRequest, seconds: number, concurrency: number, seed: number): Promise<WorkloadResult> {
  const rand = prng(seed);
  const lat: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const r = make(rand);
      const start = performance.now();
      try {
        const res = await fetch(r.url, { method: r.method, headers: { ...s.headers, ...r.headers }, body: r.body });
        const text = await res.text();
        if (!r.check(res.status, text)) errors++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - start);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  return { requests: lat.length, errors, seconds: secs, rps: lat.length / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

function workloads(s: BenchServer, events: BenchEvent[], syncToken: string): Record<string, MakeRequest> {
  const path = new URL(s.collection).pathname;
  const xml = { 'content-type': 'application/xml; charset=utf-8' };
  return {
    query: (rand) => {
      const from = SPAN_START + Math.floor(rand() * (SPAN_DAYS - 7)) * 86_400_000;
      return {
        method: 'REPORT', url: s.collection, headers: { ...xml, depth: '1' }, check: (st) => st === 207,
        body: `<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="${utc(from)}" end="${utc(from + 7 * 86_400_000)}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`,
      };
    },
    multiget: (rand) => {
      const hrefs = Array.from({ length: 20 }, () => `<D:href>${path}${encodeURIComponent(events[Math.floor(rand() * events.length)]!.name)}</D:href>`).join('');
      return {
        method: 'REPORT', url: s.collection, headers: { ...xml, depth: '1' }, check: (st, text) => st === 207 && text.includes('BEGIN:VCALENDAR'),
        body: `<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop>${hrefs}</C:calendar-multiget>`,
      };
    },
    sync: () => ({
      method: 'REPORT', url: s.collection, headers: { ...xml, depth: '0' }, check: (st) => st === 207,
      body: `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>${syncToken}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`,
    }),
  };
}

async function measure(s: BenchServer, events: BenchEvent[], seconds: number, concurrency: number): Promise<ServerResult> {
  let peak = 0;
  const sample = () => { for (const p of s.pids) peak = Math.max(peak, rssAnonKiB(p)); };
  sample();
  const timer = setInterval(sample, 50);
  try {
    const t0 = performance.now();
    const full = await fetch(s.collection, { method: 'REPORT', headers: { ...s.headers, depth: '0', 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>' });
    const text = await full.text();
    const initialSyncMs = performance.now() - t0;
    const token = /<(?:[A-Za-z0-9]+:)?sync-token>([^<]+)</.exec(text)?.[1] ?? '';
    const n = text.split(/<(?:[A-Za-z0-9]+:)?response>/).length - 1;
    progress(`${s.name}: initial sync-collection ${initialSyncMs.toFixed(0)} ms, ${n} members`);
    const out: Record<string, WorkloadResult> = {};
    let seed = 1;
    for (const [name, make] of Object.entries(workloads(s, events, token))) {
      out[name] = await runWorkload(s, make, seconds, concurrency, seed++);
      progress(`${s.name} ${name}: ${out[name].rps.toFixed(1)} req/s, p50 ${out[name].p50.toFixed(1)} ms, p99 ${out[name].p99.toFixed(1)} ms${out[name].errors ? `, ${out[name].errors} errors` : ''}`);
    }
    sample();
    return { server: s.name, peakRssAnonKiB: peak, initialSyncMs, workloads: out };
  } finally {
    clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { events: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const n = Number(values.events ?? 10_000);
  const seconds = Number(values.seconds ?? 5);
  const concurrency = Number(values.concurrency ?? 4);
  const only = (values.only ?? 'kith,radicale,xandikos').split(',');
  const events = benchEvents(n);
  progress(`${n} events, ${(events.reduce((a, e) => a + e.text.length, 0) / 1024 / 1024).toFixed(1)} MiB, ${events.filter((e) => e.text.includes('RRULE')).length} recurring`);
  const results: ServerResult[] = [];
  const starters = { kith: startKith, radicale: startRadicale, xandikos: startXandikos } as const;
  for (const name of only as Array<keyof typeof starters>) {
    let s: BenchServer | undefined;
    try {
      s = await starters[name](events, progress);
      results.push(await measure(s, events, seconds, concurrency));
    } catch (err) {
      progress(`${name} failed: ${(err as Error).message}`);
    } finally {
      await s?.stop();
    }
  }
  const kith = results.find((r) => r.server === 'kith');
  const ratio = (peer: string, w: string) => {
    const p = results.find((r) => r.server === peer);
    return kith && p ? kith.workloads[w]!.rps / p.workloads[w]!.rps : undefined;
  };
  const names = ['query', 'multiget', 'sync'];
  const verdicts = kith ? {
    throughput5xRadicale: names.every((w) => (ratio('radicale', w) ?? 0) >= 5),
    p99Under50ms: names.every((w) => kith.workloads[w]!.p99 < 50),
    rssUnder64MB: kith.peakRssAnonKiB <= 64 * 1024,
  } : {};
  if (values.json) {
    process.stdout.write(JSON.stringify({ benchmark: 'calendar', events: n, seconds, concurrency, results, ratios: Object.fromEntries(names.map((w) => [w, { radicale: ratio('radicale', w), xandikos: ratio('xandikos', w) }])), verdicts }, null, 2) + '\n');
    return;
  }
  const rows = [['server', 'workload', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'kith ×']];
  for (const r of results) for (const w of names) {
    const x = r.workloads[w]!;
    rows.push([r.server, w, x.rps.toFixed(1), x.p50.toFixed(1), x.p99.toFixed(1), String(x.errors), r.server === 'kith' ? '' : `${(kith ? kith.workloads[w]!.rps / x.rps : NaN).toFixed(1)}×`]);
  }
  const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`calendar benchmark: ${n} events, ${seconds} s per workload, ${concurrency} in flight\n\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(width[i]!)).join('  ') + '\n');
  process.stdout.write('\npeak RssAnon / initial full sync-collection:\n');
  for (const r of results) process.stdout.write(`  ${r.server.padEnd(9)} ${(r.peakRssAnonKiB / 1024).toFixed(1)} MiB   ${r.initialSyncMs.toFixed(0)} ms\n`);
  if (kith) {
    process.stdout.write(`\ntargets: kith ≥ 5× Radicale throughput: ${verdicts.throughput5xRadicale ? 'PASS' : 'FAIL'}; p99 < 50 ms: ${verdicts.p99Under50ms ? 'PASS' : 'FAIL'}; RssAnon ≤ 64 MB: ${verdicts.rssUnder64MB ? 'PASS' : 'FAIL'}\n`);
  }
}

await main();
