/**
 * Discovery records (RFC 6764 §3): `_caldavs._tcp` / `_carddavs._tcp` SRV records and
 * TXT `path=/dav/` in the owner's zone, so clients that are given only a domain find the
 * server. Written like DNS dynamic updates are: the zone file in config.git is changed
 * through storage's config API over the link (granted by needs.configWrite), as one
 * validated commit, compare-and-swap on the file's blob; DNS then serves it live.
 * The records sit in a marked block that is replaced, never duplicated.
 */
import type { Logger } from '../../platform/log.ts';
import type { StorageLink } from '../../platform/links.ts';
import type { ListenAddress } from '../../platform/service.ts';
import type { CalendarConfig } from './config.ts';
import { storageAccess } from '../../platform/store-client.ts';

const BEGIN = '; kith calendar: discovery records (RFC 6764), rewritten by the calendar service';
const END = '; end of kith calendar records';

/** The zone text with our block in place of any old one (pure). */
export function withDiscoveryBlock(zoneText: string | undefined, zone: string, target: string, port: number): string {
  const t = target.endsWith('.') ? target : `${target}.${zone}.`;
  const block = [
    BEGIN,
    `_caldavs._tcp.${zone}. 3600 IN SRV 0 1 ${port} ${t}`,
    `_caldavs._tcp.${zone}. 3600 IN TXT "path=/dav/"`,
    `_carddavs._tcp.${zone}. 3600 IN SRV 0 1 ${port} ${t}`,
    `_carddavs._tcp.${zone}. 3600 IN TXT "path=/dav/"`,
    END,
  ].join('\n');
  const base = zoneText ?? [`$ORIGIN ${zone}.`, '$TTL 300', '@ IN SOA kith hostmaster 1 3600 600 604800 300', '@ IN NS kith', ''].join('\n');
  const start = base.indexOf(BEGIN);
  if (start !== -1) {
    const end = base.indexOf(END, start);
    if (end !== -1) return base.slice(0, start) + block + base.slice(end + END.length);
  }
  return `${base.replace(/\n*$/, '\n')}${block}\n`;
}

export async function publishDiscovery(opts: { link: StorageLink; config: CalendarConfig; listen: Readonly<Record<string, ListenAddress>>; log: Logger }): Promise<void> {
  const zone = opts.config.publish.zone?.toLowerCase().replace(/\.$/, '');
  if (!zone) return;
  const file = `dns/zones/${zone}.zone`;
  // Mutual TLS with the certificate the supervisor issued, when it did; else the token.
  const { url: storageUrl, fetch, headers: auth } = storageAccess(opts.link);
  const url = `${storageUrl}/store/config/${file}`;
  const cur = await fetch(url, { headers: auth, signal: AbortSignal.timeout(10_000) });
  const text = cur.ok ? await cur.text() : undefined;
  if (!cur.ok && cur.status !== 404) throw new Error(`storage answered ${cur.status} for ${file}`);
  const next = withDiscoveryBlock(text, zone, opts.config.publish.target, opts.config.publish.port);
  if (next === text) return;
  const res = await fetch(url, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'text/plain', 'x-kith-expected-blob': cur.ok ? (cur.headers.get('x-kith-blob') ?? '') : 'none', 'x-kith-message': encodeURIComponent(`Calendar discovery records (RFC 6764) in ${zone}`) },
    body: next,
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`storage refused ${file} (${res.status}): ${(await res.text()).slice(0, 300)}`);
  opts.log.info('discovery records published', { zone, file });
}
