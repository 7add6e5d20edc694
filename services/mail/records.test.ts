import { describe, expect, it } from 'vitest';
import { parseZone } from '../dns/zone/parse.ts';
import { desiredRecords, editZone, newZone, txtData } from './records.ts';

const recs = desiredRecords('example.org', { hostname: 'mx.example.org', spf: 'v=spf1 mx -all', dmarc: 'v=DMARC1; p=reject', dkim: [{ selector: 'kith-rsa', record: 'v=DKIM1; k=rsa; p=' + 'A'.repeat(392) }] });
const ZONE = '$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ IN NS ns1\n@ IN MX 5 old.example.org.\n@ 300 IN TXT "v=spf1 a -all"\n@ IN TXT "google-site-verification=x"\nkith-rsa._domainkey IN TXT "v=DKIM1; p=old"\nmx IN A 192.0.2.1\n';

describe('published mail records', () => {
  it('splits long TXT text into 255-byte strings', () => {
    expect(txtData('a'.repeat(300))).toBe(`"${'a'.repeat(255)}" "${'a'.repeat(45)}"`);
  });
  it('replaces the records the service owns, keeps the rest, and parses', () => {
    const next = editZone(ZONE, 'example.org', 'example.org', recs, 3600)!;
    expect(next).not.toContain('old.example.org');
    expect(next).not.toContain('v=spf1 a -all');
    expect(next).not.toContain('p=old');
    expect(next).toContain('google-site-verification');
    expect(next).toContain('example.org. 3600 IN MX 10 mx.example.org.');
    expect(next).toContain('_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=reject"');
    const z = parseZone(next, { origin: 'example.org', file: 'dns/zones/example.org.zone' });
    expect(z.ok).toBe(true);
    // Idempotent: a second edit changes nothing.
    expect(editZone(next, 'example.org', 'example.org', recs, 3600)).toBeUndefined();
  });
  it('makes a zone file for a zone that had none', () => {
    const next = editZone(newZone('home.arpa'), 'home.arpa', 'home.arpa', desiredRecords('home.arpa', { hostname: 'kith.home.arpa', spf: 'v=spf1 mx -all', dmarc: 'v=DMARC1; p=none', dkim: [] }), 3600)!;
    expect(parseZone(next, { origin: 'home.arpa', file: 'x' }).ok).toBe(true);
  });
});
