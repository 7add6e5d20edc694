/**
 * The mail service's shell: DKIM keys, the durable queue and its runner, the three SMTP
 * listeners, the management API, and publishing DNS records through storage. A config
 * change applies live: limits, aliases, users, route and timing are read on each use;
 * new selectors get keys and records are published again.
 */
import { promises as dnsp } from 'node:dns';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { readServerTls } from '../../platform/pki/server-tls.ts';
import { RevocationList } from '../../platform/pki/revocation.ts';
import type { RunningService, ServiceContext } from '../../platform/service.ts';
import type { MailConfig } from './config.ts';
import { startControl } from './control.ts';
import { loadOrCreateKey, type DkimKey } from './dkim.ts';
import { readOwnerTokenHash, readResolverLink } from '../../platform/links.ts';
import { DevicePasswords } from '../../platform/device-passwords.ts';
import { secretMatches, verifyPassword } from '../../platform/passwords.ts';
import { publishRecords } from './publish.ts';
import { MailQueue } from './queue/queue.ts';
import { closeIdleSessions, type Route } from './queue/deliver.ts';
import { MtaSts } from './queue/mta-sts.ts';
import { Spool } from './queue/spool.ts';
import { createSmtpListener, type ListenerKind, type SmtpListener } from './smtp.ts';
import { signStream, startSigning } from './dkim.ts';
import { clockSynchronisedGate } from '../../platform/clock-state.ts';

export async function startMail(ctx: ServiceContext<MailConfig>): Promise<RunningService<MailConfig>> {
  const { log } = ctx;
  let keys: DkimKey[] = [];
  const loadKeys = async (cfg: MailConfig) => {
    keys = await Promise.all(cfg.settings.dkim.selectors.map((s) => loadOrCreateKey(ctx.dataDir, s.name, s.algorithm)));
  };
  await loadKeys(ctx.config());

  const dnsLink = (await readResolverLink(ctx.dataDir)) ?? { host: '127.0.0.1', port: 53 };
  const resolverAddr = () => {
    const r = ctx.config().settings.outbound.resolver;
    return r === 'kith' ? dnsLink : r;
  };
  let dnsResolver: dnsp.Resolver | undefined;
  let dnsResolverFor = '';
  const resolver = () => {
    const a = resolverAddr();
    const key = `${a.host}:${a.port}`;
    if (!dnsResolver || key !== dnsResolverFor) {
      dnsResolver = new dnsp.Resolver({ timeout: 3000, tries: 2 });
      dnsResolver.setServers([isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : key]);
      dnsResolverFor = key;
    }
    return dnsResolver;
  };

  // The owner's token (random, 192 bits) is checked against the hash the supervisor
  // provisioned (links/owner.json); a digest compare suits a token that is not a human's password.
  const checkOwner = async (token: string) => secretMatches(token, await readOwnerTokenHash(ctx.dataDir));
  // The owner's paired devices' passwords (issued at `kith pair`, followed live: a revoked one fails at once).
  const devices = new DevicePasswords(ctx.dataDir, (m) => log.warn(m));
  const checkPassword = async (user: string, password: string) => {
    const u = ctx.config().settings.users[user];
    if (!u || password.length === 0 || password.length > 1024) return false;
    for (const h of u.passwords) if (await verifyPassword(password, h)) return true;
    return u.ownerToken ? devices.match(password) !== undefined || checkOwner(password) : false;
  };

  const mtaSts = new MtaSts({ resolver: resolverAddr, now: ctx.now, file: path.join(ctx.dataDir, 'mta-sts.json'), report: (msg, fields) => log.info(msg, fields) });
  const route = (): Route => {
    const o = ctx.config().settings.outbound;
    return {
      ...(!o.smarthost && o.mtaSts ? { mtaSts } : {}),
      ...(o.smarthost ? { smarthost: o.smarthost } : {}),
      tls: o.tls,
      verifyCertificates: o.verifyCertificates,
      resolver: resolverAddr(),
      mxPort: o.mxPort,
      helo: ctx.config().settings.hostname,
    };
  };

  // DKIM signatures carry the time (t=): on an appliance without network time yet, mail is
  // held in the queue unsigned and signed once the clock is (under kith up the host's clock counts).
  const clockSynchronised = clockSynchronisedGate();
  const dsnDomain = (mta: string) => Object.keys(ctx.config().settings.domains).find((d) => mta === d || mta.endsWith(`.${d}`));

  const spool = new Spool(path.join(ctx.dataDir, 'queue'));
  const queue = new MailQueue({
    spool,
    log,
    metrics: ctx.metrics,
    now: ctx.now,
    timing: () => ctx.config().settings.queue,
    route,
    reportingMta: () => ctx.config().settings.hostname,
    dkim: { synchronised: clockSynchronised, sign: (body, domain) => signStream(keys, domain, body), domainOf: dsnDomain },
    signDsn: async (text, mta) => {
      const domain = dsnDomain(mta);
      if (!domain) return '';
      const s = await startSigning(keys, domain);
      s.write(text);
      s.end();
      return s.done;
    },
  });
  await queue.start();

  const tls = await readServerTls(ctx.dataDir);
  if (!tls) log.warn('no TLS material in the data folder (tls/): STARTTLS is off, so submission cannot authenticate and port 465 is closed');

  // Paired devices' certificates log in on 587/465; a revoked one (kith revoke) is refused
  // from the moment the supervisor writes tls/revoked.json, sessions already open included.
  const revoked = new RevocationList(ctx.dataDir, (msg) => log.warn('revocation list unreadable; keeping the last one', { error: msg }));

  const listeners: SmtpListener[] = [];
  const endpoints: Record<string, string> = {};
  const kinds: [string, ListenerKind, string][] = [['smtp', 'mx', 'smtp'], ['submission', 'submission', 'smtp'], ['submissions', 'submissions', 'smtps']];
  for (const [name, kind, scheme] of kinds) {
    const at = ctx.listen[name];
    if (!at) continue;
    if (kind === 'submissions' && !tls) continue;
    const l = createSmtpListener(kind, {
      config: ctx.config,
      spool,
      queue,
      tls,
      keys: () => keys,
      checkPassword,
      resolver: (n, t) => resolver().resolve(n, t),
      log,
      metrics: ctx.metrics,
      now: ctx.now,
      clockSynchronised,
      revoked,
    });
    const port = await l.listen(at.host, at.port);
    listeners.push(l);
    endpoints[name] = `${scheme}://${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}`;
  }
  const control = ctx.listen.control ? await startControl({ host: ctx.listen.control.host, port: ctx.listen.control.port, queue, checkOwner, log, ...(tls ? { tls } : {}), revoked }) : undefined;
  if (control) endpoints.control = control.url;

  // Records: published now and after each config change; storage may still be starting,
  // so a failure is retried with back-off (a newer attempt replaces a waiting one).
  let publishTimer: NodeJS.Timeout | undefined;
  let published = 'never';
  const publish = (attempt = 0) => {
    clearTimeout(publishTimer);
    publishTimer = setTimeout(() => {
      void publishRecords({ dataDir: ctx.dataDir, configRoot: ctx.configRoot, config: ctx.config(), keys, log }).then((r) => {
        published = `ok ${new Date(ctx.now()).toISOString()} (${r.committed.length} committed, ${r.unchanged.length} unchanged)`;
      }, (err: Error) => {
        published = `failed: ${err.message}`;
        const delay = Math.min(60_000, 500 * 2 ** attempt);
        if (attempt < 3) log.info('publishing mail records: retrying', { error: err.message, inMs: delay });
        else log.warn('publishing mail records failed; retrying', { error: err.message, inMs: delay });
        publish(attempt + 1);
      });
    }, attempt === 0 ? 200 : Math.min(60_000, 500 * 2 ** (attempt - 1)));
    publishTimer.unref();
  };
  // The first publish is awaited (storage starts beside us, so tried for up to 15 s): once
  // mail says ready, its records are in config.git and served, and a clone made then is
  // current. Without storage (a mail-only image) it goes on in the background.
  const firstTry = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await publishRecords({ dataDir: ctx.dataDir, configRoot: ctx.configRoot, config: ctx.config(), keys, log });
      published = `ok ${new Date(ctx.now()).toISOString()} (${r.committed.length} committed, ${r.unchanged.length} unchanged)`;
      break;
    } catch (err) {
      published = `failed: ${(err as Error).message}`;
      if (Date.now() - firstTry > 15_000) {
        log.warn('publishing mail records failed; retrying in the background', { error: (err as Error).message });
        publish(1);
        break;
      }
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)));
    }
  }

  return {
    endpoints,
    applyConfig: async (next) => {
      await loadKeys(next);
      // The runner swaps the config after this returns; limits read it then.
      setImmediate(() => {
        for (const l of listeners) l.applyLimits();
        publish();
      });
    },
    health: () => ({ ok: true, detail: `queue ${queue.size}; records ${published}` }),
    stop: async () => {
      clearTimeout(publishTimer);
      revoked.close();
      queue.stop();
      devices.close();
      closeIdleSessions();
      await Promise.all([...listeners.map((l) => l.close()), control?.close()]);
    },
  };
}
