/**
 * Block list and allow list files, in the formats Pi-hole accepts:
 *
 *   ads.example.com                 plain domain list
 *   0.0.0.0 ads.example.com a.b.c   hosts file (any IP; several names per line)
 *   ||ads.example.com^              Adblock-style domain rule (no options)
 *   *.ads.example.com               wildcard: same as the domain itself here
 *   # comment / ! comment           comments; a trailing '# ...' is ignored too
 *
 * Names are lowercased, IDNs turned into punycode (RFC 5891 §4.4), and checked against
 * RFC 1035 §2.3.4 limits. A bad line is reported with file and line and skipped: a list
 * downloaded from somewhere is never all-or-nothing. Hosts-file housekeeping names
 * (localhost, broadcasthost, ...) are skipped silently.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type { ConfigIssue } from '../../../platform/config/spec.ts';

export interface ParsedList {
  domains: string[];
  /** Non-fatal: reported, never a reason to refuse the config. */
  issues: ConfigIssue[];
}

const HOUSEKEEPING = new Set([
  'localhost', 'localhost.localdomain', 'local', 'broadcasthost', 'ip6-localhost', 'ip6-loopback',
  'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts', '0.0.0.0',
]);

/** A lowercase ASCII domain name, or undefined when `raw` is not one. */
export function normalizeDomain(raw: string): string | undefined {
  let n = raw.trim().replace(/\.$/, '');
  if (n.startsWith('*.')) n = n.slice(2);
  if (!n || n.length > 253) return undefined;
  if (/[^\x00-\x7f]/.test(n)) {
    n = domainToASCII(n);
    if (!n) return undefined;
  }
  n = n.toLowerCase();
  const labels = n.split('.');
  for (const l of labels) {
    if (l.length === 0 || l.length > 63 || !/^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/.test(l)) return undefined;
  }
  return n;
}

export function parseList(text: string, file: string): ParsedList {
  const domains: string[] = [];
  const issues: ConfigIssue[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (!line || line.startsWith('!') || line.startsWith('[')) continue;
    let names: string[];
    const adblock = /^\|\|([^\^$|]+)\^(\$.*)?$/.exec(line);
    if (adblock) {
      if (adblock[2]) {
        issues.push({ file, line: i + 1, message: `Adblock rule options are not supported: ${line}` });
        continue;
      }
      names = [adblock[1]];
    } else {
      const tokens = line.split(/\s+/);
      if (tokens.length > 1) {
        if (!isIP(tokens[0])) {
          issues.push({ file, line: i + 1, message: `expected 'IP name...' or a single domain, found '${line.slice(0, 80)}'` });
          continue;
        }
        names = tokens.slice(1);
      } else if (isIP(tokens[0])) {
        issues.push({ file, line: i + 1, message: `address without a name: '${tokens[0]}'` });
        continue;
      } else {
        names = tokens;
      }
    }
    for (const raw of names) {
      if (HOUSEKEEPING.has(raw.toLowerCase())) continue;
      const d = normalizeDomain(raw);
      if (d === undefined) issues.push({ file, line: i + 1, message: `not a domain name: '${raw.slice(0, 80)}'` });
      else domains.push(d);
    }
  }
  return { domains, issues };
}
