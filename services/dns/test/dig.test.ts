/**
 * Real clients against our server: dig (BIND) and kdig (Knot) on the fixture zones, over
 * UDP and TCP, with EDNS sizes, truncation, and AXFR.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, run, startFixtureServer } from './helpers.ts';
import type { DnsServer } from '../server/server.ts';

/** The records of one section of dig output, as "name ttl class type rdata" lines. */
function section(out: string, name: 'ANSWER' | 'AUTHORITY' | 'ADDITIONAL'): string[] {
  const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(\\n\\n|$)`).exec(out);
  return m ? m[1].split('\n').filter(Boolean).map((l) => l.replace(/\s+/g, ' ')) : [];
}
const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
const flags = (out: string) => /;; flags: ([a-z ]*);/.exec(out)?.[1].trim().split(' ') ?? [];

describe('dig against our server', () => {
  let srv: DnsServer;
  beforeAll(async () => { srv = await startFixtureServer(); });
  afterAll(async () => { await srv?.close(); });
  const q = (...a: string[]) => dig(srv.udpPort, ...a);

  it.each([
    ['kith.test', 'SOA', /SOA ns1\.kith\.test\. hostmaster\.kith\.test\. 2026112301 7200 3600 1209600 300/],
    ['kith.test', 'NS', /NS ns2\.kith\.test\./],
    ['ns1.kith.test', 'A', /A 192\.0\.2\.1$/],
    ['ns1.kith.test', 'AAAA', /AAAA 2001:db8::1$/],
    ['www.kith.test', 'CNAME', /CNAME web\.kith\.test\./],
    ['kith.test', 'MX', /MX 20 mail2\.kith\.test\./],
    ['kith.test', 'TXT', /TXT "v=spf1 mx -all"/],
    ['_caldavs._tcp.kith.test', 'SRV', /SRV 0 1 443 web\.kith\.test\./],
    ['ptr.kith.test', 'PTR', /PTR web\.kith\.test\./],
    ['kith.test', 'CAA', /CAA 0 issue "letsencrypt\.org"/],
    ['child.kith.test', 'DS', /DS 12345 13 2 [0-9A-F ]{64,}/],
    ['kith.test', 'DNSKEY', /DNSKEY 257 3 13 /],
    ['_443._tcp.web.kith.test', 'TLSA', /TLSA 3 1 1 [0-9A-F ]{64,}/],
    ['svc.kith.test', 'SVCB', /SVCB 1 web\.kith\.test\. alpn="h2" port=8443/],
    ['kith.test', 'HTTPS', /HTTPS 1 \. alpn="h2,h3" ipv4hint=192\.0\.2\.20/],
    ['generic.kith.test', 'TYPE65280', /TYPE65280 \\# 4 0A000001/],
    ['quoted.kith.test', 'TXT', /TXT "a \\"quoted\\" string; not a comment" "second;part" "plain"/],
  ])('%s %s', async (name, type, re) => {
    const out = await q(name, type);
    expect(status(out)).toBe('NOERROR');
    expect(flags(out)).toContain('aa');
    expect(section(out, 'ANSWER').some((l) => re.test(l))).toBe(true);
  });

  it('NXDOMAIN with the SOA in authority, TTL min(SOA TTL, minimum)', async () => {
    const out = await q('nope.kith.test', 'A');
    expect(status(out)).toBe('NXDOMAIN');
    expect(section(out, 'ANSWER')).toEqual([]);
    expect(section(out, 'AUTHORITY')).toEqual([expect.stringMatching(/^kith\.test\. 300 IN SOA /)]);
  });

  it('NODATA: existing name, other type; and an empty non-terminal', async () => {
    for (const name of ['web.kith.test', 'b.ent.kith.test']) {
      const out = await q(name, 'MX');
      expect(status(out)).toBe('NOERROR');
      expect(section(out, 'ANSWER')).toEqual([]);
      expect(section(out, 'AUTHORITY')[0]).toMatch(/ SOA /);
    }
  });

  it('wildcard synthesis, and an existing name blocks it', async () => {
    const out = await q('anything.wild.kith.test', 'A');
    expect(section(out, 'ANSWER')).toEqual(['anything.wild.kith.test. 3600 IN A 192.0.2.30']);
    const sub = await q('sub.wild.kith.test', 'TXT');
    expect(status(sub)).toBe('NOERROR');
    expect(section(sub, 'ANSWER')).toEqual([]);
  });

  it('CNAME chain followed inside and across zones', async () => {
    const out = await q('chain1.kith.test', 'A');
    expect(section(out, 'ANSWER').map((l) => l.split(' ')[3])).toEqual(['CNAME', 'CNAME', 'CNAME', 'A']);
    const x = await q('xzone.kith.test', 'A');
    expect(section(x, 'ANSWER').map((l) => l.split(' ')[0])).toEqual(['xzone.kith.test.', 'back.other.test.', 'alias.other.test.', 'web.kith.test.']);
  });

  it('delegation: referral with NS in authority and glue, not authoritative', async () => {
    const out = await q('host.child.kith.test', 'A');
    expect(status(out)).toBe('NOERROR');
    expect(flags(out)).not.toContain('aa');
    expect(section(out, 'AUTHORITY')).toHaveLength(2);
    expect(section(out, 'ADDITIONAL')).toContain('ns.child.kith.test. 3600 IN A 192.0.2.50');
  });

  it('names outside our zones are REFUSED', async () => {
    expect(status(await q('example.org', 'A'))).toBe('REFUSED');
  });

  it('TCP', async () => {
    const out = await dig(srv.tcpPort, '+tcp', 'many-a.big.kith.test', 'A');
    expect(section(out, 'ANSWER')).toHaveLength(60);
  });

  it('EDNS: advertises 1232, truncates whole RRsets at the client size, TC without EDNS at 512', async () => {
    const big = await q('+bufsize=4096', 'many-a.big.kith.test', 'A');
    expect(big).toMatch(/udp: 1232/);
    expect(section(big, 'ANSWER')).toHaveLength(60);
    const small = await q('+bufsize=512', '+notcp', '+ignore', 'many-a.big.kith.test', 'A');
    expect(flags(small)).toContain('tc');
    expect(section(small, 'ANSWER')).toEqual([]);
    const noedns = await q('+noedns', '+notcp', '+ignore', 'big.kith.test', 'TXT');
    expect(flags(noedns)).toContain('tc');
    // Without +ignore dig retries over TCP by itself and gets everything.
    const retried = await dig(srv.tcpPort, '+bufsize=512', 'many-a.big.kith.test', 'A');
    expect(section(retried, 'ANSWER')).toHaveLength(60);
  });

  it('BADVERS for EDNS version 1', async () => {
    const out = await q('+edns=1', '+noednsneg', 'kith.test', 'SOA');
    expect(status(out)).toBe('BADVERS');
  });

  it('minimal ANY (RFC 8482): one RRset', async () => {
    const out = await q('web.kith.test', 'ANY');
    expect(section(out, 'ANSWER')).toEqual(['web.kith.test. 3600 IN A 192.0.2.20']);
  });

  it('AXFR: SOA first and last, every record', async () => {
    const out = await dig(srv.tcpPort, 'kith.test', 'AXFR');
    const rrs = out.split('\n').filter((l) => l && !l.startsWith(';'));
    expect(rrs[0]).toMatch(/\tSOA\t/);
    expect(rrs[rrs.length - 1]).toMatch(/\tSOA\t/);
    expect(rrs.length).toBe(109);
  });
});

describe('kdig against our server', () => {
  let srv: DnsServer;
  beforeAll(async () => { srv = await startFixtureServer(); });
  afterAll(async () => { await srv?.close(); });
  const kdig = async (...a: string[]) => (await run('kdig', [`@127.0.0.1`, '-p', String(srv.udpPort), '+norec', '+time=3', '+retry=0', ...a])).stdout;

  it('UDP and TCP answers', async () => {
    expect(await kdig('web.kith.test', 'AAAA')).toMatch(/web\.kith\.test\.\s+3600\s+IN\s+AAAA\s+2001:db8::20/);
    expect(await kdig('+tcp', '_caldavs._tcp.kith.test', 'SRV')).toMatch(/SRV\s+0 1 443 web\.kith\.test\./);
  });

  it('SVCB/HTTPS and NXDOMAIN', async () => {
    expect(await kdig('kith.test', 'HTTPS')).toMatch(/HTTPS\s+1 \. alpn=h2,h3 ipv4hint=192\.0\.2\.20/);
    expect(await kdig('nothing.kith.test', 'A')).toMatch(/status: NXDOMAIN/);
  });

  it('AXFR', async () => {
    const out = await kdig('kith.test', 'AXFR');
    expect(out).toMatch(/Received \d+ B \(\d+ messages?, 109 records\)/);
  });

  it('truncation is flagged with a small EDNS buffer', async () => {
    expect(await kdig('+bufsize=512', '+ignore', 'many-a.big.kith.test', 'A')).toMatch(/Flags: qr aa tc/);
  });
});
