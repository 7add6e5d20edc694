/**
 * What the answer engine is asked and gives back: shared by ./answer.ts (lookups) and
 * ./axfr.ts (transfers), which the engine dispatches to, so neither imports the other's
 * types.
 */
import type { Buffer } from 'node:buffer';

export interface AnswerOptions {
  transport: 'udp' | 'tcp';
  /** The client's address (for the AXFR ACL). */
  remote?: string;
  /** Addresses or CIDR prefixes allowed to AXFR/IXFR, e.g. ['127.0.0.1', '192.168.1.0/24']. */
  axfrAllow?: readonly string[];
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
