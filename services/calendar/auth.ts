/**
 * Who is asking: HTTP Basic (RFC 7617) against the users in calendar/calendar.yaml, whose
 * passwords are scrypt hashes (RFC 7914, node:crypto). The owner's `password: owner-token`
 * is checked against the hash of the owner's token the supervisor provisions (links/owner.json,
 * platform/links.ts readOwnerTokenHash: a random 192-bit token, so a digest suffices). A correct
 * password is remembered for a few minutes (by a SHA-256 of user and password), so a
 * client's many requests cost one scrypt; the memory is dropped when the config changes.
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import type { CalendarConfig } from './config.ts';
import { SCRYPT_RE } from './config.ts';

/** A scrypt hash in the form calendar.yaml's users hold (`kith calendar hash-password`). */
export function scryptHash(password: string, opts: { N?: number; r?: number; p?: number } = {}): string {
  const N = opts.N ?? 16384, r = opts.r ?? 8, p = opts.p ?? 1;
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** The owner's token against the SHA-256 hex digest the supervisor provisioned. */
export function ownerTokenMatches(password: string, tokenSha256: string | undefined): boolean {
  if (!tokenSha256 || !/^[0-9a-f]{64}$/.test(tokenSha256)) return false;
  return timingSafeEqual(createHash('sha256').update(password).digest(), Buffer.from(tokenSha256, 'hex'));
}

export function verifyScrypt(password: string, hash: string): Promise<boolean> {
  const m = SCRYPT_RE.exec(hash);
  if (!m) return Promise.resolve(false);
  const [, N, r, p, salt, want] = m;
  const expected = Buffer.from(want!, 'base64');
  return new Promise((resolve) => {
    scrypt(password, Buffer.from(salt!, 'base64'), expected.length, { N: Number(N), r: Number(r), p: Number(p), maxmem: 256 * Number(N) * Number(r) + 1024 * 1024 }, (err, got) => {
      resolve(!err && got.length === expected.length && timingSafeEqual(got, expected));
    });
  });
}

export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,4096})\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function createAuthenticator(opts: { config: () => CalendarConfig; ownerTokenSha256: () => string | undefined; now: () => number; ttlMs?: number }) {
  const ttl = opts.ttlMs ?? 5 * 60_000;
  let remembered = new Map<string, number>();
  let forConfig: CalendarConfig | undefined;
  return async function authenticate(header: string | undefined): Promise<string | undefined> {
    const cred = basicCredentials(header);
    if (!cred) return undefined;
    const cfg = opts.config();
    if (cfg !== forConfig) {
      remembered = new Map();
      forConfig = cfg;
    }
    const user = cfg.users[cred.user];
    if (!user) return undefined;
    const key = createHash('sha256').update(cred.user).update('\0').update(cred.password).digest('base64');
    const until = remembered.get(key);
    if (until !== undefined && until > opts.now()) return cred.user;
    const ok = user.password === 'owner-token' ? ownerTokenMatches(cred.password, opts.ownerTokenSha256()) : !!user.passwordHash && (await verifyScrypt(cred.password, user.passwordHash));
    if (!ok) return undefined;
    if (remembered.size > 10_000) remembered.clear();
    remembered.set(key, opts.now() + ttl);
    return cred.user;
  };
}
