/**
 * BIND-style TSIG key files, as written by `tsig-keygen` and read by `nsupdate -k`:
 *
 *   key "name" {
 *       algorithm hmac-sha256;
 *       secret "base64";
 *   };
 *
 * Several key statements may follow each other; comments are `#`, `//` and `/* *\/`.
 * Problems are values naming file and line (the config push is refused with them).
 */
import type { ConfigIssue } from '../../../platform/config/spec.ts';
import { canonicalName } from '../wire/name.ts';
import { algorithmFromName, type TsigKey } from './tsig.ts';

interface Token {
  kind: 'word' | 'string' | 'punct';
  text: string;
  line: number;
}

function tokenize(text: string, file: string, issues: ConfigIssue[]): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const start = line;
      const end = text.indexOf('*/', i + 2);
      if (end < 0) {
        issues.push({ file, line: start, message: 'unterminated /* comment' });
        return out;
      }
      for (let j = i; j < end; j++) if (text[j] === '\n') line++;
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const nl = text.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end)) {
        issues.push({ file, line, message: 'unterminated string' });
        return out;
      }
      out.push({ kind: 'string', text: text.slice(i + 1, end), line });
      i = end + 1;
    } else if (c === '{' || c === '}' || c === ';') {
      out.push({ kind: 'punct', text: c, line });
      i++;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"#]/.test(text[j])) j++;
      out.push({ kind: 'word', text: text.slice(i, j), line });
      i = j;
    }
  }
  return out;
}

export type KeyFileResult = { ok: true; keys: TsigKey[] } | { ok: false; issues: ConfigIssue[] };

/** Parses a key file. Never throws. */
export function parseKeyFile(text: string, file: string): KeyFileResult {
  const issues: ConfigIssue[] = [];
  const toks = tokenize(text, file, issues);
  const keys: TsigKey[] = [];
  const seen = new Set<string>();
  let i = 0;
  const lastLine = () => (toks.length ? toks[toks.length - 1].line : 1);
  const expect = (text: string): boolean => {
    const t = toks[i];
    if (t && t.kind === 'punct' && t.text === text) {
      i++;
      return true;
    }
    issues.push({ file, line: t?.line ?? lastLine(), message: `expected '${text}'${t ? `, found '${t.text}'` : ' before end of file'}` });
    return false;
  };
  outer: while (i < toks.length) {
    const kw = toks[i];
    if (kw.kind !== 'word' || kw.text !== 'key') {
      issues.push({ file, line: kw.line, message: `expected a 'key' statement, found '${kw.text}'` });
      break;
    }
    i++;
    const nameTok = toks[i];
    if (!nameTok || nameTok.kind === 'punct') {
      issues.push({ file, line: nameTok?.line ?? kw.line, message: 'key statement needs a name' });
      break;
    }
    i++;
    const name = canonicalName(nameTok.text);
    if (!/^[a-z0-9_.\-]+$/.test(name) || name === '.' || name.split('.').some((l) => l.length === 0 || l.length > 63)) {
      issues.push({ file, line: nameTok.line, field: 'key', message: `bad key name '${nameTok.text}'` });
    }
    if (!expect('{')) break;
    let algorithm: TsigKey['algorithm'] | undefined;
    let secret: Buffer | undefined;
    while (i < toks.length && !(toks[i].kind === 'punct' && toks[i].text === '}')) {
      const field = toks[i++];
      const value = toks[i];
      if (field.kind !== 'word' || !value || value.kind === 'punct') {
        issues.push({ file, line: field.line, message: `expected 'algorithm NAME;' or 'secret "BASE64";', found '${field.text}'` });
        break outer;
      }
      i++;
      if (field.text === 'algorithm') {
        algorithm = algorithmFromName(value.text);
        if (!algorithm) issues.push({ file, line: value.line, field: 'algorithm', message: `unsupported algorithm '${value.text}' (use hmac-sha256, hmac-sha512 or hmac-sha1)` });
      } else if (field.text === 'secret') {
        const b64 = value.text.replace(/\s+/g, '');
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
          issues.push({ file, line: value.line, field: 'secret', message: 'secret is not valid base64' });
        } else {
          secret = Buffer.from(b64, 'base64');
          if (secret.length < 16) issues.push({ file, line: value.line, field: 'secret', message: 'secret shorter than 16 bytes' });
        }
      } else {
        issues.push({ file, line: field.line, message: `unknown key option '${field.text}'` });
      }
      if (!expect(';')) break outer;
    }
    if (!expect('}') || !expect(';')) break;
    if (!algorithm && !issues.some((x) => x.field === 'algorithm' && x.line !== undefined && x.line >= kw.line)) {
      issues.push({ file, line: kw.line, field: 'algorithm', message: `key '${name}' has no algorithm` });
    }
    if (!secret && !issues.some((x) => x.field === 'secret' && x.line !== undefined && x.line >= kw.line)) {
      issues.push({ file, line: kw.line, field: 'secret', message: `key '${name}' has no secret` });
    }
    if (seen.has(name)) issues.push({ file, line: kw.line, message: `key '${name}' defined twice` });
    seen.add(name);
    if (algorithm && secret) keys.push({ name, algorithm, secret });
  }
  return issues.length ? { ok: false, issues } : { ok: true, keys };
}

/** Writes a key in the same format (for seeding config and for tests). */
export function formatKeyFile(key: TsigKey): string {
  return `key "${key.name}" {\n\talgorithm ${key.algorithm};\n\tsecret "${key.secret.toString('base64')}";\n};\n`;
}

/**
 * Reads a key file from the config tree; a missing file means no keys (updates are then
 * refused), a broken one is a config error naming file and line.
 */
export async function loadKeyFile(
  source: { read(path: string): Promise<string | undefined> },
  path: string,
): Promise<{ ok: true; value: TsigKey[] } | { ok: false; issues: ConfigIssue[] }> {
  let text: string | undefined;
  try {
    text = await source.read(path);
  } catch (e) {
    return { ok: false, issues: [{ file: path, message: `cannot read: ${e instanceof Error ? e.message : e}` }] };
  }
  if (text === undefined) return { ok: true, value: [] };
  const r = parseKeyFile(text, path);
  return r.ok ? { ok: true, value: r.keys } : r;
}
