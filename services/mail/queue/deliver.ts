/**
 * One delivery attempt of one message (RFC 5321 §5 for the route, §4.2 for the replies):
 * through the smarthost when one is configured (STARTTLS or implicit TLS, AUTH), else to
 * each recipient domain's MX hosts in preference order (implicit MX: the domain's A/AAAA
 * when it has no MX), resolved by the configured resolver — the kith DNS service, never
 * the host's. TLS per policy: opportunistic (STARTTLS when offered, clear if the upgrade
 * fails) or require (never in clear: a temporary failure). The SMTP client is nodemailer's
 * SMTPConnection; the body is streamed from the queue file.
 */
import { promises as dnsp } from 'node:dns';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { mxMatches, type MtaSts } from './mta-sts.ts';
import { outcomeOf, type Outcome } from './schedule.ts';

export interface Route {
  /** Smarthost, or undefined for direct MX delivery. */
  smarthost?: { host: string; port: number; security: 'starttls' | 'implicit'; username?: string; password?: string };
  tls: 'opportunistic' | 'require';
  verifyCertificates: boolean;
  /** The DNS server MX lookups go to. */
  resolver: { host: string; port: number };
  mxPort: number;
  /** Our name in EHLO. */
  helo: string;
  /** MTA-STS policies for direct MX delivery (RFC 8461); absent: not looked up. */
  mtaSts?: MtaSts;
  /** Trust roots for verified TLS (tests); default Node's bundled CAs. */
  ca?: string;
  /** The name the remote's certificate must be valid for (the MX host's name); default the host. */
  tlsName?: string;
}

export interface Attempt {
  from: string;
  to: string[];
  body: () => Readable;
  size: number;
  eightBit?: boolean;
}

export interface RcptResult {
  outcome: Outcome;
  /** Which host answered. */
  mta?: string;
}

const TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 120_000, dnsTimeout: 15_000 };

/** MX hosts of a domain, best first; a temporary DNS failure throws, none at all is permanent. */
export async function mxHosts(domain: string, resolver: { host: string; port: number }): Promise<{ hosts: { name: string; ip: string }[] } | { permanent: string }> {
  const r = new dnsp.Resolver({ timeout: 3000, tries: 2 });
  r.setServers([isIP(resolver.host) === 6 ? `[${resolver.host}]:${resolver.port}` : `${resolver.host}:${resolver.port}`]);
  const missing = (err: unknown) => ['ENOTFOUND', 'ENODATA'].includes((err as { code?: string }).code ?? '');
  let mx: { exchange: string; priority: number }[] = [];
  try {
    mx = await r.resolveMx(domain);
  } catch (err) {
    if (!missing(err)) throw err;
    // RFC 5321 §5.1: no MX, then the domain itself is the host; NXDOMAIN is permanent.
    if ((err as { code?: string }).code === 'ENOTFOUND') return { permanent: `domain ${domain} does not exist (NXDOMAIN)` };
    mx = [{ exchange: domain, priority: 0 }];
  }
  // RFC 7505: a null MX (".") means the domain takes no mail.
  if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) return { permanent: `${domain} publishes a null MX: it accepts no mail (RFC 7505)` };
  mx.sort((a, b) => a.priority - b.priority);
  const hosts: { name: string; ip: string }[] = [];
  for (const m of mx) {
    if (isIP(m.exchange)) {
      hosts.push({ name: m.exchange, ip: m.exchange });
      continue;
    }
    for (const fam of ['resolve4', 'resolve6'] as const) {
      try {
        hosts.push(...(await r[fam](m.exchange)).map((ip) => ({ name: m.exchange.toLowerCase().replace(/\.$/, ''), ip })));
      } catch (err) {
        if (!missing(err)) throw err;
      }
    }
  }
  if (hosts.length === 0) throw Object.assign(new Error(`no address for the MX hosts of ${domain} (${mx.map((m) => m.exchange).join(', ')})`), { code: 'ENOADDR' });
  return { hosts };
}

function connect(host: string, port: number, route: Route, implicit: boolean): Promise<SMTPConnection> {
  const conn = new SMTPConnection({
    host,
    port,
    secure: implicit,
    name: route.helo,
    requireTLS: !implicit && route.tls === 'require',
    opportunisticTLS: route.tls !== 'require',
    tls: { rejectUnauthorized: route.verifyCertificates, servername: route.tlsName ?? (isIP(host) ? undefined : host), ...(route.ca ? { ca: route.ca } : {}) },
    ...TIMEOUTS,
  });
  return new Promise((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => {
      conn.removeListener('error', reject);
      conn.on('error', () => {});
      resolve(conn);
    });
  });
}

type SendErr = Error & { responseCode?: number; response?: string; rejectedErrors?: SendErr[]; recipient?: string };

/** Send over one open connection: per-recipient outcomes. */
function sendOn(conn: SMTPConnection, a: Attempt, to: string[]): Promise<Map<string, Outcome>> {
  return new Promise((resolve) => {
    const out = new Map<string, Outcome>();
    const body = a.body();
    conn.send({ from: a.from, to, size: a.size, use8BitMime: a.eightBit === true }, body as never, (err: SendErr | null, info?: { accepted: string[]; rejectedErrors?: SendErr[]; response?: string }) => {
      body.destroy();
      const rejected = (err?.rejectedErrors ?? info?.rejectedErrors ?? []) as SendErr[];
      for (const r of rejected) if (r.recipient) out.set(r.recipient, outcomeOf(r.responseCode, r.response ?? r.message));
      if (err) {
        for (const t of to) if (!out.has(t)) out.set(t, outcomeOf(err.responseCode, err.response ?? err.message));
      } else {
        for (const t of info?.accepted ?? []) out.set(t, { kind: 'ok', response: info?.response ?? '250' });
        for (const t of to) if (!out.has(t)) out.set(t, { kind: 'ok', response: info?.response ?? '250' });
      }
      resolve(out);
    });
  });
}

/**
 * Open sessions kept between messages (RSET, then the next MAIL), per host and policy,
 * as Postfix's connection cache does: a session costs a TCP and often a TLS handshake,
 * the greeting, EHLO and AUTH. Idle ones are closed after a few seconds.
 */
const IDLE_MS = 5000;
const MAX_IDLE_PER_KEY = 32;
const idle = new Map<string, { conn: SMTPConnection; timer: NodeJS.Timeout }[]>();
const dead = new WeakSet<SMTPConnection>();

function closeQuietly(conn: SMTPConnection) {
  dead.add(conn);
  try {
    conn.quit();
  } catch {
    conn.close();
  }
}

function release(key: string, conn: SMTPConnection) {
  if (dead.has(conn)) return closeQuietly(conn);
  conn.reset((err) => {
    if (err || dead.has(conn)) return closeQuietly(conn);
    const list = idle.get(key) ?? [];
    if (list.length >= MAX_IDLE_PER_KEY) return closeQuietly(conn);
    const entry = { conn, timer: setTimeout(() => {
      const l = idle.get(key) ?? [];
      const i = l.indexOf(entry);
      if (i !== -1) l.splice(i, 1);
      closeQuietly(conn);
    }, IDLE_MS) };
    entry.timer.unref();
    list.push(entry);
    idle.set(key, list);
  });
}

/** Close every idle session (the service is stopping). */
export function closeIdleSessions(): void {
  for (const list of idle.values()) for (const e of list.splice(0)) { clearTimeout(e.timer); closeQuietly(e.conn); }
}

async function openSession(host: string, port: number, route: Route, implicit: boolean, auth?: { user: string; pass: string }, tlsReport?: (why: string) => void): Promise<SMTPConnection> {
  const conn = await connect(host, port, route, implicit);
  if (tlsReport) {
    // What enforce would have asked: TLS, with a certificate valid for the MX's name.
    const sock = (conn as unknown as { _socket?: { authorized?: boolean; authorizationError?: unknown } })._socket;
    if (!(conn as unknown as { secure?: boolean }).secure) tlsReport('no STARTTLS');
    else if (!sock?.authorized) tlsReport(`certificate: ${String(sock?.authorizationError ?? 'not verified')}`);
  }
  conn.on('end', () => dead.add(conn));
  conn.on('error', () => dead.add(conn));
  if (route.tls === 'require' && !implicit && !(conn as unknown as { secure?: boolean }).secure) {
    closeQuietly(conn);
    throw new Error(`TLS required by policy but ${host} did not offer STARTTLS`);
  }
  if (auth) {
    try {
      await new Promise<void>((resolve, reject) => conn.login(auth, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      closeQuietly(conn);
      throw err;
    }
  }
  return conn;
}

async function tryHost(host: string, port: number, route: Route, a: Attempt, to: string[], implicit: boolean, auth?: { user: string; pass: string }, tlsReport?: (why: string) => void): Promise<Map<string, Outcome>> {
  const key = `${host}|${port}|${implicit}|${route.tls}|${route.verifyCertificates}|${route.tlsName ?? ''}|${auth?.user ?? ''}|${auth?.pass ?? ''}|${route.helo}`;
  const fail = (e: unknown) => {
    const err = e as SendErr;
    return new Map(to.map((t) => [t, outcomeOf(err.responseCode, `${host}:${port}: ${err.response ?? err.message}`)]));
  };
  // A kept session first; if it turns out to be gone, once more on a new one.
  for (let tries = 0; tries < 2; tries++) {
    const list = idle.get(key);
    let entry = list?.pop();
    while (entry && dead.has(entry.conn)) {
      clearTimeout(entry.timer);
      entry = list?.pop();
    }
    let conn: SMTPConnection;
    if (entry) {
      clearTimeout(entry.timer);
      conn = entry.conn;
    } else {
      try {
        conn = await openSession(host, port, route, implicit, auth, tlsReport);
      } catch (e) {
        return fail(e);
      }
    }
    const out = await sendOn(conn, a, to);
    const sessionLost = dead.has(conn) && [...out.values()].every((o) => o.kind === 'temp' && o.code === undefined);
    if (sessionLost) {
      closeQuietly(conn);
      if (entry) continue; // the kept session had died: the message was not taken
      return out;
    }
    release(key, conn);
    return out;
  }
  return fail(new Error('could not open a session'));
}

/** Deliver to every recipient once; each gets an outcome. */
export async function deliver(a: Attempt, route: Route): Promise<Map<string, RcptResult>> {
  const results = new Map<string, RcptResult>();
  const sh = route.smarthost;
  if (sh) {
    const auth = sh.username !== undefined ? { user: sh.username, pass: sh.password ?? '' } : undefined;
    const r = await tryHost(sh.host, sh.port, route, a, a.to, sh.security === 'implicit', auth);
    for (const [t, o] of r) results.set(t, { outcome: o, mta: sh.host });
    return results;
  }
  const byDomain = new Map<string, string[]>();
  for (const t of a.to) {
    const d = t.slice(t.lastIndexOf('@') + 1).toLowerCase();
    byDomain.set(d, [...(byDomain.get(d) ?? []), t]);
  }
  await Promise.all([...byDomain].map(async ([domain, rcpts]) => {
    let hosts: { name: string; ip: string }[];
    try {
      const mx = await mxHosts(domain, route.resolver);
      if ('permanent' in mx) {
        for (const t of rcpts) results.set(t, { outcome: { kind: 'perm', enhanced: '5.1.2', response: mx.permanent } });
        return;
      }
      hosts = mx.hosts;
    } catch (err) {
      for (const t of rcpts) results.set(t, { outcome: { kind: 'temp', enhanced: '4.4.3', response: `MX lookup for ${domain} failed: ${(err as Error).message}` } });
      return;
    }
    // RFC 8461 §5: under enforce only matching MX hosts, each over TLS valid for its name;
    // a failure is temporary (the message waits, never goes in clear). Testing only reports.
    const policy = route.mtaSts ? await route.mtaSts.policyFor(domain) : undefined;
    if (policy) {
      const matching = hosts.filter((h) => mxMatches(policy.mx, h.name));
      const off = [...new Set(hosts.filter((h) => !matching.includes(h)).map((h) => h.name))];
      if (off.length > 0) route.mtaSts!.report(`MTA-STS (${policy.mode}): MX hosts not in the policy${policy.mode === 'enforce' ? ', skipped' : ''}`, { domain, hosts: off, mx: policy.mx });
      if (policy.mode === 'enforce') {
        if (matching.length === 0) {
          for (const t of rcpts) results.set(t, { outcome: { kind: 'temp', enhanced: '4.7.5', response: `no MX host of ${domain} (${off.join(', ')}) matches its MTA-STS policy (mx: ${policy.mx.join(', ')})` } });
          return;
        }
        hosts = matching;
      }
    }
    let left = rcpts;
    for (const host of hosts.slice(0, 5)) {
      const enforce = policy?.mode === 'enforce';
      const hostRoute: Route = { ...route, tlsName: host.name, ...(enforce ? { tls: 'require' as const, verifyCertificates: true } : {}) };
      const r = await tryHost(host.ip, route.mxPort, hostRoute, a, left, false, undefined, policy?.mode === 'testing' ? (why) => route.mtaSts!.report('MTA-STS (testing): TLS would have failed', { domain, host: host.name, why }) : undefined);
      const next: string[] = [];
      for (const t of left) {
        const o = r.get(t)!;
        results.set(t, { outcome: enforce && o.kind === 'temp' && o.code === undefined ? { ...o, response: `MTA-STS enforce: ${o.response}` } : o, mta: host.name });
        // Another MX host gets a recipient only when this one could not be reached or
        // answered 4xx to the whole transaction (RFC 5321 §5.1).
        if (o.kind === 'temp' && o.code === undefined) next.push(t);
      }
      left = next;
      if (left.length === 0) break;
    }
  }));
  return results;
}
