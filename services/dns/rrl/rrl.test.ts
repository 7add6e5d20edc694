import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { classifyResponse, clientPrefix, NetworkCounter, ResponseRateLimiter, slipReply, type RrlSettings } from './rrl.ts';

const S: RrlSettings = { responsesPerSecond: 4, window: 2, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56, maxEntries: 100 };

describe('ResponseRateLimiter', () => {
  it('sends up to the rate, then slips every 2nd and drops the rest; refills with time', () => {
    const r = new ResponseRateLimiter();
    const at = (now: number, n: number, addr = '192.0.2.7') => Array.from({ length: n }, () => r.check(now, S, addr, 'answer', 'a.example/1'));
    expect(at(0, 4)).toEqual(['send', 'send', 'send', 'send']);
    expect(at(0, 4)).toEqual(['drop', 'slip', 'drop', 'slip']);
    // Same /24, same response: the same bucket.
    expect(at(0, 1, '192.0.2.200')).toEqual(['drop']);
    // Another network, another response: their own buckets.
    expect(at(0, 1, '192.0.3.7')).toEqual(['send']);
    expect(r.check(0, S, '192.0.2.7', 'answer', 'b.example/1')).toBe('send');
    // Debt: 5 answers over the rate (balance -5); a second later (+4) still in debt, and
    // the limited count goes on (the 6th: slipped).
    expect(at(1000, 1)).toEqual(['slip']);
    expect(at(2800, 1)).toEqual(['send']);
  });

  it('limits a sustained flood to the rate, however long the debt', () => {
    const r = new ResponseRateLimiter();
    let sent = 0;
    let slipped = 0;
    // 1,000 queries a second for 10 s.
    for (let t = 0; t < 10_000; t++) {
      const a = r.check(t, S, '198.51.100.1', 'nxdomain', 'example');
      if (a === 'send') sent++;
      if (a === 'slip') slipped++;
    }
    expect(sent).toBeLessThanOrEqual(4 + 4 * 10);
    expect(slipped).toBeGreaterThan(4000);
  });

  it('slip 0 drops all, slip 1 slips all', () => {
    const r = new ResponseRateLimiter();
    for (let i = 0; i < 4; i++) r.check(0, S, '192.0.2.1', 'answer', 'x');
    expect(r.check(0, { ...S, slip: 0 }, '192.0.2.1', 'answer', 'x')).toBe('drop');
    expect(r.check(0, { ...S, slip: 1 }, '192.0.2.1', 'answer', 'x')).toBe('slip');
  });

  it('keeps at most maxEntries buckets', () => {
    const r = new ResponseRateLimiter();
    for (let i = 0; i < 1000; i++) r.check(0, S, `10.${i >> 8}.${i & 255}.1`, 'answer', 'x');
    expect(r.size).toBe(100);
  });
});

describe('NetworkCounter', () => {
  it('lets a network through unchecked up to the rate in a second, then checks it until it has been quiet for the window', () => {
    const n = new NetworkCounter();
    const seen = (t: number, addr = '192.0.2.7') => n.busy(t, S, addr);
    expect([0, 1, 2, 3].map((t) => seen(t))).toEqual([false, false, false, false]); // 4 = the rate
    expect(seen(4, '192.0.2.200')).toBe(true); // the 5th answer to that /24 in second 0
    expect(seen(10, '198.51.100.1')).toBe(false); // another network
    expect(seen(1500)).toBe(true); // still within the window (2 s) after second 0
    expect(seen(2999)).toBe(true);
    expect(seen(3000)).toBe(false); // quiet again
    // IPv6 and mapped addresses by their prefixes, junk as itself.
    for (let i = 0; i < 4; i++) expect(n.busy(5000, S, `2001:db8:0:${i}::1`)).toBe(false);
    expect(n.busy(5000, S, '2001:db8:0:ff::1')).toBe(true); // the same /56
    expect(n.busy(5000, S, '2001:db8:1::1')).toBe(false);
    for (let i = 0; i < 4; i++) n.busy(6000, S, `::ffff:203.0.113.${i}`);
    expect(n.busy(6000, S, '::ffff:203.0.113.99')).toBe(true);
    expect(n.busy(6000, S, '1.2.3')).toBe(false);
  });

  it('a sustained flood is checked every time, and the table stays bounded', () => {
    const n = new NetworkCounter();
    const r = new ResponseRateLimiter();
    let sent = 0;
    for (let t = 0; t < 10_000; t += 1) if (!n.busy(t, S, '10.0.0.1') || r.check(t, S, '10.0.0.1', 'answer', 'x') === 'send') sent++;
    // 10 s at 1000/s: the rate (4/s) plus the unchecked first 4 and the bucket's first 4.
    expect(sent).toBeLessThanOrEqual(4 * 10 + 8);
    for (let i = 0; i < 1000; i++) n.busy(0, S, `10.${i >> 8}.${i & 255}.1`);
    expect(n.size).toBe(100);
  });
});

describe('clientPrefix', () => {
  it('masks IPv4 to /24 and IPv6 to /56 (or what is configured)', () => {
    expect(clientPrefix('192.0.2.77', 24, 56)).toBe('192.0.2.0/24');
    expect(clientPrefix('::ffff:192.0.2.77', 24, 56)).toBe('192.0.2.0/24');
    expect(clientPrefix('192.0.2.77', 32, 56)).toBe('192.0.2.77/32');
    expect(clientPrefix('192.0.2.77', 8, 56)).toBe('192.0.0.0/8');
    expect(clientPrefix('2001:db8:aa:bbcc::1', 24, 56)).toBe('2001:db8:aa:bb00:0:0:0:0/56');
    expect(clientPrefix('2001:db8:aa:bbff:1:2:3:4', 24, 56)).toBe(clientPrefix('2001:db8:aa:bb00::9', 24, 56));
    expect(clientPrefix('::1', 24, 128)).toBe('0:0:0:0:0:0:0:1/128');
  });
});

describe('classifyResponse', () => {
  const resp = (p: Partial<dnsPacket.Packet>) => dnsPacket.encode({ id: 1, type: 'response', questions: [{ name: 'WWW.Example.ORG', type: 'A' }], ...p });
  it('answers and NODATA by name and type; NXDOMAIN by zone; referrals by delegation; errors by rcode', () => {
    expect(classifyResponse(resp({ flags: 0x400, answers: [{ name: 'www.example.org', type: 'A', data: '192.0.2.1' }] }))).toEqual({ cls: 'answer', name: 'www.example.org./1' });
    expect(classifyResponse(resp({ flags: 0x400, authorities: [{ name: 'example.org', type: 'SOA', data: { mname: 'ns1', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 } }] }))).toEqual({ cls: 'nodata', name: 'www.example.org./1' });
    const nx = resp({ flags: 0x400 | 3, authorities: [{ name: 'Example.org', type: 'SOA', data: { mname: 'ns1', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 } }] });
    expect(classifyResponse(nx)).toEqual({ cls: 'nxdomain', name: 'example.org.' });
    expect(classifyResponse(resp({ authorities: [{ name: 'www.example.org', type: 'NS', data: 'ns.elsewhere' }] }))).toEqual({ cls: 'referral', name: 'www.example.org.' });
    expect(classifyResponse(resp({ flags: 5 }))).toEqual({ cls: 'error', name: 'rcode5' });
  });
  it('is undefined for queries, garbage and truncated bytes', () => {
    expect(classifyResponse(dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'a', type: 'A' }] }))).toBeUndefined();
    expect(classifyResponse(Buffer.from([1, 2, 3]))).toBeUndefined();
    const r = resp({});
    expect(classifyResponse(r.subarray(0, 20))).toBeUndefined();
    // A pointer loop in the question.
    const loop = Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(classifyResponse(loop)).toBeUndefined();
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.from(r);
      junk[12 + (i % (junk.length - 12))] = (i * 37) & 255;
      expect(() => classifyResponse(junk)).not.toThrow();
    }
  });
});

describe('slipReply', () => {
  it('keeps header and question, sets TC, empties the rest', () => {
    const r = dnsPacket.encode({ id: 9, type: 'response', flags: 0x400, questions: [{ name: 'a.example', type: 'TXT' }], answers: [{ name: 'a.example', type: 'TXT', data: 'x'.repeat(300) }] });
    const s = slipReply(r)!;
    const d = dnsPacket.decode(s);
    expect(d.id).toBe(9);
    expect(d.flag_tc).toBe(true);
    expect(d.answers).toEqual([]);
    expect(d.questions).toEqual([{ name: 'a.example', type: 'TXT', class: 'IN' }]);
  });
});
