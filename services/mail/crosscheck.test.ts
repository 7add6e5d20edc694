import { describe, expect, it } from 'vitest';
import { memoryConfigSource } from '../../platform/config/fs-source.ts';
import { formatIssue } from '../../platform/config/spec.ts';
import type { DnsRecordView, DnsView } from '../../platform/config/views.ts';
import { loadMailConfig, type MailConfig } from './config.ts';
import { mailCrossCheck } from './crosscheck.ts';

/** A DnsView over a list of records, as the DNS service would publish it. */
function fakeDns(zones: Record<string, string>, records: [string, string, string, number][]): DnsView {
  const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');
  return {
    zones: Object.entries(zones).map(([origin, file]) => ({ origin, file })),
    zoneOf(name) {
      const n = norm(name);
      const hit = Object.keys(zones).filter((o) => n === o || n.endsWith(`.${o}`)).sort((a, b) => b.length - a.length)[0];
      return hit ? { origin: hit, file: zones[hit]! } : undefined;
    },
    lookup(name, type): DnsRecordView[] {
      return records.filter(([n, t]) => norm(n) === norm(name) && t === type.toUpperCase()).map(([n, , data, line]) => ({ data, file: this.zoneOf(n)!.file, line }));
    },
  };
}

const load = async (yaml: string, addresses?: string[]): Promise<MailConfig> => {
  const r = await loadMailConfig(memoryConfigSource({ 'mail/mail.yaml': yaml }), addresses ? { addresses } : undefined);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
  return r.value;
};

const YAML = 'hostname: mx.example.org\ndomains:\n  example.org: {}\n  other.example: {}\ndkim:\n  selectors:\n    - { name: s1, algorithm: ed25519 }\n';

describe('mail ↔ DNS cross-service checks', () => {
  it('passes when every domain has a zone, MX and hostname point here and DKIM records are keys', async () => {
    const cfg = await load(YAML, ['192.0.2.10']);
    const dns = fakeDns({ 'example.org': 'dns/zones/example.org.zone', 'other.example': 'dns/zones/other.example.zone' }, [
      ['mx.example.org', 'A', '192.0.2.10', 5],
      ['example.org', 'MX', '10 mx.example.org.', 6],
      ['s1._domainkey.example.org', 'TXT', '"v=DKIM1; k=ed25519; p=J3y5OUndBu47Nr5u/WI+pmWpaeFwlV2QJMXRO+sKcY8="', 7],
    ]);
    expect(mailCrossCheck(cfg, { dns })).toEqual([]);
    expect(mailCrossCheck(cfg, {})).toEqual([]); // DNS config invalid or absent: its own issues say so
  });

  it('refuses a domain without a zone, an MX that is not this appliance, and a DKIM record that is not a key, naming both files', async () => {
    const cfg = await load(YAML, ['192.0.2.10']);
    const dns = fakeDns({ 'example.org': 'dns/zones/example.org.zone' }, [
      ['mx.example.org', 'A', '192.0.2.10', 5],
      ['example.org', 'MX', '10 mail.provider.net.', 6],
      ['example.org', 'MX', '20 backup.example.org.', 7],
      ['backup.example.org', 'A', '198.51.100.7', 8],
      ['s1._domainkey.example.org', 'TXT', '"v=spf1 -all"', 9],
    ]);
    const msgs = mailCrossCheck(cfg, { dns }).map(formatIssue);
    expect(msgs).toEqual([
      expect.stringMatching(/^mail\/mail\.yaml:3: domains\.example\.org: MX of example\.org points at mail\.provider\.net \(dns\/zones\/example\.org\.zone:6\) is not in a zone the appliance serves/),
      expect.stringMatching(/^mail\/mail\.yaml:3: domains\.example\.org: MX of example\.org points at backup\.example\.org \(dns\/zones\/example\.org\.zone:7\) resolves to 198\.51\.100\.7 in dns\/zones\/example\.org\.zone:8, not to this appliance/),
      expect.stringMatching(/^mail\/mail\.yaml:7: dkim\.selectors: DKIM selector s1: the record s1\._domainkey\.example\.org TXT in dns\/zones\/example\.org\.zone:9 is not a DKIM key/),
      expect.stringMatching(/^mail\/mail\.yaml:4: domains\.other\.example: mail domain other\.example has no zone the appliance serves: add dns\/zones\/other\.example\.zone/),
    ]);
  });

  it('with publishing off, every selector needs its record; the hostname must resolve here', async () => {
    const cfg = await load(YAML.replace('  other.example: {}\n', '') + 'publish: { enabled: false }\n', ['192.0.2.10']);
    const dns = fakeDns({ 'example.org': 'dns/zones/example.org.zone' }, []);
    expect(mailCrossCheck(cfg, { dns }).map(formatIssue)).toEqual([expect.stringMatching(/^mail\/mail\.yaml:6: dkim\.selectors: DKIM selector s1 has no record s1\._domainkey\.example\.org TXT in dns\/zones\/example\.org\.zone/)]);
    const pub = await load(YAML.replace('  other.example: {}\n', ''), ['192.0.2.10']);
    expect(mailCrossCheck(pub, { dns }).map(formatIssue)).toEqual([expect.stringMatching(/^mail\/mail\.yaml:1: hostname: hostname \(published as MX\) mx\.example\.org has no A or AAAA record in dns\/zones\/example\.org\.zone/)]);
  });

  it('accepts loopback as this appliance (kith up)', async () => {
    const cfg = await load(YAML.replace('  other.example: {}\n', ''), ['192.0.2.10']);
    const dns = fakeDns({ 'example.org': 'dns/zones/example.org.zone' }, [['mx.example.org', 'A', '127.0.0.1', 3]]);
    expect(mailCrossCheck(cfg, { dns })).toEqual([]);
  });
});
