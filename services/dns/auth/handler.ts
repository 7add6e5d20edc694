/**
 * Glue from bytes to the answer engine: decode (wire/decode.ts), answer (./answer.ts),
 * and the choice to forward names we do not serve. This is the `handler` for
 * server/server.ts; zones and the ACL are read through functions so a config push can swap
 * them live.
 */
import type { Buffer } from 'node:buffer';
import { decodeQuery, type Query } from '../wire/decode.ts';
import type { ZoneSet } from '../zone/zone.ts';
import type { DnsHandler, HandlerInfo } from '../server/server.ts';
import { answer } from './answer.ts';

export interface AuthHandlerOptions {
  zones: () => ZoneSet;
  axfrAllow?: () => readonly string[];
  maxUdp?: number;
  /** See AnswerOptions.authorityNs. */
  authorityNs?: boolean;
  /** Queries we cannot answer (not our zone). Return a reply to send it instead of REFUSED. */
  notOurs?: (query: Query, raw: Buffer, info: HandlerInfo) => Promise<Buffer | null>;
  /** Other opcodes (NOTIFY, UPDATE): return a reply, or undefined to get NOTIMP. */
  otherOpcode?: (query: Query, raw: Buffer, info: HandlerInfo) => Promise<Buffer | null | undefined>;
}

export function createAuthHandler(opts: AuthHandlerOptions): DnsHandler {
  return async (raw, info) => {
    const d = decodeQuery(raw);
    if (!d.ok) return d.reply;
    const q = d.query;
    if (q.opcode !== 0 && opts.otherOpcode) {
      const r = await opts.otherOpcode(q, raw, info);
      if (r !== undefined) return r;
    }
    const r = answer(opts.zones(), q, {
      transport: info.transport,
      remote: info.remote.address,
      axfrAllow: opts.axfrAllow?.() ?? [],
      maxUdp: opts.maxUdp,
      authorityNs: opts.authorityNs,
    });
    if (r.kind === 'not-ours' && opts.notOurs) {
      const fwd = await opts.notOurs(q, raw, info);
      if (fwd) return fwd;
    }
    return info.transport === 'udp' ? r.messages[0] : r.messages.length === 1 ? r.messages[0] : r.messages;
  };
}
