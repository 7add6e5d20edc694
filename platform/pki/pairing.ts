/**
 * Pairing, both ends of the exchange, without sockets. The appliance holds a short code
 * (printed on its console and log) that expires and is used once; the owner's machine types
 * it. Two messages over plain HTTP (pair-server.ts), protected by CPace (cpace.ts):
 *
 *   start   client → {sid, Ya, device}          server → {Yb, appliance}
 *   finish  client → {sid, tag_i, box(publicKey)} server → {tag_r, box(ca, cert, password)}  or 403
 *
 * The code never crosses the wire. A wrong code shows as a wrong key-confirmation tag at
 * `finish`. Every `start` counts as a guess until its `finish` proves the code, and guesses
 * are throttled (0.5 s after the first failure, doubling, at most 60 s; after 10 the code is
 * burnt and a new one is made). Boxes are AES-256-GCM (node:crypto) under keys derived from
 * CPace's ISK with HKDF-SHA-256, so the device's certificate comes back confidential and
 * bound to this run. The device's private key never leaves it: the CA certifies its public key.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { concat, confirmTag, sessionKey, share, type Share } from './cpace.ts';

export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';
const enc = new TextEncoder();

/** Eight characters from a 30-letter alphabet without look-alikes (~39 bits), shown as XXXX-XXXX. */
export function newCode(): string {
  const chars = [...randomBytes(16)].filter((b) => b < 240).slice(0, 8).map((b) => CODE_ALPHABET[b % 30]);
  if (chars.length < 8) return newCode();
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

/** What the code means as a password: case, spaces and dashes do not matter. */
export const normalCode = (code: string) => code.toUpperCase().replace(/[\s-]+/g, '');

export const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
export const unb64 = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new PairingError(400, `${what}: expected base64url`);
  return new Uint8Array(Buffer.from(s, 'base64url'));
};

export class PairingError extends Error {
  readonly status: number;
  readonly retryAfterMs?: number;
  constructor(status: number, message: string, retryAfterMs?: number) {
    super(message);
    this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

const CI = enc.encode('kith pairing v1');
const boxKey = (isk: Uint8Array, label: string) => new Uint8Array(hkdfSync('sha256', isk, new Uint8Array(0), label, 32));

export function seal(isk: Uint8Array, label: string, data: unknown): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', boxKey(isk, label), iv);
  const body = Buffer.concat([c.update(JSON.stringify(data)), c.final()]);
  return b64(Buffer.concat([iv, body, c.getAuthTag()]));
}

export function open(isk: Uint8Array, label: string, box: unknown): unknown {
  const raw = Buffer.from(unb64(box, 'box'));
  if (raw.length < 28) throw new PairingError(400, 'box: too short');
  const d = createDecipheriv('aes-256-gcm', boxKey(isk, label), raw.subarray(0, 12));
  d.setAuthTag(raw.subarray(raw.length - 16));
  try {
    return JSON.parse(Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8'));
  } catch {
    throw new PairingError(400, 'box: does not open');
  }
}

const transcriptOf = (Ya: Uint8Array, Yb: Uint8Array, device: string, appliance: string) => concat(Ya, Yb, enc.encode(device), new Uint8Array([0]), enc.encode(appliance));

export const DEVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Issued {
  ca: string;
  cert: string;
  /** The device password, for protocols that need one (SMTP submission, CalDAV): sent once, inside the box. */
  password?: string;
}

interface Session {
  isk: Uint8Array;
  transcript: Uint8Array;
  device: string;
  expiresAt: number;
  /** Proven with the owner seed's secret, not the short code: the code is not used up. */
  bySeed: boolean;
}

export interface PairingServerOptions {
  appliance: string;
  now?: () => number;
  codeTtlMs?: number;
  /** Certify a device's public key (SPKI DER) under its name. */
  issue(device: string, publicKeySpki: Uint8Array): Promise<Issued>;
  /** A new code was made (at start, after use, on expiry or after too many wrong guesses). */
  onCode?(code: string, expiresAt: number, why: string): void;
  /**
   * The owner seed's pairing secret (platform/boot/owner-seed.ts), accepted besides the short
   * code when the client says it holds it (`kind: 'seed'`): never shown, never rotated, and
   * under the same throttle as the code.
   */
  standingSecret?: string;
}

/** Which secret a client proves: the short code the appliance shows, or the owner seed's. */
export type SecretKind = 'code' | 'seed';
/** The seed's secret is five groups of five; the code two groups of four. */
export const secretKindOf = (secret: string): SecretKind => (normalCode(secret).length === 25 ? 'seed' : 'code');

export const MAX_FAILURES = 10;

/** The appliance's side: the code, the throttle, and the sessions in flight. */
export class PairingServer {
  private code = '';
  private codeExpiresAt = 0;
  private failures = 0;
  private nextAllowedAt = 0;
  private sessions = new Map<string, Session>();
  private readonly now: () => number;
  private readonly opts: PairingServerOptions;

  constructor(opts: PairingServerOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.rotate('start');
  }

  get currentCode(): { code: string; expiresAt: number } {
    if (this.now() >= this.codeExpiresAt) this.rotate('the previous code expired');
    return { code: this.code, expiresAt: this.codeExpiresAt };
  }

  private rotate(why: string): void {
    this.code = newCode();
    this.codeExpiresAt = this.now() + (this.opts.codeTtlMs ?? 10 * 60_000);
    this.failures = 0;
    this.nextAllowedAt = 0;
    this.sessions.clear();
    this.opts.onCode?.(this.code, this.codeExpiresAt, why);
  }

  private failed(): void {
    this.failures++;
    if (this.failures >= MAX_FAILURES) return this.rotate(`${MAX_FAILURES} wrong codes`);
    this.nextAllowedAt = this.now() + Math.min(60_000, 500 * 2 ** (this.failures - 1));
  }

  start(body: { sid?: unknown; Ya?: unknown; device?: unknown; kind?: unknown }): { Yb: string; appliance: string } {
    const now = this.now();
    if (now < this.nextAllowedAt) throw new PairingError(429, 'too many wrong codes: wait and try again', this.nextAllowedAt - now);
    if (now >= this.codeExpiresAt) {
      this.rotate('the previous code expired');
      throw new PairingError(410, 'the pairing code expired; the appliance shows a new one');
    }
    const sid = unb64(body.sid, 'sid');
    const Ya = unb64(body.Ya, 'Ya');
    if (sid.length < 16 || sid.length > 64) throw new PairingError(400, 'sid: 16 to 64 bytes');
    if (typeof body.device !== 'string' || !DEVICE_NAME.test(body.device)) throw new PairingError(400, 'device: a name of lower-case letters, digits and dashes');
    if (body.kind !== undefined && body.kind !== 'code' && body.kind !== 'seed') throw new PairingError(400, "kind: 'code' or 'seed'");
    const bySeed = body.kind === 'seed';
    // No seed secret here: answered like any start, so a wrong guess is all the client learns.
    const secret = bySeed ? this.opts.standingSecret ?? randomBytes(32).toString('hex') : this.code;
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
    if (this.sessions.size >= 4) throw new PairingError(429, 'too many pairings in flight: wait and try again', 1000);
    const mine: Share = share(enc.encode(normalCode(secret)), CI, sid);
    let isk: Uint8Array;
    try {
      isk = sessionKey({ mine, theirs: Ya, sid, initiator: false, adA: enc.encode(body.device), adB: enc.encode(this.opts.appliance) });
    } catch {
      throw new PairingError(400, 'Ya: not a valid share');
    }
    // Counted as a wrong guess until finish proves the code.
    this.failed();
    this.sessions.set(b64(sid), { isk, transcript: transcriptOf(Ya, mine.Y, body.device, this.opts.appliance), device: body.device, expiresAt: now + 30_000, bySeed });
    return { Yb: b64(mine.Y), appliance: this.opts.appliance };
  }

  async finish(body: { sid?: unknown; tag?: unknown; box?: unknown }): Promise<{ tag: string; box: string }> {
    const key = b64(unb64(body.sid, 'sid'));
    const s = this.sessions.get(key);
    if (!s || s.expiresAt <= this.now()) throw new PairingError(404, 'no such pairing in progress (it expired, or the code changed): start again');
    this.sessions.delete(key);
    const tag = unb64(body.tag, 'tag');
    const want = confirmTag(s.isk, 'initiator', s.transcript);
    if (tag.length !== want.length || !timingSafeEqual(tag, want)) throw new PairingError(403, 'wrong pairing code');
    const inner = open(s.isk, 'kith pair device', body.box) as { publicKey?: unknown };
    const spki = unb64(inner.publicKey, 'publicKey');
    // The code is proven: this guess was not a failure, and the code is used up.
    this.failures = Math.max(0, this.failures - 1);
    this.nextAllowedAt = 0;
    let issued: Issued;
    try {
      issued = await this.opts.issue(s.device, spki);
    } catch (err) {
      if (err instanceof PairingError) throw err;
      throw new PairingError(400, `publicKey: ${(err as Error).message}`);
    }
    // A short code is used once; the seed's secret stays the owner's.
    if (!s.bySeed) this.rotate(`used by ${s.device}`);
    return { tag: b64(confirmTag(s.isk, 'responder', s.transcript)), box: seal(s.isk, 'kith pair appliance', issued) };
  }
}

/** The owner's side: one run of the exchange against `post`. */
export async function pairWith(o: {
  code: string;
  device: string;
  publicKeySpki: Uint8Array;
  post(path: '/pair/start' | '/pair/finish', body: unknown): Promise<unknown>;
}): Promise<Issued & { appliance: string }> {
  if (!DEVICE_NAME.test(o.device)) throw new PairingError(64, `device name ${JSON.stringify(o.device)}: lower-case letters, digits and dashes`);
  const sid = new Uint8Array(randomBytes(16));
  const mine = share(enc.encode(normalCode(o.code)), CI, sid);
  const kind = secretKindOf(o.code);
  const started = (await o.post('/pair/start', { sid: b64(sid), Ya: b64(mine.Y), device: o.device, ...(kind === 'seed' ? { kind } : {}) })) as { Yb?: unknown; appliance?: unknown };
  if (typeof started.appliance !== 'string') throw new PairingError(502, 'the appliance sent no name');
  const Yb = unb64(started.Yb, 'Yb');
  const isk = sessionKey({ mine, theirs: Yb, sid, initiator: true, adA: enc.encode(o.device), adB: enc.encode(started.appliance) });
  const transcript = transcriptOf(mine.Y, Yb, o.device, started.appliance);
  const finished = (await o.post('/pair/finish', { sid: b64(sid), tag: b64(confirmTag(isk, 'initiator', transcript)), box: seal(isk, 'kith pair device', { publicKey: b64(o.publicKeySpki) }) })) as { tag?: unknown; box?: unknown };
  const tag = unb64(finished.tag, 'tag');
  const want = confirmTag(isk, 'responder', transcript);
  if (tag.length !== want.length || !timingSafeEqual(tag, want)) throw new PairingError(502, 'the appliance could not prove it knows the code: not pairing with it');
  const issued = open(isk, 'kith pair appliance', finished.box) as Partial<Issued>;
  if (typeof issued.ca !== 'string' || typeof issued.cert !== 'string') throw new PairingError(502, 'the appliance sent no certificates');
  return { ca: issued.ca, cert: issued.cert, ...(typeof issued.password === 'string' ? { password: issued.password } : {}), appliance: started.appliance };
}
