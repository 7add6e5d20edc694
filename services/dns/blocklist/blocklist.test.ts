import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { parseList, normalizeDomain } from './parse.ts';
import { createMatcher, parseAllowList } from './matcher.ts';
import { blockedResponse, createBlocker, loadBlocklists } from './blocklist.ts';
import type { ConfigSource } from '../../../platform/config/spec.ts';
import { decodeResponse } from '../forward/forwarder.ts';

describe('parseList', () => {
  it('reads plain lists, hosts files, Adblock rules and comments', () => {
    const text = [
      '# Title: test list',
      '! adblock comment',
      '',
      'Ads.Example.com',
      '0.0.0.0 tracker.example.net  # inline',
      '127.0.0.1\tlocalhost',
      '::1 ip6-localhost ip6-loopback',
      '0.0.0.0 one.example two.example',
      '||adblock.example^',
      '*.wild.example',
      'trailing.dot.example.',
      'bücher.example',
      '\r',
    ].join('\n');
    const r = parseList(text, 'dns/blocklists/ads.txt');
    expect(r.issues).toEqual([]);
    expect(r.domains).toEqual(['ads.example.com', 'tracker.example.net', 'one.example', 'two.example', 'adblock.example', 'wild.example', 'trailing.dot.example', 'xn--bcher-kva.example']);
  });

  it('reports bad lines with file:line and keeps going', () => {
    const text = 'good.example\nnot a hosts line\n0.0.0.0\nbad..example\n-lead.example\n||x.example^$third-party\n' + 'a'.repeat(64) + '.example\nalso-good.example\n';
    const r = parseList(text, 'dns/blocklists/x.txt');
    expect(r.domains).toEqual(['good.example', 'also-good.example']);
    expect(r.issues.map((i) => i.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(r.issues.every((i) => i.file === 'dns/blocklists/x.txt')).toBe(true);
  });

  it('survives binary garbage', () => {
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const junk = Array.from({ length: 20_000 }, () => String.fromCharCode(Math.floor(rnd() * 256))).join('');
    const r = parseList(junk, 'junk.txt');
    for (const d of r.domains) expect(normalizeDomain(d)).toBe(d);
  });
});

describe('createMatcher', () => {
  const m = createMatcher(
    [
      { name: 'ads', domains: ['ads.example.com', 'example.org', 'cdn.example.net'] },
      { name: 'malware', domains: ['evil.test', 'example.org'] },
    ],
    parseAllowList('good.example.org\n*.safe.example.org # wildcard\n', 'allow.txt'),
  );

  it('blocks a name and all its subdomains, case-insensitively', () => {
    expect(m.lookup('ads.example.com')).toEqual({ list: 'ads' });
    expect(m.lookup('X.Y.ADS.example.com.')).toEqual({ list: 'ads' });
    expect(m.lookup('example.com')).toBeUndefined();
    expect(m.lookup('notads.example.com')).toBeUndefined();
    expect(m.lookup('www.evil.test')).toEqual({ list: 'malware' });
    expect(m.lookup('example.org')).toEqual({ list: 'ads' }); // first list gets it
    expect(m.lookup('')).toBeUndefined();
    expect(m.lookup('.')).toBeUndefined();
  });

  it('allow list: exact names and wildcards', () => {
    expect(m.lookup('good.example.org')).toBeUndefined();
    expect(m.lookup('sub.good.example.org')).toEqual({ list: 'ads' });
    expect(m.lookup('safe.example.org')).toBeUndefined();
    expect(m.lookup('deep.er.safe.example.org')).toBeUndefined();
    expect(m.lookup('bad.example.org')).toEqual({ list: 'ads' });
  });

  // How fast it builds and looks up is measured by bench/dns/blocklist.ts, not asserted here.
  it('matches every entry of a 200k-entry list and nothing else', () => {
    const domains = Array.from({ length: 200_000 }, (_, i) => `host${i}.ads${i % 997}.example`);
    const big = createMatcher([{ name: 'big', domains }]);
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (big.lookup(`a.b.host${i * 2}.ads${(i * 2) % 997}.example`)) hits++;
    for (let i = 0; i < 100_000; i++) if (big.lookup(`www.site${i}.example.com`)) hits++;
    expect(big.size).toBe(200_000);
    expect(hits).toBe(100_000);
  });
});

describe('answers', () => {
  const q = (name: string, type: dnsPacket.RecordType): dnsPacket.Question => ({ name, type, class: 'IN' });
  const wire = (p: dnsPacket.Packet) => decodeResponse(dnsPacket.encode(p));

  it('nxdomain mode', () => {
    const r = wire(blockedResponse(q('Ads.Example.com', 'A'), 99, { mode: 'nxdomain' }));
    expect(r).toMatchObject({ id: 99, rcode: 'NXDOMAIN', flag_qr: true, flag_ra: true, flag_rd: true, answers: [] });
    expect(r.questions[0].name).toBe('Ads.Example.com');
  });

  it('null-ip mode: 0.0.0.0, :: and NODATA for other types', () => {
    const a = wire(blockedResponse(q('ads.example.com', 'A'), 1, { mode: 'null-ip', ttl: 30 }));
    expect(a.rcode).toBe('NOERROR');
    expect(a.answers[0]).toMatchObject({ type: 'A', data: '0.0.0.0', ttl: 30 });
    const aaaa = wire(blockedResponse(q('ads.example.com', 'AAAA'), 2, { mode: 'null-ip' }));
    expect(aaaa.answers[0]).toMatchObject({ type: 'AAAA', data: '::' });
    const mx = wire(blockedResponse(q('ads.example.com', 'MX'), 3, { mode: 'null-ip' }));
    expect(mx).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });
});

describe('loadBlocklists + createBlocker', () => {
  const files: Record<string, string> = {
    'dns/blocklists/ads.txt': 'ads.example.com\nbroken line here\n',
    'dns/blocklists/hosts.hosts': '0.0.0.0 tracker.example.net\n',
    'dns/blocklists/allow.txt': 'ok.tracker.example.net\n',
    'dns/blocklists/README.md': 'not a list',
  };
  const source: ConfigSource = {
    read: async (p) => files[p],
    list: async (d) => (d === 'dns/blocklists' ? Object.keys(files).map((f) => f.slice(d.length + 1)) : []),
  };

  it('loads lists and the allow list, reports bad lines, counts hits per list', async () => {
    const loaded = await loadBlocklists(source, 'dns/blocklists/');
    expect(loaded.lists.map((l) => l.name)).toEqual(['ads', 'hosts']);
    expect(loaded.issues).toEqual([expect.objectContaining({ file: 'dns/blocklists/ads.txt', line: 2 })]);
    const seen: string[] = [];
    const b = createBlocker(loaded, { mode: 'null-ip', onHit: (list, name) => seen.push(`${list}:${name}`) });
    expect(b.check({ name: 'x.ads.example.com', type: 'A' }, 5)?.answers?.[0]).toMatchObject({ data: '0.0.0.0' });
    expect(b.check({ name: 'ok.tracker.example.net', type: 'A' }, 6)).toBeUndefined();
    expect(b.check({ name: 'tracker.example.net', type: 'TXT' }, 7)?.answers).toEqual([]);
    expect(b.check({ name: 'fine.example', type: 'A' }, 8)).toBeUndefined();
    expect(seen).toEqual(['ads:x.ads.example.com', 'hosts:tracker.example.net']);
    expect(b.hits()).toEqual({ ads: 1, hosts: 1 });
  });

  it('an empty or missing folder blocks nothing', async () => {
    const empty = await loadBlocklists({ read: async () => undefined, list: async () => [] }, 'dns/blocklists');
    const b = createBlocker(empty, { mode: 'nxdomain' });
    expect(b.size).toBe(0);
    expect(b.check({ name: 'anything.example', type: 'A' }, 1)).toBeUndefined();
    const failing = await loadBlocklists({ read: async () => { throw new Error('eio'); }, list: async () => { throw new Error('eio'); } }, 'dns/blocklists');
    expect(failing.issues[0].message).toMatch(/eio/);
  });
});
