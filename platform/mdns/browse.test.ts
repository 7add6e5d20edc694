import * as packet from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { collect } from './browse.ts';
import { recordsFor, type Rec } from './records.ts';

describe('collecting browse answers', () => {
  it('joins PTR, SRV, TXT and addresses into instances', () => {
    const rs = recordsFor('kith', [{ type: '_kith._tcp', port: 7299, txt: { version: '1', ca: 'ab' } }], { v4: ['10.0.0.1'], v6: ['fe80::1'] });
    const decoded = packet.decode(packet.encode({ type: 'response', answers: rs as unknown as packet.Answer[] }));
    const found = collect('_kith._tcp', (decoded.answers as unknown as Rec[]).map((r) => ({ ...r, from: '10.0.0.1' })));
    expect(found).toEqual([{ instance: 'kith', host: 'kith.local', port: 7299, addresses: ['10.0.0.1', 'fe80::1'], txt: { version: '1', ca: 'ab' }, from: '10.0.0.1' }]);
  });

  it('skips instances it cannot complete and never throws on odd records', () => {
    const odd: (Rec & { from: string })[] = [
      { name: '_kith._tcp.local', type: 'PTR', data: 'a._kith._tcp.local', from: 'x' },
      { name: '_kith._tcp.local', type: 'PTR', data: 'b._kith._tcp.local', from: 'x' },
      { name: 'b._kith._tcp.local', type: 'SRV', data: { port: 'x' }, from: 'x' },
      { name: 'b._kith._tcp.local', type: 'TXT', data: 7, from: 'x' },
    ];
    expect(collect('_kith._tcp', odd)).toEqual([]);
  });
});
