import { describe, expect, it } from 'vitest';
import { deflateSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { inflateKnown } from './inflater.ts';

describe('inflateKnown (one reused zlib engine)', () => {
  it('inflates streams one after another, ignoring what follows each, and says how much input each took', () => {
    for (const body of [Buffer.alloc(0), Buffer.from('tree 1234\n'), randomBytes(70_000), Buffer.alloc(300_000, 'x')]) {
      const z = deflateSync(body);
      const r = inflateKnown(Buffer.concat([z, Buffer.from('next entry')]), body.length);
      expect(r.buffer.equals(body)).toBe(true);
      expect(r.consumed).toBe(z.length);
    }
  });

  it('refuses a stream that inflates to more or fewer bytes than declared, without inflating the rest', () => {
    const z = deflateSync(Buffer.alloc(1 << 20));
    expect(() => inflateKnown(z, 100)).toThrow(/inflates to more than 100 bytes/);
    expect(() => inflateKnown(deflateSync(Buffer.from('abc')), 4)).toThrow(/inflates to 3 bytes, its header says 4/);
  });

  it('says Z_BUF_ERROR for a stream cut short, refuses bad data, and works again afterwards', () => {
    const body = randomBytes(5000);
    const z = deflateSync(body);
    expect(() => inflateKnown(z.subarray(0, z.length >> 1), body.length)).toThrow(expect.objectContaining({ code: 'Z_BUF_ERROR' }));
    expect(() => inflateKnown(Buffer.from('not zlib at all'), 10)).toThrow(expect.objectContaining({ code: 'Z_DATA_ERROR' }));
    expect(inflateKnown(z, body.length).buffer.equals(body)).toBe(true);
  });
});
