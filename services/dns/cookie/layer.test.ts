import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { createCookieLayer } from './layer.ts';
import { serverCookie, sipKey } from './cookie.ts';

const SECRET = Buffer.from('e5e973e5a6b2a43f48e7dc849e37bfcf', 'hex');
const CLIENT = Buffer.from('2464c4abcf10c957', 'hex');
const NOW_S = 1559731985;
const ADDR = '198.51.100.100';

const query = (cookie: Buffer | undefined, questions = [{ name: 'www.example.test', type: 'A' as const }], udpPayloadSize = 1232) =>
  dnsPacket.encode({ id: 5, type: 'query', questions, additionals: cookie ? [{ type: 'OPT', name: '.', udpPayloadSize, options: [{ code: 10, data: cookie }] } as unknown as dnsPacket.Answer] : [] });
const cookieOf = (reply: Buffer) => {
  const opt = dnsPacket.decode(reply).additionals!.find((a) => a.type === 'OPT') as unknown as { options: { code: number; data: Buffer }[] } | undefined;
  return opt?.options.find((o) => o.code === 10)?.data.toString('hex');
};

describe('the cookie layer', () => {
  const layer = createCookieLayer({ now: () => NOW_S * 1000, secret: SECRET });

  it('answers a client cookie with the RFC 9018 server cookie, and finds it valid when sent back', () => {
    const begun = layer.begin(query(CLIENT), ADDR);
    if ('reply' in begun) throw new Error('answered here');
    expect(begun.state?.valid).toBe(false);
    expect(cookieOf(begun.query)).toBeUndefined(); // taken out before answering
    const answer = dnsPacket.encode({ id: 5, type: 'response', questions: [{ name: 'www.example.test', type: 'A' }], answers: [{ name: 'www.example.test', type: 'A', data: '192.0.2.80' }] });
    expect(cookieOf(layer.finish(answer, begun.state!, ADDR, 'udp'))).toBe('2464c4abcf10c957010000005cf79f111f8130c3eee29480');
    const back = layer.begin(query(Buffer.concat([CLIENT, serverCookie(sipKey(SECRET), CLIENT, ADDR, NOW_S)])), ADDR);
    expect('reply' in back ? undefined : back.state?.valid).toBe(true);
    const elsewhere = layer.begin(query(Buffer.concat([CLIENT, serverCookie(sipKey(SECRET), CLIENT, ADDR, NOW_S)])), '198.51.100.101');
    expect('reply' in elsewhere ? undefined : elsewhere.state?.valid).toBe(false);
  });

  it('answers a cookie-only query itself: BADCOOKIE without a valid server cookie, NOERROR with one (RFC 7873 §5.4)', () => {
    const first = layer.begin(query(CLIENT, []), ADDR);
    if (!('reply' in first)) throw new Error('not answered here');
    expect(first.reply[3]! & 0x0f).toBe(23 & 0x0f);
    const server = cookieOf(first.reply)!.slice(16);
    const second = layer.begin(query(Buffer.concat([CLIENT, Buffer.from(server, 'hex')]), []), ADDR);
    if (!('reply' in second)) throw new Error('not answered here');
    expect(second.reply[3]! & 0x0f).toBe(0);
  });

  it('answers FORMERR to a malformed cookie, and leaves queries without one alone', () => {
    const bad = layer.begin(query(Buffer.alloc(12, 1)), ADDR);
    expect('reply' in bad && (bad.reply[3]! & 0x0f)).toBe(1);
    const plain = query(undefined);
    expect(layer.begin(plain, ADDR)).toEqual({ query: plain, state: undefined });
  });

  it('truncates a UDP reply the cookie made too big for the client, never a TCP one', () => {
    const begun = layer.begin(query(CLIENT, undefined, 512), ADDR);
    if ('reply' in begun) throw new Error('answered here');
    const big = dnsPacket.encode({ id: 5, type: 'response', questions: [{ name: 'www.example.test', type: 'TXT' }], answers: [{ name: 'www.example.test', type: 'TXT', data: ['x'.repeat(220), 'y'.repeat(220)] }] });
    expect(big.length).toBeLessThanOrEqual(512);
    const udp = layer.finish(big, begun.state!, ADDR, 'udp');
    expect(udp.length).toBeLessThanOrEqual(512);
    expect(dnsPacket.decode(udp).flag_tc).toBe(true);
    expect(cookieOf(udp)).toMatch(/^2464c4abcf10c957/);
    expect(dnsPacket.decode(layer.finish(big, begun.state!, ADDR, 'tcp')).answers).toHaveLength(1);
  });
});
