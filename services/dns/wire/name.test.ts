// The one name reader's hostile-input rule (RFC 1035 §2.3.4, §4.1.4), shared by the query
// decoder, the message scanner (TSIG, UPDATE) and everything above them.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { WireError } from './error.ts';
import { encodeName, nameText, readName } from './name.ts';

const hdr = Buffer.alloc(12);
const read = (b: Buffer, at: number) => nameText(readName(b, at).labels);

describe('readName', () => {
  it('follows backward pointers and ends after the first one', () => {
    const b = Buffer.concat([hdr, encodeName('example.org'), Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 12])]);
    expect(read(b, 12)).toBe('example.org');
    const r = readName(b, 25);
    expect(nameText(r.labels)).toBe('www.example.org');
    expect(r.end).toBe(31);
  });

  it('refuses pointers to itself, forwards, and back into a name already read (a loop)', () => {
    expect(() => readName(Buffer.concat([hdr, Buffer.from([0xc0, 12])]), 12)).toThrow(WireError);
    expect(() => readName(Buffer.concat([hdr, Buffer.from([0xc0, 14, 0])]), 12)).toThrow(WireError);
    // A pointer to 16, where "a" is followed by a pointer back to 16: backwards from where
    // it sits, but not before the lowest offset read so far: a loop.
    const loop = Buffer.concat([hdr, Buffer.from([0xc0, 16, 0, 0, 1, 0x61, 0xc0, 16])]);
    expect(() => readName(loop, 12)).toThrow(/backwards/);
  });

  it('refuses labels of type 01/10, truncation, and names past 255 octets', () => {
    expect(() => readName(Buffer.concat([hdr, Buffer.from([0x40, 0])]), 12)).toThrow(WireError);
    expect(() => readName(Buffer.concat([hdr, Buffer.from([0x80, 0])]), 12)).toThrow(WireError);
    expect(() => readName(Buffer.concat([hdr, Buffer.from([5, 0x61])]), 12)).toThrow(WireError);
    expect(() => readName(Buffer.concat([hdr, Buffer.from([0xc0])]), 12)).toThrow(WireError);
    const label63 = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const ok = Buffer.concat([hdr, label63, label63, label63, Buffer.from([61]), Buffer.alloc(61, 0x61), Buffer.from([0])]);
    expect(readName(ok, 12).labels).toHaveLength(4); // exactly 255 octets
    const long = Buffer.concat([hdr, label63, label63, label63, Buffer.from([62]), Buffer.alloc(62, 0x61), Buffer.from([0])]);
    expect(() => readName(long, 12)).toThrow(/255/);
    // The same limit through pointers: 4 x 63 behind a chain of pointers.
    const chain = Buffer.concat([hdr, label63, Buffer.from([0]), label63, Buffer.from([0xc0, 12]), label63, Buffer.from([0xc0, 77]), label63, Buffer.from([0xc0, 143])]);
    expect(readName(chain, 143).labels).toHaveLength(3);
    expect(() => readName(chain, 209)).toThrow(/255/);
  });

  it('encodeName is the inverse, and lowercases for canonical form', () => {
    expect(encodeName('A.b', true)).toEqual(Buffer.from([1, 0x61, 1, 0x62, 0]));
    expect(encodeName([])).toEqual(Buffer.from([0]));
    expect(() => encodeName([Buffer.alloc(64, 0x61)])).toThrow(WireError);
  });
});
