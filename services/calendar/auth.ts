/**
 * Who is asking: HTTP Basic (RFC 7617) against the users in calendar/calendar.yaml, whose
 * passwords are scrypt hashes (platform/passwords.ts). The owner's `password: owner-token`
 * is checked against the hash of the owner's token the supervisor provisions (links/owner.json,
 * platform/links.ts readOwnerTokenHash: a random 192-bit token, so a digest suffices), and
 * against the owner's paired devices' passwords (platform/device-passwords.ts, followed live).
 * A correct password is remembered for a few minutes (by a SHA-256 of user and password), so a
 * client's many requests cost one scrypt; the memory is dropped when the config or the
 * devices change, so a revoked device is refused at once.
 */
import { createHash } from 'node:crypto';
import { secretMatches, verifyPassword } from '../../platform/passwords.ts';
import type { CalendarConfig } from './config.ts';

export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,4096})\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The paired devices' passwords as the service follows them (platform/device-passwords.ts DevicePasswords). */
export interface DeviceCheck {
  match(password: string): string | undefined;
  readonly version: number;
}

export function createAuthenticator(opts: { config: () => CalendarConfig; ownerTokenSha256: () => string | undefined; devices?: DeviceCheck; now: () => number; ttlMs?: number }) {
  const ttl = opts.ttlMs ?? 5 * 60_000;
  let remembered = new Map<string, number>();
  let forConfig: CalendarConfig | undefined;
  let forDevices: number | undefined;
  return async function authenticate(header: string | undefined): Promise<string | undefined> {
    const cred = basicCredentials(header);
    if (!cred) return undefined;
    const cfg = opts.config();
    if (cfg !== forConfig || opts.devices?.version !== forDevices) {
      remembered = new Map();
      forConfig = cfg;
      forDevices = opts.devices?.version;
    }
    const user = cfg.users[cred.user];
    if (!user) return undefined;
    const key = createHash('sha256').update(cred.user).update('\0').update(cred.password).digest('base64');
    const until = remembered.get(key);
    if (until !== undefined && until > opts.now()) return cred.user;
    const ok = user.password === 'owner-token'
      ? secretMatches(cred.password, opts.ownerTokenSha256()) || opts.devices?.match(cred.password) !== undefined
      : !!user.passwordHash && (await verifyPassword(cred.password, user.passwordHash));
    if (!ok) return undefined;
    if (remembered.size > 10_000) remembered.clear();
    remembered.set(key, opts.now() + ttl);
    return cred.user;
  };
}
