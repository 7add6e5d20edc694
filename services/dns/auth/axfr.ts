/**
 * Zone transfer out: AXFR (RFC 5936) and IXFR answered with a full transfer (RFC 1995 §4).
 *
 * TCP only (RFC 5936 §4.2); only clients in the ACL; the answer is SOA, every other RRset,
 * SOA again, split over as many messages as needed (§2.2), the question in the first only.
 */
import { Buffer } from 'node:buffer';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Query } from '../wire/decode.ts';
import { FLAG, RCODE, TYPE } from '../wire/constants.ts';
import { MessageWriter } from '../wire/writer.ts';
import type { ZoneSet } from '../zone/zone.ts';
import { encodeResponse, type Sections } from './encode.ts';
import type { AnswerOptions, AnswerResult } from './answer.ts';

/** Soft size of one transfer message: well under 65535, as BIND and NSD do. */
const TRANSFER_CHUNK = 16 * 1024;

export function transfer(zones: ZoneSet, q: Query, opts: AnswerOptions, limit: number, udpSize: number): AnswerResult {
  const none: Sections = { answer: [], authority: [], additional: [] };
  const reply = (rcode: number, s: Sections = none, aa = false): AnswerResult =>
    ({ kind: 'reply', messages: [encodeResponse(q, s, { rcode, aa, limit, udpSize })] });
  // AXFR has no UDP form (RFC 5936 §4.2): NOTIMP, as NSD answers.
  if (opts.transport === 'udp' && q.qtype === TYPE.AXFR) return reply(RCODE.NOTIMP);
  const zone = zones.find(q.qkey);
  if (!zone) return { kind: 'not-ours', messages: reply(RCODE.REFUSED).messages };
  if (zone.origin !== q.qkey) return reply(RCODE.NOTAUTH);
  if (!aclAllows(opts.axfrAllow ?? [], opts.remote)) return reply(RCODE.REFUSED);
  const soa = { labels: zone.soa.labels, type: TYPE.SOA, ttl: zone.soa.ttl, rdata: zone.soa.rdata };
  if (opts.transport === 'udp') {
    // IXFR over UDP may be answered with the current SOA alone (RFC 1995 §2).
    return reply(RCODE.NOERROR, { ...none, answer: [soa] }, true);
  }

  const messages: Buffer[] = [];
  let w = start(q, true);
  const flush = () => { messages.push(w.finish()); w = start(q, false); };
  const put = (labels: Buffer[], type: number, ttl: number, rdata: Buffer) => {
    const m = w.mark();
    w.rr(1, labels, type, 1, ttl, rdata);
    if (w.off > TRANSFER_CHUNK && w.counts[1] > 1) {
      w.rollback(m);
      flush();
      w.rr(1, labels, type, 1, ttl, rdata);
    }
  };
  put(soa.labels, TYPE.SOA, soa.ttl, soa.rdata[0]);
  for (const rs of zone.rrsets()) {
    if (rs.type === TYPE.SOA && rs.owner === zone.origin) continue;
    for (const rd of rs.rdata) put(rs.labels, rs.type, rs.ttl, rd);
  }
  put(soa.labels, TYPE.SOA, soa.ttl, soa.rdata[0]);
  messages.push(w.finish());
  return { kind: 'reply', messages };
}

function start(q: Query, withQuestion: boolean): MessageWriter {
  const w = new MessageWriter();
  w.header(q.id, FLAG.QR | FLAG.AA | (q.flags & FLAG.RD));
  if (withQuestion) w.question(q.qname, q.qtype, q.qclass);
  return w;
}

/** Does an ACL of addresses and CIDR prefixes allow `remote`? IPv4-mapped IPv6 counts as IPv4. */
// An ACL changes only with the config (a new array): build its BlockList once, not per query.
const ACL_LISTS = new WeakMap<readonly string[], BlockList>();

export function aclAllows(acl: readonly string[], remote: string | undefined): boolean {
  if (!remote) return false;
  const addr = remote.startsWith('::ffff:') && isIPv4(remote.slice(7)) ? remote.slice(7) : remote;
  const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
  if (!family) return false;
  const cached = ACL_LISTS.get(acl);
  if (cached) return cached.check(addr, family);
  const list = new BlockList();
  ACL_LISTS.set(acl, list);
  for (const entry of acl) {
    const [net, len] = entry.split('/');
    const fam = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : null;
    if (!fam) continue;
    if (len === undefined) list.addAddress(net, fam);
    else if (/^[0-9]+$/.test(len) && Number(len) <= (fam === 'ipv4' ? 32 : 128)) list.addSubnet(net, Number(len), fam);
  }
  return list.check(addr, family);
}
