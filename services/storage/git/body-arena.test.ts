import { describe, expect, it } from 'vitest';
import { BodyArena } from './body-arena.ts';

describe('BodyArena', () => {
  it('copies small bodies into shared chunks, pinning no pool slab, and large ones on their own', () => {
    const arena = new BodyArena();
    const small = Buffer.from('100644 a\0' + 'x'.repeat(20)); // a pool slice
    const a = arena.add(small);
    const b = arena.add(Buffer.from('commit body'));
    small.fill(0); // the copy does not change with its source
    expect(a.toString('latin1')).toBe('100644 a\0' + 'x'.repeat(20));
    expect(b.toString()).toBe('commit body');
    expect(a.buffer).toBe(b.buffer); // one chunk
    expect(a.buffer).not.toBe(small.buffer);
    expect(a.buffer.byteLength).toBe(256 << 10);
    const big = arena.add(Buffer.alloc(100 << 10, 1));
    expect(big.byteLength).toBe(100 << 10);
    expect(big.buffer.byteLength).toBe(100 << 10);
    expect(arena.bytes).toBe(a.length + b.length + big.length);
  });

  it('starts a new chunk when a body does not fit the rest of the current one', () => {
    const arena = new BodyArena();
    const first = arena.add(Buffer.alloc(60 << 10, 1));
    const views = [1, 2, 3, 4].map((n) => arena.add(Buffer.alloc(60 << 10, n)));
    expect(views[2]!.buffer).toBe(first.buffer);
    expect(views[3]!.buffer).not.toBe(first.buffer);
    expect(views.map((v) => v[0])).toEqual([1, 2, 3, 4]);
    expect(first[0]).toBe(1);
  });
});
