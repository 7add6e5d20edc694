/**
 * Zone transfer out: AXFR (RFC 5936) and IXFR answered with a full transfer (RFC 1995 §4).
 *
 * TCP only (RFC 5936 §4.2); only clients in the ACL; the answer is SOA, every other RRset,
 * SOA again, split over as many messages as needed (§2.2), the question in the first only.
 */
import { Buffer } from 'node:buffer';
import type { Query } from '../wire/decode.ts';
import { FLAG, RCODE, TYPE } from '../wire/constants.ts';
import { MessageWriter } from '../wire/writer.ts';
import type { ZoneSet } from '../zone/zone.ts';
import { encodeResponse, type Sections } from './encode.ts';
import { transferAllows } from './acl.ts';
import type { AnswerOptions, AnswerResult } from './result.ts';

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
  if (!transferAllows(opts.axfrAllow ?? [], opts.remote, opts.keyName)) return reply(RCODE.REFUSED);
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
