import { describe, expect, it } from 'vitest';
import type { ConfigSource } from '../../../platform/config/spec.ts';
import { loadZone } from './load.ts';
import { TYPE } from '../wire/constants.ts';

function source(files: Record<string, string>): ConfigSource {
  return {
    read: async (p) => files[p],
    list: async () => [],
  };
}

describe('loadZone', () => {
  it('prefetches $INCLUDE files (nested, relative to the including file) and parses', async () => {
    const r = await loadZone(source({
      'dns/zones/home.arpa.zone': '$TTL 60\n@ SOA ns h 1 1 1 1 1\n NS ns\nns A 192.0.2.1\n$INCLUDE inc/hosts.inc\n',
      'dns/zones/inc/hosts.inc': 'nas A 192.0.2.2\n$INCLUDE more.inc\n',
      'dns/zones/inc/more.inc': 'printer A 192.0.2.3\n',
    }), { file: 'dns/zones/home.arpa.zone', origin: 'home.arpa' });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.zone.get('printer.home.arpa', TYPE.A)).toBeDefined();
  });

  it('reports a missing zone file and a missing include with file and line', async () => {
    expect(await loadZone(source({}), { file: 'dns/zones/x.zone', origin: 'x' })).toMatchObject({ ok: false, issues: [{ file: 'dns/zones/x.zone' }] });
    const r = await loadZone(source({ 'dns/z.zone': '$TTL 60\n@ SOA ns h 1 1 1 1 1\n$INCLUDE nope.inc\n' }), { file: 'dns/z.zone', origin: 'z' });
    expect(r).toMatchObject({ ok: false, issues: [{ file: 'dns/z.zone', line: 3, message: expect.stringMatching(/cannot read "dns\/nope.inc"/) }] });
  });
});
