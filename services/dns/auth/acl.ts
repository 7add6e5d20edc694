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
