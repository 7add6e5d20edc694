import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, verifyPassword } from './passwords.ts';

describe('password hashes', () => {
  it('verifies the right password and nothing else', async () => {
    const h = hashPassword('correct horse');
    expect(isPasswordHash(h)).toBe(true);
    expect(h).not.toContain('correct');
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsE', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });
  it('refuses malformed hashes instead of throwing', async () => {
    for (const bad of ['', 'plain', 'scrypt$3$8$1$aaaaaaaaaaaaaaaaaaaaaa$' + 'a'.repeat(43), 'scrypt$16384$8$1$short$x']) {
      expect(isPasswordHash(bad)).toBe(false);
      expect(await verifyPassword('x', bad)).toBe(false);
    }
  });
});
