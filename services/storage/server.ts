/**
 * The storage service's HTTP shell: one listener for git smart HTTP (every repository,
 * config.git among them) and the versioned store API, behind authentication. Pushes to
 * config.git are validated against every service's schema before refs move, and
 * published to the config working tree after.
 */
import isogit from 'isomorphic-git';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { ServiceContext, RunningService } from '../../platform/service.ts';
import { createGitHttpHandler } from './git/http.ts';
import { createStoreHttpHandler } from './store/http.ts';
import { createRepo, listRepos, repoExists } from './git/repos.ts';
import { recoverRepository } from './git/recover.ts';
import { ZERO_OID } from './git/objects.ts';
import { anyOf, certificateAuthenticator, clientAuthenticator, loadOrCreateToken, tokenAuthenticator, type Authenticator, type Principal } from './auth.ts';
import { CONFIG_BRANCH, CONFIG_REPO, ensureConfigRepo, publishHead, refusalMessages, validateCommit, writeConfigFiles } from './config/config-repo.ts';
import { readStorageClients } from '../../platform/links.ts';
import { readServerTls } from '../../platform/pki/server-tls.ts';
import type { StorageConfig } from './config/schema.ts';

export async function startStorage(ctx: ServiceContext<StorageConfig>): Promise<RunningService<StorageConfig>> {
  const { log, metrics } = ctx;
  const reposRoot = path.join(ctx.dataDir, 'repos');
  const configGitdir = path.join(reposRoot, `${CONFIG_REPO}.git`);
  const token = await loadOrCreateToken(ctx.dataDir);
  const clients = await readStorageClients(ctx.dataDir);
  const tls = await readServerTls(ctx.dataDir);
  const authenticate: Authenticator = anyOf(certificateAuthenticator(), tokenAuthenticator(token), clientAuthenticator(clients));
  const isOwner = (p: Principal | undefined) => p?.name === 'owner';
  if (clients.length > 0) log.info('service clients', { clients: clients.map((c) => ({ name: c.name, configWrite: c.configWrite })) });

  // Whatever a crash left half-done in any repository goes before anything is served.
  for (const repo of await listRepos(reposRoot)) {
    const removed = await recoverRepository(path.join(reposRoot, `${repo}.git`));
    if (removed.length > 0) log.warn('recovered after a crash: removed leftovers', { repo, files: removed });
  }
  // Each store repository a service's link grants exists before the service asks for it.
  for (const repo of new Set(clients.flatMap((c) => c.store ?? []))) {
    if (repo !== CONFIG_REPO && !(await repoExists(reposRoot, repo))) {
      await createRepo(reposRoot, repo);
      log.info('store repository created for a service', { repo, for: clients.filter((c) => c.store?.includes(repo)).map((c) => c.name) });
    }
  }
  const boot = await ensureConfigRepo(configGitdir, ctx.configRoot);
  if (boot.created) log.info('created config.git from the seeded config', { head: boot.head });
  if (boot.reset.length > 0) log.warn('config working tree differed from config.git; reset to its head', { files: boot.reset });

  const pushes = metrics.counter('kith_storage_pushes_total', 'Pushes by repository and result.');
  const requests = metrics.counter('kith_storage_requests_total', 'HTTP requests by kind and status.');
  const configPushes = metrics.counter('kith_storage_config_pushes_total', 'Pushes to config.git by result (accepted, refused).');

  // Publishing runs one at a time and always publishes main's head as it is then, so
  // publishes racing each other can never leave an older tree in place.
  let publishing: Promise<unknown> = Promise.resolve();
  const publish = (): Promise<void> => {
    const job = publishing.then(async () => {
      const { head, changed } = await publishHead(configGitdir, ctx.configRoot);
      if (changed.length > 0) log.info('config published', { commit: head, files: changed });
    });
    publishing = job.catch((err: unknown) => log.error('config publish failed', { error: err }));
    return job;
  };

  const git = createGitHttpHandler({
    root: reposRoot,
    authorize: (req) => isOwner(authenticate(req)),
    maxPushBytes: ctx.config().maxPushBytes,
    allowNonFastForward: (repo) => repo !== CONFIG_REPO && ctx.config().allowNonFastForward.includes(repo),
    onError: (err, info) => log.error('git request failed', { error: err, ...info }),
    hooks: {
      async preReceive({ repo, gitdir, updates }) {
        if (repo !== CONFIG_REPO) return { ok: true };
        const main = updates.find((u) => u.ref === CONFIG_BRANCH);
        if (!main) return { ok: true };
        if (main.newOid === ZERO_OID) {
          configPushes.inc({ result: 'refused' });
          return { ok: false, messages: ['kith: config.git\'s main branch holds the live configuration; it cannot be deleted.'] };
        }
        const v = await validateCommit(gitdir, main.newOid);
        if (v.ok) return { ok: true };
        configPushes.inc({ result: 'refused' });
        log.warn('config push refused', { commit: main.newOid, issues: v.issues });
        return { ok: false, messages: refusalMessages(v) };
      },
      async postReceive({ repo, gitdir, updates }) {
        pushes.inc({ repo });
        if (repo !== CONFIG_REPO) return;
        const main = updates.find((u) => u.ref === CONFIG_BRANCH);
        if (!main || main.newOid === ZERO_OID) return;
        configPushes.inc({ result: 'accepted' });
        await publish();
      },
    },
  });

  // The versioned store for every other repository (config.git is read-only there: it
  // changes by validated push, or through configFile below).
  const store = createStoreHttpHandler({
    root: reposRoot,
    // The owner, and services for the repositories their link grants (needs.store);
    // a service's writes are authored by it.
    authorize: (req, access) => {
      const who = authenticate(req);
      if (isOwner(who)) return true;
      return who?.store?.includes(access.repo) ? { author: { name: who.name, email: `${who.name}@kith.local` } } : false;
    },
    maxBody: ctx.config().maxPushBytes,
    onError: (err, info) => log.error('store request failed', { error: err, ...info }),
  });

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    const kind = url.startsWith('/store/') ? 'store' : 'git';
    res.on('finish', () => requests.inc({ kind, status: res.statusCode }));
    void route(req, res).catch((err: unknown) => {
      log.error('request failed', { error: err, url });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  };

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://storage');
    // A first push to a new name creates the repository, when the config allows it.
    const m = /^\/([A-Za-z0-9_][A-Za-z0-9._-]*?)(?:\.git)?\/info\/refs$/.exec(url.pathname);
    if (url.pathname.startsWith(`/store/${CONFIG_REPO}/`)) return configFile(req, res, decodeURIComponent(url.pathname.slice(`/store/${CONFIG_REPO}/`.length)));
    if (await store(req, res)) return;
    if (m && url.searchParams.get('service') === 'git-receive-pack' && ctx.config().createOnPush && isOwner(authenticate(req))) {
      if (!(await repoExists(reposRoot, m[1]!))) {
        await createRepo(reposRoot, m[1]!);
        log.info('repository created by a first push', { repo: m[1] });
      }
    }
    git(req, res);
  }

  const json = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');
  };

  /**
   * The config tree through the store API: GET reads a file at main's head (X-Kith-Blob
   * names its blob, for compare-and-swap); PUT and DELETE change it as one validated commit,
   * for principals granted that path (a service's `needs.configWrite`) and the owner.
   * X-Kith-Expected-Blob: <oid> | none makes the write conditional.
   */
  async function configFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): Promise<void> {
    const who = authenticate(req);
    if (!who) return json(res, 401, { error: 'unauthorized', message: 'send the access token (Basic password or Bearer)' }, { 'www-authenticate': 'Basic realm="kith"' });
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(file) || file.split('/').some((s) => s === '.' || s === '..' || s === '.git')) {
      return json(res, 400, { error: 'bad-path', message: `not a config path: ${JSON.stringify(file)}` });
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const head = await isogit.resolveRef({ fs, gitdir: configGitdir, ref: CONFIG_BRANCH });
      // One lookup along the path (not a walk of the whole tree): the blob and its id.
      const found = await isogit.readBlob({ fs, gitdir: configGitdir, oid: head, filepath: file }).catch(() => undefined);
      if (!found) return json(res, 404, { error: 'not-found', message: `${file} is not in config.git`, commit: head }, { 'x-kith-commit': head });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-kith-commit': head, 'x-kith-blob': found.oid, etag: `"${found.oid}"` }).end(req.method === 'HEAD' ? undefined : Buffer.from(found.blob));
      return;
    }
    if (req.method !== 'PUT' && req.method !== 'DELETE') return json(res, 405, { error: 'method', message: 'use GET, PUT or DELETE' }, { allow: 'GET, HEAD, PUT, DELETE' });
    const granted = isOwner(who) || (who.configWrite ?? []).some((p) => file.startsWith(p));
    if (!granted) return json(res, 403, { error: 'forbidden', message: `${who.name} may not change ${file}` });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > ctx.config().maxPushBytes) return json(res, 413, { error: 'too-large', message: `body larger than ${ctx.config().maxPushBytes} bytes` });
      chunks.push(c as Buffer);
    }
    const expectedHeader = req.headers['x-kith-expected-blob'];
    const expected = typeof expectedHeader === 'string' ? (expectedHeader === 'none' ? null : expectedHeader) : undefined;
    if (expected && !/^[0-9a-f]{40}$/.test(expected)) return json(res, 400, { error: 'bad-header', message: 'X-Kith-Expected-Blob is a blob id or none' });
    const message = String(req.headers['x-kith-message'] ?? `${req.method === 'DELETE' ? 'Delete' : 'Update'} ${file}`).slice(0, 2000);
    const result = await writeConfigFiles(configGitdir, [{ path: file, content: req.method === 'DELETE' ? null : Buffer.concat(chunks), ...(expected !== undefined ? { expectedBlob: expected } : {}) }], {
      author: { name: who.name, email: `${who.name}@kith.local` },
      message: decodeURIComponent(message),
      now: ctx.now,
    });
    if (!result.ok) {
      log.warn('config write refused', { by: who.name, file, messages: result.messages });
      return json(res, result.status, { error: result.error, message: result.messages.join('\n'), issues: result.messages });
    }
    await publish();
    log.info('config written', { by: who.name, file, commit: result.commit, changed: result.changed });
    return json(res, 200, { commit: result.commit, changed: result.changed });
  }

  // Plain HTTP on the http listener; HTTPS (with optional client certificates from the
  // appliance CA) on the https listener, when the supervisor provisioned TLS material.
  const servers: { server: http.Server; url: string }[] = [];
  const listen = async (server: http.Server, at: { host: string; port: number }, scheme: 'http' | 'https') => {
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // large pushes and clones stream for as long as they need
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => resolve());
    });
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    servers.push({ server, url: `${scheme}://${host}:${(server.address() as { port: number }).port}` });
  };
  await listen(http.createServer(onRequest), ctx.listen.http, 'http');
  if (tls) await listen(https.createServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: false }, onRequest), ctx.listen.https, 'https');
  else log.warn('no TLS material in the data folder (tls/): the https listener is off');
  const endpoints: Record<string, string> = {};
  for (const { url } of servers) {
    const tag = url.startsWith('https:') ? 's' : '';
    endpoints[`git${tag}`] = `${url}/${CONFIG_REPO}.git`;
    endpoints[`store${tag}`] = `${url}/store/`;
  }
  return {
    endpoints,
    async stop() {
      store.close();
      await publishing;
      await Promise.all(servers.map(({ server }) => new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })));
    },
  };
}
