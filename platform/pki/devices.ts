/**
 * The paired devices of one appliance: `<pki>/devices.json` (name, certificate serial, the
 * SHA-256 of its device password, when paired, when revoked), written durably beside the CA.
 * Pairing and revoking write what the services need into every TLS service's data folder
 * (syncDevices): the revoked serials (provisionRevocations, revocation.ts) and the hashes of
 * the unrevoked devices' passwords (platform/device-passwords.ts); each service follows both
 * and refuses a revoked device within a second without a restart.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { provisionDevicePasswords } from '../device-passwords.ts';
import { ClockNotSaneError, readClockState, type ClockState } from '../clock-state.ts';
import { writeFileDurable } from '../durable.ts';
import { newSecret, secretSha256 } from '../passwords.ts';
import { serialOf, issue, type Pem } from './ca.ts';
import { PairingError, type Issued } from './pairing.ts';
import { provisionRevocations } from './provision.ts';
import { TLS_DIR } from './server-tls.ts';

export interface Device {
  name: string;
  serial: string;
  /** SHA-256 of the device password issued with the certificate (absent: paired before they existed). */
  passwordSha256?: string;
  pairedAt: string;
  revokedAt?: string;
}

const FILE = 'devices.json';

export function loadDevices(pkiDir: string): Device[] {
  const f = path.join(pkiDir, FILE);
  if (!existsSync(f)) return [];
  const v = JSON.parse(readFileSync(f, 'utf8')) as { devices?: Device[] };
  if (!Array.isArray(v.devices)) throw new Error(`${f}: expected {"devices": [...]}`);
  return v.devices;
}

async function save(pkiDir: string, devices: Device[]): Promise<void> {
  await writeFileDurable(path.join(pkiDir, FILE), JSON.stringify({ devices }, null, 1) + '\n', { mode: 0o600 });
}

/**
 * Certify a device's public key as a client certificate, issue its device password (for
 * protocols that need one), and record both; the password is returned once, never stored.
 */
export async function pairDevice(pkiDir: string, ca: Pem, name: string, publicKeySpki: Uint8Array, now?: Date, clock: () => ClockState = readClockState): Promise<Issued & { password: string }> {
  const devices = loadDevices(pkiDir);
  // A device certificate stamped with a wrong clock could be not yet valid, or expire
  // early, once the time is set: refuse now with a reason (503: try again), never issue.
  const state = now ? undefined : clock();
  if (state && !state.synchronised) throw new PairingError(503, new ClockNotSaneError(`not pairing ${name} yet`, state).message);
  now ??= new Date();
  if (devices.some((d) => d.name === name && !d.revokedAt)) throw new PairingError(409, `a device named ${name} is already paired: revoke it first (kith revoke ${name}) or pair under another name`);
  // Storage (services/storage/auth.ts) takes the CN as the principal: a paired device is
  // the owner's, so CN=owner; the device's own name is the OU and devices.json's record.
  const leaf = await issue(ca, { commonName: 'owner', unit: name, usage: 'client', publicKeySpki, now });
  const password = newSecret();
  await save(pkiDir, [...devices, { name, serial: serialOf(leaf.cert), passwordSha256: secretSha256(password), pairedAt: now.toISOString() }]);
  return { ca: ca.cert, cert: leaf.cert, password };
}

/** The data folders of the services that hold TLS material (`<data>/*\/tls`). */
export function tlsServiceDirs(servicesRoot: string): string[] {
  if (!existsSync(servicesRoot)) return [];
  return readdirSync(servicesRoot).map((n) => path.join(servicesRoot, n)).filter((d) => existsSync(path.join(d, TLS_DIR)));
}

/** Revoke every certificate of the device named `name`; returns the serials revoked. */
export async function revokeDevice(pkiDir: string, servicesRoot: string, name: string, now = new Date()): Promise<string[]> {
  const devices = loadDevices(pkiDir);
  const hit = devices.filter((d) => d.name === name && !d.revokedAt);
  if (hit.length === 0) {
    const known = devices.filter((d) => !d.revokedAt).map((d) => d.name);
    throw new Error(`no paired device named ${name}${known.length ? ` (paired: ${known.join(', ')})` : ' (none are paired)'}`);
  }
  for (const d of hit) d.revokedAt = now.toISOString();
  await save(pkiDir, devices);
  await syncDevices(pkiDir, servicesRoot);
  return hit.map((d) => d.serial);
}

/**
 * Write the revoked serials and the unrevoked devices' password hashes into every TLS
 * service (after pairing and revoking, and at start so a new service gets them).
 */
export async function syncDevices(pkiDir: string, servicesRoot: string): Promise<void> {
  const devices = loadDevices(pkiDir);
  const dirs = tlsServiceDirs(servicesRoot);
  await provisionRevocations(dirs, devices.filter((d) => d.revokedAt).map((d) => d.serial));
  await provisionDevicePasswords(dirs, devices.filter((d) => !d.revokedAt && d.passwordSha256).map((d) => ({ name: d.name, passwordSha256: d.passwordSha256! })));
}
