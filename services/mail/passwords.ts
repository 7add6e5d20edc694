/**
 * Submission passwords, stored only as scrypt hashes (RFC 7914 via node:crypto):
 * `scrypt$N$r$p$salt$hash` (salt and hash base64url). Verification is constant-time.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/;

export function isPasswordHash(s: string): boolean {
  const m = FORMAT.exec(s);
  if (!m) return false;
  const n = Number(m[1]);
  return n >= 1024 && n <= 1 << 20 && (n & (n - 1)) === 0 && Number(m[2]) >= 1 && Number(m[2]) <= 32 && Number(m[3]) >= 1 && Number(m[3]) <= 16;
}

export function hashPassword(password: string, salt = randomBytes(16)): string {
  const key = scryptSync(password.normalize('NFC'), salt, KEYLEN, { N, r: R, p: P, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` matches `hash` (false for anything malformed). */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = FORMAT.exec(hash);
  if (!m || !isPasswordHash(hash)) return Promise.resolve(false);
  const want = Buffer.from(m[5]!, 'base64url');
  return new Promise((resolve) => {
    scrypt(password.normalize('NFC'), Buffer.from(m[4]!, 'base64url'), want.length, { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]), maxmem: 256 * 1024 * 1024 }, (err, key) => {
      resolve(!err && key.length === want.length && timingSafeEqual(key, want));
    });
  });
}
