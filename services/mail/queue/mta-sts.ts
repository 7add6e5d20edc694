/**
 * MTA-STS (RFC 8461) for direct-to-MX delivery: a domain that publishes `_mta-sts.<domain>`
 * TXT "v=STSv1; id=..." serves its policy at https://mta-sts.<domain>/.well-known/mta-sts.txt
 * (mode enforce | testing | none, the MX patterns, max_age). Under enforce only an MX that
 * matches a pattern is used, over TLS with a certificate valid for its name; under testing
 * a mismatch is only reported. Lookups go through the kith resolver, the policy is fetched
 * with HTTPS (no redirects, text/plain, at most 64 KiB) and cached for max_age; a new id in
 * the TXT record fetches it again, and a failed fetch keeps the cached policy (§5.1). The
 * cache is kept in the data folder too, so a restart does not open a window in which an
 * attacker who strips the TXT record downgrades delivery to clear text.
 * The parsers are pure and take hostile input.
 */
import { promises as dnsp, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { writeFileDurable } from '../../../platform/durable.ts';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** MX patterns, lower case: a name, or `*.` and a name (one leftmost label). */
  mx: string[];
  /** Seconds (RFC 8461 §3.2: at most 31557600). */
  maxAge: number;
}

export interface CachedPolicy extends StsPolicy {
  domain: string;
  /** The TXT record's id the policy was fetched for. */
  id: string;
  fetchedAt: number;
}

/** The policy text is small; more than this is refused (a hostile server cannot make us buffer more). */
export const MAX_POLICY_BYTES = 64 * 1024;
const MAX_AGE_LIMIT = 31_557_600;
const FETCH_TIMEOUT_MS = 30_000;
/** After a failed fetch with nothing cached, a domain is not fetched again for this long. */
const FAILURE_BACKOFF_MS = 60_000;
const MAX_DOMAINS = 10_000;

const WSP = '[ \\t]*';
const ID = /^[A-Za-z0-9]{1,32}$/;
const EXT_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/**
 * The id of `_mta-sts` TXT records (§3.1), given as the resolver returns them (chunks per
 * record): records not starting with "v=STSv1;" are ignored; no valid one, several, or a
 * malformed one is no policy (undefined).
 */
export function parseStsRecord(records: string[][]): { id: string } | undefined {
  const sts = records.map((chunks) => chunks.join('')).filter((r) => /^v=STSv1;/.test(r));
  if (sts.length !== 1) return undefined;
  const fields = sts[0]!.split(new RegExp(`${WSP};${WSP}`));
  if (fields[0] !== 'v=STSv1') return undefined;
  let id: string | undefined;
  for (const f of fields.slice(1)) {
    if (f === '') continue; // a trailing ';'
    const m = new RegExp(`^([^=\\s]+)${WSP}=${WSP}(.*)$`).exec(f);
    if (!m) return undefined;
    const [, name, value] = m as unknown as [string, string, string];
    if (name === 'id') {
      if (!ID.test(value) || id !== undefined) return undefined;
      id = value;
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) return undefined;
  }
  return id === undefined ? undefined : { id };
}

/** A policy body (§3.2), or why it is not one. Unknown keys are ignored; keys other than mx count once (the first). */
export function parsePolicy(text: string): StsPolicy | { error: string } {
  if (text.length > MAX_POLICY_BYTES) return { error: `policy larger than ${MAX_POLICY_BYTES} bytes` };
  const seen = new Map<string, string>();
  const mx: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    const m = /^([A-Za-z0-9_.-]{1,32}):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) return { error: `not a "key: value" line: ${JSON.stringify(line.slice(0, 80))}` };
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'mx') mx.push(value.toLowerCase());
    else if (!seen.has(key)) seen.set(key, value);
  }
  if (seen.get('version') !== 'STSv1') return { error: 'version: expected STSv1' };
  const mode = seen.get('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') return { error: 'mode: expected enforce, testing or none' };
  const age = seen.get('max_age') ?? '';
  if (!/^\d{1,10}$/.test(age)) return { error: 'max_age: expected a number of seconds' };
  const maxAge = Math.min(Number(age), MAX_AGE_LIMIT);
  for (const p of mx) if (!validPattern(p)) return { error: `mx: ${JSON.stringify(p.slice(0, 80))} is not a host name or *.name` };
  if (mode !== 'none' && mx.length === 0) return { error: 'mx: at least one is needed unless mode is none' };
  return { mode, mx, maxAge };
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
function validPattern(p: string): boolean {
  const name = p.startsWith('*.') ? p.slice(2) : p;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.replace(/\.$/, '').split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l));
}

/** Whether MX host `host` matches one of the patterns (§4.1): `*.` stands for exactly one leftmost label. */
export function mxMatches(patterns: string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((raw) => {
    const p = raw.replace(/\.$/, '');
    if (!p.startsWith('*.')) return p === h;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}

export interface MtaStsOptions {
  /** The DNS server (the kith DNS service). */
  resolver: () => { host: string; port: number };
  now: () => number;
  /** Extra trust roots (tests); default Node's bundled CAs. */
  ca?: string;
  /** Port of the policy host (443; tests point it elsewhere). */
  httpsPort?: number;
  report?: (msg: string, fields: Record<string, unknown>) => void;
  /** Where the cache is kept across restarts (written durably when a policy is fetched). */
  file?: string;
}

/** Cached policies from `file`, each checked as a fetched one would be; anything else is dropped. */
export function loadPolicyCache(file: string): CachedPolicy[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  const list = (v as { policies?: unknown } | null)?.policies;
  if (!Array.isArray(list)) return [];
  return list.flatMap((e: Partial<CachedPolicy>) => {
    if (typeof e !== 'object' || e === null || typeof e.domain !== 'string' || typeof e.id !== 'string' || !ID.test(e.id) || typeof e.fetchedAt !== 'number' || !Array.isArray(e.mx)) return [];
    const line = (x: unknown) => (typeof x === 'string' || typeof x === 'number') && !/[\r\n]/.test(String(x));
    if (!line(e.mode) || !line(e.maxAge) || !e.mx.every(line)) return [];
    const p = parsePolicy(`version: STSv1\nmode: ${String(e.mode)}\nmax_age: ${String(e.maxAge)}\n${e.mx.map((m) => `mx: ${String(m)}`).join('\n')}\n`);
    return 'error' in p ? [] : [{ ...p, domain: e.domain.toLowerCase(), id: e.id, fetchedAt: e.fetchedAt }];
  });
}


/** Policies per recipient domain, in memory, refreshed as §5.1 says. */
export class MtaSts {
  private readonly cache = new Map<string, CachedPolicy>();
  private readonly failedAt = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<CachedPolicy | undefined>>();
  private readonly o: MtaStsOptions;

  private saving: Promise<void> = Promise.resolve();

  constructor(o: MtaStsOptions) {
    this.o = o;
    if (o.file) for (const p of loadPolicyCache(o.file)) this.cache.set(p.domain, p);
  }

  /** Write the cache (one write at a time, the latest state). */
  private persist(): void {
    const file = this.o.file;
    if (!file) return;
    this.saving = this.saving.then(() => writeFileDurable(file, JSON.stringify({ policies: [...this.cache.values()] }) + '\n', { mode: 0o600 })).catch((err: Error) => {
      this.o.report?.('MTA-STS cache not saved', { file, error: err.message });
    });
  }

  /** Resolves when the cache on disk is current (tests). */
  flushed(): Promise<void> {
    return this.saving;
  }

  /** Log what a policy made us do (or, under testing, would have). */
  report(msg: string, fields: Record<string, unknown>): void {
    this.o.report?.(msg, fields);
  }

  private dns(): dnsp.Resolver {
    const a = this.o.resolver();
    const r = new dnsp.Resolver({ timeout: 3000, tries: 2 });
    r.setServers([isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`]);
    return r;
  }

  /** The policy to apply to `domain` now (undefined: none, or mode none). */
  async policyFor(domain: string): Promise<CachedPolicy | undefined> {
    const d = domain.toLowerCase().replace(/\.$/, '');
    let p = this.inFlight.get(d);
    if (!p) {
      p = this.lookup(d).finally(() => this.inFlight.delete(d));
      this.inFlight.set(d, p);
    }
    const policy = await p;
    return policy && policy.mode !== 'none' ? policy : undefined;
  }

  private async lookup(domain: string): Promise<CachedPolicy | undefined> {
    const now = this.o.now();
    const cached = this.cache.get(domain);
    const valid = cached && now < cached.fetchedAt + cached.maxAge * 1000 ? cached : undefined;
    let record: { id: string } | undefined;
    try {
      record = parseStsRecord(await this.dns().resolveTxt(`_mta-sts.${domain}`));
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // No record (NXDOMAIN, NODATA): no new policy; a lookup failure likewise. Either way a
      // policy still within its max_age goes on applying (§5.1: a TXT record removed is no reason to stop).
      if (!['ENOTFOUND', 'ENODATA'].includes(code)) this.o.report?.('MTA-STS TXT lookup failed', { domain, error: (err as Error).message });
      return valid;
    }
    if (!record) return valid;
    if (valid && valid.id === record.id) return valid;
    const failed = this.failedAt.get(domain);
    if (!valid && failed !== undefined && now - failed < FAILURE_BACKOFF_MS) return undefined;
    try {
      const policy = await this.fetchPolicy(domain);
      const entry: CachedPolicy = { ...policy, domain, id: record.id, fetchedAt: now };
      this.failedAt.delete(domain);
      if (this.cache.size >= MAX_DOMAINS && !this.cache.has(domain)) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(domain, entry);
      this.persist();
      return entry;
    } catch (err) {
      this.failedAt.set(domain, now);
      this.o.report?.('MTA-STS policy fetch failed', { domain, error: (err as Error).message, keeping: valid ? valid.id : 'none' });
      return valid;
    }
  }

  /** GET https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3), the name resolved by our resolver. */
  fetchPolicy(domain: string): Promise<StsPolicy> {
    const host = `mta-sts.${domain}`;
    const resolver = this.dns();
    const lookup = (name: string, opts: { all?: boolean }, cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
      void resolver.resolve4(name).then((a) => a, () => resolver.resolve6(name)).then((addrs) => {
        if (addrs.length === 0) return cb(Object.assign(new Error(`no address for ${name}`), { code: 'ENOTFOUND' }), '');
        const family = isIP(addrs[0]!);
        return opts.all ? cb(null, addrs.map((address) => ({ address, family: isIP(address) }))) : cb(null, addrs[0]!, family);
      }, (err: Error) => cb(err, ''));
    };
    return new Promise((resolve, reject) => {
      const req = https.request({
        host, port: this.o.httpsPort ?? 443, path: '/.well-known/mta-sts.txt', method: 'GET',
        servername: host, rejectUnauthorized: true, ...(this.o.ca ? { ca: this.o.ca } : {}),
        lookup: lookup as never, agent: false, timeout: FETCH_TIMEOUT_MS,
        headers: { 'user-agent': 'kith-mail (MTA-STS)', accept: 'text/plain' },
      }, (res) => {
        const fail = (why: string) => {
          res.destroy();
          reject(new Error(`${host}: ${why}`));
        };
        // §3.3: no redirects, 200 only, text/plain.
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode} (a policy is served with 200, never redirected)`);
        const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'text/plain') return fail(`content-type ${JSON.stringify(type.slice(0, 60))}, expected text/plain`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_POLICY_BYTES) return fail(`policy over ${MAX_POLICY_BYTES} bytes`);
          chunks.push(c);
        });
        res.on('error', (err) => reject(err));
        res.on('end', () => {
          const p = parsePolicy(Buffer.concat(chunks).toString('utf8'));
          if ('error' in p) reject(new Error(`${host}: ${p.error}`));
          else resolve(p);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${host}: no answer in ${FETCH_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end();
    });
  }
}
