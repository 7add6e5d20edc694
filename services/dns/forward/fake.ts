// A fake upstream `send` for tests: decodes the query, asks a script for the answer, and
// records every query it saw. The script may return a packet, raw bytes, or 'hang'.
import dnsPacket from 'dns-packet';
import { decodeResponse, rcodeBits, type DecodedResponse, type Send, type Upstream } from './forwarder.ts';

export type FakeReply = dnsPacket.Packet | Buffer | 'hang' | 'reject';

export interface FakeUpstream {
  send: Send;
  queries: { upstream: Upstream; query: DecodedResponse }[];
}

export function fakeUpstream(script: (q: DecodedResponse, upstream: Upstream) => FakeReply | Promise<FakeReply>): FakeUpstream {
  const queries: FakeUpstream['queries'] = [];
  const send: Send = async (upstream, bytes) => {
    const query = decodeResponse(bytes);
    queries.push({ upstream, query });
    const reply = await script(query, upstream);
    if (reply === 'hang') return new Promise<Buffer>(() => {});
    if (reply === 'reject') throw new Error('connection refused');
    return Buffer.isBuffer(reply) ? reply : dnsPacket.encode(reply);
  };
  return { send, queries };
}

/** A well-formed answer to `q` with the given records and rcode. */
export function answer(q: DecodedResponse, rest: Partial<dnsPacket.Packet> & { rcode?: string } = {}): dnsPacket.Packet {
  const flags = dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED | rcodeBits(rest.rcode ?? 'NOERROR') | (rest.flags ?? 0);
  return { type: 'response', id: q.id, questions: q.questions, answers: [], authorities: [], additionals: [], ...rest, flags } as dnsPacket.Packet;
}
