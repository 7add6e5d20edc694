/**
 * Config files as text without losing bytes. Valid UTF-8 decodes as usual; each byte that
 * is not part of a valid UTF-8 sequence becomes the lone surrogate U+DC80 + byte (the
 * "surrogateescape" of PEP 383) instead of U+FFFD, so a parser that cares about bytes
 * (DNS zone files are octets, RFC 1035 §5.1) gets them back with `escapedByte`.
 */
import { Buffer, isUtf8 } from 'node:buffer';

export function decodeConfigText(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const len = validSequence(bytes, i);
    if (len > 0) {
      out += bytes.toString('utf8', i, i + len);
      i += len;
    } else {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i++;
    }
  }
  return out;
}

/** The byte a lone surrogate from decodeConfigText stands for, or undefined. */
export function escapedByte(charCode: number): number | undefined {
  return charCode >= 0xdc80 && charCode <= 0xdcff ? charCode - 0xdc00 : undefined;
}

/** Length of the valid UTF-8 sequence at `i` (RFC 3629 §4: shortest form, no surrogates), or 0. */
function validSequence(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
