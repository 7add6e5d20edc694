import { describe, expect, it } from 'vitest';
import {
  DELIM,
  FLUSH,
  MAX_PKT_LEN,
  PktLineDecoder,
  PktLineError,
  PktReader,
  RESPONSE_END,
  demuxSideband,
  pkt,
  pktLine,
  sideband,
  sidebandParts,
  type Packet,
} from './pktline.ts';

function readAll(buf: Buffer): Packet[] {
  const r = new PktReader(buf);
  const out: Packet[] = [];
  for (let p = r.next(); p; p = r.next()) out.push(p);
  return out;
}

describe('pkt-line', () => {
  it('encodes lines and special packets as git does', () => {
    expect(pktLine('want abc').toString()).toBe('000dwant abc\n');
    expect(pkt('').toString()).toBe('0004');
    expect(FLUSH.toString() + DELIM.toString() + RESPONSE_END.toString()).toBe('000000010002');
  });

  it('round-trips data, flush, delim and response-end', () => {
    const buf = Buffer.concat([pktLine('a'), DELIM, pktLine('b'), FLUSH, RESPONSE_END]);
    const types = readAll(buf).map((p) => p.type);
    expect(types).toEqual(['data', 'delim', 'data', 'flush', 'response-end']);
    const r = new PktReader(buf);
    expect(r.nextLine()).toBe('a');
  });

  it('refuses bad hex, short, oversized and truncated packets', () => {
    for (const bad of ['zzzz', '+01a', ' 01a', '0003', 'fff1' + 'x'.repeat(65520), '0010abc', '00']) {
      expect(() => readAll(Buffer.from(bad)), bad.slice(0, 8)).toThrow(PktLineError);
    }
    expect(() => pkt(Buffer.alloc(MAX_PKT_LEN - 3))).toThrow(RangeError);
    expect(pkt(Buffer.alloc(MAX_PKT_LEN - 4)).length).toBe(MAX_PKT_LEN);
  });

  it('decodes a stream split at any byte', () => {
    const buf = Buffer.concat([pktLine('hello'), FLUSH, pkt(Buffer.alloc(1000, 7)), DELIM, pktLine('end')]);
    for (const step of [1, 3, 7, 500]) {
      const d = new PktLineDecoder();
      const got: Packet[] = [];
      for (let i = 0; i < buf.length; i += step) got.push(...d.push(buf.subarray(i, i + step)));
      d.end();
      expect(got.map((p) => p.type)).toEqual(['data', 'flush', 'data', 'delim', 'data']);
    }
    const d = new PktLineDecoder();
    d.push(Buffer.from('0009ab'));
    expect(() => d.end()).toThrow(PktLineError);
    expect(() => new PktLineDecoder().push(Buffer.from('ffff'))).toThrow(PktLineError);
  });

  it('multiplexes side-band-64k in packets of at most 65520 bytes', () => {
    const data = Buffer.alloc(200_000, 1);
    const packets = sideband(1, data);
    expect(packets.every((p) => p.length <= MAX_PKT_LEN)).toBe(true);
    const all = [...packets, ...sideband(2, Buffer.from('progress\n')), ...sideband(3, Buffer.from('boom'))];
    const parsed = readAll(Buffer.concat(all));
    const d = demuxSideband(parsed);
    expect(d.data.equals(data)).toBe(true);
    expect(d.progress).toBe('progress\n');
    expect(d.error).toBe('boom');
    expect(sideband(1, Buffer.alloc(3000), 995).length).toBe(4); // side-band (1000-byte) mode
  });

  it('frames side-band packets as header and a view of the data, without copying it', () => {
    const data = Buffer.alloc(140_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const parts = sidebandParts(1, data);
    expect(parts.length).toBe(6);
    expect(parts.filter((_, i) => i % 2 === 1).every((p) => p.buffer === data.buffer)).toBe(true);
    expect(Buffer.concat(parts).equals(Buffer.concat(sideband(1, data)))).toBe(true);
    expect(demuxSideband(readAll(Buffer.concat(parts))).data.equals(data)).toBe(true);
    expect(sidebandParts(2, Buffer.alloc(0))).toEqual([]);
  });
});
