import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ClockNotSaneError, type ClockState } from '../clock-state.ts';
import { createCa, issue } from './ca.ts';
import { loadDevices, pairDevice } from './devices.ts';
import { PairingError } from './pairing.ts';
import { provisionServerTls } from './provision.ts';

const unsynced = (): ClockState => ({ synchronised: false, source: 'saved', lastError: 'no NTP server answered' });
const synced = (): ClockState => ({ synchronised: true, source: 'ntp' });

async function spki(): Promise<Uint8Array> {
  const k = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as { publicKey: CryptoKey };
  return new Uint8Array(await webcrypto.subtle.exportKey('spki', k.publicKey));
}

describe('certificate issuance waits for a sane clock', () => {
  it('issue() refuses while the clock is not synchronised, saying why, and issues once it is', async () => {
    const ca = await createCa('kith test CA');
    await expect(issue(ca, { commonName: 'mail', usage: 'server', clock: unsynced })).rejects.toThrow(ClockNotSaneError);
    await expect(issue(ca, { commonName: 'mail', usage: 'server', clock: unsynced })).rejects.toThrow(/not issuing a certificate for mail: the clock is not synchronised yet \(time from saved; no NTP server answered\)/);
    expect((await issue(ca, { commonName: 'mail', usage: 'server', clock: synced })).cert).toMatch(/BEGIN CERTIFICATE/);
    // A caller that chose the time itself (tests, renewals planned ahead) is not second-guessed.
    expect((await issue(ca, { commonName: 'mail', usage: 'server', clock: unsynced, now: new Date() })).cert).toMatch(/BEGIN CERTIFICATE/);
  });

  it('service certificates: none is issued without a sane clock; one already there is kept', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-pki-clock-'));
    const ca = await createCa('kith test CA');
    await expect(provisionServerTls(ca, dir, 'mail', ['localhost'], unsynced)).rejects.toThrow(/not issuing mail's server certificate: the clock is not synchronised/);
    expect(existsSync(path.join(dir, 'tls', 'server.crt'))).toBe(false);
    expect(await provisionServerTls(ca, dir, 'mail', ['localhost'], synced)).toBe('issued');
    const before = readFileSync(path.join(dir, 'tls', 'server.crt'), 'utf8');
    expect(await provisionServerTls(ca, dir, 'mail', ['localhost'], unsynced)).toBe('kept');
    expect(readFileSync(path.join(dir, 'tls', 'server.crt'), 'utf8')).toBe(before);
  });

  it('pairing: a device is refused with 503 and a reason while the clock is not synchronised, and nothing is recorded', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-pki-clock-'));
    const ca = await createCa('kith test CA');
    const key = await spki();
    const err = await pairDevice(dir, ca, 'laptop', key, undefined, unsynced).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PairingError);
    expect((err as PairingError).status).toBe(503);
    expect((err as Error).message).toMatch(/not pairing laptop yet: the clock is not synchronised/);
    expect(loadDevices(dir)).toEqual([]);
    expect((await pairDevice(dir, ca, 'laptop', key, undefined, synced)).cert).toMatch(/BEGIN CERTIFICATE/);
    expect(loadDevices(dir).map((d) => d.name)).toEqual(['laptop']);
  });
});
