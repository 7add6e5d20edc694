import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLoopback, tokenMatches } from './health.ts';

describe('health access', () => {
  it('counts only loopback addresses as local', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).toBe(true);
    for (const a of ['10.0.2.2', '192.0.2.1', '::ffff:10.0.0.1', 'fd00::1', '::', '0.0.0.0', '', undefined]) expect(isLoopback(a), String(a)).toBe(false);
  });

  it('matches a token against its provisioned hash, and nothing against a missing or malformed one', () => {
    const hash = createHash('sha256').update('s3cret').digest('hex');
    expect(tokenMatches('s3cret', hash)).toBe(true);
    expect(tokenMatches('s3cret ', hash)).toBe(false);
    expect(tokenMatches(undefined, hash)).toBe(false);
    expect(tokenMatches('s3cret', undefined)).toBe(false);
    expect(tokenMatches('s3cret', 'zz')).toBe(false);
  });
});
