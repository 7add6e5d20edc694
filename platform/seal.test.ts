import { describe, expect, it } from 'vitest';
import { clashingGrants, sealFlags } from './seal.ts';

describe('sealing flags', () => {
  it('refuses two allowed paths where one name begins the other (Node would deny the shorter one)', () => {
    expect(clashingGrants(['/kith/config', '/kith/storage.mjs', '/kith/config-specs.mjs'])).toEqual(['/kith/config', '/kith/config-specs.mjs']);
    expect(clashingGrants(['/data/dns', '/data/dns2'])).toEqual(['/data/dns', '/data/dns2']);
    // A folder and what is inside it, the same path twice, or siblings: fine.
    expect(clashingGrants(['/data', '/data/dns', '/data/dns', '/kith/dns.mjs', '/kith/config', '/data/config'])).toBeUndefined();
    expect(() => sealFlags({ entry: '/kith/storage.mjs', configRoot: '/kith/config', dataDir: '/data', writableConfig: true }))
      .toThrow('cannot seal with both /kith/config and /kith/config-specs.mjs allowed: Node\'s permission model would refuse /kith/config; move one of them');
    expect(sealFlags({ entry: '/kith/storage.mjs', configRoot: '/data/config', dataDir: '/data/storage', writableConfig: true })).toContain('--allow-fs-read=/kith/config-specs.mjs');
  });
});
