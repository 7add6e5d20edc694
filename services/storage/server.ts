/**
 * The storage service's HTTP shell: one listener for git smart HTTP (every repository,
 * config.git among them) and the versioned store API, behind authentication. Pushes to
 * config.git are validated against every service's schema before refs move, and
 * published to the config working tree after.
 */
import * as http from 'node:http';
import * as path from 'node:path';
import type { ServiceContext, RunningService } from '../../platform/service.ts';
import { createGitHttpHandler } from './git/http.ts';
import { createRepo, repoExists } from './git/repos.ts';
import { ZERO_OID } from './git/objects.ts';
import { loadOrCreateToken, tokenAuthenticator, type Authenticator } from './auth.ts';
import { CONFIG_BRANCH, CONFIG_REPO, ensureConfigRepo, publishCommit, refusalMessages, validateCommit } from './config/config-repo.ts';
import type { StorageConfig } from './config/schema.ts';

export async function startStorage(ctx: ServiceContext<StorageConfig>): Promise<RunningService<StorageConfig>> {
  const { log, metrics } = ctx;
  const reposRoot = path.join(ctx.dataDir, 'repos');
  const configGitdir = path.join(reposRoot, `${CONFIG_REPO}.git`);
  const token = await loadOrCreateToken(ctx.dataDir);
  const authenticate: Authenticator = tokenAuthenticator(token);

  const boot = await ensureConfigRepo(configGitdir, ctx.configRoot);
  if (boot.created) log.info('created config.git from the seeded config', { head: boot.head });
  if (boot.reset.length > 0) log.warn('config working tree differed from config.git; reset to its head', { files: boot.reset });

  const pushes = metrics.counter('kith_storage_pushes_total', 'Pushes by repository and result.');
  const requests = metrics.counter('kith_storage_requests_total', 'HTTP requests by kind and status.');
  const configPushes = metrics.counter('kith_storage_config_pushes_total', 'Pushes to config.git by result (accepted, refused).');

  // Publishing the config tree runs one at a time, in push order.
  let publishing: Promise<unknown> = Promise.resolve();

  const git = createGitHttpHandler({
    root: reposRoot,
    authorize: (req) => authenticate(req) !== undefined,
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
        const job = publishing.then(async () => {
          const changed = await publishCommit(gitdir, main.newOid, ctx.configRoot);
          log.info('config published', { commit: main.newOid, files: changed });
        });
        publishing = job.catch((err: unknown) => log.error('config publish failed', { error: err }));
        await job;
      },
    },
  });

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const kind = url.startsWith('/store/') ? 'store' : 'git';
    res.on('finish', () => requests.inc({ kind, status: res.statusCode }));
    void route(req, res).catch((err: unknown) => {
      log.error('request failed', { error: err, url });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://storage');
    // A first push to a new name creates the repository, when the config allows it.
    const m = /^\/([A-Za-z0-9_][A-Za-z0-9._-]*?)(?:\.git)?\/info\/refs$/.exec(url.pathname);
    if (m && url.searchParams.get('service') === 'git-receive-pack' && ctx.config().createOnPush && authenticate(req)) {
      if (!(await repoExists(reposRoot, m[1]!))) {
        await createRepo(reposRoot, m[1]!);
        log.info('repository created by a first push', { repo: m[1] });
      }
    }
    git(req, res);
  }

  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // large pushes and clones stream for as long as they need
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.listen.http.port, ctx.listen.http.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const host = ctx.listen.http.host.includes(':') ? `[${ctx.listen.http.host}]` : ctx.listen.http.host;
  const base = `http://${host}:${port}`;
  return {
    endpoints: { git: `${base}/${CONFIG_REPO}.git`, store: `${base}/store/` },
    async stop() {
      await publishing;
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
