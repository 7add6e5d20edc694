/**
 * The DNS service's configuration, read from the config tree:
 *
 *   dns/dns.yaml         settings: upstreams, who may recurse, cache, transfers, blocking, updates
 *   dns/zones/*.zone     RFC 1035 master files; the origin is the file name (home.arpa.zone)
 *   dns/local.yaml       local names (RFC 8375 home.arpa): each device and service by name
 *   dns/blocklists/*     Pi-hole style lists (.txt, .list, .hosts) and allow.txt
 *   dns/keys/*.key       TSIG keys in BIND's format (tsig-keygen), for dynamic updates
 *
 * Everything validates before anything is served; every problem names file and line.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { loadYamlFile } from '../../platform/config/yaml.ts';
import type { ConfigIssue, ConfigResult, ConfigSource, ConfigSpec, MachineFacts } from '../../platform/config/spec.ts';
import { makeDnsView } from './config-view.ts';
import { loadBlocklists, type LoadedBlocklists } from './blocklist/blocklist.ts';
import { parseKeyFile } from './tsig/keyfile.ts';
import type { TsigKey } from './tsig/tsig.ts';
import { loadZone } from './zone/load.ts';
import { parseZone } from './zone/parse.ts';
import { ZoneSet, type Zone } from './zone/zone.ts';

const Cidr = z.string().refine((s) => {
  const [addr, len, ...rest] = s.split('/');
  if (rest.length > 0 || !addr) return false;
  const fam = isIP(addr);
  if (!fam) return false;
  return len === undefined || (/^\d+$/.test(len) && Number(len) <= (fam === 4 ? 32 : 128));
}, 'expected an address or prefix, e.g. 192.168.1.0/24 or fd00::/8');

/** 192.0.2.1, 192.0.2.1:5353, 2001:db8::1, [2001:db8::1]:5353 */
const HostPort = z.string().transform((s, ctx) => {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:]+):(\d{1,5})$/.exec(s);
  const host = m ? m[1]! : s;
  const port = m ? Number(m[2]) : 53;
  if (!isIP(host) || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: 'expected an IP address with an optional port, e.g. 9.9.9.9 or [2620:fe::fe]:53' });
    return z.NEVER;
  }
  return { host, port };
});

const KEY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253})$/;
const KeyName = z.string().regex(KEY_NAME, 'expected the name of a TSIG key in dns/keys/, e.g. secondary');

/** A transfer ACL entry: an address or prefix, `key:NAME` (any address, signed with NAME), or both. */
const TransferAllow = z.union([
  z.string().refine((s) => (s.startsWith('key:') ? KEY_NAME.test(s.slice(4)) : Cidr.safeParse(s).success),
    "expected an address or prefix (192.168.1.2, 192.168.1.0/24), or 'key:NAME' for a TSIG key in dns/keys/"),
  z.object({ address: Cidr, key: KeyName }).strict(),
]);

/** A NOTIFY target: host[:port], or { address: host[:port], key: NAME } to sign the NOTIFY. */
const NotifyTarget = z.union([
  HostPort,
  z.object({ address: HostPort, key: KeyName }).strict().transform((o) => ({ ...o.address, key: o.key })),
]);

const RRType = z.string().regex(/^[A-Za-z0-9]+$/, 'expected a record type such as A, AAAA, TXT');

/** Records in all zones together, by default (dns.yaml limits.zoneRecords). */
export const DEFAULT_ZONE_RECORDS = 10_000;
/** Records in one zone file at most, whatever limits.zoneRecords says (zone/parse.ts). */
const PER_ZONE_RECORDS = 200_000;

export const DnsSettingsSchema = z.object({
  /** Resolvers asked for names outside our zones. Empty: such names are REFUSED. */
  upstreams: z.array(HostPort).default([]),
  recursion: z.object({
    /** Clients that may use the forwarder and cache (the home network). */
    allow: z.array(Cidr).default(['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fe80::/10']),
  }).strict().default({ allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fe80::/10'] }),
  cache: z.object({
    maxEntries: z.number().int().min(0).max(10_000_000).default(50_000),
    minTtl: z.number().int().min(0).max(86_400).default(0),
    maxTtl: z.number().int().min(1).max(604_800).default(86_400),
  }).strict().default({ maxEntries: 50_000, minTtl: 0, maxTtl: 86_400 }),
  transfer: z.object({
    /** Secondaries allowed to AXFR our zones: addresses, prefixes, `key:NAME`, `{ address, key }`. */
    allow: z.array(TransferAllow).default([]),
    /** Secondaries told by NOTIFY (RFC 1996) when a zone changes; with a key, the NOTIFY is signed. */
    notify: z.array(NotifyTarget).default([]),
  }).strict().default({ allow: [], notify: [] }),
  blocking: z.object({
    /** nxdomain, or null-ip (0.0.0.0 / ::). */
    mode: z.enum(['nxdomain', 'null-ip']).default('nxdomain'),
  }).strict().default({ mode: 'nxdomain' }),
  /** DNS over TCP (RFC 7766 §6.2): how many connections, and how long each may idle or dawdle. */
  tcp: z.object({
    /** Connections held at once; when full, the longest-idle one makes room for a new one. */
    maxConnections: z.number().int().min(1).max(65_536).default(512),
    /** Connections one client (IPv4 address, IPv6 /64) holds at once. */
    maxConnectionsPerSource: z.number().int().min(1).max(65_536).default(32),
    /** Seconds a connection may sit idle. */
    idleTimeout: z.number().min(0.1).max(3600).default(10),
    /** Seconds a query may take to arrive once its first byte has. */
    messageTimeout: z.number().min(0.1).max(600).default(5),
  }).strict().prefault({}),
  /**
   * Response rate limiting (BIND/NSD RRL) for UDP answers to clients outside the recursion
   * allow list: per client network and per response, past the rate every `slip`-th answer
   * is sent truncated (the client retries over TCP) and the rest dropped.
   */
  rrl: z.object({
    enabled: z.boolean().default(true),
    /** Identical responses a second to one client network. */
    responsesPerSecond: z.number().int().min(1).max(1_000_000).default(10),
    /** Seconds a flood stays limited after it stops (the bucket's debt). */
    window: z.number().int().min(1).max(3600).default(15),
    /** Every slip-th limited answer is sent truncated (TC=1); 0 drops them all, 1 slips them all. */
    slip: z.number().int().min(0).max(10).default(2),
    ipv4PrefixLength: z.number().int().min(8).max(32).default(24),
    ipv6PrefixLength: z.number().int().min(16).max(128).default(56),
    /** Clients never limited (besides the recursion allow list and valid DNS cookies). */
    exempt: z.array(Cidr).default([]),
    /** Buckets kept at most (memory: about 150 bytes each). */
    maxEntries: z.number().int().min(100).max(1_000_000).default(20_000),
  }).strict().prefault({}),
  /** Bounds on what the config may make this service hold in memory. */
  limits: z.object({
    /**
     * Records in all zones together. Measured with the sealed bundle (A/AAAA/TXT mix):
     * 74 MB resident with none, 114 MB with 10,000 (125 MB after a reload), 148 MB with
     * 25,000 (199 MB): about 4 KB each while loading, most of it garbage the heap keeps.
     * The default keeps DNS within its share of a 512 MB Raspberry Pi; raise it on a
     * bigger machine.
     */
    zoneRecords: z.number().int().min(100).max(10_000_000).default(DEFAULT_ZONE_RECORDS),
  }).strict().prefault({}),
  /** Who may change which names by TSIG-signed dynamic update (RFC 2136). */
  updates: z.array(z.object({
    key: z.string().min(1),
    names: z.array(z.string().min(1)).min(1),
    types: z.array(RRType).optional(),
  }).strict()).default([]),
}).strict();

export type DnsSettings = z.infer<typeof DnsSettingsSchema>;

const HostName = z.string().regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i, 'expected a host name such as laptop or printer.lan');
const Address = z.string().refine((s) => s === 'self' || isIP(s) !== 0, "expected an IPv4 or IPv6 address, or 'self' (this machine's addresses)");

export const LocalNamesSchema = z.object({
  /** The home zone (RFC 8375). */
  zone: z.string().default('home.arpa'),
  ttl: z.number().int().min(0).max(86_400).default(300),
  /** name → addresses; names are relative to the zone. */
  hosts: z.record(z.string(), z.array(Address).min(1)).superRefine((hosts, ctx) => {
    for (const name of Object.keys(hosts)) {
      if (!HostName.safeParse(name).success) ctx.addIssue({ code: 'custom', path: [name], message: `'${name}' is not a host name: use letters, digits and '-', with dots between labels` });
    }
  }).default({}),
}).strict();

export type LocalNames = z.infer<typeof LocalNamesSchema>;

export interface DnsConfig {
  settings: DnsSettings;
  zones: ZoneSet;
  /** origin → the config file it came from (dynamic updates rewrite it). */
  zoneFiles: Map<string, string>;
  local: LocalNames;
  blocklists: LoadedBlocklists;
  keys: TsigKey[];
  /** Not fatal (a bad line in a downloaded block list): logged, never refused. */
  warnings: ConfigIssue[];
}

export const ZONES_DIR = 'dns/zones';
const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * 'self' in dns/local.yaml: this machine's addresses, as the runner found them
 * (platform/facts.ts: the interfaces' addresses, or those `kith up` gives); loopback when
 * none were given (a tree validated with no machine in mind).
 */
export function selfAddresses(facts: MachineFacts | undefined): string[] {
  return facts && facts.addresses.length > 0 ? facts.addresses : ['127.0.0.1'];
}

/** Master-file lines for the local names, to merge into (or make) the home zone. */
export function localRecords(local: LocalNames, self: string[]): string {
  const lines: string[] = [];
  for (const [name, addrs] of Object.entries(local.hosts).sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const a of new Set(addrs.flatMap((x) => (x === 'self' ? self : [x])))) lines.push(`${name} ${local.ttl} IN ${isIP(a) === 4 ? 'A' : 'AAAA'} ${a}`);
  }
  return lines.join('\n') + '\n';
}

/** A minimal home zone when the owner has not written one. */
function syntheticHomeZone(local: LocalNames, self: string[]): string {
  return [
    `$ORIGIN ${canonical(local.zone)}.`,
    `$TTL ${local.ttl}`,
    `@ IN SOA kith hostmaster 1 3600 600 604800 ${local.ttl}`,
    `@ IN NS kith`,
    ...(local.hosts.kith ? [] : [`kith IN A ${self.find((a) => isIP(a) === 4) ?? '127.0.0.1'}`]),
    localRecords(local, self),
  ].join('\n');
}

export async function loadDnsConfig(source: ConfigSource, facts?: MachineFacts): Promise<ConfigResult<DnsConfig>> {
  const issues: ConfigIssue[] = [];
  const self = selfAddresses(facts);
  const settings = await loadYamlFile(source, 'dns/dns.yaml', DnsSettingsSchema);
  if (!settings.ok) issues.push(...settings.issues);
  const local = await loadYamlFile(source, 'dns/local.yaml', LocalNamesSchema);
  if (!local.ok) issues.push(...local.issues);

  const zones: Zone[] = [];
  const zoneFiles = new Map<string, string>();
  const zoneEntries = (await source.list(ZONES_DIR)).filter((e) => e.endsWith('.zone')).sort();
  // Records in all zones: counted as they are read, so a zone set over the limit is refused
  // at the first record past it (file:line), without reading the rest into memory.
  const recordLimit = settings.ok ? settings.value.limits.zoneRecords : DEFAULT_ZONE_RECORDS;
  let records = 0;
  const homeOrigin = local.ok ? canonical(local.value.zone) : undefined;
  for (const entry of zoneEntries) {
    const file = `${ZONES_DIR}/${entry}`;
    const origin = canonical(entry.slice(0, -'.zone'.length));
    if (zoneFiles.has(origin)) {
      issues.push({ file, message: `zone ${origin} is already defined by ${zoneFiles.get(origin)}: one file per zone` });
      continue;
    }
    // Local names join the home zone the owner wrote, after its own records.
    const append = local.ok && origin === homeOrigin ? `$ORIGIN ${origin}.\n${localRecords(local.value, self)}` : undefined;
    const left = recordLimit - records;
    if (left <= 0) break; // already refused, at the record that crossed the limit
    const maxRecords = left < PER_ZONE_RECORDS
      ? { count: left, message: `the zones hold more than ${recordLimit} records in all, the limit for this machine (dns/dns.yaml: limits.zoneRecords); remove records or raise the limit` }
      : { count: PER_ZONE_RECORDS, message: `more than ${PER_ZONE_RECORDS} records in one zone` };
    const r = await loadZone(source, { file, origin, maxRecords, ...(append ? { append } : {}) });
    if (!r.ok) {
      issues.push(...r.issues);
      if (r.issues.some((i) => i.message === maxRecords.message)) records = recordLimit;
    } else {
      zones.push(r.zone);
      zoneFiles.set(r.zone.origin, file);
      for (const node of r.zone.nodes.values()) for (const rs of node.values()) records += rs.rdata.length;
    }
  }
  if (local.ok && homeOrigin && !zoneFiles.has(homeOrigin)) {
    const r = parseZone(syntheticHomeZone(local.value, self), { origin: homeOrigin, file: 'dns/local.yaml' });
    if (!r.ok) issues.push(...r.issues);
    else zones.push(r.zone);
  }

  const keys: TsigKey[] = [];
  for (const entry of (await source.list('dns/keys')).filter((e) => e.endsWith('.key'))) {
    const file = `dns/keys/${entry}`;
    const r = parseKeyFile((await source.read(file)) ?? '', file);
    if (!r.ok) issues.push(...r.issues);
    else keys.push(...r.keys);
  }
  if (settings.ok) {
    const known = new Set(keys.map((k) => k.name));
    settings.value.updates.forEach((g, i) => {
      if (!known.has(canonical(g.key))) issues.push({ file: 'dns/dns.yaml', field: `updates.${i}.key`, message: `no TSIG key named '${g.key}' in dns/keys/*.key (make one with: tsig-keygen ${g.key} > dns/keys/${g.key}.key)` });
    });
    const noKey = (field: string, key: string) => issues.push({ file: 'dns/dns.yaml', field, message: `no TSIG key named '${key}' in dns/keys/*.key (make one with: tsig-keygen ${key} > dns/keys/${key}.key)` });
    settings.value.transfer.allow.forEach((e, i) => {
      const key = typeof e === 'string' ? (e.startsWith('key:') ? e.slice(4) : undefined) : e.key;
      if (key !== undefined && !known.has(canonical(key))) noKey(typeof e === 'string' ? `transfer.allow.${i}` : `transfer.allow.${i}.key`, key);
    });
    settings.value.transfer.notify.forEach((t, i) => {
      if ('key' in t && t.key !== undefined && !known.has(canonical(t.key))) noKey(`transfer.notify.${i}.key`, t.key);
    });
  }

  const blocklists = await loadBlocklists(source, 'dns/blocklists');
  if (issues.length > 0 || !settings.ok || !local.ok) return { ok: false, issues };
  return {
    ok: true,
    value: { settings: settings.value, zones: new ZoneSet(zones), zoneFiles, local: local.value, blocklists, keys, warnings: blocklists.issues },
  };
}

export const DEFAULT_DNS_YAML = `# kith DNS: authoritative for the zones in dns/zones/, a caching forwarder for the
# home network, block lists from dns/blocklists/, and signed dynamic updates.
# Push a change to config.git and it is served within a second.

# Resolvers asked for every name outside our zones (with a cache in front).
# Empty: such names are answered REFUSED. For example:
#   upstreams: [9.9.9.9, 149.112.112.112, "[2620:fe::fe]:53"]
upstreams: []

# Who may use the forwarder and cache: the home network.
recursion:
  allow: [127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7, fe80::/10]

cache:
  maxEntries: 50000
  minTtl: 0
  maxTtl: 86400

# Secondaries that may transfer our zones (AXFR), and those told when a zone changes.
# allow: an address or prefix; 'key:NAME' (signed with the TSIG key dns/keys/NAME.key, from
# anywhere); or { address: 192.168.1.53, key: NAME } (both). notify: host[:port], or
# { address: "192.168.1.53", key: NAME } to sign the NOTIFY. For example:
#   allow: [192.168.1.53, "key:secondary", { address: 10.0.0.0/8, key: secondary }]
#   notify: [{ address: "192.168.1.53", key: secondary }]
transfer:
  allow: []
  notify: []

# Blocked names get NXDOMAIN (nxdomain) or 0.0.0.0 / :: (null-ip).
blocking:
  mode: nxdomain

# DNS over TCP: connections held at once (the longest-idle one makes room when full),
# per client, and seconds a connection may idle or take to send one query.
tcp:
  maxConnections: 512
  maxConnectionsPerSource: 32
  idleTimeout: 10
  messageTimeout: 5

# Response rate limiting for UDP answers to clients outside recursion.allow (BIND/NSD
# RRL): past responsesPerSecond identical answers to one /24 (IPv6: /56), every slip-th
# is sent truncated so real clients retry over TCP, the rest dropped. Clients in exempt,
# and those presenting a valid DNS cookie, are never limited.
rrl:
  enabled: true
  responsesPerSecond: 10
  window: 15
  slip: 2
  ipv4PrefixLength: 24
  ipv6PrefixLength: 56
  exempt: []

# Records in all zones together (about 4 KB of memory each, measured): the default
# fits a 512 MB Raspberry Pi; raise it on a bigger machine.
limits:
  zoneRecords: 10000

# Dynamic updates (RFC 2136), signed with a TSIG key from dns/keys/. For example:
#   - key: mail-relay
#     names: ["@", "*.example.org"]
#     types: [MX, TXT]
updates: []
`;

export const DEFAULT_LOCAL_YAML = `# Local names under the home zone (RFC 8375): each device and service by name.
# Pairing adds devices here; add your own as name: [addresses].
# 'self' is this appliance's own addresses.
zone: home.arpa
ttl: 300
hosts:
  kith: [self]
  storage: [self]
  dns: [self]
`;

export const DEFAULT_BLOCKLIST = `# Block list: one domain per line (or hosts-file lines such as "0.0.0.0 ads.example").
# Every file in dns/blocklists/ ending in .txt, .list or .hosts is a list; allow.txt
# holds exceptions. Subdomains of a listed name are blocked too.
ads.example
tracker.example
`;

export const dnsConfig: ConfigSpec<DnsConfig> = {
  defaults: {
    'dns/dns.yaml': DEFAULT_DNS_YAML,
    'dns/local.yaml': DEFAULT_LOCAL_YAML,
    'dns/blocklists/example.txt': DEFAULT_BLOCKLIST,
  },
  load: loadDnsConfig,
  view: (c) => makeDnsView(c.zones, c.zoneFiles),
};

export default dnsConfig;
