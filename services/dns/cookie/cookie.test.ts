import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { addressBytes, inspectQuery, replyServerCookie, serverCookie, shortReply, sipKey, verifyServerCookie, withCookie } from './cookie.ts';

const hex = (s: string) => Buffer.from(s, 'hex');
const KEY = sipKey(hex('e5e973e5a6b2a43f48e7dc849e37bfcf'));

describe('RFC 9018 server cookies', () => {
  it('matches the test vectors of Appendix A', () => {
    expect(serverCookie(KEY, hex('2464c4abcf10c957'), '198.51.100.100', 1559731985).toString('hex')).toBe('010000005cf79f111f8130c3eee29480');
    expect(serverCookie(KEY, hex('2464c4abcf10c957'), '198.51.100.100', 1559734385).toString('hex')).toBe('010000005cf7a871d4a564a1442aca77');
    expect(serverCookie(KEY, hex('fc93fc62807ddb86'), '203.0.113.203', 1559734700).toString('hex')).toBe('010000005cf7a9acf73a7810aca2381e');
  });

  it('verifies within an hour back and five minutes ahead, for that client and address only', () => {
    const c = hex('2464c4abcf10c957');
    const s = serverCookie(KEY, c, '198.51.100.100', 1_000_000);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.100', 1_000_000)).toBe(true);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.100', 1_003_600)).toBe(true);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.100', 1_003_601)).toBe(false);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.100', 999_700)).toBe(true);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.100', 999_699)).toBe(false);
    expect(verifyServerCookie(KEY, c, s, '198.51.100.101', 1_000_000)).toBe(false);
    expect(verifyServerCookie(KEY, hex('2464c4abcf10c958'), s, '198.51.100.100', 1_000_000)).toBe(false);
    expect(verifyServerCookie(sipKey(Buffer.alloc(16)), c, s, '198.51.100.100', 1_000_000)).toBe(false);
    expect(verifyServerCookie(KEY, c, s.subarray(0, 8), '198.51.100.100', 1_000_000)).toBe(false);
    // Renewed after half an hour, kept before.
    expect(replyServerCookie(KEY, c, s, true, '198.51.100.100', 1_001_000)).toBe(s);
    expect(replyServerCookie(KEY, c, s, true, '198.51.100.100', 1_001_800).readUInt32BE(4)).toBe(1_001_800);
  });

  it('hashes IPv4 (also mapped) as 4 bytes and IPv6 as 16', () => {
    expect(addressBytes('192.0.2.1').toString('hex')).toBe('c0000201');
    expect(addressBytes('::ffff:192.0.2.1').toString('hex')).toBe('c0000201');
    expect(addressBytes('2001:db8::1').toString('hex')).toBe('20010db8000000000000000000000001');
  });
});

const q = (options: { code: number; data: Buffer }[] | undefined, extra: Partial<dnsPacket.Packet> = {}) =>
  dnsPacket.encode({ id: 7, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'www.example.test', type: 'A' }], additionals: options ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as dnsPacket.Answer] : [], ...extra });

describe('inspectQuery', () => {
  it('finds the client and server cookie and takes the option out of the query', () => {
    expect(inspectQuery(q(undefined))).toEqual({ kind: 'none' });
    expect(inspectQuery(q([]))).toEqual({ kind: 'none' });
    const r = inspectQuery(q([{ code: 8, data: Buffer.from([0, 1, 0, 0]) }, { code: 10, data: hex('2464c4abcf10c957010000005cf79f111f8130c3eee29480') }]));
    expect(r.kind).toBe('cookie');
    if (r.kind !== 'cookie') return;
    expect(r.client.toString('hex')).toBe('2464c4abcf10c957');
    expect(r.server!.toString('hex')).toBe('010000005cf79f111f8130c3eee29480');
    expect(r.udpSize).toBe(1232);
    const d = dnsPacket.decode(r.stripped);
    const opt = d.additionals![0] as unknown as { udpPayloadSize: number; options: { code: number }[] };
    expect(opt.options.map((o) => o.code)).toEqual([8]);
    expect(opt.udpPayloadSize).toBe(1232 - 28);
  });

  it('calls bad lengths malformed (RFC 7873 §5.2.2)', () => {
    for (const len of [0, 7, 9, 15, 41]) expect(inspectQuery(q([{ code: 10, data: Buffer.alloc(len, 1) }])).kind).toBe('malformed');
    for (const len of [8, 16, 40]) expect(inspectQuery(q([{ code: 10, data: Buffer.alloc(len, 1) }])).kind).toBe('cookie');
  });

  it('survives hostile bytes', () => {
    const base = q([{ code: 10, data: Buffer.alloc(24, 1) }]);
    for (let i = 0; i < 5000; i++) {
      const junk = Buffer.from(base);
      junk[(i * 7) % junk.length] = (i * 131) & 255;
      if (i % 3 === 0) junk[(i * 13) % junk.length] = 0xc0;
      expect(() => inspectQuery(junk)).not.toThrow();
      expect(() => inspectQuery(junk.subarray(0, i % junk.length))).not.toThrow();
    }
  });
});

describe('withCookie and shortReply', () => {
  it('adds the COOKIE option to the reply OPT, or an OPT when there is none', () => {
    const reply = dnsPacket.encode({ id: 7, type: 'response', questions: [{ name: 'a.test', type: 'A' }], answers: [{ name: 'a.test', type: 'A', data: '192.0.2.1' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer] });
    const c = hex('2464c4abcf10c957');
    const s = Buffer.alloc(16, 9);
    for (const r of [reply, dnsPacket.encode({ id: 7, type: 'response', questions: [{ name: 'a.test', type: 'A' }] })]) {
      const d = dnsPacket.decode(withCookie(r, c, s)!);
      const opt = d.additionals!.find((x) => x.type === 'OPT') as unknown as { options: { code: number; data: Buffer }[] };
      expect(opt.options).toEqual([expect.objectContaining({ code: 10, data: Buffer.concat([c, s]) })]);
    }
  });

  it('makes BADCOOKIE with the extended RCODE in the OPT and the cookie', () => {
    const b = shortReply(q([{ code: 10, data: Buffer.alloc(8, 1) }]), 23, { client: Buffer.alloc(8, 1), server: Buffer.alloc(16, 2) });
    const d = dnsPacket.decode(b);
    expect(d.type).toBe('response');
    expect(d.questions).toEqual([{ name: 'www.example.test', type: 'A', class: 'IN' }]);
    expect(b[3]! & 0x0f).toBe(23 & 0x0f);
    expect(b[b.length - 11 - 28 + 5]).toBe(1); // extended RCODE byte of the OPT TTL
    expect(d.flag_rd).toBe(true);
  });
});
