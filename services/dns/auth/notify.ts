/**
 * NOTIFY out (RFC 1996 §3): tell secondaries that a zone changed.
 *
 * The message is opcode NOTIFY, AA set, question (apex, SOA, IN) and the new SOA in the
 * answer section (§3.7, optional but useful), signed with TSIG (RFC 8945) for secondaries
 * that have a key. `notifyEffects` is pure: the zones that
 * changed and the configured targets → one `{ kind: 'notify' }` effect per target, which
 * the service shell sends (and retries, §3.6). `isNotifyAck` recognises the secondary's
 * reply.
 */
import type { Buffer } from 'node:buffer';
import { FLAG, OPCODE, TYPE } from '../wire/constants.ts';
import { MessageWriter } from '../wire/writer.ts';
import type { Zone } from '../zone/zone.ts';
import { signMessage, verifyMessage, type TsigKey } from '../tsig/tsig.ts';

export function buildNotify(zone: Zone, id: number): Buffer {
  const w = new MessageWriter();
  w.header(id, (OPCODE.NOTIFY << 11) | FLAG.AA);
  w.question(zone.originLabels, TYPE.SOA, 1);
  w.rr(1, zone.soa.labels, TYPE.SOA, 1, zone.soa.ttl, zone.soa.rdata[0]);
  return w.finish();
}

export interface NotifyTarget {
  host: string;
  port: number;
  /** Sign the NOTIFY with this key (RFC 8945), as the secondary expects. */
  key?: TsigKey;
}

/** Send `message` to a secondary until it acknowledges (id `id`), a few times at most. */
export interface NotifyEffect {
  kind: 'notify';
  zone: string;
  host: string;
  port: number;
  id: number;
  message: Buffer;
  /** The key it was signed with and its MAC: the acknowledgement must verify with them. */
  signed?: { key: TsigKey; mac: Buffer };
}

/**
 * One NOTIFY per target for each zone that changed, signed for targets with a key.
 * `ids` gives each message its random ID; `now` (ms) is the time signed.
 */
export function notifyEffects(changed: readonly Zone[], targets: readonly NotifyTarget[], ids: () => number, now: number): NotifyEffect[] {
  const out: NotifyEffect[] = [];
  for (const zone of changed) {
    for (const t of targets) {
      const id = ids();
      const plain = buildNotify(zone, id);
      const base = { kind: 'notify' as const, zone: zone.origin, host: t.host, port: t.port, id };
      if (!t.key) out.push({ ...base, message: plain });
      else {
        const s = signMessage(plain, t.key, { now });
        out.push({ ...base, message: s.bytes, signed: { key: t.key, mac: s.mac } });
      }
    }
  }
  return out;
}

/**
 * Is `reply` the acknowledgement of our NOTIFY with this id? (QR=1, opcode NOTIFY, NOERROR;
 * for a signed NOTIFY, signed with the same key over our MAC, RFC 8945 §5.3.)
 */
export function isNotifyAck(reply: Buffer, id: number, signed?: NotifyEffect['signed'], now = Date.now()): boolean {
  if (reply.length < 12) return false;
  const flags = reply.readUInt16BE(2);
  const ok = reply.readUInt16BE(0) === id && (flags & FLAG.QR) !== 0 && ((flags >> 11) & 0xf) === OPCODE.NOTIFY && (flags & 0xf) === 0;
  if (!ok || !signed) return ok;
  return verifyMessage(reply, [signed.key], { now, requestMac: signed.mac }).ok;
}
