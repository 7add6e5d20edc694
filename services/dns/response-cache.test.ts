import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { ResponseCache } from './response-cache.ts';

const query = (name: string, opts: { id?: number; type?: string; edns?: boolean } = {}) =>
  dnsPacket.encode({
    type: 'query', id: opts.id ?? 1, flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: (opts.type ?? 'A') as 'A', name }],
    additionals: opts.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as dnsPacket.Answer] : [],
  });
const answer = (name: string, flags: number, ttl: number, rcode = 0) =>
  dnsPacket.encode({ type: 'response', id: 0, flags: flags | rcode, questions: [{ type: 'A', name }], answers: ttl >= 0 ? [{ type: 'A', name, ttl, data: '192.0.2.1' }] : [] });

/** Two views of the same bytes (lend() hands out a fresh view of an entry's block each time). */
const sameMemory = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;

describe('the response cache', () => {
  it('serves the same question in any case, with the client ID and case, and authoritative TTLs as they are', () => {
    let now = 1_000_000;
    const c = new ResponseCache({ maxEntries: 10, now: () => now });
    const k1 = c.key(query('www.Example.ORG', { id: 7 }), 'udp', true)!;
    c.put(k1, query('www.Example.ORG', { id: 7 }), answer('www.example.org', dnsPacket.AUTHORITATIVE_ANSWER, 300), c.generation);
    const q2 = query('WWW.example.org', { id: 4242 });
    expect(c.key(q2, 'udp', true)).toBe(k1);
    now += 100_000;
    const hit = dnsPacket.decode(c.get(k1, q2)!);
    expect(hit.id).toBe(4242);
    expect(hit.questions![0]!.name).toBe('WWW.example.org');
    expect((hit.answers![0] as { ttl: number }).ttl).toBe(300);
  });

  it('matches names of every length in any case, whichever bytes of a word differ, and hands each client its own case', () => {
    const c = new ResponseCache({ maxEntries: 1000, now: () => 0 });
    const flip = (n: string, at: number) => n.slice(0, at) + n[at]!.toUpperCase() + n.slice(at + 1);
    for (let len = 1; len <= 24; len++) {
      const name = `${'abcdefghijklmnopqrstuvwxyz'.slice(0, len)}.test`;
      const q = query(name, { id: 1 });
      const k = c.key(q, 'udp', true)!;
      c.put(k, q, answer(name, dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
      for (let at = 0; at < len; at++) {
        const other = flip(name, at);
        const q2 = query(other, { id: 1000 + at });
        expect(c.key(q2, 'udp', true)).toBe(k);
        // lend() and get() alike, twice each: the second of a pair finds the question already in this case.
        for (const how of ['lend', 'lend', 'get', 'get'] as const) {
          const hit = dnsPacket.decode(Buffer.from(c[how](k, q2)!));
          expect(hit.id).toBe(1000 + at);
          expect(hit.questions![0]!.name).toBe(other);
        }
        // A name one letter away is another question, wherever the letter is.
        const near = name.slice(0, at) + (name[at] === 'z' ? 'y' : 'z') + name.slice(at + 1);
        expect(c.lend(k, query(near))).toBeUndefined();
      }
      expect(dnsPacket.decode(Buffer.from(c.lend(k, query(name, { id: 9 }))!)).questions![0]!.name).toBe(name);
    }
  });

  it('seeds its keys: the same query keys alike in one cache, and differently in another', () => {
    const names = Array.from({ length: 200 }, (_, i) => `n${i}.flood.test`);
    const keysOf = (c: ResponseCache) => names.map((n) => c.key(query(n), 'udp', false)!);
    const a = keysOf(new ResponseCache({ maxEntries: 10, now: () => 0, seed: 1 }));
    expect(keysOf(new ResponseCache({ maxEntries: 10, now: () => 0, seed: 1 }))).toEqual(a);
    const b = keysOf(new ResponseCache({ maxEntries: 10, now: () => 0, seed: 2 }));
    const c = keysOf(new ResponseCache({ maxEntries: 10, now: () => 0 }));
    // Names chosen to share a key under one seed do not share it under another.
    expect(a.filter((k, i) => k === b[i]).length).toBe(0);
    expect(a.filter((k, i) => k === c[i]).length).toBeLessThan(2);
  });

  it('lends its own bytes to a reply sent at once, and moves to a copy when the send was queued', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 10, now: () => now });
    const q = query('up.test', { id: 1 });
    const k = c.key(q, 'udp', true)!;
    c.put(k, q, answer('up.test', dnsPacket.RECURSION_AVAILABLE, 30), c.generation);
    const first = c.lend(k, query('UP.test', { id: 11 }))!;
    expect(dnsPacket.decode(first).id).toBe(11);
    expect(dnsPacket.decode(first).questions![0]!.name).toBe('UP.test');
    // Sent at once: the same bytes serve the next client, its ID and case written in.
    const second = c.lend(k, query('up.TEST', { id: 12 }))!;
    expect(sameMemory(second, first)).toBe(true);
    expect(dnsPacket.decode(second).questions![0]!.name).toBe('up.TEST');
    // A name in another case still matches the stored one, whatever case it was left in.
    expect(c.get(k, query('Up.Test', { id: 13 }))).toBeDefined();
    // Queued: those bytes are the queued reply's now; later hits (and aging) use a copy.
    c.keep(second);
    now = 5_000;
    const third = c.lend(k, query('up.test', { id: 14 }))!;
    expect(sameMemory(third, second)).toBe(false);
    expect(dnsPacket.decode(second).id).toBe(12);
    expect((dnsPacket.decode(second).answers![0] as { ttl: number }).ttl).toBe(30);
    expect(dnsPacket.decode(third).id).toBe(14);
    expect((dnsPacket.decode(third).answers![0] as { ttl: number }).ttl).toBe(25);
    // keep() of bytes that are not the last lent ones (a cookie or RRL reply) changes nothing.
    c.keep(Buffer.from(third));
    expect(sameMemory(c.lend(k, query('up.test', { id: 15 }))!, third)).toBe(true);
  });

  it('ages forwarded TTLs and drops them when the smallest runs out', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 10, now: () => now });
    const q = query('up.test');
    const k = c.key(q, 'udp', true)!;
    c.put(k, q, answer('up.test', dnsPacket.RECURSION_AVAILABLE, 30), c.generation);
    now = 12_500;
    expect((dnsPacket.decode(c.get(k, q)!).answers![0] as { ttl: number }).ttl).toBe(18);
    now = 30_000;
    expect(c.get(k, q)).toBeUndefined();
  });

  it('keeps transports, rights, flags and EDNS apart, and never caches what it must not', () => {
    const c = new ResponseCache({ maxEntries: 10, now: () => 0 });
    const q = query('a.test');
    const keys = new Set([c.key(q, 'udp', true), c.key(q, 'tcp', true), c.key(q, 'udp', false), c.key(query('a.test', { edns: true }), 'udp', true), c.key(query('a.test', { type: 'AAAA' }), 'udp', true)]);
    expect(keys.size).toBe(5);
    expect(c.key(query('a.test', { type: 'AXFR' }), 'tcp', true)).toBeUndefined();
    const update = Buffer.from(q);
    update.writeUInt16BE(5 << 11, 2); // opcode UPDATE
    expect(c.key(update, 'udp', true)).toBeUndefined();
    // A TSIG (or anything but an OPT) in the additional section.
    const signed = Buffer.from(q);
    signed.writeUInt16BE(1, 10);
    expect(c.key(Buffer.concat([signed, Buffer.from([0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0])]), 'udp', true)).toBeUndefined();
    const k = c.key(q, 'udp', true)!;
    c.put(k, q, answer('a.test', 0, 60, 2), c.generation); // SERVFAIL
    expect(c.get(k, q)).toBeUndefined();
    c.put(k, q, answer('a.test', 0, 0), c.generation); // TTL 0
    expect(c.get(k, q)).toBeUndefined();
    const before = c.generation;
    c.clear();
    c.put(k, q, answer('a.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), before); // computed before the change
    expect(c.get(k, q)).toBeUndefined();
  });

  it('survives hostile queries and responses', () => {
    const c = new ResponseCache({ maxEntries: 4, now: () => 0 });
    const q0 = query('h.test');
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(Math.random() * 64);
      const b = Buffer.from(Array.from({ length: len }, () => Math.floor(Math.random() * 256)));
      const k = c.key(b, 'udp', true);
      if (k !== undefined) {
        c.put(k, b, b, c.generation);
        c.get(k, b);
      }
      c.put(12345, b, b, c.generation);
      c.put(12345, q0, b, c.generation);
    }
    expect(c.size).toBeLessThanOrEqual(4);
  });

  it('answers of our own without AA (a referral) do not age; forwarded ones do, AA or not', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 10, now: () => now });
    const ref = query('x.child.test');
    const kr = c.key(ref, 'udp', false)!;
    c.put(kr, ref, answer('x.child.test', 0, 3600), c.generation, false);
    const fwd = query('aa.upstream.test');
    const kf = c.key(fwd, 'udp', true)!;
    c.put(kf, fwd, answer('aa.upstream.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation, true);
    now = 5_000;
    expect((dnsPacket.decode(c.get(kr, ref)!).answers![0] as { ttl: number }).ttl).toBe(3600);
    expect((dnsPacket.decode(c.get(kf, fwd)!).answers![0] as { ttl: number }).ttl).toBe(55);
    now = 10_000_000;
    expect(c.get(kr, ref)).toBeDefined(); // until the zones change (clear())
  });

  it('tells apart queries whose keys collide, and never stores an answer to another question', () => {
    const c = new ResponseCache({ maxEntries: 10, now: () => 0 });
    const a = query('a.test');
    const b = query('b.test');
    // Both stored under one key, as a hash collision would.
    const k = c.key(a, 'udp', true)!;
    c.put(k, a, answer('a.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    c.put(k, b, answer('b.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    expect(c.size).toBe(2);
    expect(dnsPacket.decode(c.get(k, a)!).answers![0]!.name).toBe('a.test');
    expect(dnsPacket.decode(c.get(k, b)!).answers![0]!.name).toBe('b.test');
    expect(c.get(k, query('c.test'))).toBeUndefined();
    // The same query again replaces its entry.
    c.put(k, b, answer('b.test', dnsPacket.AUTHORITATIVE_ANSWER, 90), c.generation);
    expect(c.size).toBe(2);
    expect((dnsPacket.decode(c.get(k, b)!).answers![0] as { ttl: number }).ttl).toBe(90);
    // An answer whose question is not the query's is not kept.
    const d = query('d.test');
    const kd = c.key(d, 'udp', true)!;
    c.put(kd, d, answer('e.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    expect(c.get(kd, d)).toBeUndefined();
  });

  it('compares the whole query under one key: its OPT record and its type exactly, only the name in any case', () => {
    const c = new ResponseCache({ maxEntries: 10, now: () => 0 });
    const plain = query('o.test');
    const edns = query('o.test', { edns: true });
    const k = c.key(plain, 'udp', true)!;
    // Stored under one key, as a hash collision would: the OPT record tells them apart.
    c.put(k, edns, answer('o.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    expect(c.get(k, plain)).toBeUndefined();
    const bigger = Buffer.from(edns);
    bigger.writeUInt16BE(4096, bigger.length - 8); // the OPT's UDP payload size
    expect(c.get(k, bigger)).toBeUndefined();
    expect(dnsPacket.decode(c.get(k, Buffer.from(query('O.TEST', { edns: true })))!).questions![0]!.name).toBe('O.TEST');
    // Type 0x0041 (HTTPS) and 0x0061 differ in the bit a case fold ignores: not the same question.
    const t41 = Buffer.from(plain);
    t41.writeUInt16BE(0x41, t41.length - 4);
    const k41 = c.key(t41, 'udp', true)!;
    const r61 = answer('o.test', dnsPacket.AUTHORITATIVE_ANSWER, 60);
    r61.writeUInt16BE(0x61, 12 + 8); // the response's question type (after 'o.test')
    c.put(k41, t41, r61, c.generation);
    expect(c.get(k41, t41)).toBeUndefined();
  });

  it('keeps at most maxEntries, the oldest out first', () => {
    const c = new ResponseCache({ maxEntries: 3, now: () => 0 });
    const names = ['n1.test', 'n2.test', 'n3.test', 'n4.test'];
    for (const n of names) {
      const q = query(n);
      c.put(c.key(q, 'udp', true)!, q, answer(n, dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    }
    expect(c.size).toBe(3);
    const q1 = query('n1.test');
    expect(c.get(c.key(q1, 'udp', true)!, q1)).toBeUndefined();
    const q4 = query('N4.TEST');
    expect(c.get(c.key(q4, 'udp', true)!, q4)).toBeDefined();
  });

  it('matches a plain model over thousands of puts, hits, replacements, expiries and evictions', () => {
    let now = 0;
    const max = 700;
    const c = new ResponseCache({ maxEntries: max, now: () => now });
    // The model: name -> what was stored, oldest first (a Map keeps insertion order).
    const model = new Map<string, { ttl: number; forwarded: boolean; storedAt: number }>();
    let seed = 7;
    const rnd = () => ((seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;
    for (let step = 0; step < 30_000; step++) {
      const name = `n${Math.floor(rnd() * 1500)}.test`;
      const q = query(name, { id: step & 0xffff });
      const k = c.key(q, 'udp', true)!;
      if (rnd() < 0.4) {
        const forwarded = rnd() < 0.5;
        const ttl = 1 + Math.floor(rnd() * 50);
        c.put(k, q, answer(name, forwarded ? 0 : dnsPacket.AUTHORITATIVE_ANSWER, ttl), c.generation, forwarded);
        model.delete(name);
        while (model.size >= max) model.delete(model.keys().next().value!);
        model.set(name, { ttl, forwarded, storedAt: now });
      } else {
        const m = model.get(name);
        const expired = m !== undefined && m.forwarded && now >= m.storedAt + m.ttl * 1000;
        if (expired) model.delete(name);
        const hit = rnd() < 0.5 ? c.get(k, q) : c.lend(k, q);
        if (m === undefined || expired) expect(hit).toBeUndefined();
        else {
          const d = dnsPacket.decode(hit!);
          expect(d.id).toBe(step & 0xffff);
          expect(d.answers![0]!.name).toBe(name);
          const ttl = (d.answers![0] as { ttl: number }).ttl;
          expect(ttl).toBe(m.forwarded ? m.ttl - Math.floor((now - m.storedAt) / 1000) : m.ttl);
        }
      }
      if (rnd() < 0.05) now += Math.floor(rnd() * 3000);
      expect(c.size).toBeLessThanOrEqual(max);
    }
    // Expired entries leave only when asked for: the cache may hold them still, never more than the model's live ones plus those.
    expect(c.size).toBeGreaterThanOrEqual([...model.values()].filter((m) => !m.forwarded || now < m.storedAt + m.ttl * 1000).length);
  });

  it('holds at most maxBytes of slabs, the oldest out first, and an answer bigger than a slab in one of its own', () => {
    const c = new ResponseCache({ maxEntries: 100_000, now: () => 0, maxBytes: 256 * 1024 });
    const big = (name: string, n: number) => dnsPacket.encode({
      type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: [{ type: 'TXT', name }],
      answers: Array.from({ length: n }, (_, i) => ({ type: 'TXT' as const, name, ttl: 60, data: `${i}`.padEnd(200, 'x') })),
    });
    const tq = (name: string) => dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'TXT', name }] });
    for (let i = 0; i < 2000; i++) {
      const q = tq(`t${i}.test`);
      c.put(c.key(q, 'tcp', true)!, q, big(`t${i}.test`, 2), c.generation);
      expect(c.heldBytes).toBeLessThanOrEqual(256 * 1024);
    }
    const newest = tq('t1999.test');
    expect(dnsPacket.decode(c.get(c.key(newest, 'tcp', true)!, newest)!).answers).toHaveLength(2);
    const oldest = tq('t0.test');
    expect(c.get(c.key(oldest, 'tcp', true)!, oldest)).toBeUndefined();
    // ~100 KB: a slab of its own, the others dropped to make room.
    const q = tq('huge.test');
    const r = big('huge.test', 480);
    c.put(c.key(q, 'tcp', true)!, q, r, c.generation);
    expect(c.heldBytes).toBeLessThanOrEqual(256 * 1024);
    expect(c.get(c.key(q, 'tcp', true)!, q)!.subarray(2)).toEqual(r.subarray(2));
    // Bigger than the whole budget: not kept.
    const q2 = tq('huger.test');
    c.put(c.key(q2, 'tcp', true)!, q2, big('huger.test', 1300), c.generation);
    expect(c.get(c.key(q2, 'tcp', true)!, q2)).toBeUndefined();
  });

  it('never writes again into bytes a queued reply holds, even once their slab is dropped', () => {
    const c = new ResponseCache({ maxEntries: 100_000, now: () => 0, maxBytes: 128 * 1024 });
    const q = query('held.test', { id: 1 });
    const k = c.key(q, 'udp', true)!;
    c.put(k, q, answer('held.test', dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    const held = c.lend(k, query('held.test', { id: 77 }))!;
    c.keep(held);
    const before = Buffer.from(held);
    for (let i = 0; i < 3000; i++) {
      const qi = query(`f${i}.test`, { id: 2 });
      c.put(c.key(qi, 'udp', true)!, qi, answer(`f${i}.test`, dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
      c.lend(c.key(qi, 'udp', true)!, query(`f${i}.test`, { id: 3 }));
    }
    c.lend(k, query('held.test', { id: 5 }));
    expect(held).toEqual(before);
  });

  it('gives its hash table back as answers expire: a table for thousands shrinks on the next puts', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 100_000, now: () => now });
    const put = (n: string, ttl: number) => {
      const q = query(n);
      c.put(c.key(q, 'udp', true)!, q, answer(n, dnsPacket.RECURSION_AVAILABLE, ttl), c.generation, true);
    };
    for (let i = 0; i < 20_000; i++) put(`burst${i}.test`, 30);
    const big = c.tableSlots;
    expect(big).toBeGreaterThanOrEqual(2 * 20_000);
    now = 31_000;
    // Each expired answer goes when it is asked for again.
    for (let i = 0; i < 20_000; i++) {
      const q = query(`burst${i}.test`);
      expect(c.get(c.key(q, 'udp', true)!, q)).toBeUndefined();
    }
    expect(c.size).toBe(0);
    for (let i = 0; i < 20; i++) put(`later${i}.test`, 300);
    expect(c.tableSlots).toBeLessThanOrEqual(1024);
    for (let i = 0; i < 20; i++) {
      const q = query(`later${i}.test`);
      expect(dnsPacket.decode(c.get(c.key(q, 'udp', true)!, q)!).answers![0]!.name).toBe(`later${i}.test`);
    }
    // And grows again as it fills, every answer still found.
    for (let i = 0; i < 5_000; i++) put(`again${i}.test`, 300);
    expect(c.size).toBe(5_020);
    expect(c.tableSlots).toBeGreaterThanOrEqual(2 * 5_020);
    for (let i = 0; i < 5_000; i += 97) {
      const q = query(`again${i}.test`);
      expect(c.get(c.key(q, 'udp', true)!, q)).toBeDefined();
    }
  });

  it('holds about what is live, not its whole budget, while forwarded answers are replaced as they expire', () => {
    let now = 0;
    const c = new ResponseCache({ maxEntries: 100_000, now: () => now });
    const names = Array.from({ length: 300 }, (_, i) => `r${i}.test`);
    for (let round = 0; round < 200; round++) {
      now += 31_000;
      for (const n of names) {
        const q = query(n);
        const k = c.key(q, 'udp', true)!;
        if (c.get(k, q) === undefined) c.put(k, q, answer(n, dnsPacket.RECURSION_AVAILABLE, 30 + (round % 7)), c.generation, true);
      }
      // An answer of our own that stays, in every slab: no slab ever empties by itself.
      const own = query(`own${round}.test`);
      c.put(c.key(own, 'udp', true)!, own, answer(`own${round}.test`, dnsPacket.AUTHORITATIVE_ANSWER, 60), c.generation);
    }
    expect(c.size).toBe(500);
    // ~500 entries of ~100 bytes: a few slabs, where ~60,000 puts would fill the 8 MiB budget with dead ones.
    expect(c.heldBytes).toBeLessThanOrEqual(4 * 64 * 1024);
    for (const n of names) {
      const q = query(n);
      expect(dnsPacket.decode(c.get(c.key(q, 'udp', true)!, q)!).answers![0]!.name).toBe(n);
    }
  });
});
