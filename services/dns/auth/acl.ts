/**
 * Address ACLs: lists of addresses and CIDR prefixes (who may transfer, who may recurse).
 * IPv4-mapped IPv6 addresses count as IPv4.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

// An ACL changes only with the config (a new array): build its BlockList once, not per query.
const ACL_LISTS = new WeakMap<readonly string[], BlockList>();

/** Does an ACL of addresses and CIDR prefixes allow `remote`? Entries that are neither are ignored. */
export function aclAllows(acl: readonly string[], remote: string | undefined): boolean {
  if (!remote) return false;
  const addr = remote.startsWith('::ffff:') && isIPv4(remote.slice(7)) ? remote.slice(7) : remote;
  const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
  if (!family) return false;
  const cached = ACL_LISTS.get(acl);
  if (cached) return cached.check(addr, family);
  const list = new BlockList();
  ACL_LISTS.set(acl, list);
  for (const entry of acl) {
    const [net, len] = entry.split('/');
    const fam = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : null;
    if (!fam) continue;
    if (len === undefined) list.addAddress(net, fam);
    else if (/^[0-9]+$/.test(len) && Number(len) <= (fam === 'ipv4' ? 32 : 128)) list.addSubnet(net, Number(len), fam);
  }
  return list.check(addr, family);
}

/**
 * Who may transfer a zone (RFC 5936 §6): an address or prefix, a TSIG key (`key:NAME`:
 * from any address, signed with that key), or both (`{ address, key }`), as NSD's
 * `provide-xfr` and Knot's ACLs allow. A request signed with a key that verified is
 * `keyName`; an unsigned one has none, so a rule naming a key never admits it.
 */
export interface TransferRule {
  address?: string;
  /** Canonical key name (lowercase, no trailing dot). */
  key?: string;
}

export type TransferEntry = string | TransferRule;

/** 'key:laptop' → { key: 'laptop' }; '192.0.2.1' → { address }; objects as they are. */
export function transferRule(entry: TransferEntry): TransferRule {
  if (typeof entry !== 'string') return { ...entry, ...(entry.key ? { key: canonicalKey(entry.key) } : {}) };
  return entry.startsWith('key:') ? { key: canonicalKey(entry.slice(4)) } : { address: entry };
}

const canonicalKey = (k: string) => k.trim().toLowerCase().replace(/\.$/, '');

const RULES = new WeakMap<readonly TransferEntry[], Array<{ rule: TransferRule; acl: readonly string[] }>>();

export function transferAllows(entries: readonly TransferEntry[], remote: string | undefined, keyName: string | undefined): boolean {
  let rules = RULES.get(entries);
  if (!rules) {
    rules = entries.map((e) => {
      const rule = transferRule(e);
      return { rule, acl: rule.address ? [rule.address] : [] };
    });
    RULES.set(entries, rules);
  }
  const key = keyName === undefined ? undefined : canonicalKey(keyName);
  for (const { rule, acl } of rules) {
    if (rule.key !== undefined && rule.key !== key) continue;
    if (rule.address === undefined || aclAllows(acl, remote)) return true;
  }
  return false;
}
