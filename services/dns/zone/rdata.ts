/**
 * RDATA from master-file text to wire octets.
 *
 * A/NS/CNAME/SOA/PTR/MX/TXT (RFC 1035 §3.3, §3.4), AAAA (RFC 3596), SRV (RFC 2782),
 * DS/DNSKEY (RFC 4034 §2.2, §5.3), TLSA (RFC 6698 §2.2), CAA (RFC 8659 §4.1),
 * SVCB/HTTPS (RFC 9460 §2.1, §7), and the generic `\# len hex` form of RFC 3597 §5 for any
 * type. Names inside RDATA are stored uncompressed, so the wire octets are canonical.
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';
import { encodeName, parseName, type Labels } from '../wire/name.ts';
import { TYPE } from '../wire/constants.ts';
import { unescapeBytes, type Token } from './lexer.ts';

export type RdataResult = { ok: true; rdata: Buffer } | { ok: false; message: string };

const fail = (message: string): RdataResult => ({ ok: false, message });

function u16(n: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; }
function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; }

function int(t: Token | undefined, max: number, what: string): number | string {
  if (!t || t.quoted || !/^[0-9]+$/.test(t.text)) return `${what}: expected a number, got ${t ? `"${t.text}"` : 'nothing'}`;
  const v = Number(t.text);
  if (v > max) return `${what}: ${v} is larger than ${max}`;
  return v;
}

/** TTL-style durations: plain seconds or BIND units (1h30m, 2d, 1w). */
export function parseTtl(text: string): number | null {
  if (/^[0-9]+$/.test(text)) {
    const v = Number(text);
    return v <= 0xffffffff ? v : null;
  }
  const re = /([0-9]+)([smhdwSMHDW])/y;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < text.length) {
    re.lastIndex = pos;
    m = re.exec(text);
    if (!m) return null;
    const mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2].toLowerCase() as 's'] ?? 1;
    total += Number(m[1]) * mult;
    pos = re.lastIndex;
  }
  return total <= 0xffffffff && text.length > 0 ? total : null;
}

function name(t: Token | undefined, origin: Labels, what: string): Buffer | string {
  if (!t) return `${what}: missing name`;
  const r = parseName(t.text, origin);
  if (!r.ok) return `${what}: ${r.message}`;
  return encodeName(r.labels);
}

function hex(text: string): Buffer | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  return Buffer.from(text, 'hex');
}

function base64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return Buffer.from(text, 'base64');
}

function ipv4(text: string): Buffer | null {
  if (!isIPv4(text)) return null;
  return Buffer.from(text.split('.').map(Number));
}

function ipv6(text: string): Buffer | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  let s = text;
  // An embedded dotted quad becomes two hextets.
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const v4 = ipv4(m[2]);
    if (!v4) return null;
    s = m[1] + v4.readUInt16BE(0).toString(16) + ':' + v4.readUInt16BE(2).toString(16);
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail === null ? [] : tail ? tail.split(':') : [];
  const fill = tail === null ? 0 : 8 - h.length - t.length;
  const parts = [...h, ...Array(fill).fill('0'), ...t];
  if (parts.length !== 8) return null;
  const out = Buffer.alloc(16);
  parts.forEach((p, i) => out.writeUInt16BE(parseInt(p, 16), i * 2));
  return out;
}

function charString(t: Token): Buffer | string {
  const b = unescapeBytes(t.text);
  if (!b) return `bad escape in "${t.text}"`;
  if (b.length > 255) return `character-string longer than 255 octets`;
  return Buffer.concat([Buffer.from([b.length]), b]);
}

function joinedText(tokens: Token[]): string {
  return tokens.map((t) => t.text).join('');
}

export function encodeRdata(type: number, tokens: Token[], origin: Labels): RdataResult {
  if (tokens.length > 0 && tokens[0].text === '\\#' && !tokens[0].quoted) return generic(tokens.slice(1));
  const parts: Buffer[] = [];
  const put = (x: Buffer | string | number, size?: 1 | 2 | 4): string | null => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number') {
      parts.push(size === 1 ? Buffer.from([x]) : size === 2 ? u16(x) : u32(x));
      return null;
    }
    parts.push(x);
    return null;
  };
  const expect = (count: number): string | null =>
    tokens.length === count ? null : `expected ${count} field${count === 1 ? '' : 's'}, got ${tokens.length}`;
  let err: string | null = null;
  switch (type) {
    case TYPE.A: {
      err = expect(1);
      if (err) break;
      const b = ipv4(tokens[0].text);
      if (!b) err = `bad IPv4 address "${tokens[0].text}"`;
      else parts.push(b);
      break;
    }
    case TYPE.AAAA: {
      err = expect(1);
      if (err) break;
      const b = ipv6(tokens[0].text);
      if (!b) err = `bad IPv6 address "${tokens[0].text}"`;
      else parts.push(b);
      break;
    }
    case TYPE.NS: case TYPE.CNAME: case TYPE.PTR: case TYPE.DNAME:
      err = expect(1) ?? put(name(tokens[0], origin, 'target'));
      break;
    case TYPE.MX:
      err = expect(2) ?? put(int(tokens[0], 65535, 'preference'), 2) ?? put(name(tokens[1], origin, 'exchange'));
      break;
    case TYPE.SRV:
      err = expect(4) ?? put(int(tokens[0], 65535, 'priority'), 2) ?? put(int(tokens[1], 65535, 'weight'), 2)
        ?? put(int(tokens[2], 65535, 'port'), 2) ?? put(name(tokens[3], origin, 'target'));
      break;
    case TYPE.SOA: {
      err = expect(7) ?? put(name(tokens[0], origin, 'mname')) ?? put(name(tokens[1], origin, 'rname'));
      if (err) break;
      const labels = ['serial', 'refresh', 'retry', 'expire', 'minimum'];
      for (let i = 0; i < 5 && !err; i++) {
        const v = i === 0 ? (/^[0-9]+$/.test(tokens[2].text) ? Number(tokens[2].text) : null) : parseTtl(tokens[2 + i].text);
        if (v === null || v > 0xffffffff) err = `${labels[i]}: bad value "${tokens[2 + i].text}"`;
        else parts.push(u32(v));
      }
      break;
    }
    case TYPE.TXT: {
      if (tokens.length === 0) { err = 'TXT needs at least one string'; break; }
      for (const t of tokens) { err = put(charString(t)); if (err) break; }
      break;
    }
    case TYPE.HINFO:
      err = expect(2) ?? put(charString(tokens[0])) ?? put(charString(tokens[1]));
      break;
    case TYPE.CAA: {
      err = expect(3) ?? put(int(tokens[0], 255, 'flags'), 1);
      if (err) break;
      const tag = tokens[1].text;
      if (!/^[A-Za-z0-9]{1,15}$/.test(tag)) { err = `bad CAA tag "${tag}"`; break; }
      const value = unescapeBytes(tokens[2].text);
      if (!value) { err = 'bad escape in CAA value'; break; }
      parts.push(Buffer.from([tag.length]), Buffer.from(tag, 'ascii'), value);
      break;
    }
    case TYPE.DS: case TYPE.CDS: {
      if (tokens.length < 4) { err = 'DS needs key tag, algorithm, digest type and digest'; break; }
      err = put(int(tokens[0], 65535, 'key tag'), 2) ?? put(int(tokens[1], 255, 'algorithm'), 1) ?? put(int(tokens[2], 255, 'digest type'), 1);
      if (err) break;
      const d = hex(joinedText(tokens.slice(3)));
      if (!d || d.length === 0) err = 'digest: expected hexadecimal';
      else parts.push(d);
      break;
    }
    case TYPE.DNSKEY: case TYPE.CDNSKEY: {
      if (tokens.length < 4) { err = 'DNSKEY needs flags, protocol, algorithm and key'; break; }
      err = put(int(tokens[0], 65535, 'flags'), 2) ?? put(int(tokens[1], 255, 'protocol'), 1) ?? put(int(tokens[2], 255, 'algorithm'), 1);
      if (err) break;
      const k = base64(joinedText(tokens.slice(3)));
      if (!k || k.length === 0) err = 'public key: expected base64';
      else parts.push(k);
      break;
    }
    case TYPE.TLSA: {
      if (tokens.length < 4) { err = 'TLSA needs usage, selector, matching type and data'; break; }
      err = put(int(tokens[0], 255, 'usage'), 1) ?? put(int(tokens[1], 255, 'selector'), 1) ?? put(int(tokens[2], 255, 'matching type'), 1);
      if (err) break;
      const d = hex(joinedText(tokens.slice(3)));
      if (!d || d.length === 0) err = 'certificate data: expected hexadecimal';
      else parts.push(d);
      break;
    }
    case TYPE.SVCB: case TYPE.HTTPS:
      return svcb(tokens, origin);
    default:
      return fail(`type ${type} has no text form here: use the generic form \\# <length> <hex>`);
  }
  if (err) return fail(err);
  const rdata = Buffer.concat(parts);
  if (rdata.length > 65535) return fail('RDATA longer than 65535 octets');
  return { ok: true, rdata };
}

function generic(tokens: Token[]): RdataResult {
  const len = int(tokens[0], 65535, 'generic length');
  if (typeof len === 'string') return fail(len);
  const data = hex(joinedText(tokens.slice(1)));
  if (!data) return fail('generic RDATA: expected hexadecimal');
  if (data.length !== len) return fail(`generic RDATA: length says ${len} but ${data.length} octets given`);
  return { ok: true, rdata: data };
}

const SVC_KEYS: Record<string, number> = {
  mandatory: 0, alpn: 1, 'no-default-alpn': 2, port: 3, ipv4hint: 4, ech: 5, ipv6hint: 6,
};

function svcKey(name: string): number | null {
  if (name in SVC_KEYS) return SVC_KEYS[name];
  const m = /^key([0-9]{1,5})$/.exec(name);
  return m && Number(m[1]) <= 65535 ? Number(m[1]) : null;
}

/** RFC 9460 comma-separated list with `\,` escapes (Appendix A.1). */
function splitList(raw: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === '\\' && i + 1 < raw.length) { cur += raw[i] + raw[i + 1]; i++; continue; }
    if (raw[i] === ',') { out.push(cur); cur = ''; continue; }
    cur += raw[i];
  }
  out.push(cur);
  return out;
}

function svcb(tokens: Token[], origin: Labels): RdataResult {
  if (tokens.length < 2) return fail('SVCB needs priority and target');
  const prio = int(tokens[0], 65535, 'priority');
  if (typeof prio === 'string') return fail(prio);
  const target = name(tokens[1], origin, 'target');
  if (typeof target === 'string') return fail(target);
  const params = new Map<number, Buffer>();
  // A value may be quoted and separated as key="value"; the lexer splits key= and "value".
  const items: Array<{ key: string; value: string | null }> = [];
  for (let i = 2; i < tokens.length; i++) {
    const t = tokens[i];
    const eq = t.text.indexOf('=');
    if (t.quoted) return fail(`unexpected quoted string "${t.text}"`);
    if (eq < 0) { items.push({ key: t.text, value: null }); continue; }
    const key = t.text.slice(0, eq);
    let value = t.text.slice(eq + 1);
    if (value === '' && i + 1 < tokens.length && tokens[i + 1].quoted) { value = tokens[i + 1].text; i++; }
    items.push({ key, value });
  }
  for (const { key, value } of items) {
    const k = svcKey(key.toLowerCase());
    if (k === null) return fail(`unknown SvcParamKey "${key}"`);
    if (params.has(k)) return fail(`SvcParamKey "${key}" given twice`);
    let v: Buffer;
    switch (k) {
      case 0: {
        if (!value) return fail('mandatory needs a value');
        const keys: number[] = [];
        for (const x of splitList(value)) {
          const kk = svcKey(x);
          if (kk === null || kk === 0) return fail(`bad key "${x}" in mandatory`);
          keys.push(kk);
        }
        keys.sort((a, b) => a - b);
        v = Buffer.concat(keys.map(u16));
        break;
      }
      case 1: {
        if (!value) return fail('alpn needs a value');
        const ids: Buffer[] = [];
        for (const x of splitList(value)) {
          const b = unescapeBytes(x);
          if (!b || b.length === 0 || b.length > 255) return fail(`bad alpn id "${x}"`);
          ids.push(Buffer.from([b.length]), b);
        }
        v = Buffer.concat(ids);
        break;
      }
      case 2:
        if (value) return fail('no-default-alpn takes no value');
        v = Buffer.alloc(0);
        break;
      case 3: {
        if (!value || !/^[0-9]+$/.test(value) || Number(value) > 65535) return fail(`bad port "${value}"`);
        v = u16(Number(value));
        break;
      }
      case 4: case 6: {
        if (!value) return fail(`${key} needs a value`);
        const addrs: Buffer[] = [];
        for (const x of value.split(',')) {
          const b = k === 4 ? ipv4(x) : ipv6(x);
          if (!b) return fail(`bad address "${x}" in ${key}`);
          addrs.push(b);
        }
        v = Buffer.concat(addrs);
        break;
      }
      case 5: {
        const b = value ? base64(value) : null;
        if (!b) return fail('ech: expected base64');
        v = b;
        break;
      }
      default: {
        const b = value === null ? Buffer.alloc(0) : unescapeBytes(value);
        if (!b) return fail(`bad escape in ${key}`);
        v = b;
      }
    }
    params.set(k, v);
  }
  const parts: Buffer[] = [u16(prio), target];
  // RFC 9460 §2.2: keys in strictly increasing order on the wire.
  for (const k of [...params.keys()].sort((a, b) => a - b)) {
    const v = params.get(k)!;
    parts.push(u16(k), u16(v.length), v);
  }
  return { ok: true, rdata: Buffer.concat(parts) };
}
