/**
 * Dynamic updates (RFC 2136, signed with TSIG per RFC 8945) that become commits in
 * config.git: the zone file is rewritten with the change and written through the storage
 * service's config API (a validated commit authored by "dns", the message naming the TSIG
 * key and the records), and only then acknowledged. The new zone is served at once; the
 * published file then reloads as any pushed change does.
 *
 * What this module gives the shell: the update state (store, keys, grants, read live from
 * the config) for update/handler.ts's pure step, and `commit`, which runs that step's
 * `{ kind: 'commit' }` effect against storage and returns the zone to serve.
 */
import type { Logger } from '../../platform/log.ts';
import { readStorageLink } from '../../platform/links.ts';
import { createStoreClient, StoreClientError } from '../../platform/store-client.ts';
import type { DnsConfig } from './config.ts';
import { grantPolicy } from './update/policy.ts';
import { decodeRdata } from './update/rdata.ts';
import { applyChanges, type Authorize, type Change, type StoredRR, type UpdateStore } from './update/update.ts';
import type { CommitEffect, UpdateState } from './update/handler.ts';
import type { TsigKey } from './tsig/tsig.ts';
import { formatZone } from './zone/format.ts';
import { parseZone } from './zone/parse.ts';
import type { Zone, ZoneSet } from './zone/zone.ts';
import { labelsToText } from './wire/name.ts';
import { typeName } from './wire/constants.ts';

export interface DynamicOptions {
  dataDir: string;
  config: () => DnsConfig;
  zones: () => ZoneSet;
  log: Logger;
}

export interface DynamicUpdates {
  /** The update state for handleUpdate/createUpdateHandler (without `answered`). */
  state: Omit<UpdateState, 'answered'>;
  /** Runs a commit effect: the zone file rewritten and committed through storage; the zone to serve. */
  commit(effect: CommitEffect): Promise<Zone>;
}

/** Every record of a zone, as the update processor sees them. */
export function zoneRecords(zone: Zone): StoredRR[] {
  const out: StoredRR[] = [];
  for (const rs of zone.rrsets()) {
    const type = typeName(rs.type);
    for (const rd of rs.rdata) {
      const buf = Buffer.concat([Buffer.from([rd.length >> 8, rd.length & 0xff]), rd]);
      out.push({ name: labelsToText(rs.labels).replace(/\.$/, '').toLowerCase(), type, ttl: rs.ttl, data: decodeRdata(type, buf, 2, rd.length) });
    }
  }
  return out;
}

function describe(changes: readonly Change[]): string[] {
  return changes.map((c) => `${c.op === 'add' ? '+' : '-'} ${c.name} ${c.ttl} ${c.type}`);
}

export function createDynamicUpdates(opts: DynamicOptions): DynamicUpdates {
  // Records per zone, derived once per zone object (zones are immutable, replaced on change).
  const cache = new WeakMap<Zone, Map<string, StoredRR[]>>();
  const byName = (zone: Zone) => {
    let m = cache.get(zone);
    if (!m) {
      m = new Map();
      for (const r of zoneRecords(zone)) {
        const list = m.get(r.name) ?? [];
        list.push(r);
        m.set(r.name, list);
      }
      cache.set(zone, m);
    }
    return m;
  };
  // Only zones that come from a zone file can be updated (the file is what gets committed).
  const store: UpdateStore = {
    hasZone: (apex) => opts.config().zoneFiles.has(apex) && opts.zones().get(apex) !== undefined,
    records: (name) => {
      const zone = opts.zones().find(name);
      return zone ? (byName(zone).get(name) ?? []) : [];
    },
  };

  let keysSource: TsigKey[] | undefined;
  let keyMap = new Map<string, TsigKey>();
  const keys = (name: string) => {
    const current = opts.config().keys;
    if (current !== keysSource) {
      keysSource = current;
      keyMap = new Map(current.map((k) => [k.name, k]));
    }
    return keyMap.get(name);
  };
  let grantsSource: DnsConfig['settings']['updates'] | undefined;
  let policy = grantPolicy([]);
  const authorize: Authorize = (req) => {
    const grants = opts.config().settings.updates;
    if (grants !== grantsSource) {
      grantsSource = grants;
      policy = grantPolicy(grants);
    }
    return policy(req);
  };

  async function commit({ zone: apex, changes, keyName }: CommitEffect): Promise<Zone> {
    const cfg = opts.config();
    const zone = opts.zones().get(apex);
    const file = cfg.zoneFiles.get(apex);
    if (!zone || !file) throw new Error(`zone ${apex} is not served from a zone file`);
    const link = await readStorageLink(opts.dataDir);
    if (!link) throw new Error('no link to the storage service: updates cannot be recorded in config.git');
    // Local names are merged into the home zone from dns/local.yaml: never bake them in.
    const local = apex === cfg.local.zone.toLowerCase() ? new Set(Object.keys(cfg.local.hosts).map((h) => `${h}.${apex}`)) : new Set<string>();
    const records = applyChanges(zoneRecords(zone), changes).filter((r) => !(local.has(r.name) && (r.type === 'A' || r.type === 'AAAA')));
    const text = formatZone(apex, records, [
      `${apex}: rewritten by kith DNS after a dynamic update (RFC 2136).`,
      'Edit and push as usual; comments in this file are not kept by later updates.',
    ]);
    // Parse before committing: never write a file we would refuse to serve.
    const parsed = parseZone(text, { origin: apex, file });
    if (!parsed.ok) throw new Error(`the updated zone does not parse: ${parsed.issues.map((i) => `${i.line}: ${i.message}`).join('; ')}`);
    // One validated commit through the store API: only if the zone file is still the one
    // read (a push or another update in between makes this a conflict, never a lost change).
    const store = createStoreClient(link);
    const lines = describe(changes);
    let oid: string;
    try {
      const current = await store.stat('config', file);
      ({ commit: oid } = await store.write('config', file, text, {
        expectedBlob: current?.blob ?? null,
        message: `DNS update of ${apex} by key ${keyName ?? '(none)'}\n\n${lines.join('\n')}`,
      }));
    } catch (err) {
      if (err instanceof StoreClientError) throw new Error(`storage refused the update (${err.status} ${err.code}): ${err.message.slice(0, 500)}`);
      throw err;
    }
    opts.log.info('dynamic update committed', { zone: apex, key: keyName, commit: oid, changes: lines });
    return parsed.zone;
  }

  return { state: { store, keys, authorize }, commit };
}
