// Builders for UPDATE messages in tests (dns-packet cannot encode class NONE or empty RDATA).
import dnsPacket from 'dns-packet';
import { encodeName } from '../wire/name.ts';
import { parseType } from '../wire/constants.ts';
import type { StoredRR } from './update.ts';

export interface RRSpec {
  name: string;
  type: string;
  class?: 'IN' | 'ANY' | 'NONE' | number;
  ttl?: number;
  data?: unknown;
}

const CLASSES: Record<string, number> = { IN: 1, ANY: 255, NONE: 254 };

export function rr(spec: RRSpec): Buffer {
  const klass = typeof spec.class === 'number' ? spec.class : CLASSES[spec.class ?? 'IN'];
  let out: Buffer;
  if (spec.data === undefined) {
    const head = Buffer.alloc(10);
    head.writeUInt16BE(typeNum(spec.type), 0);
    head.writeUInt32BE(spec.ttl ?? 0, 4);
    out = Buffer.concat([encodeName(spec.name), head]);
  } else {
    // dns-packet exports its RR codec at run time; its typings leave it out.
    const codec = (dnsPacket as unknown as { answer: { encode(a: dnsPacket.Answer): Buffer } }).answer;
    out = codec.encode({ name: spec.name, type: spec.type, class: 'IN', ttl: spec.ttl ?? 0, data: spec.data } as dnsPacket.Answer);
  }
  out.writeUInt16BE(klass, encodeName(spec.name).length + 2);
  return out;
}

function typeNum(t: string): number {
  return parseType(t) ?? 0;
}

export function updateMessage(zone: string, prereq: RRSpec[], updates: RRSpec[], id = 0x2136, zoneType = 'SOA'): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(5 << 11, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(prereq.length, 6);
  head.writeUInt16BE(updates.length, 8);
  const zq = Buffer.alloc(4);
  zq.writeUInt16BE(typeNum(zoneType), 0);
  zq.writeUInt16BE(1, 2);
  return Buffer.concat([head, encodeName(zone), zq, ...prereq.map(rr), ...updates.map(rr)]);
}

export const SOA = { mname: 'ns1.home.arpa', rname: 'hostmaster.home.arpa', serial: 2024010101, refresh: 3600, retry: 600, expire: 86400, minimum: 300 };

export function seedZone(): StoredRR[] {
  return [
    { name: 'home.arpa', type: 'SOA', ttl: 3600, data: SOA },
    { name: 'home.arpa', type: 'NS', ttl: 3600, data: 'ns1.home.arpa' },
    { name: 'ns1.home.arpa', type: 'A', ttl: 3600, data: '192.168.1.1' },
    { name: 'www.home.arpa', type: 'A', ttl: 300, data: '192.168.1.10' },
    { name: 'www.home.arpa', type: 'A', ttl: 300, data: '192.168.1.11' },
    { name: 'alias.home.arpa', type: 'CNAME', ttl: 300, data: 'www.home.arpa' },
    { name: 'mail.home.arpa', type: 'MX', ttl: 300, data: { preference: 10, exchange: 'mx.home.arpa' } },
  ];
}
