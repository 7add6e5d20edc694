/**
 * What the answer engine is asked and gives back: shared by ./answer.ts (lookups) and
 * ./axfr.ts (transfers), which the engine dispatches to, so neither imports the other's
 * types.
 */
import type { Buffer } from 'node:buffer';
import type { TransferEntry } from './acl.ts';

export interface AnswerOptions {
  transport: 'udp' | 'tcp';
  /** The client's address (for the AXFR ACL). */
  remote?: string;
  /**
   * Who may AXFR/IXFR: addresses or CIDR prefixes, `key:NAME`, or `{ address, key }`
   * (see acl.ts), e.g. ['127.0.0.1', '192.168.1.0/24', 'key:secondary'].
   */
  axfrAllow?: readonly TransferEntry[];
  /** The TSIG key the request was signed with and that verified (RFC 8945), if any. */
  keyName?: string;
  /** Octets to keep free in each message (for the TSIG record the reply will carry). */
  reserve?: number;
  /** Largest UDP reply we send (default 1232). */
  maxUdp?: number;
  /** Add the apex NS RRset to the authority section of positive answers (default false). */
  authorityNs?: boolean;
}

export type AnswerResult =
  /** One message, or several for a zone transfer (TCP). */
  | { kind: 'reply'; messages: Buffer[] }
  /** The name is in none of our zones: `messages` holds a REFUSED reply; forward instead if you can. */
  | { kind: 'not-ours'; messages: Buffer[] };
