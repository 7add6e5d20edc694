/**
 * Hostile input: tens of thousands of random and mutated packets through decode + answer.
 * Nothing may throw; every packet ends in a reply within the size limit or a drop; and no
 * packet takes long (a pointer loop or absurd count must not make us spin).
 */
import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import { decodeQuery } from './decode.ts';
import { answer } from '../auth/answer.ts';
import { parseZone } from '../zone/parse.ts';
import { ZoneSet } from '../zone/zone.ts';

const zone = parseZone(`$TTL 60
@ SOA ns hostmaster 1 1 1 1 1
  NS ns
  MX 1 mx
ns A 192.0.2.1
mx A 192.0.2.2
c CNAME ns
*.w TXT "w"
d NS ns.d
ns.d A 192.0.2.3
`, { origin: 'f.test', file: 'f' });
if (!zone.ok) throw new Error('fixture');
const ZS = new ZoneSet([zone.zone]);

let seed = 0x2545f491;
function rnd(n: number): number {
  // xorshift32: deterministic across runs.
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  for (const name of ['f.test', 'ns.f.test', 'x.w.f.test', 'c.f.test', 'a.d.f.test', 'nope.f.test', 'example.org']) {
    for (const type of ['A', 'MX', 'ANY', 'AXFR', 'TXT', 'NS'] as const) {
      out.push(dnsPacket.encode({ id: 1, type: 'query', flags: 0x100, questions: [{ name, type: type as 'A' }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as dnsPacket.Answer] }));
    }
  }
  return out;
}

function hostile(): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(rnd(65536), 0);
  h.writeUInt16BE(rnd(2) ? 0 : rnd(65536) & 0x7fff, 2);
  const kind = rnd(5);
  if (kind === 0) {
    // Compression-pointer loop in the question.
    h.writeUInt16BE(1, 4);
    return Buffer.concat([h, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  }
  if (kind === 1) {
    // Oversized label length, or a label claiming more bytes than exist.
    h.writeUInt16BE(1, 4);
    return Buffer.concat([h, Buffer.from([63 + rnd(192)]), Buffer.alloc(rnd(80), 0x61), Buffer.from([0, 0, 1, 0, 1])]);
  }
  if (kind === 2) {
    // Absurd counts on a tiny packet.
    for (let i = 4; i < 12; i += 2) h.writeUInt16BE(rnd(2) ? 65535 : rnd(65536), i);
    return Buffer.concat([h, Buffer.from([1, 0x61, 0, 0, 1, 0, 1])]);
  }
  if (kind === 3) {
    // A chain of pointers each pointing one step back.
    h.writeUInt16BE(1, 4);
    const body: number[] = [];
    for (let i = 0; i < 200; i++) body.push(0xc0 | ((12 + body.length - 2) >> 8), (12 + body.length - 2) & 0xff);
    return Buffer.concat([h, Buffer.from(body), Buffer.from([0, 1, 0, 1])]);
  }
  const len = rnd(600);
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = rnd(256);
  return b;
}

function mutate(src: Buffer): Buffer {
  const b = Buffer.from(src);
  switch (rnd(5)) {
    case 0: { // bit flips
      const n = 1 + rnd(8);
      for (let i = 0; i < n; i++) b[rnd(b.length)] ^= 1 << rnd(8);
      return b;
    }
    case 1: return b.subarray(0, rnd(b.length)); // truncation
    case 2: { // random bytes overwritten
      const at = rnd(b.length);
      for (let i = at; i < Math.min(b.length, at + 1 + rnd(6)); i++) b[i] = rnd(256);
      return b;
    }
    case 3: return Buffer.concat([b, Buffer.alloc(rnd(40), rnd(256))]); // trailing junk
    default: { // count fields set to odd values
      b.writeUInt16BE(rnd(4), 4 + 2 * rnd(4));
      return b;
    }
  }
}

describe('fuzz: decode + answer', () => {
  it('never throws, always replies within limits or drops, quickly', () => {
    const base = seeds();
    const N = 40_000;
    let replies = 0;
    let drops = 0;
    let worst = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const pkt = i % 3 === 0 ? hostile() : mutate(base[rnd(base.length)]);
      const start = performance.now();
      const d = decodeQuery(pkt);
      if (!d.ok) {
        if (d.reply) {
          expect(d.reply.length).toBe(12);
          replies++;
        } else drops++;
      } else {
        for (const transport of ['udp', 'tcp'] as const) {
          const r = answer(ZS, d.query, { transport, remote: '127.0.0.1', axfrAllow: ['127.0.0.1'] });
          expect(r.messages.length).toBeGreaterThan(0);
          for (const m of r.messages) {
            expect(m.length).toBeLessThanOrEqual(transport === 'udp' ? 1232 : 65535);
            expect(m.readUInt16BE(0)).toBe(d.query.id);
          }
          // Our own replies must be decodable by a strict third-party decoder.
          dnsPacket.decode(r.messages[0]);
        }
        replies++;
      }
      worst = Math.max(worst, performance.now() - start);
    }
    const total = performance.now() - t0;
    expect(replies + drops).toBe(N);
    expect(replies).toBeGreaterThan(1000);
    expect(drops).toBeGreaterThan(100);
    process.stdout.write(`dns fuzz: ${N} packets in ${total.toFixed(0)} ms, slowest ${worst.toFixed(1)} ms\n`);
    // Only against a packet that makes us loop or blow up: generous enough for a machine
    // ten times slower and loaded (the figures, printed, are far below).
    expect(worst).toBeLessThan(5000);
  });

  it('specific rejections', () => {
    const q = dnsPacket.encode({ id: 9, type: 'query', questions: [{ name: 'f.test', type: 'A' }] });
    const resp = Buffer.from(q); resp[2] |= 0x80;
    expect(decodeQuery(resp)).toMatchObject({ ok: false, rcode: null, reply: null });
    const two = Buffer.from(q); two.writeUInt16BE(2, 4);
    expect(decodeQuery(two)).toMatchObject({ ok: false, rcode: 'FORMERR', id: 9 });
    const zero = Buffer.from(q); zero.writeUInt16BE(0, 4);
    expect(decodeQuery(zero)).toMatchObject({ ok: false, rcode: 'FORMERR' });
    const op = Buffer.from(q); op[2] = (op[2] & 0x87) | (3 << 3);
    const r = decodeQuery(op);
    expect(r).toMatchObject({ ok: false, rcode: 'NOTIMP' });
    if (!r.ok) expect(r.reply![3] & 0xf).toBe(4);
    expect(decodeQuery(Buffer.alloc(5))).toMatchObject({ ok: false, reply: null });
    const twoOpt = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'f.test', type: 'A' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 512 }, { type: 'OPT', name: '.', udpPayloadSize: 512 }] as dnsPacket.Answer[] });
    expect(decodeQuery(twoOpt)).toMatchObject({ ok: false, rcode: 'FORMERR' });
    // RFC 2136 "delete an RRset": class ANY, RDLENGTH 0. dns-packet cannot read it; we still
    // hand the UPDATE on (packet null) instead of answering FORMERR.
    const name = Buffer.from([1, 0x78, 1, 0x66, 4, 0x74, 0x65, 0x73, 0x74, 0]);
    const upd = Buffer.concat([
      Buffer.from([0, 3, 5 << 3, 0, 0, 1, 0, 0, 0, 1, 0, 0]),
      name.subarray(2), Buffer.from([0, 6, 0, 1]),
      name, Buffer.from([0, 1, 0, 255, 0, 0, 0, 0, 0, 0]),
    ]);
    const u = decodeQuery(upd);
    expect(u.ok).toBe(true);
    if (u.ok) expect(u.query).toMatchObject({ opcode: 5, qkey: 'f.test', qtype: 6 });
  });
});
