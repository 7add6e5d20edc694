/**
 * Inbound authentication of mail: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC
 * (RFC 7489) and ARC (RFC 8617) with mailauth, on the message as it streams in. The result
 * becomes an Authentication-Results header (RFC 8601) and Received-SPF; a DMARC failure of
 * a domain whose policy is reject is reported so DATA can refuse it. Every DNS lookup goes
 * to the resolver given (the kith DNS service), never the host's.
 */
import { PassThrough } from 'node:stream';
import { authenticate } from 'mailauth';

export interface VerifyResult {
  /** Header lines to prepend (CRLF-terminated). */
  headers: string;
  /** The From domain whose DMARC p=reject this message failed, if any. */
  reject?: string;
}

export function startVerifying(o: { ip: string; helo: string | undefined; sender: string; mta: string; resolver: (name: string, type: string) => Promise<unknown> }) {
  const input = new PassThrough();
  const done: Promise<VerifyResult> = authenticate(input, {
    ip: o.ip,
    helo: o.helo || o.ip,
    sender: o.sender,
    mta: o.mta,
    resolver: o.resolver as never,
    disableBimi: true,
  }).then((r) => {
    const d = r.dmarc as (false | { status?: { result?: string }; policy?: string; domain?: string; pct?: number });
    const reject = d && d.status?.result === 'fail' && d.policy === 'reject' && Number(d.pct ?? 100) >= 100 ? d.domain : undefined;
    const headers = r.headers.endsWith('\r\n') ? r.headers : r.headers.replace(/\r?\n?$/, '\r\n');
    return { headers: headers.replace(/\r?\n/g, '\r\n'), ...(reject ? { reject } : {}) };
  });
  return {
    write: (c: Buffer) => void input.write(c),
    end: () => void input.end(),
    abort: () => input.destroy(),
    done,
  };
}
