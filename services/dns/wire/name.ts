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

/**
 * Read an uncompressed-or-compressed name from wire data. Returns null on any
 * malformation (pointer loops, overruns, over-long names). `end` is where the name's
 * own bytes stop (after the first pointer, if any).
 */
export function readName(buf: Buffer, offset: number): { labels: Labels; end: number } | null {
  const labels: Labels = [];
  let pos = offset;
  let end = -1;
  let total = 1;
  let jumps = 0;
  for (;;) {
    if (pos >= buf.length) return null;
    const len = buf[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { labels, end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) return null;
      if (end < 0) end = pos + 2;
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      // Only backwards pointers, and a bounded number of them: no loops.
      if (target >= pos || ++jumps > 64) return null;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) return null;
    if (pos + 1 + len > buf.length) return null;
    total += len + 1;
    if (total > MAX_NAME) return null;
    labels.push(Buffer.from(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
}

/** Uncompressed wire form of a name (used inside stored RDATA). */
export function encodeName(labels: Labels): Buffer {
  const out = Buffer.alloc(wireLength(labels));
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    l.copy(out, o);
    o += l.length;
  }
  out[o] = 0;
  return out;
}
