import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/platform/helpers.ts';
import { DEVICES_FILE, DevicePasswords, parseDevicePasswords, provisionDevicePasswords } from './device-passwords.ts';
import { secretSha256 } from './passwords.ts';

/** Waits for `cond`, up to 15 s (a deadline for a loaded machine; the file is looked at twice a second). */
const until = async (cond: () => boolean) => {
  for (const end = Date.now() + 15_000; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
};

describe('device passwords', () => {
  it('are followed live: a new device works, a removed one stops, a bad file keeps the last good set', async () => {
    const a = tempDir('kith-devpw-'), b = tempDir('kith-devpw-');
    await provisionDevicePasswords([a, b], [{ name: 'phone', passwordSha256: secretSha256('phone-pw') }]);
    const live = new DevicePasswords(a);
    expect(live.match('phone-pw')).toBe('phone');
    expect(live.match('laptop-pw')).toBeUndefined();
    expect(new DevicePasswords(b).match('phone-pw')).toBe('phone');
    const v = live.version;
    await provisionDevicePasswords([a], [{ name: 'laptop', passwordSha256: secretSha256('laptop-pw') }]);
    await until(() => live.version !== v);
    expect(live.match('laptop-pw')).toBe('laptop');
    expect(live.match('phone-pw')).toBeUndefined();
    const errors: string[] = [];
    const watched = new DevicePasswords(a, (m) => errors.push(m));
    writeFileSync(path.join(a, DEVICES_FILE), '{"devices": 3}');
    await until(() => errors.length > 0);
    expect(errors.join()).toMatch(/expected/);
    expect(watched.match('laptop-pw')).toBe('laptop'); // the last good set stands
    watched.close();
    live.close();
  });
  it('ignores entries that are not a name and a SHA-256', () => {
    expect(parseDevicePasswords('{"devices":[{"name":"x","passwordSha256":"nothex"},{"name":1},null,{"name":"ok","passwordSha256":"' + 'a'.repeat(64) + '"}]}')).toEqual([{ name: 'ok', passwordSha256: 'a'.repeat(64) }]);
    expect(() => parseDevicePasswords('[]')).toThrow(/expected/);
  });
});
