/**
 * The calendar's HTTP shell: authentication, request bodies read as a stream under the
 * live limit (413 past it), RFC 6764 well-known redirects, and the DAV handler. Data goes
 * to storage's versioned store through the provisioned link; until the store answers the
 * service is up but unhealthy and answers 503.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { DevicePasswords } from '../../platform/device-passwords.ts';
import { readOwnerTokenHash, readStorageLink } from '../../platform/links.ts';
import { readServerTls } from '../../platform/pki/server-tls.ts';
import { RevocationList } from '../../platform/pki/revocation.ts';
import { listenGated } from '../../platform/peer-gate.ts';
import type { RunningService, ServiceContext } from '../../platform/service.ts';
import { createAuthenticator } from './auth.ts';
import type { CalendarConfig } from './config.ts';
import { createDavHandler, errorResponse, DavError, type DavResponse } from './dav/handler.ts';
import { validateCalendarObject } from './ical/calendar-object.ts';
import { publishDiscovery } from './publish.ts';
import { Repository, type Summarize } from './store/repository.ts';
import { createStoreClient } from '../../platform/store-client.ts';
import { validateCard } from './vcard/vcard.ts';

export const STORE_REPO = 'calendar';

const summarize = (maxInstances: () => number): Summarize => (type, text) => {
  if (type === 'calendar') {
    const v = validateCalendarObject(text, maxInstances());
    return v.ok ? v.value : undefined;
  }
  const v = validateCard(text);
  return v.ok ? { uid: v.value.uid } : undefined;
};

class BodyTooLarge extends Error {}

async function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) throw new BodyTooLarge(`the body is ${declared} bytes, over limits.maxBodyBytes = ${max}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new BodyTooLarge(`the body is over limits.maxBodyBytes = ${max} bytes`);
    chunks.push(c);
  }
  const buf = Buffer.concat(chunks);
  return new TextDecoder('utf-8', { fatal: false }).decode(buf);
}

export async function startCalendar(ctx: ServiceContext<CalendarConfig>): Promise<RunningService<CalendarConfig>> {
  const { log, metrics } = ctx;
  const requests = metrics.counter('kith_calendar_requests_total', 'DAV requests by method and status.');
  const heapUsed = metrics.gauge('kith_calendar_heap_used_bytes', 'V8 heap in use (live objects and garbage not yet collected).');
  const heapTotal = metrics.gauge('kith_calendar_heap_total_bytes', 'V8 heap committed.');
  const items = metrics.gauge('kith_calendar_items', 'Calendar objects and vCards in the index.');
  const memTimer = setInterval(() => {
    const m = process.memoryUsage();
    heapUsed.set(m.heapUsed);
    heapTotal.set(m.heapTotal);
    let n = 0;
    for (const c of repo?.collections.values() ?? []) n += c.items.size;
    items.set(n);
  }, 5000);
  memTimer.unref();
  const link = await readStorageLink(ctx.dataDir);
  const ownerHash = await readOwnerTokenHash(ctx.dataDir);
  if (!ownerHash) log.warn('no owner token was provisioned (links/owner.json): users with password: owner-token cannot sign in');
  let problem: string | undefined = link ? 'opening the store' : 'no link to the storage service (links/storage.json): nothing can be stored';
  const client = link ? createStoreClient(link, { timeoutMs: 30_000 }) : undefined;
  const repo = client ? new Repository({ client, repo: STORE_REPO, dataDir: ctx.dataDir, log, summarize: summarize(() => ctx.config().limits.maxInstances) }) : undefined;
  let ready = false;
  let stopped = false;
  let opened: Promise<void> = Promise.resolve();
  if (repo) {
    // Storage may start after us: keep trying, answering 503 meanwhile.
    opened = (async () => {
      for (let attempt = 0; !stopped; attempt++) {
        try {
          await repo.open();
          ready = true;
          problem = undefined;
          repo.startWatching();
          log.info('store opened', { head: repo.head, collections: repo.collections.size });
          void publishDiscovery({ link: link!, config: ctx.config(), listen: ctx.listen, log }).catch((err: unknown) => log.warn('discovery records not published', { error: String(err) }));
          return;
        } catch (err) {
          problem = `the store does not answer: ${(err as Error).message}`;
          if (attempt % 10 === 0) log.warn('cannot open the store yet; retrying', { error: String(err) });
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * (attempt + 1))));
        }
      }
    })();
  }
  // Ready means usable when storage is there: wait for the index a while (the runner
  // reports 'ready' when start returns), then serve anyway, unhealthy until it opens.
  await Promise.race([opened, new Promise((r) => setTimeout(r, 15_000).unref())]);
  const dav = repo ? createDavHandler({ repo, config: ctx.config }) : undefined;
  const devices = new DevicePasswords(ctx.dataDir, (m) => log.warn(m)); // passwords of the owner's paired devices, followed live
  const authenticate = createAuthenticator({ config: ctx.config, ownerTokenSha256: () => ownerHash, devices, now: ctx.now });

  const send = async (res: http.ServerResponse, r: DavResponse, head = false): Promise<void> => {
    if (Array.isArray(r.body)) {
      res.writeHead(r.status, r.headers);
      if (head) return void res.end();
      // Piece by piece, waiting when the socket is behind: memory stays at one piece.
      let batch = '';
      for (const piece of r.body) {
        batch += piece;
        if (batch.length < 65_536) continue;
        if (!res.write(batch)) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
        batch = '';
        if (res.destroyed) return;
      }
      res.end(batch);
      return;
    }
    const body = r.body === undefined ? undefined : Buffer.from(r.body);
    const headers: Record<string, string> = { ...r.headers };
    if (body && !headers['content-length']) headers['content-length'] = String(body.length);
    if (!body && !headers['content-length'] && r.status !== 304 && r.status !== 204) headers['content-length'] = '0';
    res.writeHead(r.status, headers);
    res.end(head ? undefined : body);
  };

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const pathname = url.split('?')[0]!;
    res.on('finish', () => requests.inc({ method: method.slice(0, 12), status: res.statusCode }));
    if (/^\/\.well-known\/(caldav|carddav)\/?$/.test(pathname)) {
      req.resume();
      return send(res, { status: 301, headers: { location: '/dav/' } });
    }
    const user = await authenticate(req.headers.authorization);
    if (!user) {
      req.resume();
      return send(res, { status: 401, headers: { 'www-authenticate': 'Basic realm="kith calendar", charset="UTF-8"', 'content-type': 'text/plain; charset=utf-8' }, body: 'sign in with your calendar user name and password\n' });
    }
    if (!dav || !ready) {
      req.resume();
      return send(res, errorResponse(new DavError(503, problem ?? 'starting', undefined, { 'retry-after': '2' })));
    }
    let body: string;
    try {
      body = await readBody(req, ctx.config().limits.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.on('finish', () => req.destroy());
        return send(res, errorResponse(new DavError(413, err.message, undefined, { connection: 'close' })));
      }
      throw err;
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const r = await dav.handle({ method, path: pathname, headers, body, user });
    await send(res, r, method === 'HEAD');
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    onRequest(req, res).catch((err: unknown) => {
      log.error('request failed', { error: err, method: req.method, url: req.url });
      if (!res.headersSent) void send(res, errorResponse(new DavError(500, 'the calendar failed on this request; it was logged')));
      else res.destroy();
    });
  };

  const configure = (server: http.Server) => {
    server.headersTimeout = 30_000;
    server.requestTimeout = 120_000;
    server.keepAliveTimeout = 30_000;
  };
  const servers: Array<{ url: string; close(): Promise<void> }> = [];
  const tls = await readServerTls(ctx.dataDir);
  // The http port is gated (platform/peer-gate.ts): a password travels in clear there, so it
  // speaks plain HTTP to the box itself only; from the network, TLS with a client certificate
  // from the appliance CA. Phones use the https port below with their device password.
  const revoked = tls ? new RevocationList(ctx.dataDir, (m) => log.warn(m)) : undefined;
  servers.push(await listenGated({ at: ctx.listen.http!, onRequest: handler, plain: 'loopback', configure, ...(tls ? { tls } : {}), ...(revoked ? { revoked } : {}) }));
  if (tls && ctx.listen.https) {
    // CalDAV/CardDAV for phones: TLS, and the device password (HTTP Basic) as the protocol has it.
    const server = https.createServer({ key: tls.key, cert: tls.cert, ca: tls.ca }, handler);
    configure(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ctx.listen.https!.port, ctx.listen.https!.host, () => resolve());
    });
    const at = ctx.listen.https;
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    servers.push({ url: `https://${host}:${(server.address() as { port: number }).port}`, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) });
  } else log.info('no TLS material in the data folder (tls/): the https listener is off');

  const endpoints: Record<string, string> = {};
  for (const { url } of servers) endpoints[url.startsWith('https:') ? 'caldavs' : 'caldav'] = `${url}/dav/`;
  return {
    endpoints,
    applyConfig(next, previous) {
      // New discovery settings: publish them (users, shares and limits apply by being read).
      if (link && ready && JSON.stringify(next.publish) !== JSON.stringify(previous.publish)) {
        void publishDiscovery({ link, config: next, listen: ctx.listen, log }).catch((err: unknown) => log.warn('discovery records not published', { error: String(err) }));
      }
    },
    health: () => ({ ok: problem === undefined, ...(problem ? { detail: problem } : {}) }),
    async stop() {
      stopped = true;
      clearInterval(memTimer);
      devices.close();
      await repo?.stop();
      revoked?.close();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
