/**
 * Glue from bytes to the answer engine: decode (wire/decode.ts), TSIG on every message
 * (RFC 8945), answer (./answer.ts), and the choice to forward names we do not serve. This
 * is the `handler` for server/server.ts; zones, keys and the ACL are read through functions
 * so a config push can swap them live.
 *
 * TSIG (RFC 8945 §5.2): a signed QUERY or NOTIFY (AXFR and IXFR included) is verified
 * before anything else. An unknown key or algorithm gets NOTAUTH with an unsigned TSIG
 * carrying BADKEY, a MAC that does not verify NOTAUTH with BADSIG (§5.3.2), a time outside
 * the fudge NOTAUTH with BADTIME, signed; a malformed or misplaced TSIG FORMERR. A request
 * that verifies gets a signed reply (§5.3), every message of a zone transfer signed, each
 * after the first over the prior MAC (§5.3.1). UPDATE does its own TSIG (update/handler.ts).
 */
import type { Buffer } from 'node:buffer';
import { decodeQuery, type Query } from '../wire/decode.ts';
import { OPCODE, RCODE } from '../wire/constants.ts';
import { headerOnlyReply } from '../wire/writer.ts';
import type { ZoneSet } from '../zone/zone.ts';
import type { DnsHandler, HandlerInfo } from '../server/server.ts';
import { appendErrorTsig, signMessage, tsigSize, verifyMessage, type KeyLookup, type TsigKey } from '../tsig/tsig.ts';
import { answer } from './answer.ts';
import type { TransferEntry } from './acl.ts';
import { encodeResponse, sizeLimit } from './encode.ts';

export interface AuthHandlerOptions {
  zones: () => ZoneSet;
  /** Who may transfer: addresses, prefixes, `key:NAME`, `{ address, key }` (see acl.ts). */
  axfrAllow?: () => readonly TransferEntry[];
  /** TSIG keys (dns/keys/*.key); none: every signed request gets BADKEY. */
  keys?: () => KeyLookup;
  /** The clock for TSIG (milliseconds); default Date.now. */
  now?: () => number;
  maxUdp?: number;
  /** See AnswerOptions.authorityNs. */
  authorityNs?: boolean;
  /** Queries we cannot answer (not our zone). Return a reply to send it instead of REFUSED. */
  notOurs?: (query: Query, raw: Buffer, info: HandlerInfo) => Promise<Buffer | null>;
  /** Other opcodes (NOTIFY, UPDATE): return a reply, or undefined to get NOTIMP. */
  otherOpcode?: (query: Query, raw: Buffer, info: HandlerInfo) => Promise<Buffer | null | undefined>;
}

export function createAuthHandler(opts: AuthHandlerOptions): DnsHandler {
  const now = opts.now ?? Date.now;
  return async (raw, info) => {
    const d = decodeQuery(raw);
    if (!d.ok) return d.reply;
    const q = d.query;
    if (q.opcode === OPCODE.UPDATE && opts.otherOpcode) {
      const r = await opts.otherOpcode(q, raw, info);
      if (r !== undefined) return r;
    }

    let signer: { key: TsigKey; mac: Buffer } | undefined;
    if (q.opcode !== OPCODE.UPDATE && q.signed) {
      const t = now();
      const v = verifyMessage(raw, opts.keys?.() ?? [], { now: t });
      if (!v.ok && v.error !== 'UNSIGNED') {
        const limit = sizeLimit(q, info.transport, opts.maxUdp);
        if (v.error === 'FORMERR' || !v.tsig) return headerOnlyReply(q.id, q.opcode, q.rd, RCODE.FORMERR);
        const base = encodeResponse(q, { answer: [], authority: [], additional: [] }, { rcode: RCODE.NOTAUTH, aa: false, limit });
        if (v.error === 'BADTIME' && v.key) return signMessage(base, v.key, { now: t, requestMac: v.tsig.mac, error: 'BADTIME' }).bytes;
        return appendErrorTsig(base, v.tsig, v.error === 'BADKEY' ? 'BADKEY' : 'BADSIG', t);
      }
      if (v.ok) signer = { key: v.key, mac: v.mac };
    }
    const sign = (messages: Buffer[]): Buffer[] => {
      if (!signer) return messages;
      const t = now();
      let prior = signer.mac;
      return messages.map((m, i) => {
        const s = signMessage(m, signer!.key, { now: t, requestMac: prior, subsequent: i > 0 });
        prior = s.mac;
        return s.bytes;
      });
    };
    const out = (messages: Buffer[]): Buffer | Buffer[] =>
      info.transport === 'udp' || messages.length === 1 ? sign(messages.slice(0, 1))[0] : sign(messages);

    if (q.opcode !== OPCODE.QUERY && opts.otherOpcode) {
      const r = await opts.otherOpcode(q, raw, info);
      if (r !== undefined) return r === null ? null : out([r]);
    }
    const r = answer(opts.zones(), q, {
      transport: info.transport,
      remote: info.remote.address,
      axfrAllow: opts.axfrAllow?.() ?? [],
      keyName: signer?.key.name,
      reserve: signer ? tsigSize(signer.key) : 0,
      maxUdp: opts.maxUdp,
      authorityNs: opts.authorityNs,
    });
    if (r.kind === 'not-ours' && opts.notOurs) {
      const fwd = await opts.notOurs(q, raw, info);
      if (fwd) return out([fwd]);
    }
    return out(r.messages);
  };
}
