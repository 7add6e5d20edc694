/**
 * What the supervisor gives the mail service besides the storage link (a small hook in
 * `kith up`, installer/commands/up.ts, and the same on the appliance):
 *
 *   links/owner-password   the scrypt hash of the owner's access token (the token `kith up`
 *                          prints), so user entries with `ownerToken: true` accept it as a
 *                          password; mail never reads storage's folder
 *   links/dns.json         {"host","port"} of the kith DNS service, where `resolver: kith`
 *                          sends MX and SPF/DKIM/DMARC lookups (default 127.0.0.1:53)
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../../platform/durable.ts';
import { hashPassword, isPasswordHash, verifyPassword } from './passwords.ts';

export const OWNER_PASSWORD_FILE = path.join('links', 'owner-password');
export const DNS_LINK_FILE = path.join('links', 'dns.json');

/** Supervisor side. */
export async function provisionMailLinks(o: { mailDataDir: string; ownerToken?: string; dns?: { host: string; port: number } }): Promise<void> {
  await fsp.mkdir(path.join(o.mailDataDir, 'links'), { recursive: true, mode: 0o700 });
  if (o.ownerToken) {
    const file = path.join(o.mailDataDir, OWNER_PASSWORD_FILE);
    const old = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
    // Hashing costs ~50 ms; keep the hash while it still matches the token.
    if (!isPasswordHash(old) || !(await verifyPassword(o.ownerToken, old))) await writeFileDurable(file, hashPassword(o.ownerToken) + '\n', { mode: 0o600 });
  }
  if (o.dns) await writeFileDurable(path.join(o.mailDataDir, DNS_LINK_FILE), JSON.stringify(o.dns) + '\n', { mode: 0o600 });
}

/** Service side: the owner token's hash, when provisioned. */
export async function readOwnerPasswordHash(dataDir: string): Promise<string | undefined> {
  const h = (await fsp.readFile(path.join(dataDir, OWNER_PASSWORD_FILE), 'utf8').catch(() => '')).trim();
  return isPasswordHash(h) ? h : undefined;
}

export async function readDnsLink(dataDir: string): Promise<{ host: string; port: number } | undefined> {
  try {
    const j = JSON.parse(await fsp.readFile(path.join(dataDir, DNS_LINK_FILE), 'utf8')) as { host?: unknown; port?: unknown };
    return typeof j.host === 'string' && typeof j.port === 'number' ? { host: j.host, port: j.port } : undefined;
  } catch {
    return undefined;
  }
}
