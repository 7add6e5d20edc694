/**
 * Zone → RFC 1035 master file, for zones rewritten by dynamic updates (as BIND and Knot
 * do when they flush a journal). Common types in their presentation format; every other
 * type in RFC 3597's generic form (`\# len hex`), which every parser reads back exactly.
 */
import dnsPacket from 'dns-packet';
import type { StoredRR } from '../update/update.ts';

interface Codec {
  encode(data: unknown): Buffer;
}
const codec = (type: string): Codec => (dnsPacket as unknown as { record(t: string): Codec }).record(type);

const fqdn = (name: string) => (name === '' || name === '.' ? '.' : `${name.replace(/\.$/, '')}.`);

/** A character-string, quoted, with RFC 1035 §5.1 escapes. */
function quote(bytes: Uint8Array): string {
  let s = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) s += `\\${String(b).padStart(3, '0')}`;
    else s += String.fromCharCode(b);
  }
  return s + '"';
}

function generic(type: string, data: unknown): string {
  const rdata = Buffer.isBuffer(data) ? data : codec(type).encode(data).subarray(2);
  return rdata.length === 0 ? '\\# 0' : `\\# ${rdata.length} ${rdata.toString('hex')}`;
}

export function presentRdata(type: string, data: unknown): string {
  if (Buffer.isBuffer(data)) return generic(type, data);
  const d = data as Record<string, unknown>;
  switch (type) {
    case 'A':
    case 'AAAA':
      return String(data);
    case 'NS':
    case 'CNAME':
    case 'PTR':
    case 'DNAME':
      return fqdn(String(data));
    case 'MX':
      return `${d.preference} ${fqdn(String(d.exchange))}`;
    case 'SRV':
      return `${d.priority} ${d.weight} ${d.port} ${fqdn(String(d.target))}`;
    case 'SOA':
      return `${fqdn(String(d.mname))} ${fqdn(String(d.rname))} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    case 'TXT': {
      const parts = (Array.isArray(data) ? data : [data]).map((p) => (typeof p === 'string' ? Buffer.from(p) : (p as Buffer)));
      return parts.map(quote).join(' ');
    }
    case 'CAA':
      return `${Number(d.flags ?? 0)} ${d.tag} ${quote(Buffer.from(String(d.value)))}`;
    default:
      return generic(type, data);
  }
}

export function formatZone(origin: string, records: readonly StoredRR[], header: string[] = []): string {
  const o = origin.replace(/\.$/, '').toLowerCase();
  const owner = (name: string) => {
    const n = name.replace(/\.$/, '').toLowerCase();
    if (n === o) return '@';
    return n.endsWith(`.${o}`) ? n.slice(0, -(o.length + 1)) : fqdn(n);
  };
  const soa = records.filter((r) => r.type === 'SOA' && owner(r.name) === '@');
  const rest = records
    .filter((r) => !soa.includes(r))
    .map((r) => ({ r, owner: owner(r.name), text: presentRdata(r.type, r.data) }))
    .sort((a, b) => (a.owner === '@' ? -1 : b.owner === '@' ? 1 : 0) || a.owner.localeCompare(b.owner) || a.r.type.localeCompare(b.r.type) || a.text.localeCompare(b.text));
  const lines = [...header.map((h) => `; ${h}`), `$ORIGIN ${fqdn(o)}`];
  for (const r of soa) lines.push(`@\t${r.ttl}\tIN\tSOA\t${presentRdata('SOA', r.data)}`);
  for (const { r, owner: ow, text } of rest) lines.push(`${ow}\t${r.ttl}\tIN\t${r.type}\t${text}`);
  return lines.join('\n') + '\n';
}
