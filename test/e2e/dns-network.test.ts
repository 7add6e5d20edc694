/**
 * The DNS service among other servers, all real: NSD as a secondary (NOTIFY from kith,
 * then AXFR from kith) and dnsmasq as the upstream of kith's caching forwarder; block
 * lists with per-list hit counters in /metrics; an upstream that stops answering gives
 * SERVFAIL within a bounded time, never a hang.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDnsmasq, type Dnsmasq } from '../../services/dns/test/helpers.ts';
import { tempDir } from '../platform/helpers.ts';
import { kithUp, type KithUp } from './kith-up.ts';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=Owner', '-c', 'user.email=owner@home.arpa', ...args], { cwd, encoding: 'utf8', stdio: 'pipe' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(100);
  }
  return fn();
}

const ZONE = (serial: number, extra = '') => `$ORIGIN example.org.
$TTL 300
@    IN SOA ns1 hostmaster ${serial} 7200 900 1209600 300
@    IN NS  ns1
ns1  IN A   192.0.2.1
www  IN A   192.0.2.80
${extra}`;

describe('kith DNS with NSD as secondary and dnsmasq as upstream', () => {
  let up: KithUp;
  let clone: string;
  let kithPort: number;
  let nsdPort: number;
  let upstreamPort: number;
  let nsd: ChildProcess;
  let dnsmasq: Dnsmasq;
  const dig = (port: number, ...args: string[]) => execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    up = await kithUp();
    kithPort = Number(/:(\d+)$/.exec(up.services.get('dns')!.endpoints.dns!)![1]);
    const storage = up.services.get('storage')!;
    clone = path.join(tempDir('kith-dnsnet-'), 'config');
    git(path.dirname(clone), 'clone', '-q', storage.endpoints.git!.replace('://', `://kith:${storage.token}@`), clone);

    // dnsmasq: an upstream resolver that knows one name.
    dnsmasq = await startDnsmasq(['--host-record=upstream.test,192.0.2.200', '--address=/ads.upstream.test/192.0.2.201', '--local-ttl=600']);
    upstreamPort = dnsmasq.port;
    // NSD: a secondary for example.org, taking NOTIFY from kith and transferring from it.
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-nsd2-'));
    nsdPort = await freePort();
    writeFileSync(path.join(dir, 'nsd.conf'), [
      'server:', `  ip-address: 127.0.0.1@${nsdPort}`, '  username: ""', '  chroot: ""', `  zonesdir: "${dir}"`, `  pidfile: "${dir}/nsd.pid"`, '  database: ""',
      `  zonelistfile: "${dir}/zone.list"`, `  xfrdfile: "${dir}/xfrd.state"`, `  xfrdir: "${dir}"`, `  logfile: "${dir}/nsd.log"`, '  server-count: 1', '  verbosity: 2',
      'remote-control:', '  control-enable: no',
      'zone:', '  name: example.org', '  zonefile: example.org.zone', `  request-xfr: AXFR 127.0.0.1@${kithPort} NOKEY`, '  allow-notify: 127.0.0.1 NOKEY', '',
    ].join('\n'));
    nsd = spawn('nsd', ['-d', '-c', path.join(dir, 'nsd.conf')], { stdio: 'ignore' });

    // The owner's config: the zone, transfers to and NOTIFY for NSD, the upstream, a block list.
    mkdirSync(path.join(clone, 'dns/zones'), { recursive: true });
    writeFileSync(path.join(clone, 'dns/zones/example.org.zone'), ZONE(2024010101));
    const yaml = path.join(clone, 'dns/dns.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8')
      .replace(/^upstreams: \[\]$/m, `upstreams: ["127.0.0.1:${upstreamPort}"]`)
      .replace(/^ {2}allow: \[\]$/m, '  allow: [127.0.0.1/32]')
      .replace(/^ {2}notify: \[\]$/m, `  notify: ["127.0.0.1:${nsdPort}"]`));
    writeFileSync(path.join(clone, 'dns/blocklists/ads.hosts'), '# a hosts-file list\n0.0.0.0 ads.upstream.test\n0.0.0.0 metrics.tracker.test\n');
    git(clone, 'add', '.');
    git(clone, 'commit', '-qm', 'example.org with a secondary; an upstream; an ads list');
    git(clone, 'push', '-q', 'origin', 'main');
    // Applied once kith serves the pushed zone (waited for, up to 15 s on a loaded machine).
    expect(await until(() => /192\.0\.2\.80/.test(dig(kithPort, '+short', 'www.example.org')), 15_000)).toBe(true);
  });
  afterAll(async () => {
    nsd?.kill('SIGTERM');
    dnsmasq?.stop();
    await up?.stop();
  });

  it('NSD transfers the zone from kith (AXFR allowed to it)', async () => {
    // NSD asks at start; a refresh may take a moment.
    const ok = await until(() => /192\.0\.2\.80/.test(dig(nsdPort, '+short', 'www.example.org')), 15_000);
    expect(ok).toBe(true);
    expect(dig(kithPort, 'example.org', 'AXFR')).toMatch(/www\.example\.org\.\s+300\s+IN\s+A\s+192\.0\.2\.80/);
  });

  it('a pushed change reaches NSD by NOTIFY, without a serial in the push (kith bumps it)', async () => {
    const before = Number(dig(kithPort, '+short', 'example.org', 'SOA').trim().split(/\s+/)[2]);
    writeFileSync(path.join(clone, 'dns/zones/example.org.zone'), ZONE(2024010101, 'new  IN A   192.0.2.99\n'));
    git(clone, 'commit', '-qam', 'a new name, same serial');
    git(clone, 'push', '-q', 'origin', 'main');
    const after = await until(() => Number(dig(kithPort, '+short', 'example.org', 'SOA').trim().split(/\s+/)[2]) > before, 15_000);
    expect(after).toBe(true);
    // NSD's refresh timer is 7200 s: only the NOTIFY makes it transfer this soon.
    const transferred = await until(() => /192\.0\.2\.99/.test(dig(nsdPort, '+short', 'new.example.org')), 15_000);
    expect(transferred).toBe(true);
  });

  it('forwards other names to the upstream and caches them', async () => {
    const first = dig(kithPort, 'upstream.test');
    expect(first).toMatch(/status: NOERROR/);
    expect(first).toMatch(/upstream\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.200/);
    expect(first).toMatch(/flags: qr rd ra;/);
    dig(kithPort, 'upstream.test');
    const metrics = await (await fetch(`${up.services.get('dns')!.health}/metrics`)).text();
    // The second is answered from a cache: the forwarder's, or the whole-response cache in
    // front of it (which dig's queries reach too since their DNS cookie is taken out first).
    expect(metrics).toMatch(/kith_dns_cache_total\{result="hit"\} [1-9]|kith_dns_response_cache_hits_total [1-9]/);
  });

  it('blocks listed names and their subdomains, counting hits per list', async () => {
    expect(dig(kithPort, 'ads.upstream.test')).toMatch(/status: NXDOMAIN/);
    expect(dig(kithPort, 'a.b.metrics.tracker.test')).toMatch(/status: NXDOMAIN/);
    expect(dig(kithPort, 'ads.example')).toMatch(/status: NXDOMAIN/);
    const metrics = await (await fetch(`${up.services.get('dns')!.health}/metrics`)).text();
    expect(metrics).toMatch(/kith_dns_blocked_total\{list="ads"\} 2/);
    expect(metrics).toMatch(/kith_dns_blocked_total\{list="example"\} 1/);
  });

  it('answers SERVFAIL within a bounded time when the upstream is gone', async () => {
    dnsmasq.stop();
    // Gone once it no longer answers (dig fails): until then it would answer NXDOMAIN itself.
    const gone = () => { try { dig(upstreamPort, 'upstream.test'); return false; } catch { return true; } };
    expect(await until(gone, 15_000)).toBe(true);
    const t0 = Date.now();
    // dig waits up to 30 s and gives no status if nothing comes: a SERVFAIL is kith giving up
    // on its own (its forwarder's total limit is 4 s; the time is printed, not asserted).
    const out = execFileSync('dig', ['@127.0.0.1', '-p', String(kithPort), '+time=30', '+tries=1', 'gone.upstream.test'], { encoding: 'utf8' });
    expect(out).toMatch(/status: SERVFAIL/);
    process.stdout.write(`dns network: SERVFAIL ${Date.now() - t0} ms after asking, the upstream gone\n`);
    // Our own zones are not affected.
    expect(dig(kithPort, '+short', 'www.example.org').trim()).toBe('192.0.2.80');
  });
});
