/**
 * Links between services: how one sealed service reaches another, and with what right.
 * The supervisor (`kith up`, PID 1 on the appliance) provisions them before start — it is
 * the only party that sees every data folder: a per-service token, written to the client
 * service's data folder with the storage URL, and its hash and grants to storage's. Where
 * the supervisor holds the appliance CA and storage listens with TLS, the service also gets
 * a client certificate (CN = its name; links/client.crt, client.key, ca.crt) and storage's
 * https URL: storage maps the certificate's name to the same grants, accepting only the
 * certificate issued this time (its SHA-256 beside the grants), and the store client uses
 * it instead of the token. The token stays beside it during the change. On the appliance
 * PID 1 provisions the tokens and its pki process adds the certificates (addLinkCertificate).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from './durable.ts';
import { newSecret, secretSha256 } from './passwords.ts';
import { makePrivateDir } from './private-dir.ts';
import { certSha256 } from './pki/server-tls.ts';
import type { ServiceNeeds } from './service.ts';
import type { ClientTls } from './tls-fetch.ts';

export interface StorageLink {
  /** Base URL of the storage service, e.g. http://127.0.0.1:7301 */
  url: string;
  token: string;
  /** Mutual TLS, when provisioned: storage's https URL and this service's certificate. */
  tls?: ClientTls & { url: string };
}

/** A client certificate for a service, from the appliance CA (the supervisor's issuer). */
export type IssueClientCert = (service: string) => Promise<ClientTls>;

/** Where a service's client certificate for its links lives (PEM; the key 0600). */
export const LINK_TLS = { ca: path.join('links', 'ca.crt'), cert: path.join('links', 'client.crt'), key: path.join('links', 'client.key') } as const;

export interface StorageClient {
  name: string;
  tokenSha256: string;
  configWrite: string[];
  /** Store repositories this client may read and write. */
  store?: string[];
  /** SHA-256 of the client certificate issued with this link: only that one is the service (a new one each provisioning, like the token). */
  certSha256?: string;
}

export const LINK_FILE = path.join('links', 'storage.json');
export const CLIENTS_DIR = 'clients';

/**
 * Give `service` a token for storage, with the grants it declares; with `storageTlsUrl` and
 * `issue`, also a client certificate named after it for storage's https listener.
 */
export async function provisionStorageLink(opts: { service: string; needs: ServiceNeeds; serviceDataDir: string; storageDataDir: string; storageUrl: string; storageTlsUrl?: string; issue?: IssueClientCert }): Promise<void> {
  const token = newSecret();
  await makePrivateDir(path.join(opts.serviceDataDir, 'links'));
  await makePrivateDir(path.join(opts.storageDataDir, CLIENTS_DIR));
  const issued = opts.storageTlsUrl && opts.issue ? await opts.issue(opts.service) : undefined;
  const client: StorageClient = { name: opts.service, tokenSha256: secretSha256(token), configWrite: opts.needs.configWrite ?? [], store: opts.needs.store ?? [], ...(issued ? { certSha256: certSha256(issued.cert) } : {}) };
  await writeFileDurable(path.join(opts.storageDataDir, CLIENTS_DIR, `${opts.service}.json`), JSON.stringify(client, null, 1) + '\n', { mode: 0o600 });
  if (issued) await writeLinkTls(opts.serviceDataDir, issued);
  const link = { url: opts.storageUrl, token, ...(issued ? { tlsUrl: opts.storageTlsUrl } : {}) };
  await writeFileDurable(path.join(opts.serviceDataDir, LINK_FILE), JSON.stringify(link) + '\n', { mode: 0o600 });
}

async function writeLinkTls(serviceDataDir: string, issued: ClientTls): Promise<void> {
  await writeFileDurable(path.join(serviceDataDir, LINK_TLS.key), issued.key, { mode: 0o600 });
  await writeFileDurable(path.join(serviceDataDir, LINK_TLS.cert), issued.cert);
  await writeFileDurable(path.join(serviceDataDir, LINK_TLS.ca), issued.ca);
}

/**
 * Add a client certificate to a link already provisioned with a token: on the appliance,
 * PID 1 writes the tokens (it holds no CA) and the pki process, which holds the CA, adds
 * each service's certificate before the services start (platform/pki/appliance-pki.ts).
 * Storage's record of the client gets the certificate's SHA-256, the link storage's https
 * URL. Returns false (nothing written) when the service has no token link to add it to.
 */
export async function addLinkCertificate(o: { service: string; serviceDataDir: string; storageDataDir: string; storageTlsUrl: string; issue: IssueClientCert }): Promise<boolean> {
  const clientFile = path.join(o.storageDataDir, CLIENTS_DIR, `${o.service}.json`);
  const linkFile = path.join(o.serviceDataDir, LINK_FILE);
  let client: StorageClient;
  let link: Record<string, unknown>;
  try {
    client = JSON.parse(await fsp.readFile(clientFile, 'utf8')) as StorageClient;
    link = JSON.parse(await fsp.readFile(linkFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return false;
  }
  if (client.name !== o.service || typeof link.token !== 'string') return false;
  // Already added since PID 1 last wrote the link (the pki process restarted): kept, since a
  // running storage knows only that certificate.
  const have = await fsp.readFile(path.join(o.serviceDataDir, LINK_TLS.cert), 'utf8').catch(() => undefined);
  if (link.tlsUrl === o.storageTlsUrl && have && client.certSha256 === certSha256(have)) return true;
  const issued = await o.issue(o.service);
  await writeLinkTls(o.serviceDataDir, issued);
  // Storage first: a service that sees the https URL finds its certificate accepted.
  await writeFileDurable(clientFile, JSON.stringify({ ...client, certSha256: certSha256(issued.cert) }, null, 1) + '\n', { mode: 0o600 });
  await writeFileDurable(linkFile, JSON.stringify({ ...link, tlsUrl: o.storageTlsUrl }) + '\n', { mode: 0o600 });
  return true;
}

/** links/resolver.json: {host, port} of the appliance's DNS service (ServiceNeeds.resolver). */
export const RESOLVER_FILE = path.join('links', 'resolver.json');

/** The service side: where the appliance's DNS service answers, or undefined when none was provisioned. */
export async function readResolverLink(dataDir: string): Promise<{ host: string; port: number } | undefined> {
  try {
    const j = JSON.parse(await fsp.readFile(path.join(dataDir, RESOLVER_FILE), 'utf8')) as { host?: unknown; port?: unknown };
    return typeof j.host === 'string' && typeof j.port === 'number' ? { host: j.host, port: j.port } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * links/owner.json: the hash of the owner's token (platform/owner.ts). It lets the owner in
 * wherever a service takes the token as a password (storage's git and store API, mail
 * submission, CalDAV) and opens /metrics to remote scrapes (platform/health.ts).
 */
export const OWNER_FILE = path.join('links', 'owner.json');

/**
 * Let the owner's token (its hash only) into `service`'s health listener from beyond
 * loopback. A kvm guest's PID 1 is handed only the hash (`{ sha256 }`, from the kernel command line).
 */
export async function provisionOwnerAccess(serviceDataDir: string, ownerToken: string | { sha256: string }): Promise<void> {
  await makePrivateDir(path.join(serviceDataDir, 'links'));
  const tokenSha256 = typeof ownerToken === 'string' ? secretSha256(ownerToken) : ownerToken.sha256;
  await writeFileDurable(path.join(serviceDataDir, OWNER_FILE), JSON.stringify({ tokenSha256 }) + '\n', { mode: 0o600 });
}

/** The service side: the owner token's hash, or undefined when none was provisioned. */
export async function readOwnerTokenHash(dataDir: string): Promise<string | undefined> {
  try {
    const raw = JSON.parse(await fsp.readFile(path.join(dataDir, OWNER_FILE), 'utf8')) as { tokenSha256?: unknown };
    return typeof raw.tokenSha256 === 'string' && /^[0-9a-f]{64}$/.test(raw.tokenSha256) ? raw.tokenSha256 : undefined;
  } catch {
    return undefined;
  }
}

/** The service side: its link to storage (with its certificate when one was provisioned), or undefined. */
export async function readStorageLink(dataDir: string): Promise<StorageLink | undefined> {
  let raw: { url?: unknown; token?: unknown; tlsUrl?: unknown };
  try {
    raw = JSON.parse(await fsp.readFile(path.join(dataDir, LINK_FILE), 'utf8')) as typeof raw;
  } catch {
    return undefined;
  }
  if (typeof raw.url !== 'string' || typeof raw.token !== 'string') return undefined;
  const link: StorageLink = { url: raw.url, token: raw.token };
  if (typeof raw.tlsUrl === 'string') {
    try {
      const [ca, cert, key] = await Promise.all([LINK_TLS.ca, LINK_TLS.cert, LINK_TLS.key].map((f) => fsp.readFile(path.join(dataDir, f), 'utf8')));
      link.tls = { url: raw.tlsUrl, ca: ca!, cert: cert!, key: key! };
    } catch {
      // The certificate is missing: the token still works.
    }
  }
  return link;
}

/** The storage side: every provisioned client. */
export async function readStorageClients(storageDataDir: string): Promise<StorageClient[]> {
  const dir = path.join(storageDataDir, CLIENTS_DIR);
  const out: StorageClient[] = [];
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    try {
      const c = JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8')) as StorageClient;
      if (typeof c.name === 'string' && /^[0-9a-f]{64}$/.test(c.tokenSha256) && Array.isArray(c.configWrite)) {
        const { certSha256: cert, ...rest } = c;
        out.push({ ...rest, store: Array.isArray(c.store) ? c.store.filter((r) => typeof r === 'string') : [], ...(typeof cert === 'string' && /^[0-9a-f]{64}$/.test(cert) ? { certSha256: cert } : {}) });
      }
    } catch {
      // A torn or foreign file grants nothing.
    }
  }
  return out;
}

/**
 * Provision every link of an appliance plan (platform/appliance.ts): each service that
 * declares needs gets a fresh token for the storage service, and a fresh client certificate
 * when the plan gives storage's https URL and the caller an issuer. The one place `kith up` and
 * PID 1 do it. Returns the services provisioned and those that failed (with the reason).
 */
export async function provisionLinks(
  services: readonly { name: string; dataDir?: string; needs?: ServiceNeeds }[],
  o: { links?: { storage: string; storageUrl: string; storageTlsUrl?: string }; ownerToken?: string | { sha256: string }; resolver?: { host: string; port: number }; issue?: IssueClientCert },
): Promise<{ provisioned: string[]; failed: { service: string; error: string }[] }> {
  const { links, ownerToken, resolver } = o;
  const out = { provisioned: [] as string[], failed: [] as { service: string; error: string }[] };
  if (resolver) {
    for (const s of services) {
      if (!s.needs?.resolver || !s.dataDir) continue;
      try {
        await makePrivateDir(path.join(s.dataDir, 'links'));
        await writeFileDurable(path.join(s.dataDir, RESOLVER_FILE), JSON.stringify(resolver) + '\n', { mode: 0o600 });
      } catch (err) {
        out.failed.push({ service: s.name, error: `resolver link: ${(err as Error).message}` });
      }
    }
  }
  // Every service learns the owner token's hash (and only that), before it starts.
  if (ownerToken) {
    for (const s of services) {
      if (!s.dataDir) continue;
      try {
        await provisionOwnerAccess(s.dataDir, ownerToken);
      } catch (err) {
        out.failed.push({ service: s.name, error: `owner access: ${(err as Error).message}` });
      }
    }
  }
  const storage = links ? services.find((s) => s.name === links.storage) : undefined;
  if (!links || !storage?.dataDir) return out;
  for (const s of services) {
    if (!s.needs || !s.dataDir || s === storage) continue;
    try {
      await provisionStorageLink({ service: s.name, needs: s.needs, serviceDataDir: s.dataDir, storageDataDir: storage.dataDir, storageUrl: links.storageUrl,
        ...(links.storageTlsUrl && o.issue ? { storageTlsUrl: links.storageTlsUrl, issue: o.issue } : {}) });
      out.provisioned.push(s.name);
    } catch (err) {
      out.failed.push({ service: s.name, error: (err as Error).message });
    }
  }
  return out;
}
