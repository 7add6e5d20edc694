/**
 * A one-shot DNS-SD browse (RFC 6763 §4) for `kith pair`: a PTR query for `_kith._tcp.local`
 * sent from an ephemeral port to 224.0.0.251 on every multicast link — a legacy unicast
 * query (RFC 6762 §6.7), so responders answer straight back with the PTR and, as
 * additional records, SRV, TXT and addresses — and the instances collected for a moment.
 */
import * as dgram from 'node:dgram';
import * as packet from 'dns-packet';
import { machineLinks } from './advertiser.ts';
import { lower, type Rec } from './records.ts';
import { MDNS_PORT, MDNS_V4 } from './responder.ts';

export interface Found {
  instance: string;
  host: string;
  port: number;
  addresses: string[];
  txt: Record<string, string>;
  /** Who answered. */
  from: string;
}

/** What a set of answers says about the instances of `type` (pure; bad records are skipped). */
export function collect(type: string, records: (Rec & { from: string })[]): Found[] {
  const t = lower(`${type}.local`);
  const out: Found[] = [];
  for (const ptr of records.filter((r) => r.type === 'PTR' && lower(r.name) === t)) {
    const inst = lower(String(ptr.data));
    if (out.some((f) => lower(f.instance) === inst)) continue;
    const srv = records.find((r) => r.type === 'SRV' && lower(r.name) === inst)?.data as { port?: number; target?: string } | undefined;
    if (!srv?.target || typeof srv.port !== 'number') continue;
    const txtRec = records.find((r) => r.type === 'TXT' && lower(r.name) === inst)?.data as (Buffer | string)[] | undefined;
    const txt: Record<string, string> = {};
    for (const b of txtRec ?? []) {
      const s = Buffer.isBuffer(b) ? b.toString('utf8') : String(b);
      const eq = s.indexOf('=');
      if (eq > 0) txt[s.slice(0, eq)] = s.slice(eq + 1);
    }
    const addresses = [...new Set(records.filter((r) => (r.type === 'A' || r.type === 'AAAA') && lower(r.name) === lower(srv.target!)).map((r) => String(r.data)))];
    out.push({ instance: String(ptr.data).replace(`.${type}.local`, '').replace(/\\\./g, '.'), host: lower(srv.target), port: srv.port, addresses, txt, from: ptr.from });
  }
  return out;
}

export async function browse(type = '_kith._tcp', waitMs = 1500): Promise<Found[]> {
  const socket = dgram.createSocket('udp4');
  const records: (Rec & { from: string })[] = [];
  socket.on('message', (msg, rinfo) => {
    if (rinfo.port !== MDNS_PORT) return;
    try {
      const p = packet.decode(msg);
      for (const r of [...(p.answers ?? []), ...(p.additionals ?? [])]) records.push({ ...(r as unknown as Rec), from: rinfo.address });
    } catch { /* not DNS: ignored */ }
  });
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.bind(0, '0.0.0.0', () => r()));
  const query = packet.encode({ type: 'query', id: Math.floor(Math.random() * 65536), questions: [{ name: `${type}.local`, type: 'PTR' }] });
  const links = machineLinks({});
  for (const l of (links.length > 0 ? links : machineLinks({ loopback: true })).filter((x) => x.v4.length > 0)) {
    try {
      socket.setMulticastInterface(l.v4[0]!);
      await new Promise<void>((r) => socket.send(query, MDNS_PORT, MDNS_V4, () => r()));
    } catch { /* a link without multicast: the others may still answer */ }
  }
  await new Promise((r) => setTimeout(r, waitMs));
  socket.close();
  return collect(type, records);
}
