/**
 * Master-file tokenizer (RFC 1035 §5.1).
 *
 * Splits text into entries: one per logical line, where parentheses join physical lines,
 * `;` starts a comment, and `"..."` is one token. Escapes (`\X`, `\DDD`) are kept raw in
 * the token text; the consumer decodes them in context (names vs character-strings).
 * `blankStart` records whether the line began with white space, which means "same owner
 * as the previous record".
 */
import { escapedByte } from '../../../platform/config/text.ts';
import { runSteps, STEP, type Steps } from './steps.ts';

export interface Token {
  text: string;
  quoted: boolean;
  line: number;
}

export interface Entry {
  line: number;
  blankStart: boolean;
  tokens: Token[];
}

export type LexResult = { ok: true; entries: Entry[] } | { ok: false; line: number; message: string; entries: Entry[] };

export function lex(text: string): LexResult {
  return runSteps(lexSteps(text));
}

/** lex() as steps (steps.ts): yields every STEP entries, for a big zone read while serving. */
export function* lexSteps(text: string): Steps<LexResult> {
  const entries: Entry[] = [];
  const it = lexEntries(text);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value ? { ok: false, ...r.value, entries } : { ok: true, entries };
    entries.push(r.value);
    if (entries.length % STEP === 0) yield;
  }
}

/**
 * The entries one at a time, as they are read (a parser consumes each and drops it, so a
 * big zone's tokens never pile up); returns the error that stopped it, if any.
 */
export function* lexEntries(text: string): Generator<Entry, { line: number; message: string } | undefined, void> {
  let line = 1;
  let i = 0;
  const n = text.length;
  let tokens: Token[] = [];
  let depth = 0;
  let entryLine = 1;
  let blankStart = false;
  let atLineStart = true;
  let parenLine = 0;

  while (i < n) {
    const c = text[i];
    if (atLineStart && depth === 0) {
      atLineStart = false;
      entryLine = line;
      blankStart = c === ' ' || c === '\t';
    }
    if (c === '\n') {
      line++;
      i++;
      if (depth === 0) {
        if (tokens.length > 0) yield { line: entryLine, blankStart, tokens };
        tokens = [];
        atLineStart = true;
      }
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === ';') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '(') {
      if (depth === 0) parenLine = line;
      depth++;
      i++;
      if (depth > 1) return { line, message: 'nested parentheses' };
      continue;
    }
    if (c === ')') {
      if (depth === 0) return { line, message: 'unbalanced ")"' };
      depth--;
      i++;
      continue;
    }
    // A token's text is its raw characters (escapes kept as written), so it is one slice
    // of the input: no string built a character at a time (a big zone's parse garbage).
    if (c === '"') {
      const startLine = line;
      i++;
      const from = i;
      for (;;) {
        if (i >= n) return { line: startLine, message: 'unterminated quoted string' };
        const d = text[i];
        if (d === '\\' && i + 1 < n) { if (text[i + 1] === '\n') line++; i += 2; continue; }
        if (d === '"') break;
        if (d === '\n') line++;
        i++;
      }
      tokens.push({ text: text.slice(from, i), quoted: true, line: startLine });
      i++;
      continue;
    }
    const from = i;
    const startLine = line;
    while (i < n) {
      const d = text[i];
      if (d === '\\' && i + 1 < n && text[i + 1] !== '\n') { i += 2; continue; }
      if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === ';' || d === '(' || d === ')' || d === '"') break;
      i++;
    }
    tokens.push({ text: text.slice(from, i), quoted: false, line: startLine });
  }
  if (depth > 0) return { line: parenLine, message: 'unclosed "(" (opened here)' };
  if (tokens.length > 0) yield { line: entryLine, blankStart, tokens };
  return undefined;
}

/**
 * Decode a character-string's escapes (RFC 1035 §5.1: `\X` is X, `\DDD` a decimal octet).
 * Returns null on a bad `\DDD`.
 */
export function unescapeBytes(raw: string): Buffer | null {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === 0x5c && i + 1 < raw.length) {
      const d = raw.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) return null;
        out.push(v);
        i += 3;
      } else {
        out.push(raw.charCodeAt(i + 1) & 0xff);
        i++;
      }
      continue;
    }
    // A byte of the file that was not UTF-8 (platform/config/text.ts): that byte, as it was.
    const raw8 = escapedByte(ch);
    if (raw8 !== undefined) {
      out.push(raw8);
      continue;
    }
    // Non-ASCII text is kept as UTF-8, which is what people mean when they type it.
    if (ch > 0x7f) {
      const cp = raw.codePointAt(i)!;
      const b = Buffer.from(String.fromCodePoint(cp), 'utf8');
      for (const x of b) out.push(x);
      if (cp > 0xffff) i++;
      continue;
    }
    out.push(ch);
  }
  return Buffer.from(out);
}
