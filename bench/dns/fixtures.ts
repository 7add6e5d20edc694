/**
 * The benchmark's fixtures, generated deterministically (a seeded PRNG, no clock): a
 * realistic authoritative zone (RFC 1035 master file: A, AAAA, MX, TXT, CNAME, SRV, a
 * wildcard per RFC 4592, delegations with glue), the same data as dnsmasq options, the
 * upstream zone for the forwarding test, and dnsperf query files ("name TYPE" per line).
 */
import { prng } from '../../test/support/prng.ts';

export { prng };

export const ZONE = 'bench.test';
export const UPSTREAM_ZONE = 'up.test';

/** Query categories, with their share of the authoritative query file. */
export const MIX = [
  ['A (exists)', 0.33],
  ['AAAA (exists)', 0.08],
  ['MX', 0.05],
  ['TXT', 0.05],
  ['SRV', 0.04],
  ['CNAME chase (A via alias)', 0.1],
  ['wildcard A', 0.1],
  ['NODATA', 0.08],
  ['NXDOMAIN', 0.12],
  ['referral (delegation)', 0.05],
] as const;

export type Category = (typeof MIX)[number][0];


const pad = (i: number) => String(i).padStart(4, '0');
const v4 = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const v6 = (i: number) => `2001:db8::${i.toString(16)}`;

export interface HostRec { name: string; a: string; aaaa?: string; mx?: boolean; txt?: string }

/** The zone's content as data, so the master file and the dnsmasq options agree. */
export interface ZoneModel {
  origin: string;
  hosts: HostRec[];
  aliases: { name: string; target: string }[];
  srv: { name: string; target: string; port: number }[];
  delegations: { name: string; ns: string; glue: string }[];
  wildcard: { parent: string; a: string; txt: string };
}

export function zoneModel(hosts: number): ZoneModel {
  const hs: HostRec[] = [];
  for (let i = 1; i <= hosts; i++) {
    hs.push({
      name: `host${pad(i)}`,
      a: v4(i),
      ...(i % 3 === 0 ? { aaaa: v6(i) } : {}),
      ...(i % 10 === 0 ? { mx: true } : {}),
      ...(i % 5 === 0 ? { txt: `owner=user${i} rack=r${i % 40}` } : {}),
    });
  }
  const aliases = [];
  for (let i = 1; i <= Math.ceil(hosts / 4); i++) aliases.push({ name: `alias${pad(i)}`, target: `host${pad(((i * 7) % hosts) + 1)}` });
  const srv = [];
  for (let i = 1; i <= Math.ceil(hosts / 20); i++) srv.push({ name: `_http._tcp.svc${pad(i)}`, target: `host${pad(i)}`, port: 8000 + (i % 100) });
  const delegations = [];
  for (let i = 1; i <= 10; i++) delegations.push({ name: `dept${String(i).padStart(2, '0')}`, ns: `ns.dept${String(i).padStart(2, '0')}`, glue: `192.0.2.${100 + i}` });
  return { origin: ZONE, hosts: hs, aliases, srv, delegations, wildcard: { parent: 'wild', a: '192.0.2.80', txt: 'synthesised' } };
}

/** RFC 1035 master file for the model (served by kith and NSD). */
export function zoneFile(m: ZoneModel): string {
  const l: string[] = [
    `$ORIGIN ${m.origin}.`,
    '$TTL 3600',
    '@ IN SOA ns1 hostmaster 2026112301 3600 600 604800 300',
    '@ IN NS ns1',
    '@ IN NS ns2',
    '@ IN A 192.0.2.10',
    '@ IN MX 10 mail',
    '@ IN TXT "v=spf1 mx -all"',
    'ns1 IN A 192.0.2.53',
    'ns2 IN A 192.0.2.54',
    'mail IN A 192.0.2.25',
  ];
  for (const h of m.hosts) {
    l.push(`${h.name} IN A ${h.a}`);
    if (h.aaaa) l.push(`${h.name} IN AAAA ${h.aaaa}`);
    if (h.mx) l.push(`${h.name} IN MX 10 mail`);
    if (h.txt) l.push(`${h.name} IN TXT "${h.txt}"`);
  }
  for (const a of m.aliases) l.push(`${a.name} IN CNAME ${a.target}`);
  for (const s of m.srv) l.push(`${s.name} IN SRV 10 5 ${s.port} ${s.target}`);
  l.push(`*.${m.wildcard.parent} IN A ${m.wildcard.a}`, `*.${m.wildcard.parent} IN TXT "${m.wildcard.txt}"`);
  for (const d of m.delegations) l.push(`${d.name} IN NS ${d.ns}`, `${d.ns} IN A ${d.glue}`);
  return l.join('\n') + '\n';
}

/**
 * The same data as dnsmasq options (a --conf-file), served in dnsmasq's authoritative mode
 * (--auth-zone/--auth-server: AA bit, SOA in negative answers, like a zone server).
 * dnsmasq is not a zone server: it has no wildcards and no delegations there, so each
 * wildcard name the query file uses becomes its own host-record, and the delegated
 * names are left out (dnsmasq answers them NXDOMAIN instead of a referral).
 */
export function dnsmasqOptions(m: ZoneModel, queryText: string): { text: string; summary: string } {
  const fq = (n: string) => (n === '@' ? m.origin : `${n}.${m.origin}`);
  const l: string[] = [
    `auth-server=ns1.${m.origin},127.0.0.1`,
    `auth-zone=${m.origin}`,
    `auth-soa=2026112301,hostmaster.${m.origin},3600,600,604800`,
    'auth-ttl=3600',
  ];
  const counts = { 'host-record': 0, 'txt-record': 0, 'mx-host': 0, cname: 0, 'srv-host': 0 };
  const add = (k: keyof typeof counts, v: string) => { counts[k]++; l.push(`${k}=${v}`); };
  add('host-record', `${m.origin},192.0.2.10`);
  add('mx-host', `${m.origin},mail.${m.origin},10`);
  add('txt-record', `${m.origin},"v=spf1 mx -all"`);
  add('host-record', `ns1.${m.origin},192.0.2.53`);
  add('host-record', `ns2.${m.origin},192.0.2.54`);
  add('host-record', `mail.${m.origin},192.0.2.25`);
  for (const h of m.hosts) {
    add('host-record', `${fq(h.name)},${h.a}${h.aaaa ? ',' + h.aaaa : ''},3600`);
    if (h.mx) add('mx-host', `${fq(h.name)},mail.${m.origin},10`);
    if (h.txt) add('txt-record', `${fq(h.name)},"${h.txt}"`);
  }
  for (const a of m.aliases) add('cname', `${fq(a.name)},${fq(a.target)},3600`);
  for (const s of m.srv) add('srv-host', `${fq(s.name)},${fq(s.target)},${s.port},10,5`);
  const wildSuffix = `.${m.wildcard.parent}.${m.origin}`;
  const wildNames = new Set<string>();
  for (const line of queryText.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.endsWith(wildSuffix)) wildNames.add(name);
  }
  for (const n of wildNames) add('host-record', `${n},${m.wildcard.a},3600`);
  const summary = `authoritative mode (auth-zone ${m.origin}); `
    + Object.entries(counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ')
    + ` (${wildNames.size} of the host-records are the wildcard names the query file uses: no wildcards in dnsmasq);`
    + ` ${m.delegations.length} delegations left out (no NS delegation in dnsmasq: those queries get NXDOMAIN, not a referral)`;
  return { text: l.join('\n') + '\n', summary };
}

/** The authoritative query file: `count` lines in the MIX proportions, shuffled. */
export function authQueries(m: ZoneModel, count: number, seed = 1): { text: string; byCategory: Record<string, number> } {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const withAaaa = m.hosts.filter((h) => h.aaaa);
  const withoutAaaa = m.hosts.filter((h) => !h.aaaa);
  const withMx = m.hosts.filter((h) => h.mx);
  const withTxt = m.hosts.filter((h) => h.txt);
  const o = m.origin;
  const gen: Record<Category, () => string> = {
    'A (exists)': () => `${pick(m.hosts).name}.${o} A`,
    'AAAA (exists)': () => `${pick(withAaaa).name}.${o} AAAA`,
    MX: () => (rnd() < 0.2 ? `${o} MX` : `${pick(withMx).name}.${o} MX`),
    TXT: () => (rnd() < 0.2 ? `${o} TXT` : `${pick(withTxt).name}.${o} TXT`),
    SRV: () => `${pick(m.srv).name}.${o} SRV`,
    'CNAME chase (A via alias)': () => `${pick(m.aliases).name}.${o} A`,
    'wildcard A': () => `x${Math.floor(rnd() * 1e6)}.${m.wildcard.parent}.${o} A`,
    NODATA: () => (rnd() < 0.5 ? `${pick(withoutAaaa).name}.${o} AAAA` : `${pick(m.hosts).name}.${o} SRV`),
    NXDOMAIN: () => `nohost${Math.floor(rnd() * 1e6)}.${o} A`,
    'referral (delegation)': () => `www.${pick(m.delegations).name}.${o} A`,
  };
  const lines: string[] = [];
  const byCategory: Record<string, number> = {};
  for (const [cat, share] of MIX) {
    const n = Math.round(count * share);
    byCategory[cat] = n;
    for (let i = 0; i < n; i++) lines.push(gen[cat]());
  }
  for (let i = lines.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  return { text: lines.join('\n') + '\n', byCategory };
}

/** The upstream's zone for the forwarding test: `names` hosts with A, some with AAAA/TXT. */
export function upstreamZone(names: number): string {
  const l = [`$ORIGIN ${UPSTREAM_ZONE}.`, '$TTL 86400', '@ IN SOA ns1 hostmaster 1 3600 600 604800 3600', '@ IN NS ns1', 'ns1 IN A 192.0.2.53'];
  for (let i = 1; i <= names; i++) {
    l.push(`name${pad(i)} IN A ${v4(i)}`);
    if (i % 2 === 0) l.push(`name${pad(i)} IN AAAA ${v6(i)}`);
    if (i % 4 === 0) l.push(`name${pad(i)} IN TXT "cached record ${i}"`);
  }
  return l.join('\n') + '\n';
}

/**
 * Forwarding queries: every name/type that exists upstream, once each (the warm-up file,
 * so every answer is cached), and the measured file, the same set shuffled.
 */
export function forwardQueries(names: number, seed = 2): { warm: string; measure: string; distinct: number } {
  const set: string[] = [];
  for (let i = 1; i <= names; i++) {
    set.push(`name${pad(i)}.${UPSTREAM_ZONE} A`);
    if (i % 2 === 0) set.push(`name${pad(i)}.${UPSTREAM_ZONE} AAAA`);
    if (i % 4 === 0) set.push(`name${pad(i)}.${UPSTREAM_ZONE} TXT`);
  }
  const rnd = prng(seed);
  const shuffled = [...set];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return { warm: set.join('\n') + '\n', measure: shuffled.join('\n') + '\n', distinct: set.length };
}
