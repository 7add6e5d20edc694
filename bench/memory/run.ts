/**
 * Memory benchmark (issue 16): `kith up` with every service on loopback, each service's
 * private memory (RssAnon) and VmRSS read from /proc idle and at its peak under a small
 * load of its own — a DNS burst (dnsperf, the dns bench's client), a git push and clone,
 * a swaks burst, CalDAV REPORTs — with the peers under the same load in the same run:
 * NSD and dnsmasq (DNS), git http-backend (storage), Radicale (calendar). Postfix is
 * measured by bench/mail (its own peak RssAnon beside kith mail's).
 *
 * Peaks are sampled every 20 ms from /proc/PID/status (RssAnon has no high-water mark);
 * a peer that forks (NSD, http-backend under its CGI host) counts every process of its
 * tree but the Node CGI host itself. Targets: each service ≤ 32 MB RssAnon idle and
 * ≤ 64 MB at its peak, `kith up` ≤ 64 MB VmRSS. A benchmark, not a test: exit 0 whatever
 * the figures; non-zero only when something could not run.
 *
 *   node bench/memory/run.ts [--no-build] [--no-peers] [--json] [--help]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fsp, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { kithUpIn, repoRoot, type KithUp } from '../../test/e2e/kith-up.ts';
import { startSink } from '../../services/mail/test/harness.ts';
import { childrenOf } from '../../platform/process.ts';
import { startDnsmasq, startNsd } from '../dns/servers.ts';
import { startCgiHost } from '../storage/cgi-host.ts';
import { startRadicale } from '../calendar/servers.ts';
import { benchEvents } from '../calendar/events.ts';
import { makeRepo, packBytes } from './make-repo.ts';
import { command as run } from './command.ts';

const HELP = `Usage: node bench/memory/run.ts [options]

Starts \`kith up\` (every service, loopback), reads each service's RssAnon and VmRSS idle
and at its peak under a small load (dnsperf burst, git push + clone, swaks burst, CalDAV
REPORTs), and the same for NSD, dnsmasq, git http-backend and Radicale under the same load.

Options:
  --no-build   use the bundles already in dist/ (default: kith up builds them)
  --no-peers   kith only
  --seconds N  length of the DNS burst (default 5)
  --push-mb N  about how much incompressible data the pushed repository holds (default 8)
  --json       print the results as JSON
  -h, --help   this help

Needs dnsperf, nsd, dnsmasq, git, swaks, python3 (radicale); progress on stderr.
`;

const progress = (m: string) => process.stderr.write(`[bench/memory] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TARGETS = { idleAnonMB: 32, peakAnonMB: 64, supervisorRssMB: 64 };

interface Mem { rssAnonKiB: number; vmRssKiB: number; /** VmRSS's high-water mark since the process (or its last exec) started. */ vmHwmKiB?: number }
function memOf(pid: number): Mem | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rssAnonKiB: kib('RssAnon'), vmRssKiB: kib('VmRSS'), vmHwmKiB: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

/** `root` and its descendants, minus `except` (a Node CGI host is not the peer). */
function treeOf(root: number, except: number[] = []): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of parent) if (!out.has(p) && out.has(pp)) { out.add(p); grew = true; }
  }
  return [...out].filter((p) => !except.includes(p));
}

const sum = (pids: number[]): Mem => pids.map(memOf).reduce<Mem>((a, m) => ({ rssAnonKiB: a.rssAnonKiB + (m?.rssAnonKiB ?? 0), vmRssKiB: a.vmRssKiB + (m?.vmRssKiB ?? 0) }), { rssAnonKiB: 0, vmRssKiB: 0 });

/** Peak of the summed memory of `pids()` while `work` runs, sampled every 20 ms. */
async function peakDuring(pids: () => number[], work: () => Promise<unknown>): Promise<Mem> {
  const peak: Mem = { rssAnonKiB: 0, vmRssKiB: 0 };
  const sample = () => {
    const m = sum(pids());
    peak.rssAnonKiB = Math.max(peak.rssAnonKiB, m.rssAnonKiB);
    peak.vmRssKiB = Math.max(peak.vmRssKiB, m.vmRssKiB);
  };
  const t = setInterval(sample, 20);
  try {
    await work();
    await sleep(200);
    sample();
  } finally {
    clearInterval(t);
  }
  return peak;
}

/** The DNS load: dnsperf, as bench/dns runs it, for `seconds`. */
async function dnsBurst(port: number, queryFile: string, seconds: number): Promise<string> {
  const out = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds), '-c', '4', '-Q', '20000']);
  const q = /Queries per second:\s+([\d.]+)/.exec(out)?.[1];
  return q ? Number(q).toFixed(0) : '?';
}

const DNS_NAMES = ['kith.home.arpa A', 'kith.home.arpa AAAA', 'home.arpa SOA', 'home.arpa NS', 'nothere.home.arpa A', 'kith.home.arpa TXT'];

async function gitPushClone(repo: string, remote: string, dir: string): Promise<void> {
  const env = { ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  await run('git', ['--git-dir', repo, 'push', '-q', remote, 'main'], env);
  const clone = path.join(dir, `clone-${Date.now()}.git`);
  await run('git', ['clone', '-q', '--bare', remote, clone], env);
}

/** ~2 KB in 76-byte lines: one 2000-byte line is refused by the sink (500 Line too long) and mail would relay a bounce instead. */
function swaksOnce(server: string): Promise<string> {
  return run('swaks', ['--suppress-data', '--timeout', '20', '--server', server, '--from', 'friend@example.net', '--to', 'kith@home.arpa', '--header', 'Subject: bench', '--body', `${'x'.repeat(76)}\n`.repeat(26)]);
}

const REPORT = '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20260101T000000Z" end="20280101T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>';
async function caldavReports(collection: string, headers: Record<string, string>, n: number): Promise<number> {
  let got = 0;
  for (let i = 0; i < n; i++) {
    const r = await fetch(collection, { method: 'REPORT', headers: { ...headers, depth: '1', 'content-type': 'application/xml' }, body: REPORT });
    const text = await r.text();
    got = (text.match(/<(?:\w+:)?response>/g) ?? []).length;
  }
  return got;
}

interface Row { name: string; of: string; idle?: Mem; peak: Mem; load: string }

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { 'no-build': { type: 'boolean' }, 'no-peers': { type: 'boolean' }, seconds: { type: 'string' }, 'push-mb': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`bench/memory: ${(err as Error).message}\n${HELP}`);
    return 64;
  }
  if (values.help) { process.stdout.write(HELP); return 0; }
  const seconds = Number(values.seconds ?? 5);
  const pushMB = Number(values['push-mb'] ?? 8);
  const missing = ['dnsperf', 'git', 'swaks', ...(values['no-peers'] ? [] : ['nsd', 'dnsmasq'])].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) { process.stderr.write(`bench/memory: missing ${missing.join(', ')}\n`); return 1; }

  const work = mkdtempSync(path.join(tmpdir(), 'kith-bench-memory-'));
  const queryFile = path.join(work, 'queries.txt');
  await fsp.writeFile(queryFile, DNS_NAMES.join('\n') + '\n');
  const rows: Row[] = [];
  let up: KithUp | undefined;
  const sink = await startSink();
  try {
    progress('kith up (every service, loopback)');
    up = await kithUpIn(repoRoot, path.join(work, 'kith'), { build: values['no-build'] !== true, extra: ['--no-mdns'], timeoutMs: 180_000 });
    const svc = (n: string) => up!.services.get(n);
    const token = svc('storage')!.token!;
    const store = svc('storage')!.endpoints.store!.replace(/\/store\/$/, '/store/config');
    const put = (file: string, body: string) => fetch(`${store}/${file}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body }).then(async (r) => { await r.text(); if (!r.ok) throw new Error(`PUT ${file}: ${r.status}`); });
    // The load needs two config changes: storage creates a pushed repository, mail relays to a local sink.
    const storageYaml = readFileSync(path.join(up.data, 'config/storage/storage.yaml'), 'utf8').replace(/^createOnPush: false$/m, 'createOnPush: true');
    // storage refuses a push over maxPushBytes (64 MiB by default) and a repository over
    // maxRepoBytes (256 MiB): for a larger --push-mb the owner raises both, as for any big push.
    const need = Math.ceil((pushMB * 1e6 * 1.25) / 2 ** 20) * 2 ** 20;
    await put('storage/storage.yaml', need <= 64 << 20 ? storageYaml
      : storageYaml.replace(/^max(Push|Repo)Bytes: .*\n/gm, '') + `maxPushBytes: ${need}\nmaxRepoBytes: ${Math.max(256 << 20, 2 * need)}\n`);
    await put('mail/mail.yaml', readFileSync(path.join(up.data, 'config/mail/mail.yaml'), 'utf8').replace(/^outbound:\n/m, `outbound:\n  smarthost: { host: 127.0.0.1, port: ${sink.port} }\n`));
    progress('idle: 8 s after the config changes');
    await sleep(8000);
    const idle = new Map([...up.services.values()].map((s) => [s.service, memOf(s.pid)!]));
    const supervisorIdle = memOf(up.child.pid!)!;
    // kith up's pairing process (dist/kith-pki.cjs): a child of it, but not a service.
    const pkiPid = childrenOf(up.child.pid!).find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('kith-pki.cjs'); } catch { return false; } });
    const pkiIdle = pkiPid === undefined ? undefined : memOf(pkiPid);

    const dnsPort = Number(/:(\d+)$/.exec(svc('dns')!.endpoints.dns!)![1]);
    let qps = '';
    const dnsPeak = await peakDuring(() => [svc('dns')!.pid], async () => { qps = await dnsBurst(dnsPort, queryFile, seconds); });
    rows.push({ name: 'kith dns', of: 'dns', idle: idle.get('dns'), peak: dnsPeak, load: `dnsperf ${seconds} s, ${qps} qps` });

    const repo = await makeRepo(work, 60, Math.round((pushMB * 1e6 * 0.75) / 60));
    const remote = `${new URL(svc('storage')!.endpoints.git!).origin.replace('://', `://kith:${token}@`)}/bench.git`;
    const storagePeak = await peakDuring(() => [svc('storage')!.pid], () => gitPushClone(repo, remote, work));
    const packMB = (packBytes(repo) / 1e6).toFixed(1);
    rows.push({ name: 'kith storage', of: 'storage', idle: idle.get('storage'), peak: storagePeak, load: `git push + clone, ${packMB} MB pack` });

    const smtp = svc('mail')!.endpoints.smtp!.replace('smtp://', '');
    const mailPeak = await peakDuring(() => [svc('mail')!.pid], async () => {
      for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: 10 }, () => swaksOnce(smtp)));
      await sink.waitFor(40, 60_000);
    });
    rows.push({ name: 'kith mail', of: 'mail', idle: idle.get('mail'), peak: mailPeak, load: '40 messages (swaks, 10 at a time) relayed to a sink' });

    const dav = svc('calendar')!.endpoints.caldav!;
    const auth = { authorization: `Basic ${Buffer.from(`kith:${token}`).toString('base64')}` };
    const coll = `${dav}kith/bench/`;
    await (await fetch(coll, { method: 'MKCALENDAR', headers: auth })).text();
    const events = benchEvents(200);
    for (const e of events) await (await fetch(`${coll}${e.name}`, { method: 'PUT', headers: { ...auth, 'content-type': 'text/calendar' }, body: e.text })).text();
    let found = 0;
    const calPeak = await peakDuring(() => [svc('calendar')!.pid], async () => { found = await caldavReports(coll, auth, 20); });
    rows.push({ name: 'kith calendar', of: 'calendar', idle: idle.get('calendar'), peak: calPeak, load: `200 events PUT, 20 REPORT calendar-query (${found} each)` });
    // kith up execs into its supervisor bundle (same pid), so VmHWM is the supervisor's own peak.
    const supervisorAfter = memOf(up.child.pid!)!;
    rows.push({ name: 'kith up (supervisor)', of: 'supervisor', idle: supervisorIdle, peak: { rssAnonKiB: supervisorAfter.rssAnonKiB, vmRssKiB: supervisorAfter.vmHwmKiB! }, load: 'after the loads (peak rss: its VmHWM)' });
    const pkiAfter = pkiPid === undefined ? undefined : memOf(pkiPid);
    if (pkiIdle && pkiAfter) rows.push({ name: 'kith up (pairing)', of: 'pairing', idle: pkiIdle, peak: { rssAnonKiB: pkiAfter.rssAnonKiB, vmRssKiB: pkiAfter.vmHwmKiB! }, load: 'after the loads (peak rss: its VmHWM)' });

    if (!values['no-peers']) {
      const zone = `$ORIGIN home.arpa.\n$TTL 300\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n@ IN NS ns\nns IN A 127.0.0.1\nkith IN A 127.0.0.1\nkith IN AAAA ::1\n`;
      for (const which of ['nsd', 'dnsmasq'] as const) {
        const peer = which === 'nsd'
          ? await startNsd(path.join(work, 'nsd'), { 'home.arpa': zone }, undefined, 'kith.home.arpa')
          : await startDnsmasq(path.join(work, 'dnsmasq'), 'host-record=kith.home.arpa,127.0.0.1,::1\nlocal=/home.arpa/\n', undefined, 'kith.home.arpa');
        try {
          const pids = () => treeOf(peer.child.pid!);
          const idlePeer = sum(pids());
          let pq = '';
          const peak = await peakDuring(pids, async () => { pq = await dnsBurst(peer.port, queryFile, seconds); });
          rows.push({ name: which, of: 'dns', idle: idlePeer, peak, load: `dnsperf ${seconds} s, ${pq} qps` });
        } finally {
          await peer.stop();
        }
      }
      const projects = path.join(work, 'http-backend');
      await fsp.mkdir(projects, { recursive: true });
      await run('git', ['init', '-q', '--bare', path.join(projects, 'bench.git')]);
      await run('git', ['--git-dir', path.join(projects, 'bench.git'), 'config', 'http.receivepack', 'true']);
      const cgi = await startCgiHost(projects, 'kith', token);
      try {
        // The CGI host is this process: its children are http-backend and the git programs it runs.
        const peak = await peakDuring(() => treeOf(process.pid).filter((p) => p !== process.pid && isGit(p)), () => gitPushClone(repo, `${cgi.url.replace('://', `://kith:${token}@`).replace(/\/?$/, '')}/bench.git`, work));
        rows.push({ name: 'git http-backend', of: 'storage', peak, load: 'git push + clone (every git process, summed)' });
      } finally {
        await cgi.close();
      }
      if (spawnSync('/usr/bin/python3', ['-c', 'import radicale']).status === 0) {
        const rad = await startRadicale(events, progress);
        try {
          const pids = () => rad.pids.flatMap((p) => treeOf(p));
          const idlePeer = sum(pids());
          let n = 0;
          const peak = await peakDuring(pids, async () => { n = await caldavReports(rad.collection, rad.headers, 20); });
          rows.push({ name: 'radicale', of: 'calendar', idle: idlePeer, peak, load: `20 REPORT calendar-query (${n} each)` });
        } finally {
          await rad.stop();
        }
      } else progress('radicale: python3 cannot import radicale; left out');
    }
  } finally {
    await up?.stop();
    await sink.stop();
    rmSync(work, { recursive: true, force: true });
  }

  const mb = (k?: number) => (k === undefined ? '-' : (k / 1024).toFixed(1));
  if (values.json) {
    process.stdout.write(JSON.stringify({ targets: TARGETS, rows }) + '\n');
    return 0;
  }
  process.stdout.write(`kith memory benchmark: MiB from /proc/PID/status (RssAnon = private; VmRSS includes shared file pages)\n`);
  process.stdout.write(`${'process'.padEnd(22)} ${'idle anon'.padStart(10)} ${'idle rss'.padStart(9)} ${'peak anon'.padStart(10)} ${'peak rss'.padStart(9)}   load\n`);
  for (const r of rows) process.stdout.write(`${r.name.padEnd(22)} ${mb(r.idle?.rssAnonKiB).padStart(10)} ${mb(r.idle?.vmRssKiB).padStart(9)} ${mb(r.peak.rssAnonKiB).padStart(10)} ${mb(r.peak.vmRssKiB).padStart(9)}   ${r.load}\n`);
  const kith = rows.filter((r) => r.name.startsWith('kith ') && r.of !== 'supervisor' && r.of !== 'pairing');
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  for (const r of kith) process.stdout.write(`${r.name}: idle RssAnon ≤ ${TARGETS.idleAnonMB} MB ${verdict((r.idle!.rssAnonKiB * 1024) / 1e6 <= TARGETS.idleAnonMB)}, peak ≤ ${TARGETS.peakAnonMB} MB ${verdict((r.peak.rssAnonKiB * 1024) / 1e6 <= TARGETS.peakAnonMB)}\n`);
  const sup = rows.find((r) => r.of === 'supervisor');
  if (sup) process.stdout.write(`kith up: VmRSS ≤ ${TARGETS.supervisorRssMB} MB ${verdict((Math.max(sup.idle!.vmRssKiB, sup.peak.vmRssKiB) * 1024) / 1e6 <= TARGETS.supervisorRssMB)} (idle and its high-water mark)\n`);
  return 0;
}

function isGit(pid: number): boolean {
  try {
    return /^git|http-backend/.test(readFileSync(`/proc/${pid}/comm`, 'utf8'));
  } catch {
    return false;
  }
}

main().then((code) => { process.exitCode = code; }, (err: Error) => {
  process.stderr.write(`bench/memory: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
