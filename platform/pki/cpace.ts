/**
 * CPace, the balanced password-authenticated key exchange of draft-irtf-cfrg-cpace, over
 * ristretto255 with SHA-512 (the draft's CPACE-RISTR255-SHA512 suite), on @noble/curves and
 * @noble/hashes: no primitive of our own. Used by pairing: the appliance and the owner's
 * machine turn a short code into a strong shared key; the code is never sent, and an
 * eavesdropper or a man in the middle learns nothing about it beyond one guess per run.
 *
 *   generator  g = element_derivation(SHA-512(lv_cat(DSI, PRS, zpad, CI, sid)))  (§7.2, RFC 9496 §4.3.4)
 *   share      y ← random scalar, Y = y·g
 *   key        K = y·Y_other (abort on the identity), ISK = SHA-512(lv_cat(DSI‖"_ISK", sid, K) ‖ transcript)
 *   transcript lv_cat(Ya, ADa) ‖ lv_cat(Yb, ADb) (initiator–responder order)
 * Key confirmation (both sides prove they hold ISK) is HMAC-SHA-512 over the transcript.
 */
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { randomBytes } from 'node:crypto';

const Point = ristretto255.Point;
const DSI = new TextEncoder().encode('CPaceRistretto255');
const S_IN_BYTES = 128; // SHA-512's input block size

/** LEB128 length prefix (the draft's prepend_len). */
function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = data.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return concat(Uint8Array.from(len), data);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const lvCat = (...parts: Uint8Array[]) => concat(...parts.map(prependLen));

export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const zpad = Math.max(0, S_IN_BYTES - 1 - prependLen(prs).length - prependLen(DSI).length);
  return lvCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

export function generator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array) {
  return ristretto255_hasher.deriveToCurve!(sha512(generatorString(prs, ci, sid)));
}

function randomScalar(): bigint {
  const order = Point.Fn.ORDER;
  for (;;) {
    const b = randomBytes(64);
    let n = 0n;
    for (let i = 63; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
    const y = n % order;
    if (y !== 0n) return y;
  }
}

export interface Share {
  /** Our secret scalar: never leaves this side. */
  y: bigint;
  /** Our public share Y = y·g, 32 bytes. */
  Y: Uint8Array;
}

/** Compute our share for password `prs`, channel identifier `ci` and session id `sid`. */
export function share(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Share {
  const y = randomScalar();
  return { y, Y: generator(prs, ci, sid).multiply(y).toBytes() };
}

/**
 * The intermediate session key from our scalar and the peer's share; throws when the peer's
 * share is not a valid ristretto255 encoding or the result is the identity (an attack).
 */
export function sessionKey(o: { mine: Share; theirs: Uint8Array; sid: Uint8Array; initiator: boolean; adA?: Uint8Array; adB?: Uint8Array }): Uint8Array {
  const other = Point.fromBytes(o.theirs);
  const K = other.multiply(o.mine.y);
  if (K.is0()) throw new Error('CPace: the peer sent an invalid share');
  const [Ya, Yb] = o.initiator ? [o.mine.Y, o.theirs] : [o.theirs, o.mine.Y];
  const transcript = concat(lvCat(Ya, o.adA ?? new Uint8Array(0)), lvCat(Yb, o.adB ?? new Uint8Array(0)));
  return sha512(concat(lvCat(concat(DSI, new TextEncoder().encode('_ISK')), o.sid, K.toBytes()), transcript));
}

/** Key confirmation tag: HMAC-SHA-512(ISK, label ‖ transcript bytes). */
export function confirmTag(isk: Uint8Array, label: 'initiator' | 'responder', transcript: Uint8Array): Uint8Array {
  return hmac(sha512, isk, concat(new TextEncoder().encode(label), transcript));
}
