/**
 * The DNS service's view of its validated config for other services' cross-service rules
 * (platform/config/views.ts DnsView): which zones it serves and what they hold, with
 * RDATA in presentation form, so a mail or calendar rule can check "this domain has a zone"
 * or "the MX points at a name that resolves here" without importing DNS code.
 */
import dnsPacket from 'dns-packet';
import type { DnsRecordView, DnsView } from '../../platform/config/views.ts';
import { presentRdata } from './zone/format.ts';
import { typeName, TYPE } from './wire/constants.ts';
import type { ZoneSet } from './zone/zone.ts';

interface Codec { decode(buf: Buffer, offset?: number): unknown }
const codec = (type: string): Codec => (dnsPacket as unknown as { record(t: string): Codec }).record(type);

/** Canonical key of a presentation name: lowercase, no trailing dot ('' for the root). */
const keyOf = (name: string) => name.toLowerCase().replace(/\.$/, '');

function present(type: string, rdata: Buffer): string {
  try {
    // dns-packet's record decoders read the 2-byte RDLENGTH first.
    const withLength = Buffer.alloc(rdata.length + 2);
    withLength.writeUInt16BE(rdata.length, 0);
    rdata.copy(withLength, 2);
    return presentRdata(type, codec(type).decode(withLength, 0));
  } catch {
    return presentRdata(type, rdata);
  }
}

export function makeDnsView(zones: ZoneSet, zoneFiles: ReadonlyMap<string, string>): DnsView {
  const fileOf = (origin: string) => zoneFiles.get(origin) ?? 'dns/local.yaml';
  return {
    zones: zones.zones().map((z) => ({ origin: z.origin, file: fileOf(z.origin) })),
    zoneOf(name) {
      const z = zones.find(keyOf(name));
      return z ? { origin: z.origin, file: fileOf(z.origin) } : undefined;
    },
    lookup(name, type): DnsRecordView[] {
      const key = keyOf(name);
      const t = TYPE[type.toUpperCase()];
      const z = zones.find(key);
      if (!z || t === undefined) return [];
      const rs = z.get(key, t);
      return (rs?.rdata ?? []).map((r) => ({ data: present(typeName(t), r), file: fileOf(z.origin) }));
    },
  };
}
