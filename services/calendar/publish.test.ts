import { describe, expect, it } from 'vitest';
import { withDiscoveryBlock } from './publish.ts';

describe('discovery records', () => {
  it('adds the SRV/TXT block once, and replaces it on change', () => {
    const zone = '$ORIGIN home.arpa.\n@ IN SOA kith hostmaster 1 3600 600 604800 300\n@ IN NS kith\nkith IN A 192.0.2.1\n';
    const one = withDiscoveryBlock(zone, 'home.arpa', 'kith', 443);
    expect(one).toContain('_caldavs._tcp.home.arpa. 3600 IN SRV 0 1 443 kith.home.arpa.');
    expect(one).toContain('_carddavs._tcp.home.arpa. 3600 IN TXT "path=/dav/"');
    expect(withDiscoveryBlock(one, 'home.arpa', 'kith', 443)).toBe(one);
    const two = withDiscoveryBlock(one, 'home.arpa', 'cal.example.', 8843);
    expect(two.match(/_caldavs/g)?.length).toBe(2); // SRV + TXT, once
    expect(two).toContain('SRV 0 1 8843 cal.example.');
    expect(withDiscoveryBlock(undefined, 'home.arpa', 'kith', 443)).toContain('IN SOA');
  });
});
