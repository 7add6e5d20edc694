import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { hashPassword } from '../../platform/passwords.ts';
import { createAuthenticator } from './auth.ts';
import { CalendarSettingsSchema } from './config.ts';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('calendar sign-in', () => {
  it('checks scrypt hashes, the owner token, and nothing else', async () => {
    const h = hashPassword('pw', { N: 1024 });
    const cfg = CalendarSettingsSchema.parse({ users: { kith: { password: 'owner-token' }, bob: { passwordHash: h } } });
    const auth = createAuthenticator({ config: () => cfg, ownerTokenSha256: () => createHash('sha256').update('TOKEN').digest('hex'), now: Date.now });
    expect(await auth(basic('bob', 'pw'))).toBe('bob');
    expect(await auth(basic('bob', 'pw'))).toBe('bob'); // remembered
    expect(await auth(basic('bob', 'pW'))).toBeUndefined();
    expect(await auth(basic('kith', 'TOKEN'))).toBe('kith');
    expect(await auth(basic('kith', 'pw'))).toBeUndefined();
    expect(await auth(basic('eve', 'pw'))).toBeUndefined();
    expect(await auth('Bearer TOKEN')).toBeUndefined();
    expect(await auth('Basic !!!')).toBeUndefined();
    expect(await auth(undefined)).toBeUndefined();
  });

  it('takes hashes made by the older `kith calendar hash-password` (padded base64)', async () => {
    const old = 'scrypt$1024$8$1$ADeeDDcWBAMx7YI5iZczHg==$cb8OHyvXyFJciQHHinUU74YJEg791mxTbxX2LN7R9fo=';
    const cfg = CalendarSettingsSchema.parse({ users: { bob: { passwordHash: old } } });
    const auth = createAuthenticator({ config: () => cfg, ownerTokenSha256: () => undefined, now: Date.now });
    expect(await auth(basic('bob', 'correct horse'))).toBe('bob');
  });

  it("lets a paired device's password in as the owner until the device is revoked, remembered or not", async () => {
    const cfg = CalendarSettingsSchema.parse({ users: { kith: { password: 'owner-token' }, bob: { passwordHash: hashPassword('pw', { N: 1024 }) } } });
    const devices = { list: new Map([['DEVICE-PW', 'phone']]), version: 1, match(p: string) { return this.list.get(p); } };
    const auth = createAuthenticator({ config: () => cfg, ownerTokenSha256: () => undefined, devices, now: Date.now });
    expect(await auth(basic('kith', 'DEVICE-PW'))).toBe('kith');
    expect(await auth(basic('kith', 'DEVICE-PW'))).toBe('kith'); // remembered
    expect(await auth(basic('bob', 'DEVICE-PW'))).toBeUndefined(); // only where the owner's token would be
    devices.list = new Map();
    devices.version++; // revoked
    expect(await auth(basic('kith', 'DEVICE-PW'))).toBeUndefined();
  });
});
