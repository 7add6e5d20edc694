/**
 * Domain names (RFC 1035 §2.3.1, §3.1; RFC 4343 case rules).
 *
 * A name travels in two forms:
 * - `Labels`: the raw label octets, case preserved, root = [].
 * - a *key*: the canonical text form used for lookups: lowercase ASCII, presentation
 *   escapes (`\.`, `\\`, `\DDD`) for awkward octets, no trailing dot, root = ''.
 * Keys compare by plain string equality, so every map in zone/ and auth/ is keyed by them.
 */
import { Buffer } from 'node:buffer';
import { WireError } from './error.ts';

export type Labels = Buffer[];

export const MAX_LABEL = 63;
export const MAX_NAME = 255;

function escapeLabel(label: Buffer, lower: boolean): string {
  let s = '';
  for (let i = 0; i < label.length; i++) {
    let c = label[i];
    if (lower && c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c === 0x2e || c === 0x5c || c === 0x22 || c === 0x3b || c === 0x28 || c === 0x29 || c === 0x40 || c === 0x24) {
      s += '\\' + String.fromCharCode(c);
    } else if (c <= 0x20 || c >= 0x7f) {
      s += '\\' + String(c).padStart(3, '0');
    } else {
      s += String.fromCharCode(c);
    }
  }
  return s;
}

/** Canonical (lowercase) key of a name. */
export function labelsToKey(labels: Labels): string {
  return labels.map((l) => escapeLabel(l, true)).join('.');
}

/** Presentation text with the case preserved and a trailing dot. */
export function labelsToText(labels: Labels): string {
  return labels.length === 0 ? '.' : labels.map((l) => escapeLabel(l, false)).join('.') + '.';
}

/** Octets a name takes on the wire, uncompressed. */
export function wireLength(labels: Labels): number {
  let n = 1;
  for (const l of labels) n += l.length + 1;
  return n;
}

export type NameResult = { ok: true; labels: Labels } | { ok: false; message: string };

/**
 * Parse presentation text (escapes allowed). A name ending in an unescaped dot is
 * absolute; otherwise `origin` is appended. '@' alone means the origin.
 */
export function parseName(text: string, origin: Labels): NameResult {
  if (text === '@') return { ok: true, labels: origin.slice() };
  if (text === '.') return { ok: true, labels: [] };
  if (text.length === 0) return { ok: false, message: 'empty name' };
  const labels: Labels = [];
  let cur: number[] = [];
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) {
      const d = text.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) return { ok: false, message: `bad escape \\${d} in name "${text}"` };
        cur.push(v);
        i += 3;
      } else if (i + 1 < text.length) {
        cur.push(text.charCodeAt(i + 1) & 0xff);
        i += 1;
      } else {
        return { ok: false, message: `dangling backslash in name "${text}"` };
      }
    } else if (ch === 0x2e) {
      if (cur.length === 0) return { ok: false, message: `empty label in name "${text}"` };
      labels.push(Buffer.from(cur));
      cur = [];
      if (i === text.length - 1) absolute = true;
    } else {
      if (ch > 0xff) return { ok: false, message: `non-ASCII character in name "${text}" (use punycode)` };
      cur.push(ch);
    }
  }
  if (cur.length > 0) labels.push(Buffer.from(cur));
  const full = absolute ? labels : labels.concat(origin);
  for (const l of full) {
    if (l.length > MAX_LABEL) return { ok: false, message: `label longer than 63 octets in name "${text}"` };
  }
  if (wireLength(full) > MAX_NAME) return { ok: false, message: `name longer than 255 octets: "${text}"` };
  return { ok: true, labels: full };
}

/** Labels of a key (keys are valid by construction). */
export function keyToLabels(key: string): Labels {
  if (key === '') return [];
  const r = parseName(key + '.', []);
  if (!r.ok) throw new Error(`invalid key ${key}: ${r.message}`);
  return r.labels;
}

/** The key of the parent name, or null for the root. */
export function parentKey(key: string): string | null {
  if (key === '') return null;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x2e) return key.slice(i + 1);
  }
  return '';
}

/** Is `key` equal to or below `ancestor`? */
export function isAtOrBelow(key: string, ancestor: string): boolean {
  if (ancestor === '') return true;
  if (key === ancestor) return true;
  if (!key.endsWith('.' + ancestor)) return false;
  // The dot before the suffix must itself be unescaped: count preceding backslashes.
  let i = key.length - ancestor.length - 2;
  let bs = 0;
  while (i >= 0 && key.charCodeAt(i) === 0x5c) { bs++; i--; }
  return bs % 2 === 0;
}

/** Number of labels in a key. */
export function labelCount(key: string): number {
  if (key === '') return 0;
  let n = 1;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x2e) n++;
  }
  return n;
}

/** Compression pointers one name may follow (a name has at most 127 labels). */
export const MAX_POINTERS = 127;

/**
 * Reads a possibly compressed name at `offset` (RFC 1035 §4.1.4). The one hostile-input
 * rule for every reader of this service: a pointer must point strictly before the lowest
 * offset this name has read so far (so no loops, and no forward references), at most
 * MAX_POINTERS of them; labels of type 01/10 are refused; a label and the name must stay
 * inside the message; the whole name is at most 255 octets (RFC 1035 §2.3.4; a label is
 * at most 63 by its 6-bit length). Throws WireError. `end` is where the name's own bytes
 * stop (just past the first pointer, if any).
 */
export function readName(buf: Uint8Array, offset: number): { labels: Labels; end: number } {
  const labels: Labels = [];
  let pos = offset;
  let end = -1;
  let total = 1;
  let jumps = 0;
  let lowest = offset;
  for (;;) {
    if (pos >= buf.length) throw new WireError('name runs past the end of the message');
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { labels, end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new WireError('truncated compression pointer');
      if (end < 0) end = pos + 2;
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (target >= lowest) throw new WireError('compression pointer does not point backwards');
      if (++jumps > MAX_POINTERS) throw new WireError('too many compression pointers');
      lowest = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError('unsupported label type');
    if (pos + 1 + len > buf.length) throw new WireError('label runs past the end of the message');
    total += len + 1;
    if (total > MAX_NAME) throw new WireError('name longer than 255 octets');
    labels.push(Buffer.from(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
}

/** Labels of presentation text, absolute (a trailing dot is optional); throws WireError. */
export function nameFromText(text: string): Labels {
  if (text === '' || text === '.') return [];
  const r = parseName(text, []);
  if (!r.ok) throw new WireError(r.message);
  return r.labels;
}

/** Presentation text without the trailing dot, case preserved; '.' for the root. */
export function nameText(labels: Labels): string {
  return labels.length === 0 ? '.' : labels.map((l) => escapeLabel(l, false)).join('.');
}

/** Canonical comparison form of presentation text: lowercase ASCII, no trailing dot; root is '.'. */
export function canonicalName(name: string): string {
  let n = name.trim();
  if (n.length > 1 && n.endsWith('.') && !n.endsWith('\\.')) n = n.slice(0, -1);
  if (n === '') n = '.';
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Uncompressed wire form of a name, from labels or presentation text; lowercase when
 * `lower` (the canonical form of RFC 4034 §6.2 that TSIG's MAC covers, RFC 8945 §4.3.3).
 */
export function encodeName(name: Labels | string, lower = false): Buffer {
  const labels = typeof name === 'string' ? nameFromText(name) : name;
  const out = Buffer.alloc(wireLength(labels));
  if (out.length > MAX_NAME) throw new WireError('name longer than 255 octets');
  let o = 0;
  for (const l of labels) {
    if (l.length === 0 || l.length > MAX_LABEL) throw new WireError('bad label length');
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) {
      const c = l[i];
      out[o++] = lower && c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    }
  }
  out[o] = 0;
  return out;
}

/**
 * Offset just past the name at `off`, or -1 if malformed: the fast paths' skip (the
 * response cache and the cookie layer look past the question without reading it), where
 * readName would allocate labels. Pointers end a name; at most 128 labels are walked.
 */
export function skipName(b: Uint8Array, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= b.length) return -1;
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if (len & 0xc0) return -1;
    off += 1 + len;
  }
  return -1;
}
