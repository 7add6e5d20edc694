/**
 * Passwords and machine-made secrets, stored only as hashes. One module for every service
 * and command that checks them (mail submission, CalDAV, `kith mail|calendar hash-password`).
 *
 * Human passwords: scrypt (RFC 7914, node:crypto) as `scrypt$N$r$p$salt$hash`. Two spellings
 * exist in configs and both verify:
 *   - unpadded base64url, password NFC-normalised (mail's, and what hashPassword makes);
 *   - padded base64, password as typed (what `kith calendar hash-password` made before).
 * Node decodes either alphabet; the padding tells which normalisation the hash was made with.
 *
 * Machine-made secrets (the owner token, device passwords issued at pairing): 192 random
 * bits, so a SHA-256 digest is as strong as scrypt against guessing and costs one hash,
 * which lets a check look a secret up among many without an scrypt per candidate.
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;
/** scrypt needs 128·N·r bytes; a hash that would need more than this is refused, not tried. */
const MAXMEM = 256 * 1024 * 1024;

const B64 = '[A-Za-z0-9+/_-]';
const FORMAT = new RegExp(`^scrypt\\$(\\d{1,7})\\$(\\d{1,2})\\$(\\d{1,2})\\$(${B64}{16,}={0,2})\\$(${B64}{22,88}={0,2})$`);

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
  /** Made from the NFC form of the password (the unpadded spelling). */
  nfc: boolean;
}

function parse(hash: string): Parsed | undefined {
  const m = FORMAT.exec(hash);
  if (!m) return undefined;
  const n = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
  if (n < 1024 || n > 1 << 20 || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16 || 128 * n * r >= MAXMEM) return undefined;
  const padded = m[4]!.endsWith('=') || m[5]!.endsWith('=');
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < 12 || key.length < 16 || key.length > 64) return undefined;
  return { N: n, r, p, salt, key, nfc: !padded };
}

/** True for a well-formed scrypt hash in either spelling, with parameters that fit the memory budget. */
export function isPasswordHash(s: string): boolean {
  return parse(s) !== undefined;
}

/** A scrypt hash of `password` (unpadded base64url, NFC): what configs hold, never the password. */
export function hashPassword(password: string, opts: { N?: number; r?: number; p?: number; salt?: Buffer } = {}): string {
  const n = opts.N ?? N, r = opts.r ?? R, p = opts.p ?? P;
  const salt = opts.salt ?? randomBytes(16);
  const key = scryptSync(password.normalize('NFC'), salt, KEYLEN, { N: n, r, p, maxmem: MAXMEM });
  return `scrypt$${n}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` matches `hash` (false for anything malformed); constant-time compare. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  const h = parse(hash);
  if (!h) return Promise.resolve(false);
  return new Promise((resolve) => {
    scrypt(h.nfc ? password.normalize('NFC') : password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: MAXMEM }, (err, key) => {
      resolve(!err && key.length === h.key.length && timingSafeEqual(key, h.key));
    });
  });
}

/**
 * A new machine-made secret: 192 random bits, base64url (32 characters), never starting
 * with '-' or '_': people paste it after options (`swaks -ap TOKEN`), where a leading dash
 * reads as another option (a test met it once in 32 runs).
 */
export function newSecret(): string {
  for (;;) {
    const s = randomBytes(24).toString('base64url');
    if (/^[A-Za-z0-9]/.test(s)) return s;
  }
}

/** The stored form of a machine-made secret: its SHA-256, lower-case hex. */
export const secretSha256 = (secret: string) => createHash('sha256').update(secret).digest('hex');

export const isSha256Hex = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/** True when `presented` is the secret whose SHA-256 is `sha256Hex`; constant-time. */
export function secretMatches(presented: string, sha256Hex: string | undefined): boolean {
  if (!isSha256Hex(sha256Hex)) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), Buffer.from(sha256Hex, 'hex'));
}
