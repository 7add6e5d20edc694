/**
 * Who may use the storage service. Anonymous access is refused. On a workstation
 * (`kith up`) the owner holds an access token, sent as the password of HTTP Basic auth
 * (what git does with `http://kith:TOKEN@host/…`) or as a Bearer token. Paired devices
 * and services present client certificates through the same Authenticator seam; services'
 * tokens stay accepted beside their certificates during the change.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import * as path from 'node:path';
import { writeFileDurable } from '../../platform/durable.ts';
import { newSecret } from '../../platform/passwords.ts';
import type { StorageClient } from '../../platform/links.ts';

export interface Principal {
  /** Who: 'owner', or a paired device or service name. */
  name: string;
  via: 'token' | 'certificate';
  /** Config path prefixes this principal may change through the store API (services). */
  configWrite?: string[];
  /** Store repositories this principal may read and write (services: `needs.store`). */
  store?: string[];
}

/** Undefined: not authenticated (the caller answers 401). */
export type Authenticator = (req: IncomingMessage) => Principal | undefined;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The token a request presents: the password of Basic auth, or a Bearer token. */
function presentedToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization ?? '';
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? decoded : decoded.slice(colon + 1);
  }
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

export function tokenAuthenticator(token: string): Authenticator {
  const want = digest(token);
  return (req) => {
    const presented = presentedToken(req);
    // Compare digests: constant time, and the same length whatever was sent.
    if (presented !== undefined && timingSafeEqual(digest(presented), want)) return { name: 'owner', via: 'token' };
    return undefined;
  };
}

/**
 * The owner's token given as its hash by the supervisor (platform/links.ts owner.json):
 * under `kith up` the supervisor keeps the token, storage never sees it.
 */
export function ownerHashAuthenticator(tokenSha256: string): Authenticator {
  const want = Buffer.from(tokenSha256, 'hex');
  return (req) => {
    const presented = presentedToken(req);
    if (presented !== undefined && timingSafeEqual(digest(presented), want)) return { name: 'owner', via: 'token' };
    return undefined;
  };
}

/** Services with a provisioned link (platform/links.ts): their token's hash and grants. */
export function clientAuthenticator(clients: StorageClient[]): Authenticator {
  const byHash = clients.map((c) => ({ c, hash: Buffer.from(c.tokenSha256, 'hex') }));
  return (req) => {
    const presented = presentedToken(req);
    if (presented === undefined) return undefined;
    const d = digest(presented);
    const hit = byHash.find((x) => timingSafeEqual(x.hash, d));
    return hit ? { name: hit.c.name, via: 'token', configWrite: hit.c.configWrite, store: hit.c.store ?? [] } : undefined;
  };
}

/**
 * A client certificate issued by the appliance CA (verified by TLS itself: the https
 * server asks for one and checks it against the CA); the certificate's CN names the
 * principal. Pairing issues the owner's devices CN=owner; the supervisor issues each
 * service with a link CN=<its name> (platform/links.ts), which gets that link's grants —
 * the same as its token — when it is the certificate issued with the link (its SHA-256 is
 * in the link's record). Any other name or certificate gets nothing.
 */
export function certificateAuthenticator(clients: StorageClient[] = []): Authenticator {
  const byName = new Map(clients.map((c) => [c.name, c]));
  return (req) => {
    const sock = req.socket as TLSSocket;
    if (!sock.encrypted || !sock.authorized) return undefined;
    const cn = sock.getPeerCertificate()?.subject?.CN;
    const name = Array.isArray(cn) ? cn[0] : cn;
    if (name === 'owner') return { name, via: 'certificate' };
    const c = name === undefined ? undefined : byName.get(name);
    // Only the certificate issued with the link now in force, as only its token is.
    if (!c?.certSha256 || sock.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase() !== c.certSha256) return undefined;
    return { name: c.name, via: 'certificate', configWrite: c.configWrite, store: c.store ?? [] };
  };
}

/** The first authenticator that knows the request wins. */
export function anyOf(...auths: Authenticator[]): Authenticator {
  return (req) => {
    for (const a of auths) {
      const p = a(req);
      if (p) return p;
    }
    return undefined;
  };
}

export const TOKEN_FILE = 'access-token';

/** Read the access token from the data folder, creating it (0600) on first start. */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, TOKEN_FILE);
  try {
    const t = (await fsp.readFile(file, 'utf8')).trim();
    if (t.length >= 32) return t;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = newSecret();
  await writeFileDurable(file, token + '\n', { mode: 0o600 });
  return token;
}
