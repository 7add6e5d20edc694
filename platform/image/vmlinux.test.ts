import { describe, expect, it } from 'vitest';
import { payloadCandidates } from './vmlinux.ts';

describe('payloadCandidates', () => {
  it('finds compressor magics in file order', () => {
    const img = Buffer.concat([Buffer.alloc(10), Buffer.from([0x1f, 0x8b, 0x08]), Buffer.alloc(5), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])]);
    expect(payloadCandidates(img)).toEqual([{ compression: 'gzip', offset: 10 }, { compression: 'xz', offset: 18 }, { compression: 'zstd', offset: 24 }]);
    expect(payloadCandidates(Buffer.alloc(100))).toEqual([]);
  });
});
