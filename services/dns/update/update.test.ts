import { describe, expect, it } from 'vitest';
import { parseUpdate } from './parse.ts';
import { applyChanges, memoryStore, processUpdate, type StoredRR, type Change } from './update.ts';
import { grantPolicy } from './policy.ts';
import { createUpdateHandler } from './handler.ts';
import { findTsig, signMessage, verifyMessage, type TsigKey } from '../tsig/tsig.ts';
import { SOA, seedZone, updateMessage, type RRSpec } from './testutil.ts';
import { WireError } from '../wire/error.ts';

const signedBy = { keyName: 'admin' };

function run(prereq: RRSpec[], updates: RRSpec[], records: StoredRR[] = seedZone(), opts: Parameters<typeof processUpdate>[2] = signedBy, zone = 'home.arpa') {
  const store = memoryStore(['home.arpa'], () => records);
  return processUpdate(parseUpdate(updateMessage(zone, prereq, updates)), store, opts);
}

const sortRecs = (rs: StoredRR[]) => rs.map((r) => `${r.name} ${r.ttl} ${r.type} ${JSON.stringify(r.data)}`).sort();

describe('zone section (RFC 2136 §3.1)', () => {
  it('FORMERR unless exactly one SOA entry', () => {
    expect(run([], [], seedZone(), signedBy).rcode).toBe('NOERROR');
    const store = memoryStore(['home.arpa'], seedZone);
    expect(processUpdate(parseUpdate(updateMessage('home.arpa', [], [], 1, 'A')), store, signedBy).rcode).toBe('FORMERR');
    const two = updateMessage('home.arpa', [], []);
    two.writeUInt16BE(2, 4);
    expect(() => parseUpdate(two)).toThrow(WireError);
    const none = updateMessage('home.arpa', [], []);
    none.writeUInt16BE(0, 4);
    expect(() => parseUpdate(none)).toThrow(WireError);
  });

  it('NOTAUTH for a zone we do not serve or a class other than IN', () => {
    expect(run([], [], seedZone(), signedBy, 'example.org').rcode).toBe('NOTAUTH');
    const ch = updateMessage('home.arpa', [], []);
    ch.writeUInt16BE(3, ch.length - 2);
    expect(processUpdate(parseUpdate(ch), memoryStore(['home.arpa'], seedZone), signedBy).rcode).toBe('NOTAUTH');
  });
});

describe('prerequisites (RFC 2136 §3.2)', () => {
  it('name in use / not in use', () => {
    expect(run([{ name: 'www.home.arpa', type: 'ANY', class: 'ANY' }], []).rcode).toBe('NOERROR');
    expect(run([{ name: 'nope.home.arpa', type: 'ANY', class: 'ANY' }], []).rcode).toBe('NXDOMAIN');
    expect(run([{ name: 'www.home.arpa', type: 'ANY', class: 'NONE' }], []).rcode).toBe('YXDOMAIN');
    expect(run([{ name: 'nope.home.arpa', type: 'ANY', class: 'NONE' }], []).rcode).toBe('NOERROR');
  });

  it('RRset exists / does not exist (value-independent)', () => {
    expect(run([{ name: 'www.home.arpa', type: 'A', class: 'ANY' }], []).rcode).toBe('NOERROR');
    expect(run([{ name: 'www.home.arpa', type: 'AAAA', class: 'ANY' }], []).rcode).toBe('NXRRSET');
    expect(run([{ name: 'www.home.arpa', type: 'A', class: 'NONE' }], []).rcode).toBe('YXRRSET');
    expect(run([{ name: 'www.home.arpa', type: 'AAAA', class: 'NONE' }], []).rcode).toBe('NOERROR');
  });

  it('RRset exists (value-dependent): the whole set must match, names case-insensitively', () => {
    const both = [
      { name: 'www.home.arpa', type: 'A', data: '192.168.1.11' },
      { name: 'www.home.arpa', type: 'A', data: '192.168.1.10' },
    ];
    expect(run(both, []).rcode).toBe('NOERROR');
    expect(run(both.slice(0, 1), []).rcode).toBe('NXRRSET');
    expect(run([...both, { name: 'www.home.arpa', type: 'A', data: '192.168.1.12' }], []).rcode).toBe('NXRRSET');
    expect(run([{ name: 'ALIAS.home.arpa', type: 'CNAME', data: 'WWW.Home.Arpa' }], []).rcode).toBe('NOERROR');
    expect(run([{ name: 'mail.home.arpa', type: 'MX', data: { preference: 10, exchange: 'MX.home.arpa' } }], []).rcode).toBe('NOERROR');
    expect(run([{ name: 'mail.home.arpa', type: 'MX', data: { preference: 20, exchange: 'mx.home.arpa' } }], []).rcode).toBe('NXRRSET');
  });

  it('FORMERR for a TTL, RDATA on class ANY/NONE, or another class; NOTZONE outside the zone', () => {
    expect(run([{ name: 'www.home.arpa', type: 'A', class: 'ANY', ttl: 5 }], []).rcode).toBe('FORMERR');
    expect(run([{ name: 'www.home.arpa', type: 'A', class: 'NONE', data: '1.2.3.4' }], []).rcode).toBe('FORMERR');
    expect(run([{ name: 'www.home.arpa', type: 'A', class: 3 }], []).rcode).toBe('FORMERR');
    expect(run([{ name: 'www.example.org', type: 'A', class: 'ANY' }], []).rcode).toBe('NOTZONE');
  });

  it('a failed prerequisite changes nothing', () => {
    const r = run([{ name: 'nope.home.arpa', type: 'ANY', class: 'ANY' }], [{ name: 'x.home.arpa', type: 'A', ttl: 60, data: '10.0.0.1' }]);
    expect(r).toMatchObject({ rcode: 'NXDOMAIN', changes: [] });
  });
});

describe('update pre-scan (RFC 2136 §3.4.1)', () => {
  it('FORMERR for meta types, TTL/RDATA on deletes, unknown classes', () => {
    expect(run([], [{ name: 'x.home.arpa', type: 'ANY', ttl: 60 }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.home.arpa', type: 'AXFR', class: 'ANY' }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.home.arpa', type: 'A', class: 'ANY', ttl: 60 }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.home.arpa', type: 'A', class: 'NONE', ttl: 60, data: '1.2.3.4' }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.home.arpa', type: 'ANY', class: 'NONE' }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.home.arpa', type: 'A', class: 4, data: '1.2.3.4' }]).rcode).toBe('FORMERR');
    expect(run([], [{ name: 'x.example.org', type: 'A', ttl: 60, data: '1.2.3.4' }]).rcode).toBe('NOTZONE');
  });
});

describe('updates (RFC 2136 §3.4.2)', () => {
  const withSerial = (serial: number): Change[] => [
    { op: 'delete', name: 'home.arpa', type: 'SOA', ttl: 3600, data: SOA },
    { op: 'add', name: 'home.arpa', type: 'SOA', ttl: 3600, data: { ...SOA, serial } },
  ];

  it('adds a record and bumps the serial', () => {
    const r = run([], [{ name: 'Laptop.home.arpa', type: 'A', ttl: 60, data: '192.168.1.50' }]);
    expect(r.rcode).toBe('NOERROR');
    expect(r.changes).toEqual([{ op: 'add', name: 'laptop.home.arpa', type: 'A', ttl: 60, data: '192.168.1.50' }, ...withSerial(SOA.serial + 1)]);
  });

  it('a duplicate add changes nothing; a new TTL applies to the whole RRset', () => {
    expect(run([], [{ name: 'www.home.arpa', type: 'A', ttl: 300, data: '192.168.1.10' }]).changes).toEqual([]);
    const r = run([], [{ name: 'www.home.arpa', type: 'A', ttl: 60, data: '192.168.1.12' }]);
    const after = applyChanges(seedZone(), r.changes).filter((x) => x.name === 'www.home.arpa');
    expect(after.map((x) => x.ttl)).toEqual([60, 60, 60]);
  });

  it('CNAME and other data never share a name', () => {
    expect(run([], [{ name: 'alias.home.arpa', type: 'A', ttl: 60, data: '10.0.0.1' }]).changes).toEqual([]);
    expect(run([], [{ name: 'www.home.arpa', type: 'CNAME', ttl: 60, data: 'elsewhere.home.arpa' }]).changes).toEqual([]);
    const r = run([], [{ name: 'alias.home.arpa', type: 'CNAME', ttl: 60, data: 'mail.home.arpa' }]);
    expect(r.changes.slice(0, 2)).toEqual([
      { op: 'delete', name: 'alias.home.arpa', type: 'CNAME', ttl: 300, data: 'www.home.arpa' },
      { op: 'add', name: 'alias.home.arpa', type: 'CNAME', ttl: 60, data: 'mail.home.arpa' },
    ]);
  });

  it('SOA: replaced only at the apex with a larger serial, and then not bumped again', () => {
    const up = run([], [{ name: 'home.arpa', type: 'SOA', ttl: 3600, data: { ...SOA, serial: SOA.serial + 10 } }]);
    expect(up.changes).toEqual(withSerial(SOA.serial + 10));
    expect(run([], [{ name: 'home.arpa', type: 'SOA', ttl: 3600, data: { ...SOA, serial: SOA.serial - 1 } }]).changes).toEqual([]);
    expect(run([], [{ name: 'www.home.arpa', type: 'SOA', ttl: 3600, data: SOA }]).changes).toEqual([]);
    expect(run([], [{ name: 'home.arpa', type: 'SOA', class: 'NONE', data: SOA }]).changes).toEqual([]);
  });

  it('deletes an RRset, a single RR, and everything at a name', () => {
    const rrset = run([], [{ name: 'www.home.arpa', type: 'A', class: 'ANY' }]);
    expect(rrset.changes.filter((c) => c.name === 'www.home.arpa').map((c) => c.op)).toEqual(['delete', 'delete']);
    const one = run([], [{ name: 'www.home.arpa', type: 'A', class: 'NONE', data: '192.168.1.11' }]);
    expect(one.changes[0]).toEqual({ op: 'delete', name: 'www.home.arpa', type: 'A', ttl: 300, data: '192.168.1.11' });
    const all = run([], [{ name: 'mail.home.arpa', type: 'ANY', class: 'ANY' }]);
    expect(all.changes[0]).toMatchObject({ op: 'delete', name: 'mail.home.arpa', type: 'MX' });
    expect(run([], [{ name: 'www.home.arpa', type: 'A', class: 'NONE', data: '10.9.9.9' }]).changes).toEqual([]);
  });

  it('never deletes the apex SOA, the apex NS RRset, or the last apex NS', () => {
    const recs = [...seedZone(), { name: 'home.arpa', type: 'TXT', ttl: 60, data: ['v=spf1 -all'] }];
    const all = run([], [{ name: 'home.arpa', type: 'ANY', class: 'ANY' }], recs);
    expect(all.changes.filter((c) => c.op === 'delete' && c.type !== 'SOA').map((c) => c.type)).toEqual(['TXT']);
    expect(run([], [{ name: 'home.arpa', type: 'NS', class: 'ANY' }]).changes).toEqual([]);
    expect(run([], [{ name: 'home.arpa', type: 'SOA', class: 'ANY' }]).changes).toEqual([]);
    expect(run([], [{ name: 'home.arpa', type: 'NS', class: 'NONE', data: 'ns1.home.arpa' }]).changes).toEqual([]);
    const two = [...seedZone(), { name: 'home.arpa', type: 'NS', ttl: 3600, data: 'ns2.home.arpa' }];
    expect(run([], [{ name: 'home.arpa', type: 'NS', class: 'NONE', data: 'NS1.home.arpa' }], two).changes[0]).toMatchObject({ op: 'delete', type: 'NS', data: 'ns1.home.arpa' });
  });

  it('applies updates in order: add then delete is no change at all', () => {
    const r = run([], [
      { name: 'tmp.home.arpa', type: 'TXT', ttl: 60, data: ['hello'] },
      { name: 'tmp.home.arpa', type: 'TXT', class: 'NONE', data: ['hello'] },
    ]);
    expect(r).toMatchObject({ rcode: 'NOERROR', changes: [] });
  });

  it('applyChanges turns the store into the new zone', () => {
    const r = run([], [
      { name: 'www.home.arpa', type: 'A', class: 'NONE', data: '192.168.1.10' },
      { name: 'new.home.arpa', type: 'AAAA', ttl: 60, data: 'fd00::1' },
    ]);
    const after = applyChanges(seedZone(), r.changes);
    expect(sortRecs(after)).toEqual(sortRecs([
      ...seedZone().filter((x) => !(x.type === 'SOA' || (x.name === 'www.home.arpa' && x.data === '192.168.1.10'))),
      { name: 'home.arpa', type: 'SOA', ttl: 3600, data: { ...SOA, serial: SOA.serial + 1 } },
      { name: 'new.home.arpa', type: 'AAAA', ttl: 60, data: 'fd00::1' },
    ]));
  });
});

describe('authorization (RFC 2136 §3.3)', () => {
  const add = [{ name: 'laptop.dyn.home.arpa', type: 'A', ttl: 60, data: '192.168.1.50' }];
  it('refuses unsigned updates by default', () => {
    expect(run([], add, seedZone(), {}).rcode).toBe('REFUSED');
  });

  it('grantPolicy limits keys to names and types', () => {
    const authorize = grantPolicy([
      { key: 'laptop-key', names: ['*.dyn.home.arpa'], types: ['A', 'AAAA'] },
      { key: 'admin', names: ['@', '*.home.arpa'] },
    ]);
    expect(run([], add, seedZone(), { keyName: 'laptop-key', authorize }).rcode).toBe('NOERROR');
    expect(run([], [{ ...add[0], type: 'TXT', data: ['x'] }], seedZone(), { keyName: 'laptop-key', authorize }).rcode).toBe('REFUSED');
    expect(run([], [{ ...add[0], name: 'www.home.arpa' }], seedZone(), { keyName: 'laptop-key', authorize }).rcode).toBe('REFUSED');
    expect(run([], add, seedZone(), { keyName: 'stranger', authorize }).rcode).toBe('REFUSED');
    expect(run([], add, seedZone(), { keyName: 'admin', authorize }).rcode).toBe('NOERROR');
    // SOA/NS need an explicit grant.
    expect(run([], [{ name: 'home.arpa', type: 'NS', ttl: 60, data: 'ns2.home.arpa' }], seedZone(), { keyName: 'admin', authorize }).rcode).toBe('REFUSED');
    expect(run([], add, seedZone(), { authorize }).rcode).toBe('REFUSED');
  });
});

describe('hostile UPDATE input', () => {
  it('truncated and corrupted messages only ever raise WireError', () => {
    const msg = updateMessage('home.arpa', [{ name: 'www.home.arpa', type: 'A', class: 'ANY' }], [
      { name: 'mail.home.arpa', type: 'MX', ttl: 60, data: { preference: 5, exchange: 'mx2.home.arpa' } },
      { name: 'txt.home.arpa', type: 'TXT', ttl: 60, data: ['a', 'b'] },
      { name: 'home.arpa', type: 'SOA', ttl: 60, data: SOA },
    ]);
    const store = memoryStore(['home.arpa'], seedZone);
    for (let cut = 0; cut < msg.length; cut++) {
      expect(() => parseUpdate(msg.subarray(0, cut))).toThrow(WireError);
    }
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let n = 0; n < 3000; n++) {
      const b = Buffer.from(msg);
      for (let k = 0; k < 2; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        processUpdate(parseUpdate(b), store, signedBy);
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
      }
    }
  });
});

describe('createUpdateHandler', () => {
  const key: TsigKey = { name: 'admin', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 5) };
  const NOW = 1_750_000_000_000;

  function setup(commitFails = false) {
    let records = seedZone();
    const commits: Change[][] = [];
    const handler = createUpdateHandler({
      store: memoryStore(['home.arpa'], () => records),
      keys: [key],
      now: () => NOW,
      async run({ changes }) {
        if (commitFails) throw new Error('disk full');
        commits.push(changes);
        records = applyChanges(records, changes);
      },
    });
    return { handler, commits, records: () => records };
  }
  const rcodeOf = (b: Buffer) => b.readUInt16BE(2) & 0xf;
  const add = updateMessage('home.arpa', [], [{ name: 'x.home.arpa', type: 'A', ttl: 60, data: '10.0.0.1' }]);

  it('applies a signed update, signs the answer, and answers a replay without re-applying', async () => {
    const { handler, commits, records } = setup();
    const req = signMessage(add, key, { now: NOW });
    const resp = (await handler.handle(req.bytes))!;
    expect(rcodeOf(resp)).toBe(0);
    expect(resp.readUInt16BE(0)).toBe(0x2136);
    expect(verifyMessage(resp, [key], { now: NOW, requestMac: req.mac }).ok).toBe(true);
    expect(records().some((r) => r.name === 'x.home.arpa')).toBe(true);
    const again = (await handler.handle(req.bytes))!;
    expect(again.equals(resp)).toBe(true);
    expect(commits).toHaveLength(1);
  });

  it('REFUSED unsigned, NOTAUTH+BADSIG for a wrong secret, NOTAUTH+BADTIME for an old request', async () => {
    const { handler, commits } = setup();
    expect(rcodeOf((await handler.handle(add))!)).toBe(5);
    const wrong = signMessage(add, { ...key, secret: Buffer.alloc(32, 6) }, { now: NOW }).bytes;
    const r1 = (await handler.handle(wrong))!;
    expect(rcodeOf(r1)).toBe(9);
    expect(findTsig(r1)).toMatchObject({ error: 16, mac: Buffer.alloc(0) });
    const old = signMessage(add, key, { now: NOW - 3_600_000 });
    const r2 = (await handler.handle(old.bytes))!;
    expect(rcodeOf(r2)).toBe(9);
    expect(findTsig(r2)!.error).toBe(18);
    expect(verifyMessage(r2, [key], { now: NOW, requestMac: old.mac }).ok).toBe(true);
    expect(commits).toHaveLength(0);
  });

  it('FORMERR for garbage, nothing for runts and responses, SERVFAIL when commit fails', async () => {
    const { handler } = setup();
    const garbage = Buffer.concat([add.subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]);
    expect(rcodeOf((await handler.handle(signMessage(garbage, key, { now: NOW }).bytes))!)).toBe(1);
    expect(await handler.handle(Buffer.alloc(5))).toBeUndefined();
    const resp = Buffer.from(add);
    resp[2] |= 0x80;
    expect(await handler.handle(resp)).toBeUndefined();
    // A TSIG RR with garbage RDATA, and one that is not the last record.
    const signed = signMessage(add, key, { now: NOW }).bytes;
    const tsigStart = findTsig(signed)!.start;
    const junkTsig = Buffer.concat([signed.subarray(0, tsigStart + 'admin'.length + 2 + 8), Buffer.from([0, 5, 1, 2, 3, 4, 5])]);
    expect(rcodeOf((await handler.handle(junkTsig))!)).toBe(1);
    const notLast = Buffer.concat([signed, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4])]);
    notLast.writeUInt16BE(notLast.readUInt16BE(10) + 1, 10);
    expect(rcodeOf((await handler.handle(notLast))!)).toBe(1);
    // The zone is echoed in error responses when it could be read.
    const refused = (await handler.handle(add))!;
    expect(refused.readUInt16BE(4)).toBe(1);
    const failing = setup(true);
    expect(rcodeOf((await failing.handler.handle(signMessage(add, key, { now: NOW }).bytes))!)).toBe(2);
  });
});
