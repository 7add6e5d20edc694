/**
 * Who is asking: HTTP Basic (RFC 7617) against the users in calendar/calendar.yaml, whose
 * passwords are scrypt hashes (RFC 7914, node:crypto). The owner's `password: owner-token`
 * is the hash the supervisor provisions (platform/links.ts readOwnerPassword). A correct
 * password is remembered for a few minutes (by a SHA-256 of user and password), so a
 * client's many requests cost one scrypt; the memory is dropped when the config changes.
 */
import { createHash, scrypt, timingSafeEqual } from 'node:crypto';
import type { CalendarConfig } from './config.ts';
import { SCRYPT_RE } from './config.ts';

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

export function createAuthenticator(opts: { config: () => CalendarConfig; ownerHash: () => string | undefined; now: () => number; ttlMs?: number }) {
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
    const hash = user.password === 'owner-token' ? opts.ownerHash() : user.passwordHash;
    if (!hash || !(await verifyScrypt(cred.password, hash))) return undefined;
    if (remembered.size > 10_000) remembered.clear();
    remembered.set(key, opts.now() + ttl);
    return cred.user;
  };
}
