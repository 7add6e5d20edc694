/**
 * One dnsperf run, read back: the closing statistics block (queries sent/completed/lost,
 * response codes, qps, average and stddev latency) and, from `-v` (one line per completed
 * query: `> RCODE name type latency`), real latency percentiles instead of guessing them
 * from the mean and stddev. dnsperf's output goes to a file, read after it exits: nothing of
 * this process runs while the load does.
 */
import { spawn } from 'node:child_process';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

export interface PerfOptions {
  server: string;
  port: number;
  queryFile: string;
  seconds?: number;
  /** Run through the file at most this many times (the warm-up: once). */
  maxRuns?: number;
  clients: number;
  /** Limit queries/s (warm-up, so a forwarder's outstanding-query cap is not hit). */
  maxQps?: number;
  /** CPU list for taskset, or undefined for no pinning. */
  cpus?: string;
  /** Keep per-query latencies (dnsperf -v). */
  latencies?: boolean;
}

export interface PerfResult {
  sent: number;
  completed: number;
  lost: number;
  runSeconds: number;
  qps: number;
  avgMs: number;
  stddevMs: number;
  maxMs: number;
  rcodes: Record<string, number>;
  /** Per-query latencies in ms, when asked for. */
  samples?: Float64Array;
  /** The server's CPU seconds during the run, when known. */
  serverCpu?: number;
  /** The server's garbage collections during the run and their pauses, when traced. */
  gc?: { count: number; ms: number };
  command: string;
}

const num = (s: string | undefined) => (s === undefined ? NaN : Number(s));

export async function runDnsperf(o: PerfOptions): Promise<PerfResult> {
  const args = ['-s', o.server, '-p', String(o.port), '-d', o.queryFile, '-c', String(o.clients), '-t', '2'];
  if (o.seconds !== undefined) args.push('-l', String(o.seconds));
  if (o.maxRuns !== undefined) args.push('-n', String(o.maxRuns));
  if (o.maxQps !== undefined) args.push('-Q', String(o.maxQps));
  if (o.latencies) args.push('-v');
  const [cmd, argv] = o.cpus ? ['taskset', ['-c', o.cpus, 'dnsperf', ...args]] : ['dnsperf', args];
  const command = [cmd, ...argv].join(' ');
  // dnsperf writes into a file, read once it has exited: with -v that is a line per query
  // (~50,000 a second), and reading them from a pipe while the run goes on took this
  // process a third of a CPU, on whichever CPU was free — the server's, or dnsperf's.
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'kith-dnsperf-'));
  const outPath = path.join(dir, 'out.txt');
  try {
    const out = await fsp.open(outPath, 'w');
    let code: number | null;
    let stderr = '';
    try {
      code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(cmd, argv, { stdio: ['ignore', out.fd, 'pipe'] });
        child.stderr!.on('data', (d) => { if (stderr.length < 20_000) stderr += d; });
        child.on('error', (e) => reject(new Error(`could not run dnsperf (${command}): ${e.message}`)));
        child.on('close', resolve);
      });
    } finally {
      await out.close();
    }
    let samples = new Float64Array(1 << 16);
    let n = 0;
    const stats: string[] = [];
    let inStats = false;
    for await (const line of createInterface({ input: createReadStream(outPath), crlfDelay: Infinity })) {
      if (line.charCodeAt(0) === 62 /* > */) {
        if (!o.latencies) continue;
        const lat = Number(line.slice(line.lastIndexOf(' ') + 1));
        if (n === samples.length) {
          const bigger = new Float64Array(samples.length * 2);
          bigger.set(samples);
          samples = bigger;
        }
        samples[n++] = lat * 1000;
        continue;
      }
      if (line.startsWith('Statistics:')) inStats = true;
      if (inStats) stats.push(line);
    }
    const text = stats.join('\n');
    const get = (re: RegExp) => re.exec(text);
    const sent = num(get(/Queries sent:\s+(\d+)/)?.[1]);
    if (code !== 0 || Number.isNaN(sent)) throw new Error(`dnsperf failed (exit ${code}): ${command}\n${stderr.slice(-2000)}`);
    const lat = get(/Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/);
    const rcodes: Record<string, number> = {};
    const codes = get(/Response codes:\s+(.*)/)?.[1] ?? '';
    for (const m of codes.matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]!] = Number(m[2]);
    return {
      sent,
      completed: num(get(/Queries completed:\s+(\d+)/)?.[1]),
      lost: num(get(/Queries lost:\s+(\d+)/)?.[1]),
      runSeconds: num(get(/Run time \(s\):\s+([\d.]+)/)?.[1]),
      qps: num(get(/Queries per second:\s+([\d.]+)/)?.[1]),
      avgMs: num(lat?.[1]) * 1000,
      stddevMs: num(get(/Latency StdDev \(s\):\s+([\d.]+)/)?.[1]) * 1000,
      maxMs: num(lat?.[3]) * 1000,
      rcodes,
      ...(o.latencies ? { samples: samples.subarray(0, n) } : {}),
      command,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Several runs of the same server as one: totals, weighted means, pooled percentiles. */
export interface Combined {
  rounds: number[];
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rcodes: Record<string, number>;
  /** Server CPU: share of one CPU while loaded, and CPU microseconds per answered query. */
  serverCpuPct?: number;
  cpuUsPerQuery?: number;
  /** CPU microseconds per answered query, round by round (warm-up effects show here). */
  roundsCpuUsPerQuery?: number[];
  /** Garbage collections and pause ms, round by round, when traced. */
  roundsGc?: { count: number; ms: number }[];
}

export function combine(runs: PerfResult[]): Combined {
  const completed = runs.reduce((s, r) => s + r.completed, 0);
  const seconds = runs.reduce((s, r) => s + r.runSeconds, 0);
  const rcodes: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.rcodes)) rcodes[k] = (rcodes[k] ?? 0) + v;
  const all = new Float64Array(runs.reduce((s, r) => s + (r.samples?.length ?? 0), 0));
  let off = 0;
  for (const r of runs) if (r.samples) { all.set(r.samples, off); off += r.samples.length; }
  all.sort();
  const cpu = runs.every((r) => r.serverCpu !== undefined) ? runs.reduce((s, r) => s + r.serverCpu!, 0) : undefined;
  const pct = (p: number) => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))]! : NaN);
  return {
    rounds: runs.map((r) => Math.round(r.qps)),
    qps: seconds > 0 ? completed / seconds : 0,
    sent: runs.reduce((s, r) => s + r.sent, 0),
    completed,
    lost: runs.reduce((s, r) => s + r.lost, 0),
    avgMs: completed > 0 ? runs.reduce((s, r) => s + r.avgMs * r.completed, 0) / completed : NaN,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: Math.max(...runs.map((r) => r.maxMs)),
    rcodes,
    ...(cpu !== undefined && seconds > 0 && completed > 0 ? { serverCpuPct: (100 * cpu) / seconds, cpuUsPerQuery: (cpu * 1e6) / completed, roundsCpuUsPerQuery: runs.map((r) => (r.serverCpu! * 1e6) / Math.max(1, r.completed)) } : {}),
    ...(runs.every((r) => r.gc) ? { roundsGc: runs.map((r) => r.gc!) } : {}),
  };
}
