/**
 * Links between services: how one sealed service reaches another, and with what right.
 * The supervisor (`kith up`, PID 1 on the appliance) provisions them before start — it is
 * the only party that sees every data folder: a per-service token, written to the client
 * service's data folder with the storage URL, and its hash and grants to storage's. Pairing
 * will replace tokens with client certificates from the appliance's CA.
 */
import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from './durable.ts';
import type { ServiceNeeds } from './service.ts';

export interface StorageLink {
  /** Base URL of the storage service, e.g. http://127.0.0.1:7301 */
  url: string;
  token: string;
}

export interface StorageClient {
  name: string;
  tokenSha256: string;
  configWrite: string[];
  /** Store repositories this client may read and write. */
  store?: string[];
}

export const LINK_FILE = path.join('links', 'storage.json');
export const CLIENTS_DIR = 'clients';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Give `service` a token for storage, with the grants it declares. */
export async function provisionStorageLink(opts: { service: string; needs: ServiceNeeds; serviceDataDir: string; storageDataDir: string; storageUrl: string }): Promise<void> {
  const token = randomBytes(24).toString('base64url');
  await fsp.mkdir(path.join(opts.serviceDataDir, 'links'), { recursive: true });
  await fsp.mkdir(path.join(opts.storageDataDir, CLIENTS_DIR), { recursive: true });
  const client: StorageClient = { name: opts.service, tokenSha256: sha256(token), configWrite: opts.needs.configWrite ?? [], store: opts.needs.store ?? [] };
  await writeFileDurable(path.join(opts.storageDataDir, CLIENTS_DIR, `${opts.service}.json`), JSON.stringify(client, null, 1) + '\n', { mode: 0o600 });
  const link: StorageLink = { url: opts.storageUrl, token };
  await writeFileDurable(path.join(opts.serviceDataDir, LINK_FILE), JSON.stringify(link) + '\n', { mode: 0o600 });
}

export const OWNER_FILE = path.join('links', 'owner.json');

/** What a service with `needs.ownerPassword` finds in its data folder. */
export interface OwnerPassword {
  /** scrypt$<N>$<r>$<p>$<salt base64>$<hash base64> of the owner's access token. */
  passwordHash: string;
}

/** scrypt hash in the form OwnerPassword and the calendar's users use. */
export function scryptHash(password: string, opts: { N?: number; r?: number; p?: number } = {}): string {
  const N = opts.N ?? 16384, r = opts.r ?? 8, p = opts.p ?? 1;
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Give `service` the hash of the owner's access token (written fresh each start). */
export async function provisionOwnerPassword(opts: { serviceDataDir: string; ownerToken: string }): Promise<void> {
  await fsp.mkdir(path.join(opts.serviceDataDir, 'links'), { recursive: true });
  const body: OwnerPassword = { passwordHash: scryptHash(opts.ownerToken) };
  await writeFileDurable(path.join(opts.serviceDataDir, OWNER_FILE), JSON.stringify(body) + '\n', { mode: 0o600 });
}

/**
 * The owner's access token in storage's data folder (`access-token`, as storage makes it
 * at its first start), made now if storage has not run yet — for PID 1, which provisions
 * before anything starts and may not import a service.
 */
export async function ensureOwnerToken(storageDataDir: string): Promise<string> {
  const file = path.join(storageDataDir, 'access-token');
  const existing = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
  if (existing.length >= 32) return existing;
  const token = randomBytes(24).toString('base64url');
  await fsp.mkdir(storageDataDir, { recursive: true });
  await writeFileDurable(file, token + '\n', { mode: 0o600 });
  return token;
}

/** The service side: the owner's password hash, or undefined when none was provisioned. */
export async function readOwnerPassword(dataDir: string): Promise<OwnerPassword | undefined> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, OWNER_FILE), 'utf8')) as Partial<OwnerPassword>;
    return typeof raw.passwordHash === 'string' ? { passwordHash: raw.passwordHash } : undefined;
  } catch {
    return undefined;
  }
}

/** The service side: its link to storage, or undefined when none was provisioned. */
export async function readStorageLink(dataDir: string): Promise<StorageLink | undefined> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, LINK_FILE), 'utf8')) as Partial<StorageLink>;
    return typeof raw.url === 'string' && typeof raw.token === 'string' ? { url: raw.url, token: raw.token } : undefined;
  } catch {
    return undefined;
  }
}

/** The storage side: every provisioned client. */
export async function readStorageClients(storageDataDir: string): Promise<StorageClient[]> {
  const dir = path.join(storageDataDir, CLIENTS_DIR);
  const out: StorageClient[] = [];
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    try {
      const c = JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8')) as StorageClient;
      if (typeof c.name === 'string' && /^[0-9a-f]{64}$/.test(c.tokenSha256) && Array.isArray(c.configWrite)) out.push({ ...c, store: Array.isArray(c.store) ? c.store.filter((r) => typeof r === 'string') : [] });
    } catch {
      // A torn or foreign file grants nothing.
    }
  }
  return out;
}
