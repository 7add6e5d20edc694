import { describe, expect, it } from 'vitest';
import * as dnsPacket from 'dns-packet';
import { parseZone } from '../zone/parse.ts';
import { ZoneSet } from '../zone/zone.ts';
import { decodeQuery } from '../wire/decode.ts';
import { answer, type AnswerOptions } from './answer.ts';
import { aclAllows } from './acl.ts';
import { buildNotify, isNotifyAck } from './notify.ts';

const ZONE = `$TTL 3600
@ SOA ns1 hostmaster 5 7200 3600 1209600 120
  NS ns1
  NS ns.other.test.
  MX 10 mail
ns1 A 192.0.2.1
mail A 192.0.2.2
mail AAAA 2001:db8::2
www CNAME web
web A 192.0.2.3
loop1 CNAME loop2
loop2 CNAME loop1
out CNAME www.example.org.
toother CNAME host.other.test.
*.w A 192.0.2.4
*.w MX 5 mail
x.*.e TXT "below a wildcard"
deleg NS ns.deleg
deleg NS ns1
ns.deleg A 192.0.2.5
`;
const OTHER = `$TTL 60
@ SOA ns hostmaster 1 1 1 1 30
  NS ns
ns A 192.0.2.9
`;

function zones(): ZoneSet {
  const a = parseZone(ZONE, { origin: 'auth.test', file: 'a' });
  const b = parseZone(OTHER, { origin: 'other.test', file: 'b' });
  if (!a.ok || !b.ok) throw new Error('fixture');
  return new ZoneSet([a.zone, b.zone]);
}
const ZS = zones();

function ask(name: string, type: string, o: Partial<AnswerOptions> & { edns?: number | false; version?: number } = {}) {
  const raw = dnsPacket.encode({
    id: 4242, type: 'query', flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as 'A', class: 'IN' }],
    additionals: o.edns === false ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: o.edns ?? 1232, ednsVersion: o.version ?? 0 } as dnsPacket.Answer],
  });
  const d = decodeQuery(raw);
  if (!d.ok) throw new Error(d.reason);
  const r = answer(ZS, d.query, { transport: 'udp', remote: '127.0.0.1', ...o });
  return { ...r, msgs: r.messages.map((m) => dnsPacket.decode(m)), sizes: r.messages.map((m) => m.length) };
}
const rcode = (p: dnsPacket.Packet) => (p as { rcode?: string }).rcode;
const rr = (list: dnsPacket.Answer[] | undefined) => (list ?? []).filter((a) => a.type !== 'OPT').map((a) => `${a.name} ${a.type} ${'ttl' in a ? a.ttl : ''} ${JSON.stringify((a as { data?: unknown }).data)}`);

describe('answer', () => {
  it('exact match, AA, question case echoed, RD echoed', () => {
    const { msgs } = ask('WEB.Auth.Test', 'A');
    const p = msgs[0];
    expect(p.flags! & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(p.flags! & dnsPacket.RECURSION_DESIRED).toBeTruthy();
    expect(p.questions![0].name).toBe('WEB.Auth.Test');
    expect(rr(p.answers)).toEqual(['WEB.Auth.Test A 3600 "192.0.2.3"']);
  });

  it('NXDOMAIN and NODATA carry the SOA with TTL min(SOA TTL, MINIMUM)', () => {
    const nx = ask('nope.auth.test', 'A').msgs[0];
    expect(rcode(nx)).toBe('NXDOMAIN');
    expect(nx.authorities![0]).toMatchObject({ type: 'SOA', ttl: 120 });
    const nd = ask('web.auth.test', 'TXT').msgs[0];
    expect(rcode(nd)).toBe('NOERROR');
    expect(nd.answers!.length).toBe(0);
    expect(nd.authorities![0]).toMatchObject({ type: 'SOA', ttl: 120 });
  });

  it('CNAME chains: followed in zone and across served zones; loops and foreign targets stop', () => {
    expect(rr(ask('www.auth.test', 'A').msgs[0].answers).map((l) => l.split(' ')[1])).toEqual(['CNAME', 'A']);
    const x = ask('toother.auth.test', 'A').msgs[0];
    expect(rcode(x)).toBe('NXDOMAIN'); // RFC 6604: the last name decides
    expect(x.authorities![0].name).toBe('other.test');
    expect(ask('loop1.auth.test', 'A').msgs[0].answers!.length).toBe(2);
    const out = ask('out.auth.test', 'A').msgs[0];
    expect(rcode(out)).toBe('NOERROR');
    expect(out.answers!.length).toBe(1);
  });

  it('wildcards: synthesis, additional data, ENT wildcard gives NODATA, no match below an existing name', () => {
    const w = ask('a.b.w.auth.test', 'MX').msgs[0];
    expect(rr(w.answers)).toEqual(['a.b.w.auth.test MX 3600 {"preference":5,"exchange":"mail.auth.test"}']);
    expect(w.additionals!.filter((a) => a.type !== 'OPT').map((a) => a.type)).toEqual(['A', 'AAAA']);
    const ent = ask('q.e.auth.test', 'TXT').msgs[0]; // *.e exists only as an empty non-terminal
    expect(rcode(ent)).toBe('NOERROR');
    expect(ent.answers!.length).toBe(0);
    expect(rcode(ask('x.q.e.auth.test', 'TXT').msgs[0])).toBe('NOERROR'); // closest encloser e, *.e exists
    expect(rcode(ask('nope.ns1.auth.test', 'A').msgs[0])).toBe('NXDOMAIN');
  });

  it('delegation: referral without AA, NS in authority, glue in additional', () => {
    const r = ask('host.deleg.auth.test', 'A').msgs[0];
    expect(r.flags! & dnsPacket.AUTHORITATIVE_ANSWER).toBeFalsy();
    expect(r.answers!.length).toBe(0);
    expect(r.authorities!.map((a) => a.type)).toEqual(['NS', 'NS']);
    expect(rr(r.additionals)).toContain('ns.deleg.auth.test A 3600 "192.0.2.5"');
  });

  it('minimal ANY, REFUSED for foreign names as not-ours, REFUSED for CH class', () => {
    const any = ask('auth.test', 'ANY').msgs[0];
    expect(any.answers!.map((a) => a.type)).toEqual(['SOA']);
    const foreign = ask('example.org', 'A');
    expect(foreign.kind).toBe('not-ours');
    expect(rcode(foreign.msgs[0])).toBe('REFUSED');
  });

  it('EDNS: OPT echoed with our size; BADVERS for version 1; no OPT without EDNS', () => {
    const p = ask('web.auth.test', 'A', { edns: 4096 }).msgs[0];
    const opt = p.additionals!.find((a) => a.type === 'OPT') as unknown as { udpPayloadSize: number };
    expect(opt.udpPayloadSize).toBe(1232);
    const bad = ask('web.auth.test', 'A', { version: 1 });
    const badOpt = bad.msgs[0].additionals!.find((a) => a.type === 'OPT') as unknown as { extendedRcode: number };
    expect(badOpt.extendedRcode).toBe(1); // 16 >> 4
    expect(ask('web.auth.test', 'A', { edns: false }).msgs[0].additionals!.length).toBe(0);
  });

  it('AXFR: ACL, TCP only, SOA first and last, split into several messages when large', () => {
    let big = ZONE;
    for (let i = 0; i < 3000; i++) big += `h${i} A 10.0.${i >> 8}.${i & 255}\n`;
    const z = parseZone(big, { origin: 'auth.test', file: 'a' });
    if (!z.ok) throw new Error('big');
    const zs = new ZoneSet([z.zone]);
    const q = decodeQuery(dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'auth.test', type: 'AXFR' }] }));
    if (!q.ok) throw new Error('q');
    const denied = answer(zs, q.query, { transport: 'tcp', remote: '192.0.2.77', axfrAllow: ['127.0.0.1'] });
    expect(rcode(dnsPacket.decode(denied.messages[0]))).toBe('REFUSED');
    const udp = answer(zs, q.query, { transport: 'udp', remote: '127.0.0.1', axfrAllow: ['127.0.0.1'] });
    expect(rcode(dnsPacket.decode(udp.messages[0]))).toBe('NOTIMP');
    const ok = answer(zs, q.query, { transport: 'tcp', remote: '::ffff:127.0.0.1', axfrAllow: ['127.0.0.0/8'] });
    expect(ok.messages.length).toBeGreaterThan(2);
    const all = ok.messages.flatMap((m) => dnsPacket.decode(m).answers!);
    expect(all[0].type).toBe('SOA');
    expect(all[all.length - 1].type).toBe('SOA');
    expect(all.length).toBe(3000 + 19 + 1);
    for (const m of ok.messages) expect(m.length).toBeLessThanOrEqual(65535);
  });

  it('ACL matching', () => {
    expect(aclAllows(['192.168.1.0/24'], '192.168.1.9')).toBe(true);
    expect(aclAllows(['192.168.1.0/24'], '192.168.2.9')).toBe(false);
    expect(aclAllows(['fd00::/8'], 'fd12::1')).toBe(true);
    expect(aclAllows(['bogus', '10.0.0.0/99'], '10.0.0.1')).toBe(false);
    expect(aclAllows([], undefined)).toBe(false);
  });

  it('truncation: whole RRsets, TC set, never over the limit', () => {
    let big = ZONE;
    for (let i = 0; i < 80; i++) big += `many A 10.0.0.${i}\n`;
    const z = parseZone(big, { origin: 'auth.test', file: 'a' });
    if (!z.ok) throw new Error('big');
    const zs = new ZoneSet([z.zone]);
    for (const [edns, limit] of [[false, 512], [512, 512], [1232, 1232], [4096, 1232], [100, 512]] as const) {
      const raw = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'many.auth.test', type: 'A' }],
        additionals: edns === false ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: edns } as dnsPacket.Answer] });
      const q = decodeQuery(raw);
      if (!q.ok) throw new Error('q');
      const r = answer(zs, q.query, { transport: 'udp' });
      expect(r.messages[0].length).toBeLessThanOrEqual(limit);
      const p = dnsPacket.decode(r.messages[0]);
      expect(p.flags! & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
      expect(p.answers!.length).toBe(0);
      const tcp = answer(zs, q.query, { transport: 'tcp' });
      expect(dnsPacket.decode(tcp.messages[0]).answers!.length).toBe(80);
    }
  });

  it('NOTIFY packet', () => {
    const n = buildNotify(ZS.get('auth.test')!, 77);
    const p = dnsPacket.decode(n);
    expect((p as { opcode?: string }).opcode).toBe('NOTIFY');
    expect(p.questions![0]).toMatchObject({ name: 'auth.test', type: 'SOA' });
    expect(p.answers![0].type).toBe('SOA');
    const ack = Buffer.from(n.subarray(0, 12));
    ack.writeUInt16BE(0x8000 | (4 << 11) | 0x0400, 2);
    expect(isNotifyAck(ack, 77)).toBe(true);
    expect(isNotifyAck(ack, 78)).toBe(false);
  });
});
