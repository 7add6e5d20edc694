/**
 * The servers under test as child processes, each with its own temp config, on 127.0.0.1
 * only, optionally pinned to CPUs with taskset (affinity is inherited by threads and
 * forked children, so NSD's workers and Node's helper threads stay on the same CPUs):
 *
 * - kith DNS: the sealed bundle, `node dns.mjs --config C --data D --listen dns=... `
 * - NSD: `nsd -d -c nsd.conf`, one server process, response rate limiting off
 * - dnsmasq: `dnsmasq -k` with a --conf-file of records, authoritative or forwarding
 *
 * Ready means: answers a DNS query over UDP (RFC 1035 §4.2.1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { sealFlags } from '../../platform/seal.ts';

export interface Running {
  name: string;
  port: number;
  child: ChildProcess;
  /** stdout+stderr so far, for error messages. */
  output(): string;
  /** Garbage collections so far and their pauses (ms), for a server run with --trace-gc. */
  gc?(): { count: number; ms: number };
  stop(): Promise<void>;
}

/**
 * CPU seconds (user + system) used so far by `pid` and its descendants (NSD forks its
 * workers), from /proc/PID/stat; undefined off Linux. Includes every thread of each.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const stat = (p: string) => {
    try {
      const t = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = t.slice(t.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
      return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
    } catch {
      return undefined;
    }
  };
  if (!stat(String(pid))) return undefined;
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const kids = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const p of procs) {
    const st = stat(p);
    if (!st) continue;
    ticks.set(Number(p), st.ticks);
    const list = kids.get(st.ppid) ?? [];
    list.push(Number(p));
    kids.set(st.ppid, list);
  }
  let total = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    total += ticks.get(p) ?? 0;
    todo.push(...(kids.get(p) ?? []));
  }
  return total / 100; // USER_HZ: 100 on Linux
}

/** A port free on 127.0.0.1 for both UDP and TCP (probed, then released). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    udp.close();
    if (ok) return port;
  }
  throw new Error('no free port on 127.0.0.1');
}

/** A minimal query for `name` type A, RD clear. */
function probeQuery(name: string, id: number): Buffer {
  const labels = name.split('.').filter(Boolean);
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, qname, Buffer.from([0, 1, 0, 1])]);
}

/** Resolve once `port` answers a query for `name` (any rcode), or reject after `ms`. */
export async function waitForDns(port: number, name: string, ms: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + ms;
  const sock = dgram.createSocket('udp4');
  try {
    let answered = false;
    sock.on('message', () => { answered = true; });
    sock.on('error', () => {});
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    while (!answered) {
      const why = exited();
      if (why) throw new Error(why);
      if (Date.now() > deadline) throw new Error(`no DNS answer on 127.0.0.1:${port} after ${ms} ms`);
      sock.send(probeQuery(name, 4242), port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    sock.close();
  }
}

function launch(name: string, cmd: string, args: string[], cpus: string | undefined, port: number, probe: string, traceGc = false): Promise<Running> {
  // V8 prints --trace-gc lines with C stdio, block-buffered into a pipe: a quiet server's
  // lines would arrive rounds late (or never). Line-buffered, each is counted in its round.
  const [c0, a0] = traceGc ? ['stdbuf', ['-oL', cmd, ...args]] : [cmd, args];
  const [c, a] = cpus ? ['taskset', ['-c', cpus, c0, ...a0]] : [c0, a0];
  const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // --trace-gc lines: "[pid:0x..]  1234 ms: Scavenge 5.1 (6.2) -> 4.3 (7.2) MB, pooled: 0 MB, 0.41 / 0.00 ms ..."
  const gc = { count: 0, ms: 0 };
  let partial = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
    if (!traceGc) return;
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const m = /ms: (?:Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Sweep)[^,]*MB,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ ([\d.]+) ms/.exec(l);
      if (m) {
        gc.count++;
        gc.ms += Number(m[1]);
      }
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitMsg: string | undefined;
  child.on('error', (e) => { exitMsg = `${name}: could not start ${cmd}: ${e.message}`; });
  child.on('exit', (code, sig) => { exitMsg ??= `${name} exited (${code ?? sig}) before answering:\n${out.slice(-3000)}`; });
  const running: Running = {
    name,
    port,
    child,
    output: () => out,
    ...(traceGc ? { gc: () => ({ ...gc }) } : {}),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    }),
  };
  return waitForDns(port, probe, 30_000, () => exitMsg).then(() => running, async (e) => {
    await running.stop();
    throw e;
  });
}

export interface KithOptions {
  bundle: string;
  /** Folder for config/ and data/ (created). */
  dir: string;
  zones: Record<string, string>;
  dnsYaml: string;
  cpus?: string;
  /** Run with --cpu-prof, the profile written into the data folder (the only writable one). */
  profile?: boolean;
  /** Run with --trace-gc and count collections and pauses (Running.gc). */
  traceGc?: boolean;
  probe: string;
}

export async function startKith(o: KithOptions): Promise<Running & { dataDir: string; health: string }> {
  const config = path.join(o.dir, 'config');
  const data = path.join(o.dir, 'data');
  await fsp.mkdir(path.join(config, 'dns/zones'), { recursive: true });
  await fsp.mkdir(data, { recursive: true });
  await fsp.writeFile(path.join(config, 'dns/dns.yaml'), o.dnsYaml);
  for (const [origin, text] of Object.entries(o.zones)) await fsp.writeFile(path.join(config, `dns/zones/${origin}.zone`), text);
  const port = await freePort();
  const health = await freePort();
  // Sealed either way; started with the sealing flags already in force it does not
  // re-execute itself, so --cpu-prof survives. The profiler is the inspector, which the
  // permission model refuses silently (no profile) unless allowed: for profiling only.
  const flags = o.profile
    ? [...sealFlags({ entry: o.bundle, configRoot: config, dataDir: data }), '--allow-inspector', '--disable-warning=SecurityWarning', '--cpu-prof', `--cpu-prof-dir=${data}`]
    : o.traceGc ? [...sealFlags({ entry: o.bundle, configRoot: config, dataDir: data })] : [];
  if (o.traceGc) flags.push('--trace-gc');
  const r = await launch('kith', process.execPath, [...flags, o.bundle, '--config', config, '--data', data, '--listen', `dns=127.0.0.1:${port}`, '--listen', `health=127.0.0.1:${health}`], o.cpus, port, o.probe, o.traceGc);
  return { ...r, dataDir: data, health: `http://127.0.0.1:${health}` };
}

export async function startNsd(dir: string, zones: Record<string, string>, cpus: string | undefined, probe: string): Promise<Running> {
  await fsp.mkdir(dir, { recursive: true });
  const port = await freePort();
  const conf = [
    'server:',
    `  ip-address: 127.0.0.1@${port}`,
    '  server-count: 1',
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    '  database: ""',
    `  pidfile: "${dir}/nsd.pid"`,
    `  xfrdfile: "${dir}/xfrd.state"`,
    `  zonelistfile: "${dir}/zone.list"`,
    `  logfile: "${dir}/nsd.log"`,
    '  verbosity: 0',
    '  hide-version: yes',
    '  do-ip6: no',
    // RRL is on by default (200 qps per /24): it would throttle a load test from 127.0.0.1.
    '  rrl-ratelimit: 0',
    '  rrl-whitelist-ratelimit: 0',
    'remote-control:',
    '  control-enable: no',
    ...Object.keys(zones).flatMap((z) => ['zone:', `  name: ${z}`, `  zonefile: "${z}.zone"`]),
  ].join('\n') + '\n';
  for (const [origin, text] of Object.entries(zones)) await fsp.writeFile(path.join(dir, `${origin}.zone`), text);
  await fsp.writeFile(path.join(dir, 'nsd.conf'), conf);
  return launch('nsd', 'nsd', ['-d', '-c', path.join(dir, 'nsd.conf')], cpus, port, probe);
}

/** The calibration server (./echo.ts): Node's dgram with no DNS work at all. */
export async function startEcho(cpus: string | undefined, traceGc = false, name = 'node-udp-echo'): Promise<Running> {
  const port = await freePort();
  return launch(name, process.execPath, [...(traceGc ? ['--trace-gc'] : []), path.join(import.meta.dirname, 'echo.ts'), String(port)], cpus, port, 'probe.invalid', traceGc);
}

/** dnsmasq with `options` as its conf file (plus what every run needs). */
export async function startDnsmasq(dir: string, options: string, cpus: string | undefined, probe: string): Promise<Running & { confFile: string; log: string }> {
  await fsp.mkdir(dir, { recursive: true });
  const port = await freePort();
  const confFile = path.join(dir, 'dnsmasq.conf');
  const log = path.join(dir, 'dnsmasq.log');
  await fsp.writeFile(confFile, options);
  const args = ['-k', `--conf-file=${confFile}`, '--no-hosts', '--no-resolv', '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${port}`, '--pid-file=', `--log-facility=${log}`];
  const r = await launch('dnsmasq', 'dnsmasq', args, cpus, port, probe);
  return { ...r, confFile, log };
}
