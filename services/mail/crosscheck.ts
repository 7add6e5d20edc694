/**
 * Rules spanning mail and DNS, run when a config is pushed (ConfigSpec.crossCheck): DNS is
 * seen only through the DnsView contract (platform/config/views.ts), never imported.
 *
 *  - each mail domain lies in a zone the appliance serves;
 *  - each MX of a mail domain (and the hostname the service publishes as MX) resolves to
 *    this appliance (its addresses, or loopback under `kith up`);
 *  - a DKIM selector has a record: one the service publishes itself may be absent until
 *    it does, but a record that is there must be a DKIM key (v=DKIM1; p=...), and with
 *    publishing off every selector needs one.
 *
 * Every issue names both files: mail/mail.yaml (with its line) and the zone file.
 */
import { isIP } from 'node:net';
import type { ConfigIssue } from '../../platform/config/spec.ts';
import type { DnsView } from '../../platform/config/views.ts';
import type { MailConfig } from './schema.ts';

import { MAIL_YAML } from './schema.ts';
const strip = (s: string) => s.toLowerCase().replace(/\.$/, '');
const isLoopback = (a: string) => a === '::1' || a.startsWith('127.');
/** '"v=DKIM1; k=ed25519; " "p=..."' → the TXT text joined. */
const txtText = (data: string) => [...data.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('') || data;

function addressesOf(dns: DnsView, name: string): { addrs: string[]; file?: string; line?: number } {
  const out: string[] = [];
  let file: string | undefined;
  let line: number | undefined;
  for (const t of ['A', 'AAAA']) {
    for (const r of dns.lookup(name, t)) {
      out.push(r.data.trim());
      file ??= r.file;
      line ??= r.line;
    }
  }
  return { addrs: out, ...(file ? { file } : {}), ...(line !== undefined ? { line } : {}) };
}

export function mailCrossCheck(cfg: MailConfig, views: Readonly<Record<string, unknown>>): ConfigIssue[] {
  const dns = views.dns as DnsView | undefined;
  if (!dns) return [];
  const issues: ConfigIssue[] = [];
  const s = cfg.settings;
  const mine = (a: string) => isLoopback(a) || (cfg.addresses ?? []).includes(a) || (isIP(a) !== 0 && cfg.addresses === undefined);
  const here = (line: number | undefined) => (line !== undefined ? { line } : {});

  const checkTarget = (target: string, what: string, line: number | undefined, field: string, mxFile?: string, mxLine?: number) => {
    const zone = dns.zoneOf(target);
    const r = addressesOf(dns, target);
    const where = mxFile ? ` (${mxFile}${mxLine !== undefined ? `:${mxLine}` : ''})` : '';
    if (!zone) {
      issues.push({ file: MAIL_YAML, ...here(line), field, message: `${what} ${target}${where} is not in a zone the appliance serves (dns/zones/), so it cannot be shown to resolve to this appliance: add the zone or point it at a name in one` });
    } else if (r.addrs.length === 0) {
      issues.push({ file: MAIL_YAML, ...here(line), field, message: `${what} ${target}${where} has no A or AAAA record in ${zone.file}: add one with this appliance's address` });
    } else if (!r.addrs.some(mine)) {
      issues.push({ file: MAIL_YAML, ...here(line), field, message: `${what} ${target}${where} resolves to ${r.addrs.join(', ')} in ${r.file ?? zone.file}${r.line !== undefined ? `:${r.line}` : ''}, not to this appliance (${(cfg.addresses ?? []).join(', ') || 'loopback'})` });
    }
  };

  for (const domain of Object.keys(s.domains)) {
    const line = cfg.lines.domains[domain];
    const zone = dns.zoneOf(domain);
    if (!zone) {
      issues.push({ file: MAIL_YAML, ...here(line), field: `domains.${domain}`, message: `mail domain ${domain} has no zone the appliance serves: add dns/zones/${domain}.zone (or remove the domain)` });
      continue;
    }
    for (const mx of dns.lookup(domain, 'MX')) {
      const target = strip(mx.data.trim().split(/\s+/)[1] ?? '');
      if (target) checkTarget(target, `MX of ${domain} points at`, line, `domains.${domain}`, mx.file, mx.line);
    }
    for (const sel of s.dkim.selectors) {
      const name = `${sel.name}._domainkey.${domain}`;
      const records = dns.lookup(name, 'TXT');
      const sline = cfg.lines.selectors[sel.name];
      if (records.length === 0 && !s.publish.enabled) {
        issues.push({ file: MAIL_YAML, ...here(sline), field: 'dkim.selectors', message: `DKIM selector ${sel.name} has no record ${name} TXT in ${zone.file}: publish it (publish.enabled: true does it for you) or remove the selector` });
      }
      for (const r of records) {
        const t = txtText(r.data);
        if (!/(?:^|;)\s*p=[A-Za-z0-9+/=\s]+/.test(t) || (/v=/.test(t) && !/^\s*v=DKIM1\s*(;|$)/.test(t))) {
          issues.push({ file: MAIL_YAML, ...here(sline), field: 'dkim.selectors', message: `DKIM selector ${sel.name}: the record ${name} TXT in ${r.file}${r.line !== undefined ? `:${r.line}` : ''} is not a DKIM key (expected "v=DKIM1; k=...; p=...")` });
        }
      }
    }
  }
  if (s.publish.enabled && Object.keys(s.domains).length > 0) checkTarget(s.hostname, 'hostname (published as MX)', cfg.lines.hostname, 'hostname');
  return issues;
}
