import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, newSecret, secretMatches, secretSha256, verifyPassword } from './passwords.ts';

// Made by the helpers this module replaced: configs in the field hold these spellings.
const CALENDAR_HASH = 'scrypt$1024$8$1$ADeeDDcWBAMx7YI5iZczHg==$cb8OHyvXyFJciQHHinUU74YJEg791mxTbxX2LN7R9fo=';
const MAIL_HASH = 'scrypt$16384$8$1$rCRcPtGcqOYsybbYBln1Pg$OhHD2VhJTlcHoW0Z-j6BwddEUk9M1x34TxmIXxWP1w4';

describe('password hashes', () => {
  it('verifies the right password and nothing else', async () => {
    const h = hashPassword('correct horse');
    expect(isPasswordHash(h)).toBe(true);
    expect(h).not.toContain('correct');
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsE', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });
  it('verifies both stored spellings: base64url (mail) and padded base64 (calendar)', async () => {
    for (const h of [CALENDAR_HASH, MAIL_HASH]) {
      expect(isPasswordHash(h)).toBe(true);
      expect(await verifyPassword('correct horse', h)).toBe(true);
      expect(await verifyPassword('correct horse ', h)).toBe(false);
    }
  });
  it('compares the NFC form for new hashes, so composed and decomposed input agree', async () => {
    const h = hashPassword('caf\u00e9', { N: 1024 });
    expect(await verifyPassword('cafe\u0301', h)).toBe(true);
  });
  it('refuses malformed or memory-hungry hashes instead of throwing', async () => {
    for (const bad of ['', 'plain', 'scrypt$3$8$1$aaaaaaaaaaaaaaaaaaaaaa$' + 'a'.repeat(43), 'scrypt$16384$8$1$short$x', 'scrypt$1048576$32$1$aaaaaaaaaaaaaaaaaaaaaa$' + 'a'.repeat(43),
      'scrypt$16384$0$1$aaaaaaaaaaaaaaaaaaaaaa$' + 'a'.repeat(43), 'scrypt$16384$8$1$aaaaaaaaaaaaaaaaaaaaaa$' + 'a'.repeat(200), 'scrypt$16384$8$1$aaaa$aaaa$aaaa', 'scrypt$16384$8$1$!!!!!!!!!!!!!!!!$' + 'a'.repeat(43)]) {
      expect(isPasswordHash(bad)).toBe(false);
      expect(await verifyPassword('x', bad)).toBe(false);
    }
  });
});

describe('machine-made secrets', () => {
  it('never start with a dash or an underscore, which command lines would read as an option', () => {
    for (let i = 0; i < 2000; i++) expect(newSecret()).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{31}$/);
  });

  it('match their SHA-256 only', () => {
    const s = newSecret();
    expect(s).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(secretMatches(s, secretSha256(s))).toBe(true);
    expect(secretMatches(s + 'x', secretSha256(s))).toBe(false);
    expect(secretMatches(s, undefined)).toBe(false);
    expect(secretMatches(s, 'not hex')).toBe(false);
  });
});
