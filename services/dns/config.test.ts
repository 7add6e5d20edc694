import { describe, expect, it } from 'vitest';
import { memoryConfigSource } from '../../platform/config/fs-source.ts';
import { formatIssue } from '../../platform/config/spec.ts';
import { dnsConfig, loadDnsConfig, localRecords } from './config.ts';

const ZONE = '$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n';

describe('DNS config', () => {
  it('loads the built-in defaults: the home zone with its local names', async () => {
    const r = await loadDnsConfig(memoryConfigSource(dnsConfig.defaults));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.zones.zones().map((z) => z.origin)).toEqual(['home.arpa']);
    expect(r.value.zones.get('home.arpa')!.get('kith.home.arpa', 1)).toBeDefined();
    expect(r.value.blocklists.lists.map((l) => l.name)).toEqual(['example']);
    expect(r.value.settings.upstreams).toEqual([]);
  });

  it("resolves 'self' to this machine's addresses, and merges local names into an owner's home zone", async () => {
    expect(localRecords({ zone: 'home.arpa', ttl: 60, hosts: { kith: ['self', '192.0.2.9'] } }, ['198.51.100.4', '2001:db8::4'])).toBe(
      'kith 60 IN A 198.51.100.4\nkith 60 IN AAAA 2001:db8::4\nkith 60 IN A 192.0.2.9\n',
    );
    const r = await loadDnsConfig(memoryConfigSource({
      'dns/zones/home.arpa.zone': ZONE.replace(/example\.org/g, 'home.arpa'),
      'dns/local.yaml': 'hosts:\n  printer: [192.0.2.50]\n',
    }));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.zoneFiles.get('home.arpa')).toBe('dns/zones/home.arpa.zone');
  });

  it('has TCP limits by default, takes them from dns.yaml, and names a bad one', async () => {
    const d = await loadDnsConfig(memoryConfigSource(dnsConfig.defaults));
    expect(d.ok && d.value.settings.tcp).toEqual({ maxConnections: 512, maxConnectionsPerSource: 32, idleTimeout: 10, messageTimeout: 5 });
    const empty = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': 'upstreams: []\n' }));
    expect(empty.ok && empty.value.settings.tcp.maxConnections).toBe(512);
    const r = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': 'tcp:\n  maxConnections: 0\n' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatIssue(r.issues[0]!)).toMatch(/^dns\/dns\.yaml:2: tcp\.maxConnections: /);
  });

  it('refuses a zone set over the total-records limit at the first record past it, naming the limit', async () => {
    const zone = (origin: string, n: number) => `$ORIGIN ${origin}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\n` + Array.from({ length: n }, (_, i) => `h${i} IN A 192.0.2.${i % 250}\n`).join('');
    const files = { 'dns/dns.yaml': 'limits:\n  zoneRecords: 150\n', 'dns/zones/a.test.zone': zone('a.test', 100), 'dns/zones/b.test.zone': zone('b.test', 100), 'dns/zones/c.test.zone': zone('c.test', 100) };
    const r = await loadDnsConfig(memoryConfigSource(files));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    // a.test: 102 records; b.test's 49th record (line 4 + 47 = 51) is the 151st.
    expect(r.issues.map(formatIssue)).toEqual(['dns/zones/b.test.zone:51: the zones hold more than 150 records in all, the limit for this machine (dns/dns.yaml: limits.zoneRecords); remove records or raise the limit']);
    const ok = await loadDnsConfig(memoryConfigSource({ ...files, 'dns/dns.yaml': 'limits:\n  zoneRecords: 400\n' }));
    expect(ok.ok).toBe(true);
    const d = await loadDnsConfig(memoryConfigSource(dnsConfig.defaults));
    expect(d.ok && d.value.settings.limits.zoneRecords).toBe(10_000);
  });

  it('names file, line and field for every problem, across files', async () => {
    const r = await loadDnsConfig(memoryConfigSource({
      'dns/dns.yaml': 'upstreams: [9.9.9.9, "not-an-ip"]\nrecursion:\n  allow: [10.0.0.0/33]\nupdates:\n  - key: nobody\n    names: [a.example.org]\n',
      'dns/local.yaml': 'hosts:\n  Bad_Name!: [1.2.3.4]\n  ok: [999.1.1.1]\n',
      'dns/zones/bad.example.zone': ZONE.replace(/example\.org/g, 'bad.example') + 'www IN A 192.0.2.300\n',
      'dns/zones/Example.ORG.zone': ZONE,
      'dns/zones/example.org.zone': ZONE,
      'dns/keys/broken.key': 'key "x" { algorithm hmac-sha256; secret "###"; };\n',
    }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.issues.map(formatIssue);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^dns\/dns\.yaml:1: upstreams\.1: expected an IP address/),
      expect.stringMatching(/^dns\/dns\.yaml:3: recursion\.allow\.0: expected an address or prefix/),
      "dns/local.yaml:2: hosts.Bad_Name!: 'Bad_Name!' is not a host name: use letters, digits and '-', with dots between labels",
      expect.stringMatching(/^dns\/local\.yaml:3: hosts\.ok\.0: expected an IPv4 or IPv6 address/),
      expect.stringMatching(/^dns\/zones\/bad\.example\.zone:6: .*192\.0\.2\.300/),
      'dns/zones/example.org.zone: zone example.org is already defined by dns/zones/Example.ORG.zone: one file per zone',
      expect.stringMatching(/^dns\/keys\/broken\.key:1: /),
    ]));
  });

  it('refuses an update grant for a key that does not exist, saying how to make one', async () => {
    const r = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': 'updates:\n  - key: laptop\n    names: ["*.example.org"]\n' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]).toMatchObject({ file: 'dns/dns.yaml', field: 'updates.0.key', message: expect.stringMatching(/tsig-keygen laptop/) });
  });

  it('transfer.allow and transfer.notify name TSIG keys: key:NAME, { address, key }; unknown keys refused', async () => {
    const key = 'key "sec" { algorithm hmac-sha256; secret "' + Buffer.alloc(32, 7).toString('base64') + '"; };\n';
    const yaml = 'transfer:\n  allow: [192.0.2.53, "key:sec", { address: 10.0.0.0/8, key: sec }]\n  notify: ["192.0.2.53", { address: "[2001:db8::53]:5353", key: sec }]\n';
    const r = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': yaml, 'dns/keys/sec.key': key }));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.settings.transfer.allow).toEqual(['192.0.2.53', 'key:sec', { address: '10.0.0.0/8', key: 'sec' }]);
      expect(r.value.settings.transfer.notify).toEqual([{ host: '192.0.2.53', port: 53 }, { host: '2001:db8::53', port: 5353, key: 'sec' }]);
    }
    const bad = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': yaml.replace(/sec/g, 'nope') + '' }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.issues.map((i) => i.field)).toEqual(['transfer.allow.1', 'transfer.allow.2.key', 'transfer.notify.1.key']);
      expect(bad.issues[0].message).toMatch(/tsig-keygen nope/);
    }
    const junk = await loadDnsConfig(memoryConfigSource({ 'dns/dns.yaml': 'transfer:\n  allow: ["key:", "not-an-address"]\n' }));
    expect(junk.ok).toBe(false);
    if (!junk.ok) expect(junk.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/transfer\.allow\.0: expected an address or prefix .* or 'key:NAME'/),
      expect.stringMatching(/transfer\.allow\.1: expected an address or prefix/),
    ]);
  });
});
