/**
 * Names outside our zones, for clients on the home network: the block lists first, then
 * the caching forwarder. Turns their dns-packet answers into wire bytes for the client:
 * the client's ID and question case, our own OPT record sized for the client (RFC 6891
 * §6.2.3), and TC=1 with an empty answer when a UDP reply would not fit (RFC 1035 §4.2.1).
 */
import dnsPacket from 'dns-packet';
import { Buffer } from 'node:buffer';
import { aclAllows } from './auth/acl.ts';
import type { Blocker } from './blocklist/blocklist.ts';
import type { Forwarder } from './forward/forwarder.ts';
import type { HandlerInfo } from './server/server.ts';
import { labelsToText } from './wire/name.ts';
import type { Query } from './wire/decode.ts';
import { className, typeName } from './wire/constants.ts';

export interface RecursiveOptions {
  allow: () => readonly string[];
  blocker: () => Blocker | undefined;
  /** undefined: no upstreams configured, so such names are REFUSED. */
  forwarder: () => Forwarder | undefined;
  maxUdp?: number;
}

/** The reply for a name that is not ours, or null for REFUSED. */
export function createRecursive(opts: RecursiveOptions) {
  const maxUdp = opts.maxUdp ?? 1232;
  return async function recurse(q: Query, _raw: Buffer, info: HandlerInfo): Promise<Buffer | null> {
    if (!aclAllows(opts.allow(), info.remote.address)) return null;
    if (q.qclass !== 1) return null;
    const question = { name: labelsToText(q.qname).replace(/\.$/, ''), type: typeName(q.qtype), class: className(q.qclass) } as dnsPacket.Question;
    const blocked = opts.blocker()?.check(question, q.id, q.rd);
    let packet: dnsPacket.Packet;
    if (blocked) packet = blocked;
    else {
      const fwd = opts.forwarder();
      if (!fwd) return null;
      packet = await fwd.resolve(question, { id: q.id, rd: q.rd, dnssecOk: q.edns?.do ?? false, cd: q.cd });
    }
    return encodeForClient(packet, q, info.transport, maxUdp);
  };
}

export function encodeForClient(packet: dnsPacket.Packet, q: Query, transport: 'udp' | 'tcp', maxUdp: number): Buffer {
  // dns-packet's types leave OPT out of Answer, so records are handled loosely here.
  const isOpt = (r: { type: string }) => r.type === 'OPT';
  const additionals: dnsPacket.Answer[] = (packet.additionals ?? []).filter((r) => !isOpt(r));
  if (q.edns) additionals.push({ type: 'OPT', name: '.', udpPayloadSize: maxUdp, flags: q.edns.do ? dnsPacket.DNSSEC_OK : 0, options: [] } as unknown as dnsPacket.Answer);
  const out = { ...packet, id: q.id, additionals };
  let bytes = dnsPacket.encode(out);
  // Echo the question exactly as the client wrote it (its case; 0x20 randomisation).
  const qEnd = 12 + q.qname.reduce((n, l) => n + l.length + 1, 1);
  if (q.raw.length >= qEnd && bytes.length >= qEnd) bytes = Buffer.concat([bytes.subarray(0, 12), q.raw.subarray(12, qEnd), bytes.subarray(qEnd)]);
  const limit = transport === 'tcp' ? 65535 : q.edns ? Math.max(512, Math.min(q.edns.udpSize, maxUdp)) : 512;
  if (bytes.length <= limit) return bytes;
  // Too big for UDP: header + question (+ OPT), TC set; the client retries over TCP.
  const tc = dnsPacket.encode({ ...out, answers: [], authorities: [], additionals: additionals.filter(isOpt), flags: (out.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE });
  return Buffer.concat([tc.subarray(0, 12), q.raw.subarray(12, qEnd), tc.subarray(qEnd)]);
}
