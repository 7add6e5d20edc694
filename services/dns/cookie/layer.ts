/**
 * DNS cookies around the answer engine (cookie.ts does the bytes): a query's COOKIE
 * option is checked and taken out before the query is answered (or cached), and the
 * client's cookie with a server cookie goes into the reply after. Queries this layer
 * answers itself: a malformed COOKIE option (FORMERR, RFC 7873 §5.2.2) and a query with no
 * question (RFC 7873 §5.4). The server secret is made at start-up (16 random bytes):
 * after a restart clients simply learn a new server cookie.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { fitUdp, inspectQuery, RCODE_BADCOOKIE, RCODE_FORMERR, replyServerCookie, serverCookie, shortReply, sipKey, verifyServerCookie, withCookie } from './cookie.ts';

export interface CookieState {
  client: Buffer;
  server: Buffer | undefined;
  /** The query presented a server cookie we made for this client and address, still valid. */
  valid: boolean;
  udpSize: number;
}

export type CookieResult = 'none' | 'malformed' | 'client-only' | 'valid' | 'invalid';

export interface CookieLayer {
  /** The query to answer (without its COOKIE option) and its cookie, or a reply made here. */
  begin(msg: Buffer, address: string): { query: Buffer; state: CookieState | undefined } | { reply: Buffer };
  /** `reply` with the client's cookie and ours; over UDP, truncated if it no longer fits. */
  finish(reply: Buffer, state: CookieState, address: string, transport: 'udp' | 'tcp'): Buffer;
  /** BADCOOKIE with a fresh server cookie, in place of `reply` (sent instead of a rate-limited answer). */
  badCookie(reply: Buffer, state: CookieState, address: string): Buffer;
}

export function createCookieLayer(opts: { now: () => number; secret?: Buffer; onResult?: (r: CookieResult) => void }): CookieLayer {
  const key = sipKey(opts.secret ?? randomBytes(16));
  const seconds = () => Math.floor(opts.now() / 1000);
  return {
    begin(msg, address) {
      const c = inspectQuery(msg);
      if (c.kind === 'none') {
        opts.onResult?.('none');
        return { query: msg, state: undefined };
      }
      if (c.kind === 'malformed') {
        opts.onResult?.('malformed');
        return { reply: shortReply(msg, RCODE_FORMERR) };
      }
      const now = seconds();
      const valid = c.server !== undefined && verifyServerCookie(key, c.client, c.server, address, now);
      opts.onResult?.(valid ? 'valid' : c.server ? 'invalid' : 'client-only');
      const state: CookieState = { client: c.client, server: c.server, valid, udpSize: c.udpSize };
      if (c.qdcount === 0 && !c.signed) {
        // RFC 7873 §5.4: asking for a server cookie only.
        const server = replyServerCookie(key, c.client, c.server, valid, address, now);
        return { reply: shortReply(msg, valid ? 0 : RCODE_BADCOOKIE, { client: c.client, server }) };
      }
      return { query: c.stripped, state };
    },
    finish(reply, state, address, transport) {
      const server = replyServerCookie(key, state.client, state.server, state.valid, address, seconds());
      const out = withCookie(reply, state.client, server);
      if (!out) return reply;
      return transport === 'udp' ? fitUdp(out, state.udpSize, state.client, server) : out;
    },
    badCookie(reply, state, address) {
      return shortReply(reply, RCODE_BADCOOKIE, { client: state.client, server: serverCookie(key, state.client, address, seconds()) });
    },
  };
}
