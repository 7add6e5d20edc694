import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createAuthenticator, scryptHash, verifyScrypt } from './auth.ts';
import { CalendarSettingsSchema } from './config.ts';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('calendar sign-in', () => {
  it('checks scrypt hashes, the owner token, and nothing else', async () => {
    const h = scryptHash('pw', { N: 1024 });
    expect(await verifyScrypt('pw', h)).toBe(true);
    expect(await verifyScrypt('pW', h)).toBe(false);
    const cfg = CalendarSettingsSchema.parse({ users: { kith: { password: 'owner-token' }, bob: { passwordHash: h } } });
    const auth = createAuthenticator({ config: () => cfg, ownerTokenSha256: () => createHash('sha256').update('TOKEN').digest('hex'), now: Date.now });
    expect(await auth(basic('bob', 'pw'))).toBe('bob');
    expect(await auth(basic('bob', 'pw'))).toBe('bob'); // remembered
    expect(await auth(basic('kith', 'TOKEN'))).toBe('kith');
    expect(await auth(basic('kith', 'pw'))).toBeUndefined();
    expect(await auth(basic('eve', 'pw'))).toBeUndefined();
    expect(await auth('Bearer TOKEN')).toBeUndefined();
    expect(await auth('Basic !!!')).toBeUndefined();
    expect(await auth(undefined)).toBeUndefined();
  });
});
