/**
 * Inbound authentication of mail: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC
 * (RFC 7489) and ARC (RFC 8617) with mailauth's verifiers, on the message as it streams
 * in. The results become an Authentication-Results header (RFC 8601) and Received-SPF; a
 * DMARC failure of a domain whose policy is reject is reported so DATA can refuse it.
 * Every DNS lookup goes to the resolver given (the kith DNS service), never the host's.
 *
 * This is mailauth's authenticate() without BIMI and ARC sealing, importing only the
 * verifiers: its index module loads BIMI's HTTP client (undici), 13 MB of resident memory
 * a relay does not need.
 */
import { isIP } from 'node:net';
import { PassThrough } from 'node:stream';

// mailauth's verifiers (with joi, libmime and its charset tables) load with the first
// inbound message, not at start (issue 16: idle memory); in the bundle import() only
// defers their evaluation.
let verifiers: Promise<[typeof import('mailauth/lib/dkim/verify.js'), typeof import('mailauth/lib/spf/index.js'), typeof import('mailauth/lib/dmarc/index.js'), typeof import('mailauth/lib/arc/index.js')]> | undefined;
const loadVerifiers = () => (verifiers ??= Promise.all([
  import('mailauth/lib/dkim/verify.js'),
  import('mailauth/lib/spf/index.js'),
  import('mailauth/lib/dmarc/index.js'),
  import('mailauth/lib/arc/index.js'),
]));

export interface VerifyResult {
  /** Header lines to prepend (CRLF-terminated). */
  headers: string;
  /** The From domain whose DMARC p=reject this message failed, if any. */
  reject?: string;
}

type Resolver = (name: string, type: string) => Promise<unknown>;
/** Fold a header value at whitespace so no line passes 160 octets (RFC 5322 §2.2.3). */
export function fold(s: string, width = 160): string {
  const words = s.replace(/\s*\r?\n\s*/g, ' ').split(' ');
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines.join('\r\n  ');
}

async function authenticate(input: PassThrough, o: { ip: string; helo: string; sender: string; mta: string; resolver: Resolver }): Promise<VerifyResult> {
  const [{ dkimVerify }, { spf }, { dmarc }, { arc }] = await loadVerifiers();
  const r = o.resolver as never;
  const dk = (await dkimVerify(input, { resolver: r, sender: o.sender } as never)) as unknown as {
    results?: { info: string; signingDomain: string; id?: string; status: { result: string; aligned?: string; underSized?: number } }[];
    headerFrom?: string[];
    arc?: unknown;
  };
  const helo = isIP(o.helo) ? `[${o.helo}]` : o.helo;
  const spfResult = (await spf({ ip: o.ip, helo, sender: o.sender, mta: o.mta, resolver: r } as never)) as unknown as { info: string; header: string; domain?: string; status: { result: string } } | false;
  const arcResult = (await arc(dk.arc as never, { resolver: r } as never)) as unknown as { info?: string } | undefined;
  const headers: string[] = [];
  const ar: string[] = [];
  for (const row of dk.results ?? []) ar.push(fold(row.info));
  if (spfResult) {
    ar.push(fold(spfResult.info));
    headers.push(spfResult.header);
  }
  if (arcResult?.info) ar.push(fold(arcResult.info));
  let reject: string | undefined;
  if (dk.headerFrom) {
    const d = (await dmarc({
      headerFrom: dk.headerFrom,
      spfDomains: spfResult && spfResult.status.result === 'pass' && spfResult.domain ? [spfResult.domain] : [],
      dkimDomains: (dk.results ?? []).filter((x) => x.status.result === 'pass').map((x) => ({ id: x.id, domain: x.signingDomain, aligned: x.status.aligned, underSized: x.status.underSized })),
      arcResult,
      resolver: r,
    } as never)) as unknown as { info?: string; status?: { result?: string }; policy?: string; domain?: string; pct?: number } | false;
    if (d && d.info) ar.push(fold(d.info));
    if (d && d.status?.result === 'fail' && d.policy === 'reject' && Number(d.pct ?? 100) >= 100) reject = d.domain;
  }
  headers.push(`Authentication-Results: ${o.mta};\r\n ` + ar.join(';\r\n '));
  const text = headers.join('\r\n').replace(/\r?\n/g, '\r\n') + '\r\n';
  return { headers: text, ...(reject ? { reject } : {}) };
}

export function startVerifying(o: { ip: string; helo: string | undefined; sender: string; mta: string; resolver: Resolver }) {
  const input = new PassThrough();
  const done = authenticate(input, { ...o, helo: o.helo || o.ip });
  return {
    write: (c: Buffer) => void input.write(c),
    end: () => void input.end(),
    abort: () => input.destroy(),
    done,
  };
}
