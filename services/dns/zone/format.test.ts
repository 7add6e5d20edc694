import { describe, expect, it } from 'vitest';
import { zoneRecords } from '../dynamic.ts';
import { formatZone } from './format.ts';
import { parseZone } from './parse.ts';
import type { Zone } from './zone.ts';

const ZONE = `$ORIGIN example.org.
$TTL 3600
@ IN SOA ns1 hostmaster 2024010101 7200 900 1209600 300
@ IN NS ns1
@ IN MX 10 mail
@ IN TXT "v=spf1 mx -all" "second \\"quoted\\" part\\010"
@ IN CAA 0 issue "letsencrypt.org"
ns1 IN A 192.0.2.1
mail IN AAAA 2001:db8::25
www IN CNAME @
_sip._tcp IN SRV 10 60 5060 sip
sip IN A 192.0.2.5
_443._tcp.www IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svc IN HTTPS 1 . alpn=h2
`;

const wire = (z: Zone) => [...z.rrsets()].map((rs) => `${rs.owner}|${rs.type}|${rs.ttl}|${rs.rdata.map((r) => r.toString('hex')).sort().join(',')}`).sort();

describe('formatZone', () => {
  it('writes a master file that parses back to the same records', () => {
    const a = parseZone(ZONE, { origin: 'example.org', file: 'a.zone' });
    if (!a.ok) throw new Error(JSON.stringify(a.issues));
    const text = formatZone('example.org', zoneRecords(a.zone), ['written by a test']);
    expect(text).toMatch(/^; written by a test\n\$ORIGIN example\.org\.\n@\t3600\tIN\tSOA\tns1\.example\.org\. hostmaster\.example\.org\. 2024010101 /);
    expect(text).toContain('@\t3600\tIN\tTXT\t"v=spf1 mx -all" "second \\"quoted\\" part\\010"');
    const b = parseZone(text, { origin: 'example.org', file: 'b.zone' });
    if (!b.ok) throw new Error(JSON.stringify(b.issues));
    expect(wire(b.zone)).toEqual(wire(a.zone));
  });
});
