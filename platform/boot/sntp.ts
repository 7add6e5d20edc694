/**
 * SNTP client messages — pure codec and the checks a client makes on a reply, no sockets.
 *
 * RFC 4330 (SNTPv4) §3 (NTP timestamp format and eras: a timestamp with bit 0 set is in
 * 1968–2036, one with it clear in 2036–2104), §4 (the 48-byte message), §5 (client
 * operation: request with VN 4, mode 3, transmit timestamp set; offset and round-trip
 * delay from T1–T4), §8 (kiss-o'-death: stratum 0 with an ASCII code in the reference
 * identifier). RFC 5905 §7.3 for the same header in NTPv4. Not supported: authentication
 * (the key identifier and digest after byte 48 are ignored), broadcast and manycast modes.
 *
 * decode() never throws; check() turns a reply into an offset or a refusal with the reason.
 * A request carries a random transmit timestamp (RFC 5905 §9.1 suggests it, as chrony and
 * ntpd's "interleaved" defence do): only the server that saw our request can echo it, so an
 * off-path reply cannot be forged by guessing our clock.
 */
import { randomBytes } from 'node:crypto';

export const NTP_PACKET = 48;
/** Seconds from 1900-01-01 (NTP era 0) to 1970-01-01. */
const NTP_UNIX_OFFSET = 2_208_988_800;
const ERA = 2 ** 32;

export const MODE_CLIENT = 3;
export const MODE_SERVER = 4;
export const LEAP_ALARM = 3;

export interface NtpPacket {
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  poll: number;
  precision: number;
  /** Seconds (16.16 fixed point in the packet). */
  rootDelay: number;
  rootDispersion: number;
  refId: Buffer;
  /** The four timestamps as the 8 raw bytes each (seconds.fraction since 1900, wrapped). */
  reference: Buffer;
  origin: Buffer;
  receive: Buffer;
  transmit: Buffer;
}

export type Decoded = { ok: true; value: NtpPacket } | { ok: false; error: string };

export function decode(b: Buffer): Decoded {
  if (b.length < NTP_PACKET) return { ok: false, error: `short packet (${b.length} bytes, need ${NTP_PACKET})` };
  const ts = (at: number) => Buffer.from(b.subarray(at, at + 8));
  return {
    ok: true,
    value: {
      leap: b[0]! >> 6, version: (b[0]! >> 3) & 7, mode: b[0]! & 7,
      stratum: b[1]!, poll: b.readInt8(2), precision: b.readInt8(3),
      rootDelay: b.readInt32BE(4) / 65536, rootDispersion: b.readUInt32BE(8) / 65536,
      refId: Buffer.from(b.subarray(12, 16)),
      reference: ts(16), origin: ts(24), receive: ts(32), transmit: ts(40),
    },
  };
}

/** A client request (RFC 4330 §5): VN 4, mode 3, every field zero but the transmit timestamp. */
export function request(transmit: Buffer = randomBytes(8)): { packet: Buffer; transmit: Buffer } {
  if (transmit.length !== 8) throw new Error('an NTP timestamp is 8 bytes');
  const packet = Buffer.alloc(NTP_PACKET);
  packet[0] = (0 << 6) | (4 << 3) | MODE_CLIENT;
  transmit.copy(packet, 40);
  return { packet, transmit: Buffer.from(transmit) };
}

/**
 * Unix milliseconds of an NTP timestamp, placing it in the era nearest `near` (Unix ms):
 * RFC 4330 §3's rule (bit 0 set → era 0, clear → era 1) is what `near` of today gives, and
 * it keeps working after 2104. A zero timestamp means "unknown": undefined.
 */
export function toUnixMs(ts: Buffer, near: number = Date.UTC(2026, 0, 1)): number | undefined {
  if (ts.length !== 8) return undefined;
  const sec = ts.readUInt32BE(0);
  const frac = ts.readUInt32BE(4);
  if (sec === 0 && frac === 0) return undefined;
  const nearNtp = near / 1000 + NTP_UNIX_OFFSET;
  const era = Math.round((nearNtp - sec) / ERA);
  return (era * ERA + sec - NTP_UNIX_OFFSET) * 1000 + (frac / ERA) * 1000;
}

/** The NTP timestamp of Unix milliseconds (wrapped into its 32-bit era). */
export function fromUnixMs(ms: number): Buffer {
  const b = Buffer.alloc(8);
  const total = ms / 1000 + NTP_UNIX_OFFSET;
  const sec = Math.floor(total);
  b.writeUInt32BE(((sec % ERA) + ERA) % ERA, 0);
  b.writeUInt32BE(Math.min(ERA - 1, Math.floor((total - sec) * ERA)), 4);
  return b;
}

/** The kiss code of a kiss-o'-death packet (RFC 4330 §8): four ASCII letters, e.g. RATE, DENY. */
export function kissCode(p: NtpPacket): string {
  return p.refId.toString('latin1').replace(/\0+$/, '').replace(/[^\x20-\x7e]/g, '?');
}

export interface Sample {
  /** Add this to the local clock to get the server's (ms). */
  offsetMs: number;
  /** Round trip, less the server's own processing time (ms). */
  delayMs: number;
  /** The server's time when the reply arrived (local T4 + offset), Unix ms. */
  serverNowMs: number;
  stratum: number;
  /** For a stratum-1 server its reference source (GPS, PPS…); otherwise the upstream's address. */
  refId: string;
}

export type Checked =
  | { ok: true; sample: Sample }
  /** `kiss`: the server said stop (DENY, RSTR) or slow down (RATE): RFC 4330 §8. */
  | { ok: false; why: string; kiss?: string };

/** A reply's round trip longer than this is not worth trusting for the time (ms). */
export const MAX_DELAY_MS = 10_000;

/**
 * Whether `reply` answers the request we sent with `sentTransmit` at local time t1 and
 * received at t4 (Unix ms, the local clock), and if so the offset and delay (RFC 4330 §5):
 *   offset = ((T2 − T1) + (T3 − T4)) / 2      delay = (T4 − T1) − (T3 − T2)
 * Refused: short or malformed, not mode 4, a version we do not speak, kiss-o'-death,
 * an unsynchronised server (leap 3, stratum above 15), an origin that is not our transmit
 * timestamp, zero receive or transmit timestamps, a negative or absurd delay.
 */
export function check(reply: Buffer, sentTransmit: Buffer, t1: number, t4: number): Checked {
  const d = decode(reply);
  if (!d.ok) return { ok: false, why: d.error };
  const p = d.value;
  if (p.mode !== MODE_SERVER) return { ok: false, why: `mode ${p.mode}, not a server reply (4)` };
  if (p.version < 1 || p.version > 4) return { ok: false, why: `NTP version ${p.version}` };
  if (!p.origin.equals(sentTransmit)) return { ok: false, why: 'origin timestamp is not our transmit timestamp (a stale or forged reply)' };
  if (p.stratum === 0) return { ok: false, why: `kiss-o'-death ${kissCode(p)}`, kiss: kissCode(p) };
  if (p.stratum > 15) return { ok: false, why: `stratum ${p.stratum}: the server is not synchronised` };
  if (p.leap === LEAP_ALARM) return { ok: false, why: 'leap indicator 3: the server is not synchronised' };
  const t3 = toUnixMs(p.transmit, t4);
  if (t3 === undefined) return { ok: false, why: 'transmit timestamp is zero' };
  const t2 = toUnixMs(p.receive, t4);
  if (t2 === undefined) return { ok: false, why: 'receive timestamp is zero' };
  if (t3 < t2) return { ok: false, why: 'the server sent its reply before it received the request' };
  const delayMs = (t4 - t1) - (t3 - t2);
  if (t4 < t1 || delayMs < -1 || delayMs > MAX_DELAY_MS) return { ok: false, why: `round trip of ${Math.round(delayMs)} ms is not believable` };
  const offsetMs = ((t2 - t1) + (t3 - t4)) / 2;
  const refId = p.stratum === 1 ? kissCode(p).replace(/\?+$/, '') : [...p.refId].join('.');
  return { ok: true, sample: { offsetMs, delayMs: Math.max(0, delayMs), serverNowMs: t4 + offsetMs, stratum: p.stratum, refId } };
}

/** A server reply, for tests and fuzzing (the fields a server sets, RFC 4330 §5). */
export function serverReply(o: { origin: Buffer; receiveMs: number; transmitMs: number; stratum?: number; leap?: number; mode?: number; version?: number; refId?: Buffer }): Buffer {
  const b = Buffer.alloc(NTP_PACKET);
  b[0] = ((o.leap ?? 0) << 6) | ((o.version ?? 4) << 3) | (o.mode ?? MODE_SERVER);
  b[1] = o.stratum ?? 2;
  b[2] = 6;
  b.writeInt8(-20, 3);
  (o.refId ?? Buffer.from([192, 0, 2, 1])).copy(b, 12, 0, 4);
  fromUnixMs(o.transmitMs - 1000).copy(b, 16);
  o.origin.copy(b, 24);
  fromUnixMs(o.receiveMs).copy(b, 32);
  fromUnixMs(o.transmitMs).copy(b, 40);
  return b;
}
