/**
 * The DNS service's shell: one handler on UDP and TCP that answers from our zones
 * (authoritative), passes other names to the block lists and the caching forwarder (for
 * the home network only), and takes NOTIFY/UPDATE. A config change swaps zones, lists,
 * keys and upstreams live; zones whose content changed get a higher serial and their
 * secondaries a NOTIFY.
 *
 * The protocol cores return effects and this shell runs them: an UPDATE's
 * `{ kind: 'commit' }` (update/handler.ts; run by dynamic.ts against storage, then the zone
 * is served) before its reply goes out, and `{ kind: 'notify' }` (auth/notify.ts) for each
 * secondary of a zone that changed.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { RunningService, ServiceContext } from '../../platform/service.ts';
import { createAuthHandler } from './auth/handler.ts';
import { isNotifyAck, notifyEffects, type NotifyEffect } from './auth/notify.ts';
import { createBlocker, type Blocker } from './blocklist/blocklist.ts';
import type { DnsConfig } from './config.ts';
import { createForwarder, type Forwarder } from './forward/forwarder.ts';
import { createUdpSend } from './forward/udp.ts';
import { createRecursive } from './recursive.ts';
import { SerialKeeper } from './serials.ts';
import { startDnsServer, type HandlerInfo } from './server/server.ts';
import { createCookieLayer, type CookieState } from './cookie/layer.ts';
import { classifyResponse, DEFAULT_RRL, NetworkCounter, ResponseRateLimiter, slipReply, type RrlSettings } from './rrl/rrl.ts';
import { DEFAULT_TCP_LIMITS, type TcpLimits } from './server/tcp-table.ts';
import { OPCODE, RCODE } from './wire/constants.ts';
import { ZoneSet, type Zone } from './zone/zone.ts';
import { createDynamicUpdates } from './dynamic.ts';
import { createUpdateHandler } from './update/handler.ts';
import { coarseClock } from './coarse-clock.ts';
import { ResponseCache, type CacheKey } from './response-cache.ts';
import { aclAllows } from './auth/acl.ts';

export async function startDns(ctx: ServiceContext<DnsConfig>): Promise<RunningService<DnsConfig>> {
  const { log, metrics } = ctx;
  const queries = metrics.counter('kith_dns_queries_total', 'Queries by transport.');
  // Resolved once: these count every query.
  const udpQueries = queries.with({ transport: 'udp' });
  const tcpQueries = queries.with({ transport: 'tcp' });
  const blockedHits = metrics.counter('kith_dns_blocked_total', 'Blocked queries by list.');
  const cacheEvents = metrics.counter('kith_dns_cache_total', 'Forwarder cache lookups by result (hit, miss, coalesced).');
  const upstreamErrors = metrics.counter('kith_dns_upstream_errors_total', 'Upstream failures by upstream and reason.');
  const zonesGauge = metrics.gauge('kith_dns_zones', 'Zones served.');
  const blockGauge = metrics.gauge('kith_dns_blocklist_entries', 'Names in the block lists.');

  const serials = new SerialKeeper(ctx.dataDir, ctx.dataWrites);
  await serials.load();

  let zones = new ZoneSet();
  let blocker: Blocker | undefined;
  let forwarder: Forwarder | undefined;
  let upstreamKey = '';

  const send = createUdpSend();
  // Whole answers, keyed by the query: emptied whenever zones, lists or upstreams change.
  // Per-packet time (cache expiry and ageing, RRL, cookies, TCP deadlines), read every 100 ms.
  const clock = coarseClock(ctx.now);
  const responses = new ResponseCache({ maxEntries: 50_000, now: clock.now });
  const responseHitCount = metrics.counter('kith_dns_response_cache_hits_total', 'Answers served from the response cache.').with();

  // Who may recurse, remembered per client address until the ACL changes. The last
  // address is checked first, by comparison: each datagram's address is a new string, and
  // a Map lookup would have to intern it first (asked twice a packet: cache key, RRL).
  let aclFor: readonly string[] | undefined;
  let aclMemo = new Map<string, boolean>();
  let lastAddr = '';
  let lastAllowed = false;
  const recursionAllowed = (addr: string): boolean => {
    const acl = ctx.config().settings.recursion.allow;
    if (acl !== aclFor) {
      aclFor = acl;
      aclMemo = new Map();
      lastAddr = '';
    } else if (addr === lastAddr) return lastAllowed;
    let ok = aclMemo.get(addr);
    if (ok === undefined) {
      ok = aclAllows(acl, addr);
      if (aclMemo.size < 10_000) aclMemo.set(addr, ok);
    }
    lastAddr = addr;
    lastAllowed = ok;
    return ok;
  };

  /** Serve these zones (serials kept rising); NOTIFY secondaries of the ones that changed. */
  const installZones = async (list: Zone[], notify: boolean) => {
    const served = await serials.apply(list);
    zones = new ZoneSet(served.zones);
    responses.clear();
    zonesGauge.set(served.zones.length);
    if (notify) notifySecondaries(served.changed, ctx.config());
    return served;
  };

  const applyConfig = async (cfg: DnsConfig, first: boolean) => {
    const served = await installZones(cfg.zones.zones(), false);
    responses.clear();
    blocker = createBlocker(cfg.blocklists, { mode: cfg.settings.blocking.mode, onHit: (list) => blockedHits.inc({ list }) });
    blockGauge.set(blocker.size);
    const key = JSON.stringify([cfg.settings.upstreams, cfg.settings.cache]);
    if (key !== upstreamKey) {
      upstreamKey = key;
      forwarder = cfg.settings.upstreams.length === 0 ? undefined : createForwarder({
        upstreams: cfg.settings.upstreams,
        now: ctx.now,
        send,
        maxEntries: cfg.settings.cache.maxEntries,
        ttl: { minTtl: cfg.settings.cache.minTtl, maxTtl: cfg.settings.cache.maxTtl },
        metrics: {
          hit: () => cacheEvents.inc({ result: 'hit' }),
          miss: () => cacheEvents.inc({ result: 'miss' }),
          coalesced: () => cacheEvents.inc({ result: 'coalesced' }),
          upstreamError: (u, reason) => upstreamErrors.inc({ upstream: `${u.host}:${u.port}`, reason }),
        },
      });
    }
    for (const w of cfg.warnings) log.warn('config warning', { ...w });
    log.info(first ? 'zones loaded' : 'zones reloaded', { zones: served.zones.map((z) => `${z.origin} (serial ${z.serial})`), changed: served.changed, blocklistNames: blocker.size, upstreams: cfg.settings.upstreams.length });
    if (!first) notifySecondaries(served.changed, cfg);
  };

  const updates = metrics.counter('kith_dns_updates_total', 'Dynamic updates by result code.');
  const dynamic = createDynamicUpdates({ dataDir: ctx.dataDir, config: ctx.config, zones: () => zones, log });
  const updateHandler = createUpdateHandler({
    ...dynamic.state,
    now: ctx.now,
    // The commit effect: durable in config.git, then served (and secondaries notified).
    run: async (effect) => {
      const zone = await dynamic.commit(effect);
      await installZones([...zones.zones().filter((z) => z.origin !== zone.origin), zone], true);
    },
    onResult: (r) => {
      updates.inc({ rcode: r.rcode });
      if (r.rcode !== 'NOERROR') log.info('dynamic update refused', { rcode: r.rcode, key: r.keyName, message: r.message });
    },
  });

  // NOTIFY effects, run one after another (RFC 1996 §3.6: retried until acknowledged).
  const notifySecondaries = (origins: readonly string[], cfg: DnsConfig) => {
    const changed = origins.map((o) => zones.get(o)).filter((z): z is Zone => z !== undefined);
    const keys = new Map(cfg.keys.map((k) => [k.name, k]));
    const targets = cfg.settings.transfer.notify.map((t) => ({ host: t.host, port: t.port, key: 'key' in t && t.key ? keys.get(t.key.toLowerCase().replace(/\.$/, '')) : undefined }));
    const effects = notifyEffects(changed, targets, () => randomInt(0, 0x10000), ctx.now());
    if (effects.length > 0) void runNotifies(effects);
  };
  const runNotifies = async (effects: NotifyEffect[]) => {
    for (const e of effects) {
      const ok = await sendNotify(e);
      if (ok) log.info('notify acknowledged', { zone: e.zone, target: `${e.host}:${e.port}` });
      else log.warn('notify not acknowledged', { zone: e.zone, target: `${e.host}:${e.port}` });
    }
  };

  await applyConfig(ctx.config(), true);


  const recurse = createRecursive({
    allow: () => ctx.config().settings.recursion.allow,
    blocker: () => blocker,
    forwarder: () => forwarder,
  });
  // Replies that came from an upstream: only their TTLs age in the response cache.
  const forwardedReplies = new WeakSet<Buffer>();
  const handler = createAuthHandler({
    zones: () => zones,
    axfrAllow: () => ctx.config().settings.transfer.allow,
    // The same live key lookup UPDATE uses (dns/keys/*.key, by name).
    keys: () => dynamic.state.keys,
    now: ctx.now,
    notOurs: async (q, raw, info) => {
      const r = await recurse(q, raw, info);
      if (r) forwardedReplies.add(r);
      return r;
    },
    otherOpcode: async (q, raw) => (q.opcode === OPCODE.UPDATE ? ((await updateHandler.handle(raw)) ?? null) : undefined),
  });
  const tcpClosed = metrics.counter('kith_dns_tcp_closed_total', 'TCP connections closed or refused by the limits, by reason (idle, slow, stalled, evicted, source-evicted, full, source-full).');
  let tcpFor: DnsConfig['settings']['tcp'] | undefined;
  let tcpLimits: TcpLimits = DEFAULT_TCP_LIMITS;
  const liveTcpLimits = (): TcpLimits => {
    const t = ctx.config().settings.tcp;
    if (t !== tcpFor) {
      tcpFor = t;
      tcpLimits = { maxConnections: t.maxConnections, maxPerSource: t.maxConnectionsPerSource, idleMs: t.idleTimeout * 1000, messageMs: t.messageTimeout * 1000 };
    }
    return tcpLimits;
  };
  // Response rate limiting (rrl/rrl.ts) of UDP answers to clients outside the home network.
  const rrl = new ResponseRateLimiter();
  const networks = new NetworkCounter();
  const rrlLimited = metrics.counter('kith_dns_rrl_total', 'UDP answers held back by response rate limiting, by action (slipped: sent truncated; dropped) and reason (answer, nodata, nxdomain, referral, error).');
  let rrlFor: DnsConfig['settings']['rrl'] | undefined;
  let rrlSettings: RrlSettings = DEFAULT_RRL;
  const rateLimit = (reply: Buffer, info: HandlerInfo): Buffer | undefined => {
    const r = ctx.config().settings.rrl;
    if (!r.enabled || info.validCookie || recursionAllowed(info.remote.address) || (r.exempt.length > 0 && aclAllows(r.exempt, info.remote.address))) return reply;
    if (r !== rrlFor) {
      rrlFor = r;
      rrlSettings = { responsesPerSecond: r.responsesPerSecond, window: r.window, slip: r.slip, ipv4PrefixLength: r.ipv4PrefixLength, ipv6PrefixLength: r.ipv6PrefixLength, maxEntries: r.maxEntries };
    }
    // Most networks are quiet: their answers need no classifying or bucket (rrl.ts).
    if (!networks.busy(clock.now(), rrlSettings, info.remote.address)) return reply;
    const c = classifyResponse(reply);
    if (!c) return reply;
    const action = rrl.check(clock.now(), rrlSettings, info.remote.address, c.cls, c.name);
    if (action === 'send') return reply;
    rrlLimited.inc({ action: action === 'slip' ? 'slipped' : 'dropped', reason: c.cls });
    if (action === 'drop') return undefined;
    // A client that sent a cookie gets BADCOOKIE with a fresh server cookie instead of TC
    // (as BIND does): it can ask again over UDP with that cookie, and will be let through.
    const cookie = (info as HandlerInfo & { cookie?: CookieState }).cookie;
    return cookie ? cookies.badCookie(reply, cookie, info.remote.address) : slipReply(reply);
  };
  // DNS cookies (cookie/): checked and taken out of the query before it is answered or
  // cached, the client's and our server cookie put into the reply after.
  const cookieResults = metrics.counter('kith_dns_cookies_total', 'Queries by DNS cookie (RFC 7873): client-only, valid, invalid (a server cookie that does not verify), malformed.');
  const cookieCount = Object.fromEntries((['client-only', 'valid', 'invalid', 'malformed'] as const).map((r) => [r, cookieResults.with({ result: r })]));
  const cookies = createCookieLayer({ now: clock.now, onResult: (r) => { if (r !== 'none') cookieCount[r]!.inc(); } });
  type Info = HandlerInfo & { cookie?: CookieState };
  let missed: { msg: Buffer; query: Buffer; state: CookieState | undefined; key: CacheKey | undefined } | undefined;
  const server = await startDnsServer({
    host: ctx.listen.dns.host,
    port: ctx.listen.dns.port,
    fastPath: (msg, info: Info) => {
      // A cookie needs an OPT record: a query with no additional record skips the layer.
      let query = msg;
      let state: CookieState | undefined;
      if (msg.length >= 12 && (msg[10]! | msg[11]!) !== 0) {
        const begun = cookies.begin(msg, info.remote.address);
        if ('reply' in begun) {
          udpQueries.inc();
          return begun.reply;
        }
        ({ query, state } = begun);
        if (state) {
          info.cookie = state;
          info.validCookie = state.valid;
        }
      }
      const key = responses.key(query, info.transport, recursionAllowed(info.remote.address));
      // The entry's own bytes (no copy): sent before the next packet is read, or kept by
      // onQueuedReply below.
      const hit = key === undefined ? undefined : responses.lend(key, query);
      if (hit) {
        (info.transport === 'udp' ? udpQueries : tcpQueries).inc();
        responseHitCount.inc();
        return state ? cookies.finish(hit, state, info.remote.address, info.transport) : hit;
      }
      missed = { msg, query, state, key };
      return undefined;
    },
    handler: async (msg, info: Info) => {
      (info.transport === 'udp' ? udpQueries : tcpQueries).inc();
      // On a fast-path miss the server calls the handler at once for the same message:
      // its cookie and key are already made. TCP queries come only this way.
      let query: Buffer;
      let state: CookieState | undefined;
      let key: CacheKey | undefined;
      if (missed?.msg === msg) {
        ({ query, state, key } = missed);
      } else {
        const begun = cookies.begin(msg, info.remote.address);
        if ('reply' in begun) return begun.reply;
        ({ query, state } = begun);
        if (state) {
          info.cookie = state;
          info.validCookie = state.valid;
        }
        key = responses.key(query, info.transport, recursionAllowed(info.remote.address));
      }
      missed = undefined;
      const finish = (r: Buffer) => (state ? cookies.finish(r, state, info.remote.address, info.transport) : r);
      // UDP hits were served by fastPath already.
      if (key !== undefined && info.transport === 'tcp') {
        const hit = responses.get(key, query);
        if (hit) {
          responseHitCount.inc();
          return finish(hit);
        }
      }
      const generation = responses.generation;
      const reply = await handler(query, info);
      if (!Buffer.isBuffer(reply)) return reply;
      if (key !== undefined) responses.put(key, query, reply, generation, forwardedReplies.has(reply));
      return finish(reply);
    },
    udpReply: rateLimit,
    onQueuedReply: (reply) => responses.keep(reply),
    tcp: liveTcpLimits,
    onTcpClose: (reason) => tcpClosed.inc({ reason }),
    now: clock.now,
    log,
  }).catch((e: unknown) => {
    clock.stop(); // the service did not start: nothing will stop it later
    throw e;
  });
  const host = ctx.listen.dns.host.includes(':') ? `[${ctx.listen.dns.host}]` : ctx.listen.dns.host;
  return {
    endpoints: { dns: `udp://${host}:${server.udpPort}`, 'dns-tcp': `tcp://${host}:${server.tcpPort}` },
    applyConfig: (next) => applyConfig(next, false),
    stop: async () => {
      await server.close();
      clock.stop();
    },
  };
}

/** Runs one NOTIFY effect: sent up to 5 times, 2 s apart, until acknowledged. */
function sendNotify({ host, port, id, message: msg, signed }: NotifyEffect): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let tries = 0;
    const done = (ok: boolean) => {
      clearInterval(timer);
      sock.close();
      resolve(ok);
    };
    sock.on('message', (reply, rinfo) => {
      if (rinfo.port === port && isNotifyAck(reply, id, signed)) done(true);
      else if (reply.length >= 4 && reply.readUInt16BE(0) === id && (reply[3]! & 0xf) === RCODE.NOTIMP) done(false);
    });
    sock.on('error', () => done(false));
    const fire = () => {
      if (tries++ >= 5) return done(false);
      sock.send(msg, port, host);
    };
    const timer = setInterval(fire, 2000);
    fire();
  });
}
