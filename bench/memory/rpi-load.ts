/**
 * The full-size load run against a booted rpi test image (issue 16), for bench/memory/rpi.ts
 * --load: pair by the console's code, then a DNS burst, a git push of --push-mb of
 * incompressible data and its clone, a mail burst and a CalDAV sync, each timed, while PID
 * 1's `GET /memory` (debug port, test images only) is sampled every ~1 s for the peak of
 * MemTotal − MemAvailable and of each process's RssAnon, oom_kill and swap.
 *
 * Every connection goes to qemu's hostfwd ports on 127.0.0.1. Nothing leaves the machine:
 * DNS asks only the appliance's own zone, and mail is relayed to a sink on this machine's
 * loopback (the guest reaches it as 10.0.2.2) — the default config would forward the
 * owner's alias to example.net's MX.
 *
 * Access is what a paired device has (`kith pair` with the console's code): its client
 * certificate for storage's https (store API and git, the way `kith repo --help` shows) and
 * for submission (certificate login, no AUTH), its device password for CalDAV (HTTP Basic
 * on the https port, as a phone would).
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { VirtVm } from '../../platform/rpi/qemu.ts';
import { createStoreClient } from '../../platform/store-client.ts';
import { tlsFetch, type ClientTls } from '../../platform/tls-fetch.ts';
import { startSink } from '../../services/mail/test/harness.ts';
import { benchEvents } from '../calendar/events.ts';
import { makeRepo, packBytes } from './make-repo.ts';
import { command as cmd } from './command.ts';

const REPO = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** Host ports qemu forwards to the guest's listeners. */
export interface LoadPorts { dns: number; debug: number; pair: number; storageTls: number; submission: number; caldavTls: number }

export interface LoadOptions {
  vm: VirtVm;
  ports: LoadPorts;
  /** Scratch folder (pairing, the repository, the clone, the sink). */
  work: string;
  pushMB: number;
  dnsSeconds: number;
  mails: number;
  events: number;
  say: (line: string) => void;
}

export interface Peak { usedKiB: number; initAnonKiB: number; services: Record<string, number> }
export interface LoadResult {
  /** Each phase's time and its own peaks (used, and RssAnon per service). */
  phases: { name: string; ms: number; detail: string; peakUsedKiB: number; services: Record<string, number> }[];
  peak: Peak;
  totalKiB: number;
  samples: number;
  /** Samples that did not answer within 15 s (the guest busy under TCG). */
  missed: number;
  oomKills: number;
  swapTotalKiB: number;
  pushed: { packBytes: number; head: string; cloneHead: string };
}

interface Memory {
  memTotalKiB: number; memAvailableKiB: number; swapTotalKiB: number; oomKills: number;
  init: { rssAnonKiB: number | null }; services: Record<string, { rssAnonKiB: number | null } | null>;
}

/** PID 1's memory report every ~1 s until stopped; keeps the peaks, overall and of the phase running. */
function sampler(debugPort: number) {
  const peak: Peak = { usedKiB: 0, initAnonKiB: 0, services: {} };
  let phasePeak: Peak = { usedKiB: 0, initAnonKiB: 0, services: {} };
  let last: Memory | undefined;
  let samples = 0;
  let missed = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      try {
        const r = await fetch(`http://127.0.0.1:${debugPort}/memory`, { signal: AbortSignal.timeout(15_000) });
        const m = (await r.json()) as Memory;
        last = m;
        samples++;
        const used = m.memTotalKiB - m.memAvailableKiB;
        for (const p of [peak, phasePeak]) {
          p.usedKiB = Math.max(p.usedKiB, used);
          p.initAnonKiB = Math.max(p.initAnonKiB, m.init.rssAnonKiB ?? 0);
          for (const [n, s] of Object.entries(m.services)) p.services[n] = Math.max(p.services[n] ?? 0, s?.rssAnonKiB ?? 0);
        }
      } catch {
        missed++;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t))));
    }
  })();
  return {
    peak,
    /** The phase's peak so far, and start a new phase. */
    takePhasePeak: () => { const p = phasePeak; phasePeak = { usedKiB: 0, initAnonKiB: 0, services: {} }; return p; },
    async stop() { running = false; await loop; return { last, samples, missed }; },
  };
}

/** Pairs this run as device `bench` with the code the pki process printed on the console. */
async function pair(o: LoadOptions): Promise<{ dir: string; tls: ClientTls; password: string }> {
  const log = await o.vm.waitFor(/"msg":"pairing code","code":"[A-Z2-9]{4}-[A-Z2-9]{4}"/, 300_000);
  const code = [...log.matchAll(/"msg":"pairing code","code":"([A-Z2-9]{4}-[A-Z2-9]{4})"/g)].at(-1)![1]!;
  const dir = join(o.work, 'paired');
  // Asynchronously: this process drains qemu's console, and a full pipe stalls the guest.
  await run(process.execPath, [join(REPO, 'installer/kith.ts'), 'pair', '--json', '--host', '127.0.0.1', '--port', String(o.ports.pair), '--code', code, '--device', 'bench', '--dir', dir, '--timeout', '240'], { timeout: 400_000 });
  const f = (n: string) => readFileSync(join(dir, n), 'utf8');
  return { dir, tls: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') }, password: f('password').trim() };
}

const DNS_NAMES = ['kith.home.arpa A', 'kith.home.arpa AAAA', 'home.arpa SOA', 'home.arpa NS', 'nothere.home.arpa A', 'kith.home.arpa TXT'];

const REPORT = '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20260101T000000Z" end="20280101T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>';

export async function loadRun(o: LoadOptions): Promise<LoadResult> {
  const sample = sampler(o.ports.debug);
  const phases: LoadResult['phases'] = [];
  const phase = async (name: string, work: () => Promise<string>) => {
    o.say(`load: ${name} ...`);
    sample.takePhasePeak();
    const t = Date.now();
    const detail = await work();
    const p = sample.takePhasePeak();
    phases.push({ name, ms: Date.now() - t, detail, peakUsedKiB: p.usedKiB, services: p.services });
    const mib = (k: number) => (k / 1024).toFixed(1);
    o.say(`load: ${name} ${((Date.now() - t) / 1000).toFixed(1)} s, ${detail}; peak used ${mib(p.usedKiB)} MiB, RssAnon ${Object.entries(p.services).map(([n, k]) => `${n} ${mib(k)}`).join(' ')}`);
  };
  let sink: Awaited<ReturnType<typeof startSink>> | undefined;
  let end: Awaited<ReturnType<typeof sample.stop>> | undefined;
  let pushed: LoadResult['pushed'] = { packBytes: 0, head: '', cloneHead: '' };
  try {
    sink = await startSink();
    let id!: Awaited<ReturnType<typeof pair>>;
    await phase('pair', async () => { id = await pair(o); return 'device bench paired by the console code'; });
    const storageUrl = `https://127.0.0.1:${o.ports.storageTls}`;
    const store = createStoreClient({ url: storageUrl, token: '', tls: { ...id.tls, url: storageUrl } });
    /** Edits `service`/`service`.yaml in config.git as the paired owner, and waits for the service's `config applied`. */
    const configure = async (service: string, edit: (yaml: string) => string, why: string) => {
      const file = `${service}/${service}.yaml`;
      const before = (await store.read('config', file))?.content;
      if (!before) throw new Error(`no ${file} in config.git`);
      const applied = () => o.vm.output().split('\n').filter((l) => l.includes(`"service":"${service}"`) && l.includes('"msg":"config applied"')).length;
      const n0 = applied();
      await store.write('config', file, edit(Buffer.from(before).toString('utf8')), { message: `bench: ${why}` });
      for (const until = Date.now() + 120_000; applied() === n0; await new Promise((r) => setTimeout(r, 300))) {
        if (Date.now() > until) throw new Error(`${service} did not apply ${file} (${why}):\n${o.vm.output().slice(-3000)}`);
      }
    };

    await phase('dns', async () => {
      const qf = join(o.work, 'queries.txt');
      writeFileSync(qf, DNS_NAMES.join('\n') + '\n');
      const out = await cmd('dnsperf', ['-s', '127.0.0.1', '-p', String(o.ports.dns), '-d', qf, '-l', String(o.dnsSeconds), '-c', '4', '-t', '5']);
      const sent = /Queries sent:\s+(\d+)/.exec(out)?.[1];
      const done = /Queries completed:\s+(\d+)/.exec(out)?.[1];
      const qps = /Queries per second:\s+([\d.]+)/.exec(out)?.[1];
      return `dnsperf ${o.dnsSeconds} s: ${done}/${sent} answered, ${Number(qps).toFixed(0)} qps`;
    });

    await phase('mail', async () => {
      // Relay to the sink before the first message, or the owner's alias goes to example.net's MX.
      await configure('mail', (y) => y.replace(/^outbound:\n/m, `outbound:\n  smarthost: { host: 10.0.2.2, port: ${sink!.port} }\n`), 'relay to a sink on the host');
      const one = () => cmd('swaks', ['--suppress-data', '--timeout', '60', '--server', `127.0.0.1:${o.ports.submission}`, '--tls', '--tls-cert', join(id.dir, 'client.crt'), '--tls-key', join(id.dir, 'client.key'),
        '--from', 'kith@home.arpa', '--to', 'kith@home.arpa', '--header', 'Subject: bench', '--body', `${'x'.repeat(76)}\n`.repeat(26)]);
      for (let i = 0; i < o.mails; i += 10) await Promise.all(Array.from({ length: Math.min(10, o.mails - i) }, one));
      // Relayed, not bounced: a DSN (from <>) would reach the sink too, by the same alias.
      const got = await sink!.waitFor(o.mails, 300_000);
      const bounced = got.filter((m) => m.from === '<>' || m.from === '');
      if (bounced.length) throw new Error(`${bounced.length} of the sink's messages are bounces:\n${bounced[0]!.raw.slice(0, 3000)}`);
      return `${o.mails} messages over submission (swaks, 10 at a time, STARTTLS, certificate login) relayed to a sink on the host`;
    });

    await phase('caldav', async () => {
      const f = tlsFetch(id.tls);
      const base = `https://127.0.0.1:${o.ports.caldavTls}/dav/kith/bench/`;
      const auth = { authorization: `Basic ${Buffer.from(`kith:${id.password}`).toString('base64')}` };
      const mk = await f(base, { method: 'MKCALENDAR', headers: auth });
      await mk.text();
      if (mk.status !== 201) throw new Error(`MKCALENDAR ${base}: ${mk.status}`);
      const events = benchEvents(o.events);
      for (let i = 0; i < events.length; i += 4) {
        await Promise.all(events.slice(i, i + 4).map(async (e) => {
          const r = await f(`${base}${e.name}`, { method: 'PUT', headers: { ...auth, 'content-type': 'text/calendar' }, body: e.text });
          await r.text();
          if (r.status >= 300) throw new Error(`PUT ${e.name}: ${r.status}`);
        }));
      }
      let found = 0;
      for (let i = 0; i < 10; i++) {
        const r = await f(base, { method: 'REPORT', headers: { ...auth, depth: '1', 'content-type': 'application/xml' }, body: REPORT });
        found = ((await r.text()).match(/<(?:\w+:)?response>/g) ?? []).length;
      }
      return `${o.events} events PUT (4 at a time), 10 REPORT calendar-query (${found} each)`;
    });
    const src = await makeRepo(o.work, 50, Math.round((o.pushMB * 1e6) / 50));
    const head = (await cmd('git', ['--git-dir', src, 'rev-parse', 'main'])).trim();
    const git = ['-c', `http.sslCAInfo=${join(id.dir, 'ca.crt')}`, '-c', `http.sslCert=${join(id.dir, 'client.crt')}`, '-c', `http.sslKey=${join(id.dir, 'client.key')}`];
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: o.work, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
    // An environment's GIT_SSL_CAINFO overrides http.sslCAInfo (test/e2e/storage-tls.test.ts).
    delete env.GIT_SSL_CAINFO;
    await store.createRepo('bench');
    const pack = packBytes(src);
    // storage refuses a push over maxPushBytes (64 MiB by default): the owner raises it for this one.
    const limit = Math.max(64 << 20, Math.ceil((pack * 1.25) / 2 ** 20) * 2 ** 20);
    if (limit > 64 << 20) await configure('storage', (y) => y.replace(/^maxPushBytes: \d+$/m, `maxPushBytes: ${limit}`), `maxPushBytes ${limit} for a ${(pack / 1e6).toFixed(0)} MB push`);
    await phase('git push', async () => {
      await cmd('git', [...git, '--git-dir', src, 'push', '-q', `${storageUrl}/bench.git`, 'main'], env);
      return `${(pack / 1e6).toFixed(1)} MB pack, ${head.slice(0, 12)}`;
    });
    let cloneHead = '';
    await phase('git clone', async () => {
      const clone = join(o.work, 'clone.git');
      await cmd('git', [...git, 'clone', '-q', '--bare', `${storageUrl}/bench.git`, clone], env);
      cloneHead = (await cmd('git', ['--git-dir', clone, 'rev-parse', 'main'])).trim();
      return `head ${cloneHead === head ? 'matches' : `DIFFERS (${cloneHead})`}, ${(packBytes(clone) / 1e6).toFixed(1)} MB pack`;
    });
    pushed = { packBytes: pack, head, cloneHead };

  } finally {
    await sink?.stop();
    if (sink) rmSync(sink.dir, { recursive: true, force: true });
    end = await sample.stop();
  }
  return {
    phases, peak: sample.peak, totalKiB: end!.last?.memTotalKiB ?? NaN, samples: end!.samples, missed: end!.missed,
    oomKills: end!.last?.oomKills ?? NaN, swapTotalKiB: end!.last?.swapTotalKiB ?? NaN, pushed,
  };
}
