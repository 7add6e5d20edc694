/**
 * Publishing the mail records into the owner's zones: each changed zone file is written
 * through the storage service's config API (the link the supervisor provisioned for our
 * declared need `configWrite: ['dns/zones/']`), one validated commit per file authored by
 * the service; the DNS service then serves it like any pushed change. Talks to the
 * current HTTP API (GET/PUT /store/config/<path> with x-kith-expected-blob) in this one
 * module, so it can move to platform/store-client.ts when that lands.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../../platform/log.ts';
import { readStorageLink } from '../../platform/links.ts';
import { storageAccess } from '../../platform/store-client.ts';
import { desiredRecords, editZone, newZone } from './records.ts';
import type { MailConfig } from './config.ts';
import type { DkimKey } from './dkim.ts';

export const ZONES_DIR = 'dns/zones';

/** The zone file holding `domain`: the longest matching dns/zones/<origin>.zone, else the home zone's (to be made). */
export async function zoneFileFor(configRoot: string, domain: string): Promise<{ origin: string; file: string } | undefined> {
  const names = await fsp.readdir(path.join(configRoot, ZONES_DIR)).catch(() => [] as string[]);
  const origins = names.filter((n) => n.endsWith('.zone')).map((n) => n.slice(0, -5).toLowerCase());
  const d = domain.toLowerCase();
  const hit = origins.filter((o) => d === o || d.endsWith(`.${o}`)).sort((a, b) => b.length - a.length)[0];
  if (hit) return { origin: hit, file: `${ZONES_DIR}/${hit}.zone` };
  // The home zone (dns/local.yaml) may be served without a file: we make one.
  const local = await fsp.readFile(path.join(configRoot, 'dns', 'local.yaml'), 'utf8').catch(() => '');
  const home = (/^zone:\s*["']?([^"'\s#]+)/m.exec(local)?.[1] ?? 'home.arpa').toLowerCase().replace(/\.$/, '');
  if (home && (d === home || d.endsWith(`.${home}`))) return { origin: home, file: `${ZONES_DIR}/${home}.zone` };
  return undefined;
}

export interface PublishResult {
  committed: { file: string; commit: string }[];
  unchanged: string[];
  skipped: string[];
}

export async function publishRecords(o: { dataDir: string; configRoot: string; config: MailConfig; keys: DkimKey[]; log: Logger }): Promise<PublishResult> {
  const s = o.config.settings;
  const out: PublishResult = { committed: [], unchanged: [], skipped: [] };
  if (!s.publish.enabled) return out;
  const link = await readStorageLink(o.dataDir);
  if (!link) throw new Error('no link to the storage service (links/storage.json): records cannot be published');
  // Mutual TLS with the certificate the supervisor issued, when it did; else the token.
  const { url: storageUrl, fetch, headers: auth } = storageAccess(link);
  for (const domain of Object.keys(s.domains)) {
    const z = await zoneFileFor(o.configRoot, domain);
    if (!z) {
      out.skipped.push(domain);
      o.log.warn('no zone for a mail domain: records not published', { domain, hint: `add dns/zones/${domain}.zone` });
      continue;
    }
    const url = `${storageUrl}/store/config/${z.file}`;
    const cur = await fetch(url, { headers: auth, signal: AbortSignal.timeout(10_000) });
    if (cur.status !== 200 && cur.status !== 404) throw new Error(`storage answered ${cur.status} reading ${z.file}: ${(await cur.text()).slice(0, 300)}`);
    const text = cur.status === 200 ? await cur.text() : newZone(z.origin);
    const blob = cur.status === 200 ? cur.headers.get('x-kith-blob') ?? '' : 'none';
    const records = desiredRecords(domain, { hostname: s.hostname, spf: s.publish.spf, dmarc: s.publish.dmarc, dkim: o.keys.map((k) => ({ selector: k.selector, record: k.record })) });
    const next = editZone(text, z.origin, domain, records, s.publish.ttl);
    if (next === undefined) {
      out.unchanged.push(z.file);
      continue;
    }
    const res = await fetch(url, {
      method: 'PUT',
      headers: {
        ...auth,
        'content-type': 'text/plain',
        'x-kith-expected-blob': blob,
        'x-kith-message': encodeURIComponent(`Publish mail records for ${domain}\n\n${records.map((r) => `${r.name} ${r.type}`).join('\n')}`),
      },
      body: next,
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new Error(`storage refused ${z.file} (${res.status}): ${(await res.text()).slice(0, 500)}`);
    const { commit } = (await res.json()) as { commit: string };
    out.committed.push({ file: z.file, commit });
    o.log.info('mail records published', { domain, file: z.file, commit, records: records.map((r) => `${r.name} ${r.type}`) });
  }
  return out;
}
