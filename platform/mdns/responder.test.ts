import * as packet from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { answer, recordsFor, type ServiceAd } from './records.ts';
import { currentName, handle, initialState, nextWake, type Input, type Link, type State } from './responder.ts';

const ads: ServiceAd[] = [
  { type: '_kith._tcp', port: 7302, txt: { version: '1' } },
  { type: '_domain._udp', port: 53, txt: { version: '1' }, instance: 'dns' },
];
const link: Link = { name: 'eth0', v4: ['10.0.0.1'], v6: [] };
const zero = () => 0;

/** Drive the core with ticks until it is announced; returns the state and every send. */
function announce(s: State, t = 0) {
  const sends: Buffer[] = [];
  for (let i = 0; i < 10 && s.phase !== 'announced'; i++) {
    t = nextWake(s)!;
    const r = handle(s, t, { kind: 'tick' }, zero);
    s = r.state;
    sends.push(...r.sends.map((x) => x.bytes));
  }
  return { s, sends, t };
}

const pkt = (bytes: Uint8Array, from = { address: '10.0.0.2', port: 5353 }): Input => ({ kind: 'packet', bytes, from, link: 'eth0' });

describe('the mDNS responder core', () => {
  it('probes three times, then announces twice with cache-flush on unique records', () => {
    const { s, sends } = announce(initialState('kith', ads, [link], 0, zero));
    const decoded = sends.map((b) => packet.decode(b));
    expect(decoded.map((p) => p.type)).toEqual(['query', 'query', 'query', 'response', 'response']);
    expect(decoded[0]!.questions!.map((q) => q.name)).toEqual(['kith.local', 'kith._kith._tcp.local', 'kith dns._domain._udp.local']);
    expect(decoded[0]!.authorities!.length).toBe(5);
    const a = decoded[3]!.answers!.find((r) => r.type === 'A') as { flush: boolean; ttl: number; data: string };
    expect(a).toMatchObject({ flush: true, ttl: 120, data: '10.0.0.1' });
    expect(decoded[3]!.answers!.find((r) => r.type === 'PTR' && r.name === '_kith._tcp.local')).toMatchObject({ flush: false, ttl: 4500 });
    expect(s.phase).toBe('announced');
  });

  it('renames kith → kith-2 when another host answers a probe, and backs off after 15 conflicts', () => {
    let s = initialState('kith', ads, [link], 0, zero);
    s = handle(s, 0, { kind: 'tick' }, zero).state;
    const theirs = packet.encode({ type: 'response', answers: [{ name: 'kith.local', type: 'A', ttl: 120, data: '10.0.0.9' }] });
    const r = handle(s, 10, pkt(theirs), zero);
    expect(r.events).toEqual([expect.objectContaining({ kind: 'conflict', name: 'kith', next: 'kith-2' })]);
    s = r.state;
    for (let i = 0; i < 14; i++) {
      const claim = packet.encode({ type: 'response', answers: [{ name: `${currentName(s)}.local`, type: 'A', ttl: 120, data: '10.0.0.9' }] });
      s = handle({ ...s, phase: 'probing' }, 20 + i, pkt(claim), zero).state;
    }
    // 15 conflicts within ten seconds: the next probe waits five seconds (RFC 6762 §8.1)
    expect(currentName(s)).toBe('kith-16');
    expect(s.nextAt! - 33).toBe(5000);
  });

  it('keeps its name when the other host has the same data, and when its own probes echo back', () => {
    const s0 = initialState('kith', ads, [link], 0, zero);
    const own = handle(s0, 0, { kind: 'tick' }, zero);
    const echo = handle(own.state, 5, pkt(own.sends[0]!.bytes), zero);
    expect(echo.events).toEqual([]);
    expect(echo.state.phase).toBe('probing');
  });

  it('loses a simultaneous probe tie-break to lexicographically later data and probes again a second later', () => {
    let s = initialState('kith', ads, [link], 0, zero);
    s = handle(s, 0, { kind: 'tick' }, zero).state;
    const probe = (addr: string) => packet.encode({ type: 'query', questions: [{ name: 'kith.local', type: 'ANY' as 'A' }], authorities: [{ name: 'kith.local', type: 'A', ttl: 120, data: addr }] });
    expect(handle(s, 100, pkt(probe('10.0.0.0')), zero).state).toBe(s); // we win
    const lost = handle(s, 100, pkt(probe('10.0.0.200')), zero).state;
    expect(lost).toMatchObject({ phase: 'waiting', n: 1, nextAt: 1100 });
  });

  it('answers a legacy unicast query to its source with the ID, the question, TTL ≤ 10, no cache-flush', () => {
    const { s } = announce(initialState('kith', ads, [link], 0, zero));
    const q = packet.encode({ type: 'query', id: 4242, questions: [{ name: 'KITH.local', type: 'A' }] });
    const r = handle(s, 5000, pkt(q, { address: '10.0.0.5', port: 40000 }), zero);
    expect(r.sends).toHaveLength(1);
    expect(r.sends[0]!.to).toEqual({ unicast: { address: '10.0.0.5', port: 40000 } });
    const p = packet.decode(r.sends[0]!.bytes);
    expect(p.id).toBe(4242);
    expect(p.questions).toEqual([{ name: 'KITH.local', type: 'A', class: 'IN' }]);
    expect(p.answers).toEqual([expect.objectContaining({ name: 'kith.local', ttl: 10, flush: false, data: '10.0.0.1' })]);
  });

  it('answers PTR browses after a delay with SRV, TXT and address additionals, minus known answers', () => {
    const { s, t } = announce(initialState('kith', ads, [link], 0, zero));
    const q = packet.encode({ type: 'query', questions: [{ name: '_kith._tcp.local', type: 'PTR' }] });
    const r = handle(s, t + 10, pkt(q), zero);
    expect(r.sends).toEqual([]);
    const later = handle(r.state, nextWake(r.state)!, { kind: 'tick' }, zero);
    const p = packet.decode(later.sends[0]!.bytes);
    expect(p.answers!.map((a) => a.type)).toEqual(['PTR']);
    expect(p.additionals!.map((a) => a.type)).toEqual(['SRV', 'TXT', 'A']);
    const known = packet.encode({ type: 'query', questions: [{ name: '_kith._tcp.local', type: 'PTR' }], answers: [{ name: '_kith._tcp.local', type: 'PTR', ttl: 4000, data: 'kith._kith._tcp.local' }] });
    expect(handle(s, t + 10, pkt(known), zero).state.pending).toEqual([]);
  });

  it('multicasts a record at most once a second per link, however often it is asked (§6)', () => {
    const { s } = announce(initialState('kith', ads, [link], 0, zero));
    const q = packet.encode({ type: 'query', questions: [{ name: 'kith.local', type: 'A' }] });
    let st = s;
    let sent = 0;
    for (let t = 10_000; t < 12_000; t += 50) {
      const r = handle(st, t, pkt(q), zero);
      st = r.state;
      sent += r.sends.length;
    }
    expect(sent).toBe(2); // 2 s of queries every 50 ms: two answers
  });

  it('renames when another host claims its announced address record with other data (RFC 6762 §9)', () => {
    const { s } = announce(initialState('kith', ads, [link], 0, zero));
    const theirs = packet.encode({ type: 'response', answers: [{ name: 'kith.local', type: 'A', ttl: 120, data: '10.0.0.9' }] });
    expect(handle(s, 9000, pkt(theirs), zero).events[0]).toMatchObject({ kind: 'conflict', next: 'kith-2' });
    const same = packet.encode({ type: 'response', answers: [{ name: 'kith.local', type: 'A', ttl: 120, data: '10.0.0.1' }] });
    expect(handle(s, 9000, pkt(same), zero).events).toEqual([]);
  });

  it('says goodbye with TTL 0 on stop, and for an address that went away', () => {
    const { s } = announce(initialState('kith', ads, [link], 0, zero));
    const moved = handle(s, 9000, { kind: 'links', links: [{ ...link, v4: ['10.0.0.7'] }] }, zero);
    const bye = packet.decode(moved.sends[0]!.bytes);
    expect(bye.answers).toEqual([expect.objectContaining({ type: 'A', data: '10.0.0.1', ttl: 0 })]);
    expect(moved.state.phase).toBe('waiting');
    const stop = handle(s, 9000, { kind: 'stop' }, zero);
    const all = packet.decode(stop.sends[0]!.bytes);
    expect(all.answers!.length).toBe(recordsFor('kith', ads, link).length);
    expect(all.answers!.every((a) => (a as { ttl: number }).ttl === 0)).toBe(true);
  });

  it('never throws on hostile packets (20,000 mutated queries and responses)', () => {
    const { s } = announce(initialState('kith', ads, [link], 0, zero));
    const seeds = [
      packet.encode({ type: 'query', id: 1, questions: [{ name: '_kith._tcp.local', type: 'PTR' }], answers: [{ name: '_kith._tcp.local', type: 'PTR', ttl: 1, data: 'x._kith._tcp.local' }] }),
      packet.encode({ type: 'response', answers: [{ name: 'kith.local', type: 'SRV', ttl: 120, data: { port: 1, target: 'kith.local' } }, { name: 'kith.local', type: 'TXT', data: ['a=b'] }] }),
    ];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(seeds[i % 2]!);
      const n = 1 + Math.floor(rnd() * 6);
      for (let j = 0; j < n; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const cut = rnd() < 0.2 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      expect(() => handle(s, 10_000, pkt(cut, { address: '10.0.0.2', port: rnd() < 0.5 ? 5353 : 1234 }), rnd)).not.toThrow();
    }
  });

  it('answer() gives SRV targets their addresses', () => {
    const rs = recordsFor('kith', ads, link);
    const r = answer(rs, [{ name: 'kith dns._domain._udp.local', type: 'SRV' }]);
    expect(r.answers.map((a) => a.type)).toEqual(['SRV']);
    expect(r.additionals.map((a) => a.type)).toEqual(['A']);
  });
});
