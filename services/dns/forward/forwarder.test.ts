import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { createForwarder, decodeResponse, type DecodedResponse, type ForwarderOptions, type Upstream } from './forwarder.ts';
import { answer, fakeUpstream, type FakeReply } from './fake.ts';
import { cacheSeconds, DEFAULT_TTL_POLICY } from './cache.ts';

const U1: Upstream = { host: '192.0.2.53', port: 53 };
const U2: Upstream = { host: '198.51.100.53', port: 53 };
const A = (name: string, data: string, ttl = 300): dnsPacket.Answer => ({ type: 'A', name, ttl, data });
const SOA = (ttl: number, minimum: number): dnsPacket.Answer => ({
  type: 'SOA', name: 'example.com', ttl,
  data: { mname: 'ns.example.com', rname: 'h.example.com', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

function setup(script: (q: DecodedResponse, u: Upstream) => FakeReply | Promise<FakeReply>, extra: Partial<ForwarderOptions> = {}) {
  let clock = 1_000_000;
  const fake = fakeUpstream(script);
  const counts = { hit: 0, miss: 0, coalesced: 0, upstreamError: 0, servfail: 0 };
  const fwd = createForwarder({
    upstreams: [U1, U2],
    timeoutMs: 40,
    totalTimeoutMs: 150,
    now: () => clock,
    send: fake.send,
    metrics: {
      hit: () => counts.hit++,
      miss: () => counts.miss++,
      coalesced: () => counts.coalesced++,
      upstreamError: () => counts.upstreamError++,
      servfail: () => counts.servfail++,
    },
    ...extra,
  });
  return { fwd, fake, counts, advance: (s: number) => (clock += s * 1000) };
}

const q = (name: string, type = 'A'): dnsPacket.Question => ({ name, type: type as dnsPacket.RecordType, class: 'IN' });
const ttls = (p: dnsPacket.Packet) => (p.answers ?? []).map((r) => (r as { ttl: number }).ttl);
const wire = (p: dnsPacket.Packet) => decodeResponse(dnsPacket.encode(p));

describe('createForwarder', () => {
  it('caches answers, counts TTLs down, and returns the client ID and question case', async () => {
    const { fwd, fake, counts, advance } = setup((qq) => answer(qq, { answers: [A('www.example.com', '192.0.2.1', 300)] }));
    const r1 = await fwd.resolve(q('WwW.Example.COM'), { id: 4242 });
    expect(r1.id).toBe(4242);
    expect(r1.questions![0].name).toBe('WwW.Example.COM');
    expect(ttls(r1)).toEqual([300]);
    advance(100);
    const r2 = await fwd.resolve(q('www.example.com'), { id: 7 });
    expect(r2.id).toBe(7);
    expect(ttls(r2)).toEqual([200]);
    expect(fake.queries).toHaveLength(1);
    expect(counts).toMatchObject({ hit: 1, miss: 1 });
    // The packet encodes, with RA and the rcode in the header.
    const w = wire(r2);
    expect(w.flag_ra).toBe(true);
    expect(w.rcode).toBe('NOERROR');
    advance(201);
    await fwd.resolve(q('www.example.com'));
    expect(fake.queries).toHaveLength(2);
  });

  it('caps long TTLs at a day and keeps very short ones for the floor', async () => {
    const { fwd, fake, advance } = setup((qq) => answer(qq, { answers: [A(qq.questions[0].name, '192.0.2.1', qq.questions[0].name.startsWith('long') ? 10_000_000 : 0)] }));
    expect(ttls(await fwd.resolve(q('long.example')))).toEqual([86_400]);
    await fwd.resolve(q('zero.example'));
    advance(3);
    const z = await fwd.resolve(q('zero.example'));
    expect(ttls(z)).toEqual([0]);
    expect(fake.queries).toHaveLength(2);
    advance(DEFAULT_TTL_POLICY.minTtl);
    await fwd.resolve(q('zero.example'));
    expect(fake.queries).toHaveLength(3);
  });

  it('gives minimal positive answers (no upstream NS or glue) unless DO asks for everything', async () => {
    const NS: dnsPacket.Answer = { type: 'NS', name: 'example.com', ttl: 3600, data: 'ns.example.com' };
    const { fwd } = setup((qq) => answer(qq, { answers: [A('www.example.com', '192.0.2.80')], authorities: [NS], additionals: [A('ns.example.com', '192.0.2.53')] }));
    const plain = wire(await fwd.resolve(q('www.example.com')));
    expect(plain.answers.map((r) => r.type)).toEqual(['A']);
    expect(plain.authorities).toEqual([]);
    expect(plain.additionals).toEqual([]);
    const withDo = await fwd.resolve(q('www.example.com'), { dnssecOk: true });
    expect(withDo.authorities!.map((r) => r.type)).toEqual(['NS']);
    expect(withDo.additionals!.map((r) => r.type)).toEqual(['A']);
  });

  it('caches NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM), and not without an SOA', async () => {
    const { fwd, fake, advance } = setup((qq) => {
      const n = qq.questions[0].name;
      if (n === 'nx.example.com') return answer(qq, { rcode: 'NXDOMAIN', authorities: [SOA(3600, 60)] });
      if (n === 'nodata.example.com') return answer(qq, { authorities: [SOA(30, 900)] });
      return answer(qq, { rcode: 'NXDOMAIN' });
    });
    const nx = await fwd.resolve(q('nx.example.com'));
    expect(wire(nx).rcode).toBe('NXDOMAIN');
    await fwd.resolve(q('nodata.example.com'));
    await fwd.resolve(q('nosoa.example.com'));
    advance(29);
    await fwd.resolve(q('nx.example.com'));
    await fwd.resolve(q('nodata.example.com'));
    await fwd.resolve(q('nosoa.example.com'));
    expect(fake.queries.map((x) => x.query.questions[0].name)).toEqual(['nx.example.com', 'nodata.example.com', 'nosoa.example.com', 'nosoa.example.com']);
    const aged = await fwd.resolve(q('nx.example.com'));
    // The SOA TTL is lowered to MINIMUM (60) and then counted down.
    expect((aged.authorities![0] as { ttl: number }).ttl).toBe(60 - 29);
    advance(2);
    await fwd.resolve(q('nodata.example.com'));
    advance(30);
    await fwd.resolve(q('nx.example.com'));
    expect(fake.queries).toHaveLength(6);
  });

  it('coalesces identical questions in flight into one upstream query', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { fwd, fake, counts } = setup(async (qq) => {
      await gate;
      return answer(qq, { answers: [A('a.example', '192.0.2.9')] });
    });
    const all = Array.from({ length: 10 }, (_, i) => fwd.resolve(q(i % 2 ? 'A.EXAMPLE' : 'a.example'), { id: i }));
    release();
    const res = await Promise.all(all);
    expect(fake.queries).toHaveLength(1);
    expect(res.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(res[1].questions![0].name).toBe('A.EXAMPLE');
    expect(counts.coalesced).toBe(9);
  });

  it('fails over from a silent upstream and rotates between healthy ones', async () => {
    const { fwd, fake, counts } = setup((qq, u) => (u === U1 ? 'hang' : answer(qq, { answers: [A('x.example', '192.0.2.2')] })));
    const r = await fwd.resolve(q('x.example'));
    expect(ttls(r)).toEqual([300]);
    expect(fake.queries.map((x) => x.upstream)).toEqual([U1, U2]);
    expect(counts.upstreamError).toBe(1);
    // U1 is now penalised: the next question goes straight to U2.
    await fwd.resolve(q('y.example'));
    expect(fake.queries.slice(2).map((x) => x.upstream)).toEqual([U2]);

    const healthy = setup((qq) => answer(qq, { answers: [A(qq.questions[0].name, '192.0.2.2')] }));
    for (const n of ['a', 'b', 'c', 'd']) await healthy.fwd.resolve(q(`${n}.example`));
    expect(healthy.fake.queries.map((x) => x.upstream)).toEqual([U1, U2, U1, U2]);
  });

  it('answers SERVFAIL within the total time limit when every upstream hangs', async () => {
    const { fwd, counts } = setup(() => 'hang');
    const t0 = Date.now();
    const r = await fwd.resolve(q('slow.example'), { id: 9 });
    // The upstreams never answer: that it answers at all is the limit at work. The time is
    // printed; the bound is only against a hang, generous for a loaded machine (the limit is 150 ms).
    const ms = Date.now() - t0;
    process.stdout.write(`forwarder: SERVFAIL after every upstream hung in ${ms} ms (total limit 150 ms)\n`);
    expect(ms).toBeLessThan(5000);
    expect(r.id).toBe(9);
    expect(wire(r).rcode).toBe('SERVFAIL');
    expect(counts.servfail).toBe(1);
  });

  it('survives a send that ignores its own timeout budget', async () => {
    const { fwd } = setup(() => 'hang', { timeoutMs: 10_000, totalTimeoutMs: 60 });
    const t0 = Date.now();
    expect(wire(await fwd.resolve(q('slow.example'))).rcode).toBe('SERVFAIL');
    // Ignoring the total limit would mean waiting out the send's 10 s: 5 s tells the two
    // apart with room for a loaded machine (the figure, printed, is ~the 60 ms limit).
    const ms = Date.now() - t0;
    process.stdout.write(`forwarder: SERVFAIL past a send that ignores its budget in ${ms} ms (total limit 60 ms, send timeout 10 s)\n`);
    expect(ms).toBeLessThan(5000);
  });

  it('throws away answers with the wrong ID, question, garbage or a failure rcode', async () => {
    const cases: ((qq: DecodedResponse) => FakeReply)[] = [
      (qq) => ({ ...answer(qq), id: (qq.id + 1) & 0xffff }),
      (qq) => answer(qq, { questions: [{ name: 'evil.example', type: 'A', class: 'IN' }] }),
      (qq) => answer(qq, { questions: [{ name: qq.questions[0].name, type: 'AAAA', class: 'IN' }] }),
      () => Buffer.from([1, 2, 3]),
      (qq) => Buffer.concat([dnsPacket.encode(answer(qq, { answers: [A('x', '1.1.1.1')] })).subarray(0, 30)]),
      (qq) => answer(qq, { rcode: 'SERVFAIL' }),
      (qq) => answer(qq, { rcode: 'REFUSED' }),
      (qq) => ({ ...answer(qq), type: 'query' }),
      (qq) => answer(qq, { flags: dnsPacket.TRUNCATED_RESPONSE }),
      () => 'reject',
    ];
    // A fresh forwarder per case, so U1 (the bad one) is always asked first.
    for (let k = 0; k < cases.length; k++) {
      const v = setup((qq, u) => (u === U2 ? answer(qq, { answers: [A(qq.questions[0].name, '192.0.2.3')] }) : cases[k](qq)));
      const r = await v.fwd.resolve(q(`case${k}.example`));
      expect(ttls(r), `case ${k}`).toEqual([300]);
      expect(v.fake.queries.map((x) => x.upstream), `case ${k}`).toEqual([U1, U2]);
      expect(v.counts.upstreamError, `case ${k}`).toBe(1);
    }
  });

  it('answers SERVFAIL when every upstream answers badly', async () => {
    const { fwd } = setup((qq) => answer(qq, { rcode: 'SERVFAIL' }));
    expect(wire(await fwd.resolve(q('down.example'))).rcode).toBe('SERVFAIL');
    const none = setup(() => 'hang', { upstreams: [] });
    expect(wire(await none.fwd.resolve(q('x.example'))).rcode).toBe('SERVFAIL');
  });

  it('uses a fresh random ID per upstream query, and EDNS with DO/CD as asked', async () => {
    const { fwd, fake } = setup((qq) => answer(qq, { answers: [A(qq.questions[0].name, '192.0.2.4')] }));
    for (let k = 0; k < 20; k++) await fwd.resolve(q(`id${k}.example`));
    const ids = new Set(fake.queries.map((x) => x.query.id));
    expect(ids.size).toBeGreaterThan(15);
    await fwd.resolve(q('sec.example'), { dnssecOk: true, cd: true });
    const last = fake.queries.at(-1)!.query;
    const opt = last.additionals.find((r) => r.type === 'OPT') as { flag_do?: boolean };
    expect(opt.flag_do).toBe(true);
    expect(last.flag_cd).toBe(true);
    // DO and non-DO answers are cached apart.
    await fwd.resolve(q('sec.example'));
    expect(fake.queries.at(-1)!.query.questions[0].name).toBe('sec.example');
    expect(fake.queries).toHaveLength(22);
  });

  it('keeps the cache within its bound, dropping the least recently used', async () => {
    const { fwd, fake } = setup((qq) => answer(qq, { answers: [A(qq.questions[0].name, '192.0.2.5')] }), { maxEntries: 3 });
    for (const n of ['a', 'b', 'c']) await fwd.resolve(q(`${n}.example`));
    await fwd.resolve(q('a.example')); // a is now most recent
    await fwd.resolve(q('d.example')); // evicts b
    expect(fwd.cacheSize).toBe(3);
    const before = fake.queries.length;
    await fwd.resolve(q('a.example'));
    expect(fake.queries.length).toBe(before);
    await fwd.resolve(q('b.example'));
    expect(fake.queries.length).toBe(before + 1);
    fwd.clear();
    expect(fwd.cacheSize).toBe(0);
  });
});

describe('cacheSeconds', () => {
  it('does not cache truncated or failed answers', () => {
    expect(cacheSeconds({ rcode: 'NOERROR', flags: 1 << 9, answers: [A('a', '1.1.1.1')] }, DEFAULT_TTL_POLICY)).toBeUndefined();
    expect(cacheSeconds({ rcode: 'SERVFAIL' }, DEFAULT_TTL_POLICY)).toBeUndefined();
    expect(cacheSeconds({ rcode: 'NXDOMAIN', answers: [{ type: 'CNAME', name: 'a', ttl: 20, data: 'b' }], authorities: [SOA(3600, 600)] }, DEFAULT_TTL_POLICY)).toBe(20);
  });
});
