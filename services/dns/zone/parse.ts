/**
 * Master-file parser (RFC 1035 §5; $TTL from RFC 2308 §4; generic RR form RFC 3597 §5).
 *
 * Pure: text in, a validated Zone or a list of issues out. Every issue names file and line,
 * so a refused `git push` can point at the mistake. $INCLUDE goes through a callback, which
 * confines reads to the config tree; here we only refuse absolute paths and `..` escapes.
 *
 * Validation: one SOA at the apex, no CNAME beside other data (RFC 1034 §3.6.2, RFC 2181
 * §10.1), all owners inside the zone, labels ≤ 63 and names ≤ 255 octets (RFC 1035 §2.3.4).
 */
import { isAtOrBelow, labelsToKey, parseName, type Labels } from '../wire/name.ts';
import { parseClass, parseType, TYPE, typeName } from '../wire/constants.ts';
import { lexEntries, type Token } from './lexer.ts';
import { encodeRdata, parseTtl } from './rdata.ts';
import { indexSteps, Zone, type RRset } from './zone.ts';
import { runSteps, runStepsAsync, STEP, type Steps } from './steps.ts';

export interface ZoneIssue {
  file: string;
  line: number;
  message: string;
}

export interface ParseZoneOptions {
  /** The zone's apex, e.g. 'home.arpa' (trailing dot optional). */
  origin: string;
  /** File name used in issues and as the base for relative $INCLUDE paths. */
  file: string;
  /** Returns the text of a file (path relative to the config tree root), or undefined. */
  include?: (path: string) => string | undefined;
  /** TTL for records before any $TTL or explicit TTL. Default: none (an issue). */
  defaultTtl?: number;
  /** Records at most, and the issue named at the first one past it (default: 200,000 a zone). */
  maxRecords?: { count: number; message: string };
}

export type ParseZoneResult = { ok: true; zone: Zone } | { ok: false; issues: ZoneIssue[] };

const MAX_INCLUDE_DEPTH = 8;
// Bounds against hostile or accidental giant zones in a pushed config.
const MAX_RECORDS = 200_000;

/** Resolve an $INCLUDE path against the including file; null if it leaves the tree. */
export function resolveIncludePath(from: string, path: string): string | null {
  if (path.startsWith('/') || path.includes('\0')) return null;
  const base = from.includes('/') ? from.slice(0, from.lastIndexOf('/')).split('/') : [];
  const out = [...base];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(seg);
  }
  return out.length ? out.join('/') : null;
}

export function parseZone(text: string, opts: ParseZoneOptions): ParseZoneResult {
  return runSteps(parseZoneSteps(text, opts));
}

/** parseZone in slices that let the event loop in: a big zone set loads while the old one serves. */
export function parseZoneAsync(text: string, opts: ParseZoneOptions): Promise<ParseZoneResult> {
  return runStepsAsync(parseZoneSteps(text, opts));
}

function* parseZoneSteps(text: string, opts: ParseZoneOptions): Steps<ParseZoneResult> {
  const issues: ZoneIssue[] = [];
  const originText = opts.origin.endsWith('.') ? opts.origin : opts.origin + '.';
  const apex = parseName(originText === '..' ? '.' : originText, []);
  if (!apex.ok) return { ok: false, issues: [{ file: opts.file, line: 0, message: `bad zone origin: ${apex.message}` }] };
  const apexKey = labelsToKey(apex.labels);
  const sets = new Map<string, RRset & { file: string; line: number }>();
  let records = 0;
  const state = { ttl: opts.defaultTtl as number | undefined, lastTtl: undefined as number | undefined };

  const maxRecords = opts.maxRecords ?? { count: MAX_RECORDS, message: `more than ${MAX_RECORDS} records` };
  let sinceYield = 0;
  const parseFile = function* (body: string, file: string, origin: Labels, depth: number): Steps<void> {
    // Entries are read as they are parsed: a big file's tokens never all exist at once.
    const lx = lexEntries(body);
    let lastOwner: Labels | null = null;
    for (;;) {
      const next = lx.next();
      if (next.done) {
        if (next.value) issues.push({ file, line: next.value.line, message: next.value.message });
        break;
      }
      const entry = next.value;
      if (++sinceYield >= STEP) {
        sinceYield = 0;
        yield;
      }
      const issue = (message: string, line = entry.line) => issues.push({ file, line, message });
      const toks = entry.tokens;
      const first = toks[0];
      if (!entry.blankStart && !first.quoted && first.text.startsWith('$')) {
        const dir = first.text.toUpperCase();
        if (dir === '$ORIGIN') {
          if (toks.length !== 2) { issue('$ORIGIN takes one name'); continue; }
          const r = parseName(toks[1].text, origin);
          if (!r.ok) { issue(`$ORIGIN: ${r.message}`); continue; }
          origin = r.labels;
        } else if (dir === '$TTL') {
          const v = toks.length === 2 ? parseTtl(toks[1].text) : null;
          if (v === null) { issue('$TTL takes one duration, e.g. 3600 or 1h'); continue; }
          state.ttl = v;
        } else if (dir === '$INCLUDE') {
          if (toks.length < 2 || toks.length > 3) { issue('$INCLUDE takes a file name and an optional origin'); continue; }
          if (depth >= MAX_INCLUDE_DEPTH) { issue('$INCLUDE nested too deeply (a loop?)'); continue; }
          const path = resolveIncludePath(file, toks[1].text);
          if (path === null) { issue(`$INCLUDE path "${toks[1].text}" leaves the config tree`); continue; }
          const inc = opts.include?.(path);
          if (inc === undefined) { issue(`$INCLUDE: cannot read "${path}"`); continue; }
          let incOrigin = origin;
          if (toks.length === 3) {
            const r = parseName(toks[2].text, origin);
            if (!r.ok) { issue(`$INCLUDE origin: ${r.message}`); continue; }
            incOrigin = r.labels;
          }
          // RFC 1035 §5.1: the included file cannot change this file's origin.
          yield* parseFile(inc, path, incOrigin, depth + 1);
        } else {
          issue(`unknown directive ${first.text}`);
        }
        continue;
      }

      let i = 0;
      let owner: Labels;
      if (entry.blankStart) {
        if (!lastOwner) { issue('record without an owner name (line starts with white space, and no earlier record)'); continue; }
        owner = lastOwner;
      } else {
        const r = parseName(first.text, origin);
        if (!r.ok) { issue(`owner: ${r.message}`); continue; }
        owner = r.labels;
        i = 1;
      }
      lastOwner = owner;

      let ttl: number | undefined;
      let cls: number | undefined;
      let type: number | null = null;
      for (; i < toks.length && i < 4; i++) {
        const t = toks[i];
        if (t.quoted) break;
        if (ttl === undefined && /^[0-9]/.test(t.text)) {
          const v = parseTtl(t.text);
          if (v === null) break;
          ttl = v;
          continue;
        }
        const c = cls === undefined ? parseClass(t.text) : null;
        if (c !== null) { cls = c; continue; }
        type = parseType(t.text);
        i++;
        break;
      }
      if (type === null) {
        const t = toks[i] ?? toks[toks.length - 1];
        issue(`expected a record type, got "${toks[i - 1]?.text ?? t.text}"`);
        continue;
      }
      if (cls !== undefined && cls !== 1) { issue('only class IN is served'); continue; }
      if (type === TYPE.OPT || type === TYPE.AXFR || type === TYPE.IXFR || type === TYPE.ANY || type === TYPE.TSIG) {
        issue(`${typeName(type)} is not a record type that can be stored in a zone`);
        continue;
      }
      if (ttl === undefined) ttl = state.ttl ?? state.lastTtl;
      else state.lastTtl = ttl;
      if (ttl === undefined) { issue('no TTL: give one on the record or set $TTL'); continue; }
      const ownerKey = labelsToKey(owner);
      if (!isAtOrBelow(ownerKey, apexKey)) {
        issue(`owner "${ownerKey}." is outside the zone "${apexKey}."`);
        continue;
      }
      const rd = encodeRdata(type, toks.slice(i) as Token[], origin);
      if (!rd.ok) { issue(`${typeName(type)}: ${rd.message}`); continue; }
      if (records >= maxRecords.count) { issue(maxRecords.message); return; }
      records++;
      // Grouped into RRsets as read; the first record's TTL wins (RFC 2181 §5.2 asks for
      // one TTL), duplicates are dropped (§5).
      const k = ownerKey + '\u0000' + type;
      const set = sets.get(k);
      if (!set) sets.set(k, { owner: ownerKey, labels: owner, type, ttl, rdata: [rd.rdata], file, line: entry.line });
      else if (!set.rdata.some((x) => x.equals(rd.rdata))) set.rdata.push(rd.rdata);
    }
  };

  yield* parseFile(text, opts.file, apex.labels, 0);

  const byOwner = new Map<string, Array<RRset & { file: string; line: number }>>();
  for (const s of sets.values()) {
    if (++sinceYield >= STEP) {
      sinceYield = 0;
      yield;
    }
    const l = byOwner.get(s.owner);
    if (l) l.push(s); else byOwner.set(s.owner, [s]);
  }
  const soa = sets.get(apexKey + '\u0000' + TYPE.SOA);
  if (!soa) issues.push({ file: opts.file, line: 1, message: `no SOA record at the zone apex "${apexKey}."` });
  else if (soa.rdata.length > 1) issues.push({ file: soa.file, line: soa.line, message: 'more than one SOA record at the apex' });
  for (const s of sets.values()) {
    if (++sinceYield >= STEP) {
      sinceYield = 0;
      yield;
    }
    if (s.type === TYPE.SOA && s.owner !== apexKey) {
      issues.push({ file: s.file, line: s.line, message: `SOA record at "${s.owner}." — only allowed at the apex` });
    }
    if (s.type === TYPE.CNAME) {
      if (s.rdata.length > 1) issues.push({ file: s.file, line: s.line, message: `more than one CNAME at "${s.owner}."` });
      const others = byOwner.get(s.owner)!.filter((o) => o.type !== TYPE.CNAME && o.type !== TYPE.RRSIG && o.type !== TYPE.NSEC);
      if (others.length > 0) {
        issues.push({ file: s.file, line: s.line, message: `CNAME at "${s.owner}." cannot coexist with other data (${others.map((o) => typeName(o.type)).join(', ')})` });
      }
      if (s.owner === apexKey) issues.push({ file: s.file, line: s.line, message: 'CNAME at the zone apex' });
    }
  }
  if (issues.length > 0) {
    issues.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
    return { ok: false, issues };
  }
  const rrsets: RRset[] = [...sets.values()].map(({ owner, labels, type, ttl, rdata }) => ({ owner, labels, type, ttl, rdata }));
  return { ok: true, zone: new Zone(apexKey, rrsets, yield* indexSteps(apexKey, rrsets)) };
}
