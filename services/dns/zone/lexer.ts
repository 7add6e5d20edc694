/**
 * Master-file tokenizer (RFC 1035 §5.1).
 *
 * Splits text into entries: one per logical line, where parentheses join physical lines,
 * `;` starts a comment, and `"..."` is one token. Escapes (`\X`, `\DDD`) are kept raw in
 * the token text; the consumer decodes them in context (names vs character-strings).
 * `blankStart` records whether the line began with white space, which means "same owner
 * as the previous record".
 */
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

/** lex() as steps (steps.ts): yields every STEP lines, for a big zone read while serving. */
export function* lexSteps(text: string): Steps<LexResult> {
  let sinceYield = 0;
  const entries: Entry[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  let tokens: Token[] = [];
  let depth = 0;
  let entryLine = 1;
  let blankStart = false;
  let atLineStart = true;
  let parenLine = 0;

  const endEntry = () => {
    if (tokens.length > 0) entries.push({ line: entryLine, blankStart, tokens });
    tokens = [];
  };

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
        endEntry();
        atLineStart = true;
      }
      if (++sinceYield >= STEP) {
        sinceYield = 0;
        yield;
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
      if (depth > 1) return { ok: false, line, message: 'nested parentheses', entries };
      continue;
    }
    if (c === ')') {
      if (depth === 0) return { ok: false, line, message: 'unbalanced ")"', entries };
      depth--;
      i++;
      continue;
    }
    if (c === '"') {
      const startLine = line;
      let s = '';
      i++;
      for (;;) {
        if (i >= n) return { ok: false, line: startLine, message: 'unterminated quoted string', entries };
        const d = text[i];
        if (d === '\\' && i + 1 < n) { s += d + text[i + 1]; if (text[i + 1] === '\n') line++; i += 2; continue; }
        if (d === '"') { i++; break; }
        if (d === '\n') line++;
        s += d;
        i++;
      }
      tokens.push({ text: s, quoted: true, line: startLine });
      continue;
    }
    let s = '';
    const startLine = line;
    while (i < n) {
      const d = text[i];
      if (d === '\\' && i + 1 < n && text[i + 1] !== '\n') { s += d + text[i + 1]; i += 2; continue; }
      if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === ';' || d === '(' || d === ')' || d === '"') break;
      s += d;
      i++;
    }
    tokens.push({ text: s, quoted: false, line: startLine });
  }
  if (depth > 0) return { ok: false, line: parenLine, message: 'unclosed "(" (opened here)', entries };
  endEntry();
  return { ok: true, entries };
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
