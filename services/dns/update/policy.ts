/**
 * Who may update what (RFC 2136 §3.3 leaves the policy to the server): grants in the spirit
 * of BIND's update-policy, keyed by TSIG key name.
 *
 *   { key: 'laptop-key', names: ['laptop.home.arpa', '*.dyn.home.arpa'], types: ['A', 'AAAA'] }
 *
 * A name is either exact or '*.suffix' (any name strictly below suffix); '@' is the apex of
 * the zone being updated. No types means every type except SOA and NS: changing those is
 * administrative and must be granted explicitly. Unsigned requests are always refused.
 */
import { canonicalName } from '../wire/name.ts';
import type { Authorize } from './update.ts';

export interface Grant {
  key: string;
  names: string[];
  types?: string[];
}

export function grantPolicy(grants: readonly Grant[]): Authorize {
  const norm = grants.map((g) => ({
    key: canonicalName(g.key),
    names: g.names.map((n) => (n === '@' ? n : canonicalName(n))),
    types: g.types?.map((t) => t.toUpperCase()),
  }));
  return ({ keyName, zone, name, type }) => {
    if (keyName === undefined) return false;
    const key = canonicalName(keyName);
    return norm.some((g) => {
      if (g.key !== key) return false;
      if (g.types ? !g.types.includes(type) && !g.types.includes('ANY') : type === 'SOA' || type === 'NS') return false;
      return g.names.some((pat) => {
        if (pat === '@') return name === zone;
        if (pat.startsWith('*.')) return name.endsWith(pat.slice(1));
        return name === pat;
      });
    });
  };
}
