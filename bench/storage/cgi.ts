/**
 * The CGI/1.1 response head (RFC 3875 §6): header lines up to an empty line, where a
 * `Status:` header carries the HTTP status (§6.3.3) and the rest are passed through.
 * Pure: bytes in, the parsed head (or "need more bytes") out.
 */

export interface CgiHead {
  status: number;
  reason: string;
  headers: [string, string][];
  /** Offset of the first body byte in the buffer given. */
  bodyOffset: number;
}

const MAX_HEAD = 64 * 1024;

/** Parses the head from the start of `buf`; null when the empty line has not arrived yet. */
export function parseCgiHead(buf: Buffer): CgiHead | null {
  // Scripts end lines with LF or CRLF (§6.3: "NL"); accept both.
  let end = -1;
  let sep = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) { end = i; sep = 2; break; }
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) { end = i; sep = 3; break; }
  }
  if (end < 0) {
    if (buf.length > MAX_HEAD) throw new Error('CGI response head too long');
    return null;
  }
  let status = 200;
  let reason = 'OK';
  const headers: [string, string][] = [];
  for (const raw of buf.toString('latin1', 0, end).split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad CGI header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') {
      const m = /^(\d{3})\s*(.*)$/.exec(value);
      if (!m) throw new Error(`bad CGI Status ${JSON.stringify(value)}`);
      status = Number(m[1]);
      reason = m[2] || '';
    } else {
      headers.push([name, value]);
    }
  }
  return { status, reason, headers, bodyOffset: end + sep };
}
