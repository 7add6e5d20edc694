/**
 * Device passwords: what a paired device gives where a protocol needs a password (SMTP
 * submission, CalDAV/CardDAV), issued at `kith pair` beside its client certificate. The
 * supervisor writes the SHA-256 of each unrevoked device's password into every TLS
 * service's data folder (`links/devices.json`, provisionDevicePasswords); a service follows
 * that file live, so a device revoked with `kith revoke NAME` is refused within a second,
 * nothing restarted. A device password opens what the owner's token opens: the users a
 * service's config lets the owner in as (mail `ownerToken: true`, calendar
 * `password: owner-token`). The passwords are machine-made (192 bits), so a digest suffices
 * (platform/passwords.ts) and one lookup checks them all.
 */
import * as path from 'node:path';
import { writeFileDurable } from './durable.ts';
import { isSha256Hex, secretSha256 } from './passwords.ts';
import { makePrivateDir } from './private-dir.ts';
import { watchFile, type WatchedFile } from './watched-file.ts';

export const DEVICES_FILE = path.join('links', 'devices.json');

export interface DevicePassword {
  /** The device's name, as `kith devices` lists it. */
  name: string;
  passwordSha256: string;
}

export function parseDevicePasswords(text: string): DevicePassword[] {
  const v = JSON.parse(text) as { devices?: unknown };
  if (!Array.isArray(v.devices)) throw new Error(`${DEVICES_FILE}: expected {"devices": [{"name", "passwordSha256"}, ...]}`);
  return v.devices.filter((d): d is DevicePassword => typeof d === 'object' && d !== null && typeof (d as DevicePassword).name === 'string' && isSha256Hex((d as DevicePassword).passwordSha256));
}

/** The supervisor's side: write the unrevoked devices' password hashes into each service's folder. */
export async function provisionDevicePasswords(serviceDataDirs: string[], devices: DevicePassword[]): Promise<void> {
  const text = JSON.stringify({ devices: devices.map((d) => ({ name: d.name, passwordSha256: d.passwordSha256 })) }, null, 1) + '\n';
  for (const dir of serviceDataDirs) {
    await makePrivateDir(path.join(dir, 'links'));
    await writeFileDurable(path.join(dir, DEVICES_FILE), text, { mode: 0o600 });
  }
}

/** The service's side: the live set of device passwords (a bad file keeps the last good set). */
export class DevicePasswords {
  private byHash = new Map<string, string>();
  private readonly watched: WatchedFile;
  /** Bumped on every change: a cache of sign-ins made before it is stale. */
  version = 0;

  constructor(serviceDataDir: string, onError: (msg: string) => void = () => {}) {
    this.watched = watchFile(path.join(serviceDataDir, DEVICES_FILE), (text) => {
      try {
        this.byHash = new Map(text === '' ? [] : parseDevicePasswords(text).map((d) => [d.passwordSha256, d.name]));
        this.version++;
      } catch (err) {
        onError((err as Error).message);
      }
    });
  }

  /** The name of the device whose password this is, or undefined. */
  match(password: string): string | undefined {
    // A Map lookup by digest: the digest of a guess reveals nothing about the stored ones.
    return this.byHash.get(secretSha256(password));
  }

  close(): void {
    this.watched.close();
  }
}
