/**
 * The block list as the DNS server uses it: load the list files from the config tree,
 * decide whether a question is blocked, and build the answer.
 *
 * Answers (what Pi-hole calls the blocking mode):
 *  - 'nxdomain': NXDOMAIN (RFC 1035 §4.1.1 rcode 3), no records.
 *  - 'null-ip': A → 0.0.0.0, AAAA → ::, any other type → NOERROR with no data (NODATA,
 *    RFC 2308 §2.2), so clients fail fast without retrying other record types.
 * Answers are not authoritative (AA clear) and carry RA, like the forwarder's.
 *
 * Config layout: every `*.txt`, `*.list` or `*.hosts` file in the folder is one list, named
 * after the file; `allow.txt` is the allow list. Bad lines are issues, never fatal.
 */
import type dnsPacket from 'dns-packet';
import type { ConfigIssue, ConfigSource } from '../../../platform/config/spec.ts';
import { createMatcher, parseAllowList, type BlockList, type Matcher } from './matcher.ts';
import { parseList } from './parse.ts';

export type BlockMode = 'nxdomain' | 'null-ip';

export interface BlockAnswerOptions {
  mode: BlockMode;
  /** TTL of the 0.0.0.0 / :: records. Default 60 s. */
  ttl?: number;
}

const RD = 1 << 8;
const RA = 1 << 7;
const QR_FLAGS = RA;

/** The response to a blocked question, with the client's ID and question. */
export function blockedResponse(question: dnsPacket.Question, id: number, opts: BlockAnswerOptions & { rd?: boolean }): dnsPacket.Packet {
  const flags = QR_FLAGS | ((opts.rd ?? true) ? RD : 0);
  const base = { type: 'response' as const, id, questions: [question], answers: [] as dnsPacket.Answer[], authorities: [], additionals: [] };
  if (opts.mode === 'nxdomain') return { ...base, flags: flags | 3, rcode: 'NXDOMAIN' } as dnsPacket.Packet;
  const ttl = opts.ttl ?? 60;
  if (question.type === 'A') base.answers.push({ type: 'A', name: question.name, ttl, data: '0.0.0.0' });
  if (question.type === 'AAAA') base.answers.push({ type: 'AAAA', name: question.name, ttl, data: '::' });
  return { ...base, flags, rcode: 'NOERROR' } as dnsPacket.Packet;
}

export interface LoadedBlocklists {
  lists: BlockList[];
  allow: { exact: string[]; wildcard: string[] };
  /** Problems found while reading (bad lines); warnings only. */
  issues: ConfigIssue[];
}

const LIST_FILE = /\.(txt|list|hosts)$/;

/** Reads every list file under `dir` (e.g. 'dns/blocklists'). Never throws. */
export async function loadBlocklists(source: ConfigSource, dir: string): Promise<LoadedBlocklists> {
  const out: LoadedBlocklists = { lists: [], allow: { exact: [], wildcard: [] }, issues: [] };
  const base = dir.replace(/\/$/, '');
  let entries: string[];
  try {
    entries = await source.list(base);
  } catch (e) {
    out.issues.push({ file: base, message: `cannot list: ${e instanceof Error ? e.message : e}` });
    return out;
  }
  for (const entry of entries.filter((e) => !e.endsWith('/') && LIST_FILE.test(e)).sort()) {
    const file = `${base}/${entry}`;
    let text: string | undefined;
    try {
      text = await source.read(file);
    } catch (e) {
      out.issues.push({ file, message: `cannot read: ${e instanceof Error ? e.message : e}` });
      continue;
    }
    if (text === undefined) continue;
    if (entry === 'allow.txt') {
      const a = parseAllowList(text, file);
      out.allow.exact.push(...a.exact);
      out.allow.wildcard.push(...a.wildcard);
      out.issues.push(...a.issues);
    } else {
      const p = parseList(text, file);
      out.lists.push({ name: entry.replace(LIST_FILE, ''), domains: p.domains });
      out.issues.push(...p.issues);
    }
  }
  return out;
}

export interface Blocker {
  /** The blocked response for this question, or undefined to resolve it normally. */
  check(question: dnsPacket.Question, id: number, rd?: boolean): dnsPacket.Packet | undefined;
  lookup: Matcher['lookup'];
  /** Hits so far per list (also reported one by one through onHit). */
  hits(): Record<string, number>;
  readonly size: number;
}

export function createBlocker(loaded: Pick<LoadedBlocklists, 'lists' | 'allow'>, opts: BlockAnswerOptions & { onHit?: (list: string, name: string) => void }): Blocker {
  const matcher = createMatcher(loaded.lists, loaded.allow);
  const counts: Record<string, number> = Object.fromEntries(loaded.lists.map((l) => [l.name, 0]));
  return {
    lookup: matcher.lookup,
    get size() {
      return matcher.size;
    },
    hits: () => ({ ...counts }),
    check(question, id, rd) {
      const hit = matcher.lookup(question.name);
      if (!hit) return undefined;
      counts[hit.list] = (counts[hit.list] ?? 0) + 1;
      opts.onHit?.(hit.list, question.name);
      return blockedResponse(question, id, { ...opts, rd });
    },
  };
}
