/**
 * The storage service's HTTP shell: one listener for git smart HTTP (every repository,
 * config.git among them) and the versioned store API, behind authentication. Pushes to
 * config.git are validated against every service's schema before refs move, and
 * published to the config working tree after.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { ServiceContext, RunningService } from '../../platform/service.ts';
import { createGitHttpHandler } from './git/http.ts';
import { createStoreHttpHandler, type AuthorizeResult, type StoreAccess } from './store/http.ts';
import { createRepo, isValidRepoName, listRepos, repoExists } from './git/repos.ts';
import { HttpError, authenticate as authenticateOnce, bodyLimit, catchErrors, compose, principalOf, renderJson, renderText } from './http/kit.ts';
import { withRefLocks } from './git/receive-pack.ts';
import { tightenModes } from './git/private-fs.ts';
import { consolidate } from './git/consolidate.ts';
import { LockedError } from './store/errors.ts';
import { resolve as resolveRef, setRef } from './git/refs.ts';
import { recoverRepository } from './git/recover.ts';
import { ZERO_OID } from './git/objects.ts';
import { anyOf, certificateAuthenticator, clientAuthenticator, loadOrCreateToken, ownerHashAuthenticator, tokenAuthenticator, type Authenticator, type Principal } from './auth.ts';
import { CONFIG_BRANCH, CONFIG_REPO, configPreCommit, ensureConfigRepo, publishHead, refusalMessages, validateCommit } from './config/config-repo.ts';
import { readOwnerTokenHash, readStorageClients } from '../../platform/links.ts';
import { configValidator } from './config/validator.ts';
import { seedNewServices } from './config/seed-defaults.ts';
import { applyFirstBoot } from './config/first-boot.ts';
import { readServerTls } from '../../platform/pki/server-tls.ts';
import { RevocationList } from '../../platform/pki/revocation.ts';
import type { StorageConfig } from './config/schema.ts';
import { listenGated, type GatedListener } from '../../platform/peer-gate.ts';

export async function startStorage(ctx: ServiceContext<StorageConfig>): Promise<RunningService<StorageConfig>> {
  const { log, metrics } = ctx;
  const reposRoot = path.join(ctx.dataDir, 'repos');
  const configGitdir = path.join(reposRoot, `${CONFIG_REPO}.git`);
  // The owner's token: its hash, from the supervisor; a storage run on its own keeps one.
  const ownerHash = await readOwnerTokenHash(ctx.dataDir);
  const ownerAuth = ownerHash ? ownerHashAuthenticator(ownerHash) : tokenAuthenticator(await loadOrCreateToken(ctx.dataDir));
  const clients = await readStorageClients(ctx.dataDir);
  const tls = await readServerTls(ctx.dataDir);
  const authenticate: Authenticator = anyOf(certificateAuthenticator(clients), ownerAuth, clientAuthenticator(clients));
  const isOwner = (p: Principal | undefined) => p?.name === 'owner';
  if (clients.length > 0) log.info('service clients', { clients: clients.map((c) => ({ name: c.name, configWrite: c.configWrite })) });

  // Storage's data (repositories, tokens, client grants) and the published config (which
  // may hold TSIG secrets) are nobody else's: 0700 folders, 0600 files, also where an
  // older version left them readable.
  const tightened = (await tightenModes(ctx.dataDir)) + (await tightenModes(ctx.configRoot));
  if (tightened > 0) log.info('made storage data and the config folder private (0600 files, 0700 folders)', { entries: tightened });

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
  // Nothing accepted may stop storage from starting: config.git is created here when it
  // does not exist (from the seeded folder), and otherwise its head is published once the
  // listeners are up — in the background, so git is served while a large tree is written.
  // If publishing fails (a commit written under the ref by hand, a full disk), storage
  // serves git anyway, so the owner can push a fix, keeps the last published tree, and
  // reports unhealthy with the reason until a publish succeeds.
  let publishProblem: string | undefined;
  /** The commit the config folder holds (undefined: not known; the next publish compares files). */
  let published: string | undefined;
  // Created means main resolves: a first start cut off after `git init` (a VM killed then)
  // left HEAD without main, and is created again rather than served broken for ever.
  if (!fs.existsSync(path.join(configGitdir, 'HEAD')) || (await resolveRef(configGitdir, CONFIG_BRANCH)) === null) {
    const boot = await ensureConfigRepo(configGitdir, ctx.configRoot);
    log.info('created config.git from the seeded config', { head: boot.head });
    published = boot.head;
  }
  // The one seeding policy: a registered service config.git has never held gets its
  // defaults as a commit by the platform, before the head is published over the working
  // tree (where the supervisor put a copy so the service could start).
  const validation = await configValidator(ctx);
  const validate = validation.validate;
  if (validation.specs) {
    try {
      const seeded = await seedNewServices({ gitdir: configGitdir, dataDir: ctx.dataDir, specs: validation.specs, validate, now: ctx.now });
      if (seeded.added.length > 0) log.info('added the default configuration of new services to config.git', { services: seeded.added, commit: seeded.result?.ok ? seeded.result.commit : undefined });
      else if (seeded.result && !seeded.result.ok) log.error('could not add the default configuration of new services', { messages: seeded.result.messages });
    } catch (err) {
      log.error('could not add the default configuration of new services', { error: err });
    }
  }
  // The owner's seed, left by PID 1 at first boot: one commit authored "first boot"
  // (published with the head below).
  if (validation.specs) await applyFirstBoot({ gitdir: configGitdir, dataDir: ctx.dataDir, validate, log, now: ctx.now });

  const pushes = metrics.counter('kith_storage_pushes_total', 'Pushes by repository and result.');
  const requests = metrics.counter('kith_storage_requests_total', 'HTTP requests by kind and status.');
  const configPushes = metrics.counter('kith_storage_config_pushes_total', 'Pushes to config.git by result (accepted, refused).');

  // Publishing runs one at a time and always publishes main's head as it is then, so
  // publishes racing each other can never leave an older tree in place.
  let publishing: Promise<unknown> = Promise.resolve();
  const publish = (): Promise<string[]> => {
    const job = publishing.then(async () => {
      const { head, changed } = await publishHead(configGitdir, ctx.configRoot, published);
      published = head;
      if (changed.length > 0) log.info('config published', { commit: head, files: changed.length > 50 ? changed.length : changed });
      if (publishProblem) log.info('config published again after a failure', { commit: head });
      publishProblem = undefined;
      return changed;
    });
    publishing = job.catch((err: unknown) => {
      published = undefined; // a failed publish may have written part of the tree
      publishProblem = `config.git's head is not published: ${(err as Error).message}`;
      log.error('config publish failed', { error: err });
    });
    return job;
  };
  // Until the head is published (a full disk, a read-only folder), try again every 5 s.
  const retry = setInterval(() => {
    if (publishProblem) void publish().catch(() => {});
  }, 5000);
  retry.unref();

  /** Wait (at most 2 s) until the runner applied a storage.yaml just published: the next request sees the new limits. */
  async function configApplied(before: StorageConfig): Promise<void> {
    ctx.reloadConfig('storage.yaml changed in config.git');
    for (const end = Date.now() + 2000; ctx.config() === before && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
  }

  // Who may do what. Authentication runs once per request (middleware below); these say
  // what each principal may touch: the owner everything; a service reads config and
  // changes the config paths its declaration was granted (needs.configWrite).
  const who = (req: http.IncomingMessage) => principalOf<Principal>(req);
  const storeAccess = (req: http.IncomingMessage, access: StoreAccess): AuthorizeResult => {
    const p = who(req);
    if (!p) return false;
    const author = { name: p.name, email: `${p.name}@kith.local` };
    if (isOwner(p)) return { author };
    // A service reads and writes the store repositories its link grants (needs.store).
    if (!access.admin && access.repo !== CONFIG_REPO && p.store?.includes(access.repo)) return { author };
    if (access.repo !== CONFIG_REPO || access.admin) return 'forbidden';
    if (!access.write) return { author };
    return (p.configWrite ?? []).some((prefix) => access.path.startsWith(prefix)) ? { author } : 'forbidden';
  };

  const git = createGitHttpHandler({
    root: reposRoot,
    authorize: (req) => isOwner(who(req)),
    maxPushBytes: () => ctx.config().maxPushBytes,
    maxRepoBytes: () => ctx.config().maxRepoBytes,
    limitsFile: 'storage/storage.yaml',
    inflateLimits: () => ({
      maxObjectBytes: ctx.config().maxObjectBytes,
      maxInflatedBytes: ctx.config().maxPushInflatedBytes,
      names: { maxObjectBytes: 'storage/storage.yaml: maxObjectBytes', maxInflatedBytes: 'storage/storage.yaml: maxPushInflatedBytes' },
    }),
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
        const v = await validateCommit(gitdir, main.newOid, validate);
        if (v.ok) return { ok: true };
        configPushes.inc({ result: 'refused' });
        log.warn('config push refused', { commit: main.newOid, issues: v.issues });
        return { ok: false, messages: refusalMessages(v) };
      },
      // A config push is published (and storage's own new limits are live) before git is
      // told ok; if publishing fails, main goes back where it was and the pusher is told why.
      async beforeReport({ repo, gitdir, updates }) {
        if (repo !== CONFIG_REPO) return {};
        const main = updates.find((u) => u.ref === CONFIG_BRANCH);
        if (!main || main.newOid === ZERO_OID) return {};
        const before = ctx.config();
        let changed: string[];
        try {
          changed = await publish();
        } catch (err) {
          const reason = describeFsError(err);
          const undone = await withRefLocks(gitdir, [CONFIG_BRANCH], async () => {
            if ((await resolveRef(gitdir, CONFIG_BRANCH)) !== main.newOid) return false;
            await setRef(gitdir, CONFIG_BRANCH, main.oldOid);
            return true;
          }).catch(() => false);
          configPushes.inc({ result: 'not-applied' });
          if (undone) {
            publishProblem = undefined;
            void publish().catch(() => {}); // the old head is what should be published
          }
          log.error('config push not applied: publishing failed', { commit: main.newOid, reason, undone });
          return {
            failed: `not applied: ${reason.split(':')[0]}`,
            messages: [
              `kith: this configuration could not be applied: ${reason}.`,
              undone ? 'kith: nothing changed; push again once that is fixed.' : 'kith: config.git has it, but it is not applied yet; storage retries every 5 s and reports unhealthy until it is.',
            ],
          };
        }
        configPushes.inc({ result: 'accepted' });
        if (changed.includes('storage/storage.yaml')) await configApplied(before);
        return {};
      },
      async postReceive({ repo, gitdir }) {
        pushes.inc({ repo });
        consolidateLater(repo, gitdir);
      },
    },
  });

  // The versioned store for every repository, config.git included: a write there is one
  // commit through config.git's validating pre-commit hook, published before the answer.
  const store = createStoreHttpHandler({
    root: reposRoot,
    authorize: storeAccess,
    readOnly: [],
    store: { limits: () => ({ maxRepoBytes: ctx.config().maxRepoBytes }) },
    storeOptions: (repo) => (repo === CONFIG_REPO ? { preCommit: configPreCommit(validate) } : undefined),
    async afterWrite(repo, result) {
      if (repo !== CONFIG_REPO || !result.changed) return;
      const before = ctx.config();
      const changed = await publish().catch((err: unknown) => {
        throw new HttpError(503, 'not-applied', `committed as ${result.commit}, but not applied yet: ${describeFsError(err)}; storage retries every 5 s`);
      });
      if (changed.includes('storage/storage.yaml')) await configApplied(before);
      log.info('config written through the store API', { commit: result.commit });
    },
    onError: (err, info) => log.error('store request failed', { error: err, ...info }),
  });

  // Every request: errors answered, the principal found once, the body limit (live from
  // storage.yaml) set once; then the store API or git. A git push over the limit is
  // answered by receive-pack on the protocol's error channel, not by a bare 413.
  const isPush = (req: http.IncomingMessage) => (req.url ?? '').split('?')[0]!.endsWith('/git-receive-pack');
  const handle = compose(
    catchErrors((c, err) => ((c.req.url ?? '').startsWith('/store/') ? renderJson(c, err) : renderText(c, err)), (err, c) => log.error('request failed', { error: err, url: c.req.url })),
    authenticateOnce(authenticate),
    bodyLimit(() => ctx.config().maxPushBytes, 'storage/storage.yaml: maxPushBytes', isPush),
    async ({ req, res }) => {
      if (await store(req, res)) return;
      await createOnFirstPush(req);
      git(req, res);
    },
  );

  let inflight = 0;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const kind = (req.url ?? '/').startsWith('/store/') ? 'store' : 'git';
    res.on('finish', () => requests.inc({ kind, status: res.statusCode }));
    // A pack sent or received leaves tens of MiB of garbage: collected once no request is left
    // (platform/memory-governor.ts), so the next one starts from the live heap.
    inflight++;
    res.on('close', () => { if (--inflight === 0) ctx.memory?.settle(); });
    void handle({ req, res });
  };

  // Packs pile up (one per push) and loose objects too (store writes): merge them in the
  // background, under the repository's push lock, after a push and every 10 minutes.
  const consolidating = new Set<string>();
  function consolidateLater(repo: string, gitdir: string): void {
    if (consolidating.has(repo)) return;
    consolidating.add(repo);
    setImmediate(() => {
      consolidate(gitdir)
        .then((r) => r && log.info('packs consolidated', { repo, ...r, ms: Math.round(r.ms) }))
        .catch((err: unknown) => { if (!(err instanceof LockedError)) log.warn('pack consolidation failed; will retry', { repo, error: err }); })
        .finally(() => consolidating.delete(repo));
    });
  }
  const consolidateTimer = setInterval(() => {
    void listRepos(reposRoot).then((repos) => { for (const r of repos) consolidateLater(r, path.join(reposRoot, `${r}.git`)); }, () => {});
  }, 10 * 60_000);
  consolidateTimer.unref();

  /** A first push to a new name creates the repository, when the config allows it. */
  async function createOnFirstPush(req: http.IncomingMessage): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://storage');
    const m = /^\/([^/]+?)(?:\.git)?\/info\/refs$/.exec(url.pathname);
    if (!m || url.searchParams.get('service') !== 'git-receive-pack' || !ctx.config().createOnPush || !isOwner(who(req))) return;
    if (isValidRepoName(m[1]!) && !(await repoExists(reposRoot, m[1]!))) {
      await createRepo(reposRoot, m[1]!);
      log.info('repository created by a first push', { repo: m[1] });
    }
  }

  // Both listeners are gated (platform/peer-gate.ts): a client from the network must
  // present a client certificate from the appliance CA (a paired device, a service's link)
  // at the TLS handshake, on either port; the http port speaks plain HTTP (and so takes a
  // token in clear) to the box itself only — the supervisor, the services' links before
  // they have certificates, the owner's shell under `kith up`. Revoked certificates are
  // refused live (platform/pki/revocation.ts).
  const revoked = tls ? new RevocationList(ctx.dataDir, (m) => log.warn(m)) : undefined;
  const configure = (server: http.Server) => {
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // large pushes and clones stream for as long as they need
  };
  const servers: GatedListener[] = [];
  servers.push(await listenGated({ at: ctx.listen.http, onRequest, plain: 'loopback', configure, ...(tls ? { tls } : {}), ...(revoked ? { revoked } : {}) }));
  if (tls && revoked) servers.push(await listenGated({ at: ctx.listen.https, onRequest, plain: 'never', configure, tls, revoked }));
  else log.warn('no TLS material in the data folder (tls/): the https listener is off');
  // The head as it is now, published after start (the folder is compared file by file:
  // hand edits lose). Services already run on the folder as it was.
  if (published === undefined) publishProblem = 'publishing config.git\'s head after start';
  void publish().catch(() => {});
  const endpoints: Record<string, string> = {};
  for (const { url } of servers) {
    const tag = url.startsWith('https:') ? 's' : '';
    endpoints[`git${tag}`] = `${url}/${CONFIG_REPO}.git`;
    endpoints[`store${tag}`] = `${url}/store/`;
  }
  return {
    endpoints,
    health: () => (publishProblem ? { ok: false, detail: publishProblem } : { ok: true }),
    async stop() {
      clearInterval(retry);
      clearInterval(consolidateTimer);
      store.close();
      await publishing;
      revoked?.close();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/** A file-system failure, said so that the owner knows what to do. */
function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return 'the kith data disk is full (ENOSPC): free some space';
  if (code === 'EROFS') return 'the config folder is read-only (EROFS)';
  if (code === 'EACCES' || code === 'EPERM') return `the config folder is not writable (${code})`;
  return (err as Error).message;
}
