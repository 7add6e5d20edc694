/**
 * Response rate limiting with real sockets (issue 17 items 3 and 8): a UDP flood of one
 * name from loopback gets a few answers, then truncated (TC) replies for every 2nd and
 * nothing for the rest, all counted in /metrics; dig, told to ignore truncation, sees the
 * TC reply; and clients of the home network (the recursion allow list) are never limited.
 *
 * Loopback is in the default recursion allow list, so these tests set `recursion.allow`
 * to a network that is not loopback to make loopback an outside client.
 * Before RRL, every one of the flood's queries was answered in full.
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_ZONE, startDnsService, type DnsUnderTest } from './service.ts';

const OUTSIDE = 'recursion:\n  allow: [192.0.2.0/24]\n';

/** Send `count` queries for one name as fast as the socket takes them; count what comes back. */
export async function flood(port: number, name: string, count: number): Promise<{ sent: number; answered: number; truncated: number }> {
  const sock = dgram.createSocket('udp4');
  let answered = 0;
  let truncated = 0;
  sock.on('message', (m) => {
    if (m.length >= 4 && m[2]! & 0x02) truncated++;
    else answered++;
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  // With EDNS (1232 bytes), so the 600-byte answer is not truncated for size.
  const q = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name, type: 'TXT' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer] });
  let sent = 0;
  const started = Date.now();
  while (sent < count && Date.now() - started < 5000) {
    for (let i = 0; i < 200 && sent < count; i++, sent++) {
      q.writeUInt16BE(sent & 0xffff, 0);
      sock.send(q, port, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return { sent, answered, truncated };
}

export function dig(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=1', '+tries=1', '+norec', ...args], { timeout: 5000 }, (_e, stdout) => resolve(String(stdout)));
  });
}

describe('response rate limiting', () => {
  let dns: DnsUnderTest;
  beforeAll(async () => { dns = await startDnsService({ 'dns/zones/example.test.zone': EXAMPLE_ZONE, 'dns/dns.yaml': OUTSIDE }); });
  afterAll(async () => { await dns?.stop(); });

  it('answers a flood of one name a few times, then slips every 2nd as TC and drops the rest, counted in /metrics', async () => {
    const f = await flood(dns.port, 'big.example.test', 20_000);
    const slipped = await dns.metric('kith_dns_rrl_total', { action: 'slipped', reason: 'answer' });
    const dropped = await dns.metric('kith_dns_rrl_total', { action: 'dropped', reason: 'answer' });
    console.log(`flood: ${JSON.stringify(f)}; /metrics: slipped ${slipped}, dropped ${dropped}`);
    expect(f.answered).toBeGreaterThan(0);
    expect(f.answered).toBeLessThan(200); // 10/s, a few seconds
    expect(f.truncated).toBeGreaterThan(1000);
    expect(slipped).toBeGreaterThan(1000);
    expect(dropped).toBeGreaterThan(1000);
    expect(Math.abs(slipped - dropped)).toBeLessThan(0.05 * dropped); // every 2nd slips
    // dig told to ignore truncation sees the slip: TC, no answer; over TCP it is answered.
    // (The bucket is still in debt: each dig is slipped or dropped; two in a row see a slip.)
    const udp = [await dig(dns.port, '+ignore', 'big.example.test', 'TXT'), await dig(dns.port, '+ignore', 'big.example.test', 'TXT')].join('\n');
    expect(udp).toMatch(/flags: qr aa tc; QUERY: 1, ANSWER: 0/);
    expect(await dig(dns.port, '+tcp', 'big.example.test', 'TXT')).toMatch(/x{200}/);
    // Another name has its own bucket.
    expect(await dig(dns.port, 'www.example.test', 'A')).toMatch(/192\.0\.2\.80/);
  });

  it('never limits the home network (the recursion allow list), and the limits apply live', async () => {
    const limited = () => dns.metric('kith_dns_rrl_total');
    const before = await limited();
    expect((await dns.write({ 'dns/dns.yaml': undefined })).applied).toBe(true);
    const f = await flood(dns.port, 'ns1.example.test', 3000);
    expect(f.truncated).toBe(0);
    expect(f.answered).toBeGreaterThan(1000); // the rest lost to full socket buffers, not to RRL
    expect((await dns.write({ 'dns/dns.yaml': OUTSIDE + 'rrl:\n  enabled: false\n' })).applied).toBe(true);
    const g = await flood(dns.port, 'www.example.test', 3000);
    expect(g.truncated).toBe(0);
    expect((await dns.write({ 'dns/dns.yaml': OUTSIDE + 'rrl:\n  exempt: [127.0.0.0/8]\n' })).applied).toBe(true);
    const h = await flood(dns.port, 'www.example.test', 3000);
    expect(h.truncated).toBe(0);
    expect(await limited()).toBe(before);
  });
});
