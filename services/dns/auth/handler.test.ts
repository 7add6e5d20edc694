// Hostile input for the TSIG check in front of every QUERY/NOTIFY (RFC 8945 §5.2): mutated
// signed queries never throw, never get an answer signed with a key they did not verify
// with, and are always answered FORMERR/NOTAUTH or, when the mutation left the MAC valid,
// as before. Also the EDNS option walk of wire/decode.ts (RFC 6891 §6.1.2, §7).
import { Buffer } from 'node:buffer';
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { decodeQuery } from '../wire/decode.ts';
import { findTsig, signMessage, type TsigKey } from '../tsig/tsig.ts';
import { createAuthHandler } from './handler.ts';
import { fixtureZones } from '../test/helpers.ts';

const KEY: TsigKey = { name: 'k', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 3) };
const NOW = 1_800_000_000_000;
const info = { transport: 'udp' as const, remote: { address: '127.0.0.1', port: 5300 } };

describe('TSIG in front of every query', () => {
  const zones = fixtureZones();
  const handler = createAuthHandler({ zones: () => zones, keys: () => [KEY], now: () => NOW, axfrAllow: () => ['key:k'] });
  const query = dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: 'kith.test', type: 'SOA' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as never] });
  const signed = signMessage(query, KEY, { now: NOW }).bytes;

  it('answers a valid signed query signed, within the client size', async () => {
    const r = (await handler(signed, info)) as Buffer;
    expect(r.readUInt16BE(2) & 0xf).toBe(0);
    expect(findTsig(r)!.mac.length).toBe(32);
    expect(r.length).toBeLessThanOrEqual(1232);
  });

  it('survives 20,000 mutations of a signed query', async () => {
    let seed = 17;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const rcodes = new Map<number, number>();
    for (let n = 0; n < 20_000; n++) {
      const m = Buffer.from(signed);
      const flips = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < flips; i++) m[12 + Math.floor(rand() * (m.length - 12))] = Math.floor(rand() * 256);
      const cut = rand() < 0.2 ? m.subarray(0, 12 + Math.floor(rand() * (m.length - 12))) : m;
      const r = await handler(cut, info);
      if (r === null) continue;
      const reply = r as Buffer;
      const rcode = reply.readUInt16BE(2) & 0xf;
      rcodes.set(rcode, (rcodes.get(rcode) ?? 0) + 1);
      // A reply is signed only if the request verified; a mutated MAC never verifies.
      let t;
      try { t = findTsig(reply); } catch { t = undefined; }
      if (t && t.mac.length > 0) expect(t.error === 0 || t.error === 18).toBe(true);
    }
    expect(rcodes.get(9)).toBeGreaterThan(1000); // NOTAUTH (BADSIG mostly)
    expect(rcodes.get(1)).toBeGreaterThan(100); // FORMERR
  });
});

describe('EDNS options (RFC 6891)', () => {
  const base = dnsPacket.encode({ type: 'query', id: 9, questions: [{ name: 'kith.test', type: 'A' }] });
  const withOpt = (rdata: number[]) => {
    const b = Buffer.concat([base, Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata])]);
    b.writeUInt16BE(1, 10);
    return b;
  };
  it('ignores options it does not implement, empty or not', () => {
    for (const rd of [[], [0, 8, 0, 0], [0xff, 0xff, 0, 1, 9], [0, 8, 0, 0, 0, 12, 0, 2, 0, 0]]) {
      const d = decodeQuery(withOpt(rd));
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.query.edns).toEqual({ udpSize: 1232, version: 0, do: false });
    }
  });
  it('an option past the RDATA, or a partial option header: FORMERR with an OPT', () => {
    for (const rd of [[0, 8, 0, 10, 1, 2], [0, 8, 0], [0, 8, 0, 0, 0]]) {
      const d = decodeQuery(withOpt(rd));
      expect(d.ok).toBe(false);
      if (!d.ok) {
        expect(d.rcode).toBe('FORMERR');
        const p = dnsPacket.decode(d.reply!);
        expect(p.additionals).toEqual([expect.objectContaining({ type: 'OPT' })]);
      }
    }
  });
});
