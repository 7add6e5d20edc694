/**
 * The DNS records the mail service publishes for each of its domains, and the edit of a
 * zone file (RFC 1035 §5 master format) that puts them in (pure): MX (RFC 5321 §5.1) →
 * the service's hostname, SPF (RFC 7208), DKIM keys (RFC 6376 §3.6.1) per selector, DMARC
 * (RFC 7489 §6.1). Records the service owns are replaced wherever they are in the file
 * (the apex MX, the apex "v=spf1" TXT, _dmarc TXT, <selector>._domainkey TXT); everything
 * else is kept as the owner wrote it. Names are written absolute, so $ORIGIN does not matter.
 */

export interface MailRecord {
  /** Absolute owner name without the trailing dot. */
  name: string;
  type: 'MX' | 'TXT';
  data: string;
}

const abs = (n: string) => `${n.toLowerCase().replace(/\.$/, '')}.`;

/** TXT presentation: quoted strings of at most 255 bytes (RFC 1035 §3.3.14). */
export function txtData(text: string): string {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += 255) parts.push(`"${text.slice(i, i + 255).replace(/["\\]/g, '\\$&')}"`);
  return parts.join(' ') || '""';
}

export function desiredRecords(domain: string, o: { hostname: string; spf: string; dmarc: string; dkim: { selector: string; record: string }[] }): MailRecord[] {
  const d = domain.toLowerCase();
  return [
    { name: d, type: 'MX', data: `10 ${abs(o.hostname)}` },
    { name: d, type: 'TXT', data: txtData(o.spf) },
    ...o.dkim.map((k) => ({ name: `${k.selector.toLowerCase()}._domainkey.${d}`, type: 'TXT' as const, data: txtData(k.record) })),
    { name: `_dmarc.${d}`, type: 'TXT', data: txtData(o.dmarc) },
  ];
}

const BEGIN = (d: string) => `; kith mail: records for ${d} (written by the mail service; edit mail/mail.yaml instead)`;
const END = (d: string) => `; end of kith mail records for ${d}`;
const CLASSES = new Set(['IN', 'CH', 'HS', 'CS']);

/** Is this record (owner name, type, rdata) one the service owns for `domain`? */
function owned(name: string, type: string, rdata: string, domain: string, selectors: Set<string>): boolean {
  if (type === 'MX') return name === domain;
  if (type !== 'TXT') return false;
  if (name === `_dmarc.${domain}`) return true;
  if (name === domain) return /^"?v=spf1\b/i.test(rdata.trim());
  const m = /^([^.]+)\._domainkey\./.exec(name);
  return !!m && name === `${m[1]}._domainkey.${domain}` && selectors.has(m[1]!);
}

/**
 * The zone text with this domain's mail records replaced by `records`, or undefined when
 * the file already says exactly that.
 */
export function editZone(text: string, origin: string, domain: string, records: MailRecord[], ttl: number): string | undefined {
  const o = origin.toLowerCase().replace(/\.$/, '');
  const d = domain.toLowerCase();
  const selectors = new Set(records.filter((r) => r.name.endsWith(`._domainkey.${d}`)).map((r) => r.name.split('.')[0]!));
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const kept: string[] = [];
  let cur = o;
  let owner = o;
  let inBlock = false;
  let depth = 0;
  for (const line of lines) {
    if (line === BEGIN(d)) { inBlock = true; continue; }
    if (line === END(d)) { inBlock = false; continue; }
    if (inBlock) continue;
    const code = line.replace(/;.*$/, '');
    const wasDepth = depth;
    depth += (code.match(/\(/g) ?? []).length - (code.match(/\)/g) ?? []).length;
    if (wasDepth > 0 || code.trim() === '') { kept.push(line); continue; }
    const dir = /^\$ORIGIN\s+(\S+)/i.exec(code);
    if (dir) { cur = dir[1]!.endsWith('.') ? dir[1]!.slice(0, -1).toLowerCase() : `${dir[1]!.toLowerCase()}.${cur}`; kept.push(line); continue; }
    if (code.startsWith('$')) { kept.push(line); continue; }
    const tokens = code.trim().split(/\s+/);
    if (!/^\s/.test(code)) {
      const n = tokens.shift()!;
      owner = n === '@' ? cur : n.endsWith('.') ? n.slice(0, -1).toLowerCase() : `${n.toLowerCase()}.${cur}`;
    }
    while (tokens.length > 0 && (/^\d+[smhdw]?$/i.test(tokens[0]!) || CLASSES.has(tokens[0]!.toUpperCase()))) tokens.shift();
    const type = (tokens.shift() ?? '').toUpperCase();
    if (depth === 0 && owned(owner, type, tokens.join(' '), d, selectors)) continue;
    kept.push(line);
  }
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  const block = [BEGIN(d), ...records.map((r) => `${abs(r.name)} ${ttl} IN ${r.type} ${r.data}`), END(d)];
  const next = `${kept.join('\n')}\n\n${block.join('\n')}\n`;
  return next === text ? undefined : next;
}

/** A new zone file for a zone that so far had none (the home zone made from dns/local.yaml). */
export function newZone(origin: string, ttl = 300): string {
  const o = origin.toLowerCase().replace(/\.$/, '');
  return [
    `; ${o}: made by the kith mail service to hold its records; local names from dns/local.yaml are still merged in.`,
    `$ORIGIN ${o}.`,
    `$TTL ${ttl}`,
    `@ IN SOA kith hostmaster 1 3600 600 604800 ${ttl}`,
    '@ IN NS kith',
    '',
  ].join('\n');
}
