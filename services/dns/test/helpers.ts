/**
 * Shared pieces of the DNS real-client suites: the fixture zones, our server on a free
 * loopback port, and running dig/kdig/nsd as child processes (tests may spawn; services may not).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'node:dgram';
import { parseZone } from '../zone/parse.ts';
import { ZoneSet } from '../zone/zone.ts';
import { createAuthHandler } from '../auth/handler.ts';
import { startDnsServer, type DnsServer } from '../server/server.ts';
import { ResponseCache } from '../response-cache.ts';
import { Buffer } from 'node:buffer';

export const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));

export function fixtureZones(): ZoneSet {
  const read = (p: string) => readFileSync(join(FIXTURES, p), 'utf8');
  const out = [];
  for (const [origin, file] of [['kith.test', 'kith.test.zone'], ['other.test', 'other.test.zone']]) {
    const r = parseZone(read(file), { origin, file, include: (p) => (existsSync(join(FIXTURES, p)) ? read(p) : undefined) });
    if (!r.ok) throw new Error(`fixture ${file}: ${JSON.stringify(r.issues)}`);
    out.push(r.zone);
  }
  return new ZoneSet(out);
}

/**
 * Our server on the fixture zones. `responseCache`: answers go through the response cache
 * as in the service (services/dns/service.ts), every reply an answer of our own (no upstreams).
 */
export async function startFixtureServer(opts: { authorityNs?: boolean; responseCache?: boolean } = {}): Promise<DnsServer> {
  const zones = fixtureZones();
  const handler = createAuthHandler({ zones: () => zones, axfrAllow: () => ['127.0.0.0/8'], authorityNs: opts.authorityNs });
  if (!opts.responseCache) return startDnsServer({ host: '127.0.0.1', port: 0, handler });
  const cache = new ResponseCache({ maxEntries: 10_000, now: Date.now });
  return startDnsServer({
    host: '127.0.0.1',
    port: 0,
    fastPath: (msg, info) => {
      const key = cache.key(msg, info.transport, false);
      return key === undefined ? undefined : cache.get(key, msg);
    },
    handler: async (msg, info) => {
      const key = cache.key(msg, info.transport, false);
      const hit = key === undefined ? undefined : cache.get(key, msg);
      if (hit) return hit;
      const generation = cache.generation;
      const reply = await handler(msg, info);
      if (key !== undefined && Buffer.isBuffer(reply)) cache.put(key, msg, reply, generation, false);
      return reply;
    },
  });
}

export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `dig` with the usual quieting, against 127.0.0.1:port. */
export async function dig(port: number, ...args: string[]): Promise<string> {
  const r = await run('dig', [`@127.0.0.1`, '-p', String(port), '+norec', '+nocmd', '+nostats', '+time=3', '+tries=1', ...args]);
  return r.stdout;
}

export function hasCommand(cmd: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, cmd)));
}

/** A free UDP+TCP port on 127.0.0.1 (probe: bind UDP to 0, reuse its number). */
export async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Nsd {
  port: number;
  stop(): Promise<void>;
}

/** Run NSD in the foreground on the fixture zones, with every path in a temp dir. */
export async function startNsd(): Promise<Nsd> {
  const dir = mkdtempSync(join(tmpdir(), 'kith-nsd-'));
  let lastLog = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'nsd.conf'), [
      'server:',
      `  ip-address: 127.0.0.1@${port}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${FIXTURES}"`,
      `  pidfile: "${dir}/nsd.pid"`,
      '  database: ""',
      `  zonelistfile: "${dir}/zone.list"`,
      `  xfrdfile: "${dir}/xfrd.state"`,
      `  xfrdir: "${dir}"`,
      `  logfile: "${dir}/nsd.log"`,
      '  server-count: 1',
      '  hide-version: yes',
      'remote-control:',
      '  control-enable: no',
      'zone:',
      '  name: kith.test',
      '  zonefile: kith.test.zone',
      '  provide-xfr: 127.0.0.0/8 NOKEY',
      'zone:',
      '  name: other.test',
      '  zonefile: other.test.zone',
      '',
    ].join('\n'));
    const child: ChildProcess = spawn('nsd', ['-d', '-c', join(dir, 'nsd.conf')], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Ready when it answers the SOA.
    for (let i = 0; i < 50; i++) {
      const out = await dig(port, 'kith.test', 'SOA');
      if (/status: NOERROR/.test(out)) {
        return {
          port,
          stop: async () => {
            child.kill('SIGTERM');
            await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
            if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
            rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
          },
        };
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    lastLog = existsSync(join(dir, 'nsd.log')) ? readFileSync(join(dir, 'nsd.log'), 'utf8') : '';
    child.kill('SIGKILL');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`nsd did not start: ${lastLog}`);
}

/**
 * dig output reduced to what must match between two servers: header status/flags/counts
 * and the sections. Drops id, timing, server lines; lowercases (RFC 4343: names compare
 * case-insensitively, and NSD compresses RDATA names onto the question's case while we keep
 * RDATA names as stored); drops EDE lines (RFC 8914 extended errors are optional); sorts the
 * lines (RRset order is not significant, RFC 2181 §5).
 */
export function normaliseDig(out: string): string[] {
  return out.split('\n')
    .filter((l) => l.trim() !== '' && !/^;; (Query time|SERVER|WHEN|MSG SIZE|Got answer)/.test(l) && !/^; EDE/.test(l))
    .map((l) => l.replace(/id: \d+/, 'id: X').toLowerCase())
    .sort();
}

export interface Dnsmasq {
  /** 0 when it could not be started (the test then fails on its first query). */
  port: number;
  stop(): void;
}

/**
 * dnsmasq as a real resolver on 127.0.0.1 and a free port, answering from `options`
 * (e.g. `--host-record=host.test,192.0.2.7`); a port taken in the meantime is retried.
 */
export async function startDnsmasq(options: string[]): Promise<Dnsmasq> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn('/usr/sbin/dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file=', '--user=root',
      '--bind-interfaces', '--listen-address=127.0.0.1', `--port=${port}`, ...options,
    ], { stdio: 'ignore' });
    const up = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(true), 300);
      child.once('exit', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (up) return { port, stop: () => void child.kill('SIGTERM') };
  }
  return { port: 0, stop: () => {} };
}
