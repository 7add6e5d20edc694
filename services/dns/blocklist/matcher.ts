/**
 * Which names are blocked: a blocked domain blocks itself and every name below it.
 *
 * Stored as one hash map from domain to list index; a lookup walks the name's suffixes
 * (www.ads.example.com, ads.example.com, example.com, com): at most 127 map probes,
 * independent of list size, so 100k+ entries cost only their memory.
 *
 * The allow list holds exact names ('good.example.com') and wildcards ('*.example.com' =
 * example.com and everything below). The most specific match wins, and an allow beats a
 * block at the same level: blocking example.com and allowing cdn.example.com lets
 * cdn.example.com through but still blocks x.cdn.example.com; allowing *.cdn.example.com
 * lets all of them through.
 */
import type { ConfigIssue } from '../../../platform/config/spec.ts';
import { normalizeDomain } from './parse.ts';

export interface BlockList {
  /** Shown in counters and logs, e.g. the file name without extension. */
  name: string;
  domains: readonly string[];
}

export interface AllowList {
  exact: string[];
  wildcard: string[];
  issues: ConfigIssue[];
}

export interface Matcher {
  /** The list that blocks `name`, or undefined when it is not blocked. */
  lookup(name: string): { list: string } | undefined;
  /** Number of distinct blocked domains. */
  readonly size: number;
}

export function parseAllowList(text: string, file: string): AllowList {
  const out: AllowList = { exact: [], wildcard: [], issues: [] };
  text.split(/\r?\n/).forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (!line) return;
    for (const tok of line.split(/\s+/)) {
      const d = normalizeDomain(tok);
      if (d === undefined) out.issues.push({ file, line: i + 1, message: `not a domain name: '${tok.slice(0, 80)}'` });
      else (tok.startsWith('*.') ? out.wildcard : out.exact).push(d);
    }
  });
  return out;
}

export function createMatcher(lists: readonly BlockList[], allow: Pick<AllowList, 'exact' | 'wildcard'> = { exact: [], wildcard: [] }): Matcher {
  const names = lists.map((l) => l.name);
  const blocked = new Map<string, number>();
  lists.forEach((l, idx) => {
    // The first list that names a domain gets the credit (and the hits).
    for (const d of l.domains) if (!blocked.has(d)) blocked.set(d, idx);
  });
  const allowExact = new Set(allow.exact);
  const allowWild = new Set(allow.wildcard);

  return {
    get size() {
      return blocked.size;
    },
    lookup(name) {
      let s = name.toLowerCase();
      if (s.endsWith('.')) s = s.slice(0, -1);
      if (!s || blocked.size === 0) return undefined;
      if (allowExact.has(s)) return undefined;
      for (;;) {
        if (allowWild.has(s)) return undefined;
        const idx = blocked.get(s);
        if (idx !== undefined) return { list: names[idx] };
        const dot = s.indexOf('.');
        if (dot < 0) return undefined;
        s = s.slice(dot + 1);
      }
    },
  };
}
