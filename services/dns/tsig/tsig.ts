/**
 * TSIG: secret-key transaction authentication, RFC 8945, on raw message bytes.
 *
 * Implements §4.2 (the TSIG RR format), §4.3 (MAC computation: request MAC for responses,
 * the message with TSIG removed / ARCOUNT decremented / Original ID restored, and the
 * TSIG variables in canonical form), §5.2 (server checks in the order FORMERR → BADKEY →
 * BADSIG → BADTIME), §5.2.2.1 (MAC truncation limits), §5.3.2 (error responses: BADKEY and
 * BADSIG go back unsigned, BADTIME signed with the server's time in Other Data) and §6
 * (hmac-sha1, hmac-sha256, hmac-sha512; hmac-md5 is not offered), §5.3.1 (every message of a
 * multi-message response signed, each after the first over the prior MAC and the timers).
 *
 * Pure: the clock is an argument (milliseconds), keys are values, no I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CLASS_ANY, TSIG_ERROR, TYPE } from '../wire/constants.ts';
import { WireError } from '../wire/error.ts';
import { canonicalName, encodeName, nameText, readName } from '../wire/name.ts';
import { scanMessage } from '../wire/scan.ts';

const TYPE_TSIG = TYPE.TSIG;

export type TsigAlgorithm = 'hmac-sha1' | 'hmac-sha256' | 'hmac-sha512';

export interface TsigKey {
  /** Key name in canonical form (lowercase, no trailing dot). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** TSIG error codes (RFC 8945 §3, IANA "DNS RCODEs"). */
export const TSIG_ERRORS = TSIG_ERROR;
export type TsigErrorName = keyof typeof TSIG_ERRORS;

export const DEFAULT_FUDGE = 300;

const HASH: Record<TsigAlgorithm, { node: string; len: number }> = {
  'hmac-sha1': { node: 'sha1', len: 20 },
  'hmac-sha256': { node: 'sha256', len: 32 },
  'hmac-sha512': { node: 'sha512', len: 64 },
};

/** Maps a wire algorithm name ('hmac-sha256', 'HMAC-SHA256.') to ours, or undefined. */
export function algorithmFromName(name: string): TsigAlgorithm | undefined {
  const n = canonicalName(name);
  return n in HASH ? (n as TsigAlgorithm) : undefined;
}

export interface TsigRecord {
  keyName: string;
  algorithmName: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
  /** Offset of the TSIG RR in the message (everything before it is what was signed). */
  start: number;
}

export type VerifyResult =
  | { ok: true; keyName: string; key: TsigKey; algorithm: TsigAlgorithm; mac: Buffer; timeSigned: number; tsig: TsigRecord }
  | {
      ok: false;
      /** UNSIGNED: the message carries no TSIG at all (not an error in itself). */
      error: 'UNSIGNED' | 'FORMERR' | 'BADKEY' | 'BADSIG' | 'BADTIME';
      message: string;
      /** Present when the TSIG RR could be parsed: needed to build the error response. */
      tsig?: TsigRecord;
      key?: TsigKey;
    };

export interface SignOptions {
  /** Current time in milliseconds since the epoch. */
  now: number;
  /** MAC of the request, when signing a response (RFC 8945 §4.3.1). */
  requestMac?: Buffer;
  fudge?: number;
  /** TSIG error to carry (a BADTIME response is signed, RFC 8945 §5.2.3). */
  error?: TsigErrorName;
  otherData?: Buffer;
  /**
   * A message after the first of a multi-message response (AXFR, RFC 8945 §5.3.1): the MAC
   * covers the prior message's MAC (`requestMac`), this message and only the TSIG timers.
   */
  subsequent?: boolean;
}

/** Parses a TSIG RR's RDATA. Throws WireError on malformed RDATA. */
function parseTsigRdata(msg: Uint8Array, keyName: string, rdataStart: number, rdlength: number, start: number): TsigRecord {
  const end = rdataStart + rdlength;
  const alg = readName(msg, rdataStart);
  let p = alg.end;
  if (p + 10 > end) throw new WireError('TSIG RDATA truncated');
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  const timeSigned = b.readUIntBE(p, 6);
  const fudge = b.readUInt16BE(p + 6);
  const macSize = b.readUInt16BE(p + 8);
  p += 10;
  if (p + macSize + 6 > end) throw new WireError('TSIG MAC runs past RDATA');
  const mac = Buffer.from(b.subarray(p, p + macSize));
  p += macSize;
  const originalId = b.readUInt16BE(p);
  const error = b.readUInt16BE(p + 2);
  const otherLen = b.readUInt16BE(p + 4);
  p += 6;
  if (p + otherLen !== end) throw new WireError('TSIG Other Data length does not match RDATA');
  const otherData = Buffer.from(b.subarray(p, p + otherLen));
  return { keyName: canonicalName(keyName), algorithmName: canonicalName(nameText(alg.labels)), timeSigned, fudge, mac, originalId, error, otherData, start };
}

/**
 * Finds the TSIG RR. Returns undefined when the message has none; throws WireError when
 * the message is malformed or a TSIG RR is not the last additional record (§5.2 FORMERR).
 */
export function findTsig(msg: Uint8Array): TsigRecord | undefined {
  const scanned = scanMessage(msg);
  const idx = scanned.records.findIndex((r) => r.type === TYPE_TSIG);
  if (idx < 0) return undefined;
  const r = scanned.records[idx];
  if (idx !== scanned.records.length - 1 || r.section !== 'additional') throw new WireError('TSIG is not the last additional record');
  if (r.class !== CLASS_ANY || r.ttl !== 0) throw new WireError('TSIG must have class ANY and TTL 0');
  if (scanned.trailing !== 0) throw new WireError('trailing bytes after TSIG');
  return parseTsigRdata(msg, r.name, r.rdataStart, r.rdlength, r.start);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

/** The TSIG variables of RFC 8945 §4.3.3, canonical names. */
function tsigVariables(keyName: string, algorithm: string, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    encodeName(keyName, true),
    u16(CLASS_ANY),
    Buffer.alloc(4), // TTL 0
    encodeName(algorithm, true),
    u48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function computeMac(
  key: TsigKey,
  unsignedMsg: Uint8Array,
  requestMac: Buffer | undefined,
  vars: Buffer,
): Buffer {
  const h = createHmac(HASH[key.algorithm].node, key.secret);
  if (requestMac) {
    h.update(u16(requestMac.length));
    h.update(requestMac);
  }
  h.update(unsignedMsg);
  h.update(vars);
  return h.digest();
}

/** Builds the TSIG RR bytes. */
function tsigRecord(keyName: string, algorithm: string, t: number, fudge: number, mac: Buffer, originalId: number, error: number, other: Buffer): Buffer {
  const rdata = Buffer.concat([encodeName(algorithm, true), u48(t), u16(fudge), u16(mac.length), mac, u16(originalId), u16(error), u16(other.length), other]);
  return Buffer.concat([encodeName(keyName, true), u16(TYPE_TSIG), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
}

function withTsigAppended(msg: Uint8Array, rr: Buffer): Buffer {
  const out = Buffer.concat([msg, rr]);
  const ar = out.readUInt16BE(10);
  if (ar === 0xffff) throw new WireError('ARCOUNT overflow');
  out.writeUInt16BE(ar + 1, 10);
  return out;
}

/**
 * Signs an unsigned message: appends a TSIG RR as the last additional record.
 * For a response, pass the request's MAC as `requestMac`.
 */
export function signMessage(bytes: Uint8Array, key: TsigKey, opts: SignOptions): { bytes: Buffer; mac: Buffer } {
  if (bytes.length < 12) throw new WireError('message shorter than its 12-byte header');
  const t = Math.floor(opts.now / 1000);
  const fudge = opts.fudge ?? DEFAULT_FUDGE;
  const error = TSIG_ERRORS[opts.error ?? 'NOERROR'];
  const other = opts.otherData ?? (opts.error === 'BADTIME' ? u48(t) : Buffer.alloc(0));
  const vars = opts.subsequent ? Buffer.concat([u48(t), u16(fudge)]) : tsigVariables(key.name, key.algorithm, t, fudge, error, other);
  const mac = computeMac(key, bytes, opts.requestMac, vars);
  const originalId = (bytes[0] << 8) | bytes[1];
  return { bytes: withTsigAppended(bytes, tsigRecord(key.name, key.algorithm, t, fudge, mac, originalId, error, other)), mac };
}

/**
 * Appends an unsigned TSIG carrying an error (RFC 8945 §5.3.2: BADKEY and BADSIG responses
 * carry an empty MAC, since the server cannot or must not sign with the client's key).
 */
export function appendErrorTsig(bytes: Uint8Array, tsig: Pick<TsigRecord, 'keyName' | 'algorithmName' | 'originalId'>, error: TsigErrorName, now: number, fudge = DEFAULT_FUDGE): Buffer {
  return withTsigAppended(bytes, tsigRecord(tsig.keyName, tsig.algorithmName, Math.floor(now / 1000), fudge, Buffer.alloc(0), tsig.originalId, TSIG_ERRORS[error], Buffer.alloc(0)));
}

/** Octets a TSIG record signed with `key` adds to a message (to keep room for it). */
export function tsigSize(key: TsigKey, otherLen = 0): number {
  const name = encodeName(key.name).length;
  const alg = encodeName(key.algorithm).length;
  return name + 10 + alg + 16 + HASH[key.algorithm].len + otherLen;
}

export type KeyLookup = TsigKey[] | ReadonlyMap<string, TsigKey> | ((name: string) => TsigKey | undefined);

function lookupKey(keys: KeyLookup, name: string): TsigKey | undefined {
  if (typeof keys === 'function') return keys(name);
  if (Array.isArray(keys)) return keys.find((k) => canonicalName(k.name) === name);
  return (keys as ReadonlyMap<string, TsigKey>).get(name);
}

/**
 * Verifies the TSIG on a message (RFC 8945 §5.2 for requests, §5.3.1 for responses when
 * `requestMac` is given). Never throws.
 */
export function verifyMessage(
  bytes: Uint8Array,
  keys: KeyLookup,
  opts: { now: number; requestMac?: Buffer; fudge?: number },
): VerifyResult {
  let tsig: TsigRecord | undefined;
  try {
    tsig = findTsig(bytes);
  } catch (e) {
    return { ok: false, error: 'FORMERR', message: e instanceof Error ? e.message : String(e) };
  }
  if (!tsig) return { ok: false, error: 'UNSIGNED', message: 'message carries no TSIG record' };
  const key = lookupKey(keys, tsig.keyName);
  const alg = algorithmFromName(tsig.algorithmName);
  if (!key || !alg || key.algorithm !== alg) {
    return { ok: false, error: 'BADKEY', message: `unknown key ${tsig.keyName} or algorithm ${tsig.algorithmName}`, tsig };
  }
  const full = HASH[alg].len;
  // §5.2.2.1: a MAC longer than the hash, or shorter than max(10, hash/2), is FORMERR.
  if (tsig.mac.length > full || tsig.mac.length < Math.max(10, full / 2)) {
    return { ok: false, error: 'FORMERR', message: `MAC size ${tsig.mac.length} not allowed for ${alg}`, tsig, key };
  }
  const unsigned = Buffer.from(bytes.subarray(0, tsig.start));
  unsigned.writeUInt16BE(tsig.originalId, 0);
  unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
  const vars = tsigVariables(tsig.keyName, tsig.algorithmName, tsig.timeSigned, tsig.fudge, tsig.error, tsig.otherData);
  const expected = computeMac(key, unsigned, opts.requestMac, vars).subarray(0, tsig.mac.length);
  if (!timingSafeEqual(expected, tsig.mac)) {
    return { ok: false, error: 'BADSIG', message: `MAC does not verify with key ${key.name}`, tsig, key };
  }
  const nowS = Math.floor(opts.now / 1000);
  const fudge = Math.min(tsig.fudge, opts.fudge ?? DEFAULT_FUDGE);
  if (Math.abs(nowS - tsig.timeSigned) > fudge) {
    return { ok: false, error: 'BADTIME', message: `time signed ${tsig.timeSigned} is more than ${fudge}s from ${nowS}`, tsig, key };
  }
  return { ok: true, keyName: key.name, key, algorithm: alg, mac: tsig.mac, timeSigned: tsig.timeSigned, tsig };
}
