/**
 * The service runner: turns a ServiceDefinition into a running, sealed process.
 *
 * startService (in-process; tests use it directly) loads and validates config, starts the
 * service, serves /healthz and /metrics, watches the config folder and applies each valid
 * change live; an invalid change is refused with file:line:field in the log and the
 * service keeps its last good config. runServiceMain is what a bundle calls: parse
 * arguments, seal the process, start, and stop cleanly on SIGTERM/SIGINT.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseServiceArgs, serviceUsage, UsageError } from './args.ts';
import { fsConfigSource } from './config/fs-source.ts';
import { loadLastGood, recordingSource, saveLastGood } from './config/last-good.ts';
import { formatIssue, type ConfigIssue } from './config/spec.ts';
import { watchConfig, type ConfigWatch } from './config/watch.ts';
import { isLoopback, startHealthServer, type HealthServer } from './health.ts';
import { setLocalPeers } from './peer-gate.ts';
import { createLogger, type Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { watchLifeline } from './lifeline.ts';
import { readOwnerTokenHash } from './links.ts';
import { RevocationList } from './pki/revocation.ts';
import { readServerTls } from './pki/server-tls.ts';
import { createPendingWrites, isDiskFault } from './pending-writes.ts';
import { makePrivateDir } from './private-dir.ts';
import { governMemory } from './memory-governor.ts';
import { ensureSealed } from './seal.ts';
import { readClockState } from './clock-state.ts';
import { machineFacts, watchFacts } from './facts.ts';
import type { ListenAddress, RunningService, ServiceContext, ServiceDefinition } from './service.ts';

export interface StartOptions {
  configRoot: string;
  dataDir: string;
  /** Listener overrides; unnamed listeners use the declared default port on 0.0.0.0. */
  listen?: Record<string, ListenAddress>;
  log?: Logger;
  now?: () => number;
  /** This machine's addresses, what 'self' means in a config; default: its interfaces' (watched). */
  addresses?: string[];
  /** How often a data-folder write refused by the disk (read-only, full) is retried; default 30 s. */
  retryWritesMs?: number;
}

export interface ServiceHandle<C> {
  name: string;
  endpoints: Record<string, string>;
  healthUrl: string;
  config(): C;
  /** Re-read config now (the watcher does this on every change). */
  reload(): Promise<{ applied: boolean; issues: ConfigIssue[] }>;
  stop(): Promise<void>;
}

export class ConfigRefused extends Error {
  override name = 'ConfigRefused';
  issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(`config refused:\n${issues.map((i) => '  ' + formatIssue(i)).join('\n')}`);
    this.issues = issues;
  }
}

export async function startService<C>(def: ServiceDefinition<C>, opts: StartOptions): Promise<ServiceHandle<C>> {
  // Where start-up time goes, logged with 'ready': Node's own bootstrap, then loading the
  // bundle's modules (up to here), then config, the service's start and its listeners.
  const modulesDoneMs = performance.now();
  const log = opts.log ?? createLogger({ service: def.name });
  const metrics: Metrics = createMetrics();
  const now = opts.now ?? Date.now;
  const dataDir = path.resolve(opts.dataDir);
  const configRoot = path.resolve(opts.configRoot);
  // The data folder holds secrets (tokens, keys, config with TSIG keys): the service's alone.
  // Best effort: a read-only folder keeps its mode, and the service still starts.
  await makePrivateDir(dataDir).catch(async (err: unknown) => {
    if (!isDiskFault(err)) throw err;
    await fsp.access(dataDir); // it must at least exist
  });
  // A read-only or full data folder must not stop the service: writes it refuses wait here.
  const writes = createPendingWrites({ log, now, retryMs: opts.retryWritesMs });
  const LAST_GOOD = 'last good config';

  const reloads = metrics.counter('kith_config_reloads_total', 'Config reloads by result (applied, refused, unchanged).');
  const generation = metrics.gauge('kith_config_generation', 'How many configs this process has applied.');
  const rss = metrics.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const started = metrics.gauge('process_start_time_seconds', 'Start time of the process since the epoch, in seconds.');
  started.set(Math.floor(now() / 1000));
  const collections = metrics.counter('kith_gc_collections_total', 'Garbage collections the memory governor asked for, by reason (limit: past the soft limit; settle: after heavy work).');
  const memory = governMemory({ softLimitBytes: (def.softMemoryMb ?? 24) * 2 ** 20, onCollect: (why) => collections.inc({ reason: why }) });

  // Initial config: the live tree, else the last good snapshot, else refuse to start.
  const given = opts.addresses ?? [];
  let facts = machineFacts(given);
  const src = recordingSource(fsConfigSource(configRoot));
  let first = await def.config.load(src, facts);
  if (first.ok) {
    const files = src.files();
    await writes.attempt(LAST_GOOD, () => saveLastGood(dataDir, files));
  } else {
    for (const issue of first.issues) log.error('config invalid', { ...issue, problem: formatIssue(issue) });
    const snapshot = await loadLastGood(dataDir);
    const fallback = snapshot ? await def.config.load(snapshot, facts) : undefined;
    if (!fallback?.ok) throw new ConfigRefused(first.issues);
    log.warn('starting with the last good config; fix the files named above', { issues: first.issues.length });
    first = fallback;
  }
  let current: C = first.value;
  let gen = 1;
  generation.set(gen);

  const listen: Record<string, ListenAddress> = {};
  for (const [name, spec] of Object.entries(def.listeners)) listen[name] = opts.listen?.[name] ?? { host: '0.0.0.0', port: spec.port };
  if (!listen.health) throw new Error(`service ${def.name} declares no 'health' listener`);

  const ctx: ServiceContext<C> = {
    name: def.name,
    dataDir,
    configRoot,
    listen,
    log,
    metrics,
    now,
    config: () => current,
    facts: () => facts,
    dataWrites: writes,
    memory,
    reloadConfig: (reason) => {
      log.info('reloading config', { reason });
      // Asked for while the service is still starting: done once the reload machinery is up.
      if (reloadNow) reloadNow();
      else reloadPending = true;
    },
  };
  /** A reload nobody awaits (a file change, a new address): its failure is logged, not thrown. */
  let reloadNow: (() => void) | undefined;
  let reloadPending = false;
  const running: RunningService<C> = await def.start(ctx);

  let lastError: string | undefined;
  // A service the supervisor gave a certificate also speaks TLS on a health port that faces
  // the network (`kith up --host`): paired devices read it by mutual TLS (platform/health.ts).
  // On loopback (the Pi) nobody but the box reaches it, so no TLS and no revocation watcher.
  const healthTls = isLoopback(listen.health.host) ? undefined : await readServerTls(dataDir);
  const healthRevoked = healthTls ? new RevocationList(dataDir, (m) => log.warn('revocation list unreadable; keeping the last one', { error: m })) : undefined;
  const health = await startHealthServer(
    listen.health,
    async () => {
      // Each probe retries what the disk refused (at most once a second): health is the disk
      // as it is now. A disk that hangs does not hang the probe: it answers from what it knows.
      await Promise.race([writes.retry(1000), new Promise((r) => setTimeout(r, 500).unref())]);
      const h = running.health?.() ?? { ok: true };
      const disk = writes.problem();
      const merged = disk ? { ...h, ok: false, detail: [h.detail, disk.detail].filter(Boolean).join('; '), pendingWrites: disk.pending } : h;
      return { ...merged, service: def.name, configGeneration: gen, clock: readClockState(), ...(lastError ? { lastConfigError: lastError } : {}) };
    },
    metrics,
    () => rss.set(process.memoryUsage().rss),
    // Remote scrapes of /metrics need the owner's token; its hash is provisioned by the supervisor.
    { ownerTokenSha256: () => readOwnerTokenHash(dataDir), ...(healthTls ? { tls: healthTls } : {}), ...(healthRevoked ? { revoked: healthRevoked } : {}) },
  );

  // Reloads run one at a time; a change that lands during one triggers one more.
  let reloading: Promise<{ applied: boolean; issues: ConfigIssue[] }> | undefined;
  let again = false;
  const reloadOnce = async (): Promise<{ applied: boolean; issues: ConfigIssue[] }> => {
    const rec = recordingSource(fsConfigSource(configRoot));
    const next = await def.config.load(rec, facts).catch((err: Error) => ({ ok: false as const, issues: [{ file: def.name, message: `loader failed: ${err.message}` }] }));
    if (!next.ok) {
      for (const issue of next.issues) log.error('config change refused', { ...issue, problem: formatIssue(issue) });
      lastError = next.issues.map(formatIssue).join('; ');
      reloads.inc({ result: 'refused' });
      return { applied: false, issues: next.issues };
    }
    const previous = current;
    try {
      await running.applyConfig?.(next.value, previous);
    } catch (err) {
      const issue = { file: def.name, message: `could not apply: ${(err as Error).message}` };
      log.error('config change refused', { ...issue, problem: formatIssue(issue) });
      lastError = formatIssue(issue);
      reloads.inc({ result: 'refused' });
      return { applied: false, issues: [issue] };
    }
    current = next.value;
    gen++;
    generation.set(gen);
    lastError = undefined;
    reloads.inc({ result: 'applied' });
    const files = rec.files();
    await writes.attempt(LAST_GOOD, () => saveLastGood(dataDir, files));
    log.info('config applied', { generation: gen });
    return { applied: true, issues: [] };
  };
  let stopped = false;
  const reload = (): Promise<{ applied: boolean; issues: ConfigIssue[] }> => {
    // Once stopping, no reload starts: it would write last-good into a data folder that
    // may be going away.
    if (stopped) return Promise.resolve({ applied: false, issues: [{ file: def.name, message: 'the service is stopping' }] });
    if (reloading) {
      again = true;
      return reloading;
    }
    reloading = reloadOnce().finally(() => {
      reloading = undefined;
      if (again) {
        again = false;
        reloadInBackground();
      }
    });
    return reloading;
  };
  // A reload that fails for anything but the config (a write a disk fault did not explain)
  // leaves the service serving with the config it has, and says so in the log and /healthz.
  const reloadInBackground = (): void => {
    reload().catch((err: unknown) => {
      lastError = `${def.name}: reload failed: ${(err as Error)?.message ?? String(err)}`;
      log.error('config reload failed; serving on with the config in force', { error: String(err) });
    });
  };
  reloadNow = reloadInBackground;
  if (reloadPending) reloadInBackground();
  const serviceConfigDir = path.join(configRoot, def.name);
  const watch: ConfigWatch = watchConfig(serviceConfigDir, reloadInBackground);
  // A DHCP lease can bring new addresses at any time: 'self' follows, like a file change.
  const stopFacts = watchFacts(given, () => facts, (next) => {
    log.info('own addresses changed', { from: facts.addresses.join(' '), to: next.addresses.join(' ') });
    facts = next;
    reloadInBackground();
  });

  log.info('ready', {
    endpoints: running.endpoints,
    health: health.url,
    startupMs: { node: Math.round(performance.nodeTiming.bootstrapComplete), modules: Math.round(modulesDoneMs), ready: Math.round(performance.now()) },
  });
  memory.settle(); // start-up's garbage (config parsing, module evaluation) is not kept while idle
  return {
    name: def.name,
    endpoints: running.endpoints,
    healthUrl: health.url,
    config: () => current,
    reload,
    async stop() {
      if (stopped) return;
      stopped = true;
      writes.close();
      memory.stop();
      watch.close();
      stopFacts();
      // A reload under way finishes first (its last-good write included).
      while (reloading) await reloading.catch(() => undefined);
      await running.stop();
      await (health as HealthServer).close();
      healthRevoked?.close();
      log.info('stopped');
    },
  };
}

/**
 * The entry point of a service bundle: `runServiceMain(def, import.meta.url)`.
 * Exit codes: 0 clean stop, 64 usage error, 70 internal error, 78 config refused.
 */
export async function runServiceMain<C>(def: ServiceDefinition<C>, entryUrl: string, argv = process.argv.slice(2)): Promise<void> {
  let args;
  try {
    args = parseServiceArgs(argv, def.listeners);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${def.name}: ${err.message}\n(see --help)\n`);
      process.exit(64);
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(serviceUsage(def.name, def.description, def.listeners));
    return;
  }
  const log = createLogger({ service: def.name, level: args.logLevel });
  if (args.checkConfig) {
    const result = await def.config.load(fsConfigSource(args.configRoot), machineFacts(args.addresses));
    if (result.ok) {
      process.stdout.write(`${def.name}: config is valid\n`);
      return;
    }
    for (const i of result.issues) process.stdout.write(formatIssue(i) + '\n');
    process.exit(78);
  }
  await fsp.mkdir(args.dataDir, { recursive: true });
  ensureSealed({ entry: fileURLToPath(entryUrl), configRoot: args.configRoot, dataDir: args.dataDir, writableConfig: def.writableConfig, ...(def.nodeFlags ? { nodeFlags: def.nodeFlags } : {}) });

  process.on('uncaughtException', (err) => {
    // A bug, not bad input (protocol edges turn that into protocol errors): log it and let
    // the supervisor restart a clean process.
    log.error('uncaught exception: exiting', { error: err });
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    log.error('unhandled rejection: exiting', { error: err });
    process.exit(70);
  });

  // Signals are taken before the service starts: one that comes right after 'ready' (a
  // supervisor, or a build that runs the service once) still stops it cleanly.
  let handle: ServiceHandle<C> | undefined;
  let stopping = false;
  const stop = (signal: string, forceMs = 5000) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    if (!handle) process.exit(0); // still starting: nothing acknowledged yet
    const force = setTimeout(() => process.exit(0), forceMs);
    force.unref();
    void handle.stop().then(() => process.exit(0), () => process.exit(70));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The supervisor died (even by SIGKILL): nobody reads our logs or restarts us, so stop
  // soon. Its end of stdout is gone too: a log line must not turn the stop into a crash.
  watchLifeline((why) => {
    for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
    stop(why, 1000);
  });
  setLocalPeers(args.localPeers);
  try {
    handle = await startService(def, { configRoot: args.configRoot, dataDir: args.dataDir, listen: args.listen, log, addresses: args.addresses });
  } catch (err) {
    if (err instanceof ConfigRefused) {
      log.error('not starting: the config is invalid and there is no last good config', { issues: err.issues.map(formatIssue) });
      process.exit(78);
    }
    log.error('start failed', { error: err });
    process.exit(70);
  }
}
