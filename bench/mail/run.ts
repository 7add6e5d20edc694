/**
 * Mail benchmark (issue 12): Postfix's smtp-source → relay → Postfix's smtp-sink, with the
 * relay being kith mail (the sealed bundle, durable queue on) and then Postfix configured
 * as a relay to the same sink, in one run. For each: messages/s end to end (first
 * connection until the sink has counted every message), p99 latency of the 250 after the
 * data's final dot (a probe client sending one message at a time beside the load), and
 * peak RssAnon (kith: its one process; Postfix: the sum over its instance's processes,
 * sampled together). Queues on the same disk (/var/tmp).
 *
 * Targets: kith ≥ 0.5× Postfix messages/s, and ≤ 64 MB RSS. A benchmark, not a test:
 * exit 0 whatever the figures; non-zero only when something could not run.
 *
 *   node bench/mail/run.ts [--messages 2000] [--sessions 20] [--size 4096] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { prepareMail } from '../../services/mail/test/harness.ts';
import { freeTcpPort } from '../../test/support/ports.ts';

const HELP = `Usage: node bench/mail/run.ts [options]

smtp-source → relay → smtp-sink, the relay being kith mail (sealed bundle, durable
queue) and Postfix (a private instance relaying to the same sink), one after the other.
Prints messages/s, p99 latency of the 250 (a probe beside the load), peak RssAnon, ratios.

Options:
  --messages N   messages smtp-source sends per relay (default 2000)
  --sessions N   parallel smtp-source sessions (default 20)
  --size N       message size in bytes (default 4096)
  --probe N      latency probe messages per relay (default 200)
  --json         print the results as JSON
  -h, --help     this help

Needs the Debian package postfix (smtp-source, smtp-sink, postfix), run as root.
`;

const repoRoot = path.resolve(import.meta.dirname, '../..');
const progress = (m: string) => process.stderr.write(`[bench/mail] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result { relay: string; messages: number; seconds: number; msgsPerSec: number; p50Ms: number; p99Ms: number; peakRssAnonMB: number }

function rssAnonKb(pid: number): number {
  try {
    return Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Pids whose command line mentions `needle` (a Postfix instance's config dir), plus their children. */
function pidsOf(root: number | undefined, needle?: string): number[] {
  const out = new Set<number>();
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const parent = new Map<number, number>();
  for (const p of all) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(p, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (needle && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle)) out.add(p);
    } catch { /* gone */ }
  }
  if (root) out.add(root);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, pp] of parent) if (out.has(pp) && !out.has(p)) { out.add(p); grew = true; }
  }
  return [...out];
}

function startSink(port: number): { child: ChildProcess; count(): number } {
  const child = spawn('smtp-sink', ['-c', '-u', 'nobody', `127.0.0.1:${port}`, '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out = (out + d.toString()).slice(-200); });
  // -c prints 'sess=N quit=N mesg=N' after each event, separated by CR.
  return { child, count: () => Number([...out.matchAll(/mesg=(\d+)/g)].at(-1)?.[1] ?? 0) };
}

/** One message at a time; time from the final dot to the 250. */
async function probe(port: number, n: number, size: number, rcpt: string, stopAt: () => boolean): Promise<number[]> {
  const lat: number[] = [];
  const body = `From: probe@example.net\r\nTo: ${rcpt}\r\nSubject: probe\r\n\r\n${'x'.repeat(Math.max(0, size - 80))}\r\n`;
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  let buf = '';
  let failed: (err: Error) => void = () => {};
  s.on('error', (err) => failed(err));
  const waitReply = () => new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /(?:^|\r\n)(\d{3}) [^\r]*\r\n$/.exec(buf);
      if (m) { const r = buf; buf = ''; s.off('data', on); resolve(r); }
    };
    const on = (d: Buffer) => { buf += d.toString('latin1'); check(); };
    s.on('data', on);
    failed = reject;
    check();
  });
  await new Promise((r) => s.once('connect', r));
  await waitReply();
  s.write('EHLO probe\r\n');
  await waitReply();
  for (let i = 0; i < n && !stopAt(); i++) {
    s.write('MAIL FROM:<probe@example.net>\r\n');
    await waitReply();
    s.write(`RCPT TO:<${rcpt}>\r\n`);
    await waitReply();
    s.write('DATA\r\n');
    const r = await waitReply();
    if (!r.startsWith('354')) break;
    s.write(body);
    const t0 = performance.now();
    s.write('.\r\n');
    const done = await waitReply();
    if (done.startsWith('250')) lat.push(performance.now() - t0);
  }
  s.end('QUIT\r\n');
  return lat;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function measure(relay: string, port: number, sink: { count(): number }, pids: () => number[], o: { messages: number; sessions: number; size: number; probe: number; rcpt: string }): Promise<Result> {
  const base = sink.count();
  const want = base + o.messages + o.probe;
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, pids().reduce((a, p) => a + rssAnonKb(p), 0)); }, 50);
  const t0 = performance.now();
  const src = spawn('smtp-source', ['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.size), '-f', 'load@example.net', '-t', o.rcpt, `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let srcErr = '';
  src.stderr!.on('data', (d) => { srcErr += d; });
  let loadDone = false;
  const srcExit = new Promise<number | null>((r) => src.once('exit', (c) => { loadDone = true; r(c); }));
  const lat = await probe(port, o.probe, o.size, o.rcpt, () => false);
  const code = await srcExit;
  if (code !== 0) progress(`${relay}: smtp-source exited ${code}: ${srcErr.slice(0, 300)}`);
  const deadline = Date.now() + 300_000;
  let last = Date.now();
  while (sink.count() < want - (o.probe - lat.length) && Date.now() < deadline) {
    await sleep(20);
    if (Date.now() - last > 5000) { last = Date.now(); progress(`${relay}: the sink has ${sink.count() - base} of ${want - base - (o.probe - lat.length)}`); }
  }
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const delivered = sink.count() - base;
  void loadDone;
  return { relay, messages: delivered, seconds: Math.round(seconds * 100) / 100, msgsPerSec: Math.round(delivered / seconds), p50Ms: Math.round(pct(lat, 50) * 100) / 100, p99Ms: Math.round(pct(lat, 99) * 100) / 100, peakRssAnonMB: Math.round(peak / 102.4) / 10 };
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({ options: { messages: { type: 'string', default: '2000' }, sessions: { type: 'string', default: '20' }, size: { type: 'string', default: '4096' }, probe: { type: 'string', default: '200' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (a.help) { process.stdout.write(HELP); return 0; }
  for (const c of ['smtp-source', 'smtp-sink', 'postfix']) if (spawnSync('which', [c]).status !== 0) { process.stderr.write(`bench/mail: ${c} not found: apt-get install postfix\n`); return 2; }
  if (!existsSync(path.join(repoRoot, 'dist', 'mail.mjs'))) { process.stderr.write('bench/mail: dist/mail.mjs is missing: run ./kith build\n'); return 2; }
  const o = { messages: Number(a.messages), sessions: Number(a.sessions), size: Number(a.size), probe: Number(a.probe), rcpt: 'alias@example.org' };
  const work = '/var/tmp/kith-bench-mail';
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const sinkPort = await freeTcpPort();
  const sink = startSink(sinkPort);
  await sleep(300);
  const results: Result[] = [];

  // kith mail, sealed, durable queue on the same disk as Postfix's.
  progress('kith mail …');
  const m = await prepareMail(`hostname: kith.bench.test\ndomains:\n  example.org:\n    aliases:\n      alias: [owner@example.net]\noutbound:\n  smarthost: { host: 127.0.0.1, port: ${sinkPort} }\nlimits: { connections: 1000 }\nqueue: { concurrency: 20 }\ninbound: { verify: false }\npublish: { enabled: false }\n`, { data: path.join(work, 'kith') });
  const kith = spawn(process.execPath, m.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let kithOut = '';
  kith.stdout!.on('data', (d) => { kithOut = (kithOut + d).slice(-4000); });
  for (let i = 0; i < 600 && !kithOut.includes('"msg":"ready"'); i++) await sleep(50);
  results.push(await measure('kith', m.ports.smtp, sink, () => [kith.pid!], o));
  kith.kill('SIGTERM');
  await new Promise((r) => kith.once('exit', r));

  // Postfix: a private instance (its own config and queue dirs) relaying to the same sink.
  progress('postfix …');
  const pf = path.join(work, 'postfix');
  const pfPort = await freeTcpPort();
  for (const d of ['etc', 'queue', 'data']) mkdirSync(path.join(pf, d), { recursive: true });
  spawnSync('chown', ['postfix', path.join(pf, 'data')]);
  writeFileSync(path.join(pf, 'etc', 'master.cf'), readFileSync('/etc/postfix/master.cf', 'utf8').replace(/^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd$/m, `127.0.0.1:${pfPort} inet n - n - - smtpd`));
  writeFileSync(path.join(pf, 'etc', 'main.cf'), [
    'compatibility_level = 3.6', `queue_directory = ${pf}/queue`, `data_directory = ${pf}/data`, 'myhostname = postfix.bench.test', 'mydestination =',
    'inet_interfaces = 127.0.0.1', 'inet_protocols = ipv4', 'mynetworks = 127.0.0.0/8', 'relay_domains = example.org', `relayhost = [127.0.0.1]:${sinkPort}`,
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination', `maillog_file = ${pf}/maillog`, 'alias_maps =', 'local_recipient_maps =',
    'smtp_tls_security_level = none', 'syslog_name = postfix-kith-bench', 'default_process_limit = 100', 'smtpd_client_connection_count_limit = 0', '',
  ].join('\n'));
  const started = spawnSync('postfix', ['-c', path.join(pf, 'etc'), 'start'], { encoding: 'utf8' });
  if (started.status !== 0) { process.stderr.write(`bench/mail: postfix did not start: ${started.stderr}\n`); sink.child.kill(); return 2; }
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => { const s = net.connect(pfPort, '127.0.0.1', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (ok) break;
    await sleep(100);
  }
  try {
    results.push(await measure('postfix', pfPort, sink, () => pidsOf(undefined, path.join(pf, 'etc')).concat(pidsOf(Number(readFileSync(path.join(pf, 'queue', 'pid', 'master.pid'), 'utf8').trim()))), o));
  } finally {
    spawnSync('postfix', ['-c', path.join(pf, 'etc'), 'stop']);
    sink.child.kill();
  }

  const [k, p] = results as [Result, Result];
  const ratio = Math.round((k.msgsPerSec / p.msgsPerSec) * 100) / 100;
  if (a.json) {
    process.stdout.write(JSON.stringify({ options: o, results, ratio, targets: { throughput: ratio >= 0.5, rss: k.peakRssAnonMB <= 64 } }) + '\n');
    return 0;
  }
  process.stdout.write(`\nsmtp-source → relay → smtp-sink: ${o.messages} messages of ${o.size} B, ${o.sessions} sessions, + ${o.probe} probe messages\n\n`);
  process.stdout.write(`relay      msgs/s   seconds   p50 250 ms   p99 250 ms   peak RssAnon MB\n`);
  for (const r of results) process.stdout.write(`${r.relay.padEnd(9)} ${String(r.msgsPerSec).padStart(7)} ${String(r.seconds).padStart(9)} ${String(r.p50Ms).padStart(12)} ${String(r.p99Ms).padStart(12)} ${String(r.peakRssAnonMB).padStart(17)}\n`);
  process.stdout.write(`\nkith / postfix: ${ratio}× msgs/s (target ≥ 0.5: ${ratio >= 0.5 ? 'PASS' : 'FAIL'}), p99 ${Math.round((k.p99Ms / p.p99Ms) * 100) / 100}×, RSS ${Math.round((k.peakRssAnonMB / p.peakRssAnonMB) * 100) / 100}×; kith RSS ${k.peakRssAnonMB} MB (target ≤ 64: ${k.peakRssAnonMB <= 64 ? 'PASS' : 'FAIL'})\n`);
  return 0;
}

main().then((c) => { process.exitCode = c; }, (err: Error) => { process.stderr.write(`bench/mail: ${err.stack ?? err.message}\n`); process.exitCode = 1; });
