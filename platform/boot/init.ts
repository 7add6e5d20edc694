/**
 * kith's init: Node as PID 1. The kernel runs /init, a copy of this bundle whose first
 * line is `#!/bin/node` (binfmt_script), so the image needs no shell and no kernel
 * command line. On the rpi image a busybox first stage runs before it and `switch_root`s
 * into the read-only root partition that holds it (platform/rpi/first-stage.ts).
 *
 * Sequence: mount /proc /sys /dev /tmp → read /kith/boot.json → hostname → kernel modules
 * (in the order the builder resolved) → data disk (mounted `dirsync`) → clock restored from
 * the data partition (timekeeper.ts) → seed the default config tree → the owner's seed at
 * first boot (first-boot.ts: host name, config for storage) → network (DHCP with that host
 * name) → SNTP → provision links → start every service, each its own sealed process
 * under platform/supervisor.ts, restarting one that dies with back-off without touching the
 * others. Children's log lines go to the console. PID 1 must never exit (the kernel
 * panics), so every failure is caught; a failure that stops boot ends in reboot(2) or
 * power-off, as boot.json says.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:http';
import * as libc from './libc.ts';
import { bootServices, OWNER_CMDLINE_ARG, ownerHashFromCmdline, parseBootConfig, type BootConfig, type BootService } from './boot-config.ts';
import { bringUpNetwork, type NetInfo } from './net.ts';
import { restoreClock, Timekeeper } from './timekeeper.ts';
import { ownerSeedAtBoot } from './first-boot-io.ts';
import { CLOCK_STATE_FILE } from '../clock-state.ts';
import { findByLabel } from './blockdev.ts';
import { growFilesystem, growPartition } from './grow.ts';
import { readTree, seedMissingFiles } from '../config/seed-tree.ts';
import { Supervisor } from '../supervisor.ts';
import { provisionLinks } from '../links.ts';
import { advertiseOnBoot } from '../mdns/supervise.ts';
import { withCaFingerprint } from '../mdns/appliance.ts';
import { APPLIANCE_RUN_STATE, readyLine, runServices, writeRunStateSync, type RunService } from '../run-state.ts';

const BOOT_JSON = '/kith/boot.json';
const t0 = performance.now();

function log(msg: string, fields: Record<string, unknown> = {}): void {
  const kv = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`).join('');
  const line = `kith-init pid=${process.pid} t=${((performance.now() - t0) / 1000).toFixed(3)}s ${msg}${kv}\n`;
  try {
    writeSync(1, line);
  } catch { /* no console: nothing else to do */ }
}

/** The file systems every image needs; mounted before anything else. */
export const MOUNTS = [
  { source: 'proc', target: '/proc', fstype: 'proc', flags: 0n, data: '' },
  { source: 'sysfs', target: '/sys', fstype: 'sysfs', flags: 0n, data: '' },
  { source: 'devtmpfs', target: '/dev', fstype: 'devtmpfs', flags: 0n, data: 'mode=0755' },
  { source: 'tmpfs', target: '/tmp', fstype: 'tmpfs', flags: 0n, data: 'mode=1777' },
  { source: 'tmpfs', target: '/run', fstype: 'tmpfs', flags: 0n, data: 'mode=0755' },
];

/** A folder another file system is mounted on: it sits on another device than its parent. */
function isMountPoint(path: string): boolean {
  try {
    return statSync(path).dev !== statSync(dirname(path)).dev;
  } catch {
    return false;
  }
}

/**
 * The rpi image's first stage (platform/rpi/first-stage.ts) hands over /dev, /proc and /sys
 * already mounted: those are left as they are (the kvm images boot straight into PID 1).
 */
function mountAll(): void {
  const found: string[] = [];
  for (const m of MOUNTS) {
    mkdirSync(m.target, { recursive: true });
    if (isMountPoint(m.target)) {
      found.push(m.target);
      continue;
    }
    const errno = libc.mount(m.source, m.target, m.fstype, m.flags, m.data);
    if (errno === libc.EBUSY) continue; // already mounted
    if (errno !== 0) throw new Error(`mount ${m.target}: ${libc.strerror(errno)}`);
  }
  log('mounted', { paths: MOUNTS.map((m) => m.target).filter((t) => !found.includes(t)).join(','), ...(found.length ? { already: found.join(',') } : {}) });
}

function loadModules(paths: string[]): void {
  const started = performance.now();
  for (const path of paths) {
    const errno = libc.initModule(readFileSync(path));
    if (errno !== 0 && errno !== libc.EEXIST) log('module failed', { path, error: libc.strerror(errno) });
  }
  log('modules loaded', { count: paths.length, ms: Math.round(performance.now() - started), names: paths.map((p) => p.replace(/^.*\/|\.ko$/g, '')).join(',') });
}

/**
 * Sealed services cannot fsync a folder (Node refuses fsync under the permission model), so
 * the data file system is mounted `dirsync`: a rename is on disk when rename(2) returns.
 */
export const DATA_MOUNT_FLAGS = libc.MS_DIRSYNC | libc.MS_NOATIME;

async function mountData(d: NonNullable<BootConfig['data']>): Promise<void> {
  const until = Date.now() + d.waitMs;
  const label = d.device.startsWith('LABEL=') ? d.device.slice(6) : undefined;
  let device = label ? undefined : d.device;
  for (;;) {
    if (label) device = findByLabel(label);
    if (device && existsSync(device)) break;
    if (Date.now() > until) throw new Error(`data device ${d.device} did not appear within ${d.waitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  // A failed grow is logged and the partition mounted as it is: never worth a lost boot.
  if (d.grow) growPartition(device!, log);
  mkdirSync(d.mountpoint, { recursive: true });
  const errno = libc.mount(device!, d.mountpoint, d.fstype, DATA_MOUNT_FLAGS, '');
  if (errno !== 0) throw new Error(`mount ${device} on ${d.mountpoint}: ${libc.strerror(errno)}`);
  log('data mounted', { device: device!, mountpoint: d.mountpoint, fstype: d.fstype, flags: 'dirsync,noatime' });
  if (d.grow) growFilesystem(device!, d.mountpoint, log);
}

function rssKiB(pid: number | 'self', field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function fatal(cfg: Pick<BootConfig, 'onFatal'> | undefined, reason: string): void {
  const action = cfg?.onFatal ?? 'reboot';
  log('FATAL', { reason, action });
  libc.sync();
  const errno = libc.reboot(action === 'poweroff' ? libc.RB_POWER_OFF : libc.RB_AUTOBOOT);
  log('reboot(2) failed; staying up', { error: libc.strerror(errno) });
}

/** How long the services wait for the pki process's certificates before starting without them. */
const PKI_WAIT_MS = 60_000;

/**
 * One Supervisor for every process; each restarts on its own with back-off. The pki process
 * (boot.json `pki`) starts first; the services it makes certificates for (its `--tls` names)
 * once it says `provisioned` (or it failed, or PKI_WAIT_MS passed: services without a
 * certificate beat no services), the others at once.
 */
function supervise(cfg: BootConfig, services: BootService[], hostname: string): { sup: Supervisor; started: Promise<void> } {
  const pki = cfg.pki ? { ...cfg.pki, args: [...cfg.pki.args, '--appliance', hostname] } : undefined;
  const all = pki ? [pki, ...services] : services;
  type PkiOutcome = 'provisioned' | 'exited' | 'waiting for the clock' | 'timed out';
  let settle: (how: PkiOutcome) => void = () => {};
  const pkiReady = new Promise<PkiOutcome>((resolve) => { settle = resolve; });
  const startedAt = new Map<string, number>();
  const failures = new Map<string, number>();
  const startedWithout = new Set<string>();
  // The services' run state in RAM, for the pki process's GET /status (`kith status --remote`).
  const ready = new Map<string, RunService>();
  const bootedAt = new Date().toISOString();
  let stateQueued = false;
  const recordState = () => {
    if (!pki || stateQueued) return;
    stateQueued = true;
    queueMicrotask(() => {
      stateQueued = false;
      try {
        writeRunStateSync(APPLIANCE_RUN_STATE, { pid: process.pid, started: bootedAt, services: runServices(sup.status().filter((c) => c.name !== 'pki'), ready) });
      } catch (err) {
        log('run state not written', { error: (err as Error).message });
      }
    });
  };
  const sup: Supervisor = new Supervisor({
    minBackoffMs: cfg.restart.initialMs,
    maxBackoffMs: cfg.restart.maxMs,
    // A run that outlived the longest back-off counts as healthy: start counting afresh.
    stableMs: cfg.restart.maxMs,
    onEvent(e) {
      if (e.type === 'line') {
        // Services log JSON lines naming themselves; anything else gets the name in front.
        const line = e.line.startsWith('{') ? e.line : `${e.name}: ${e.line}`;
        try { writeSync(1, line + '\n'); } catch { /* no console */ }
        // No certificate can be made before SNTP answers (a first boot offline): start the
        // services now rather than hold them; the `provisioned` that follows restarts them.
        if (e.name === 'pki' && line.includes('"msg":"waiting for the clock"')) settle('waiting for the clock');
        if (e.name === 'pki' && line.includes('"msg":"provisioned"')) {
          settle('provisioned');
          // Started without their certificates (PID 1 stopped waiting): a restart reads them.
          for (const name of startedWithout) {
            const pid = sup.pid(name);
            log('restarting for its certificate', { service: name, child: pid ?? '-' });
            if (pid !== undefined) process.kill(pid, 'SIGTERM');
          }
          startedWithout.clear();
        }
        const isReady = readyLine(e.name, sup.pid(e.name), e.line);
        if (isReady) {
          ready.set(e.name, isReady);
          recordState();
        }
        // Memory once the service says it is ready (its steady state, for the boot benchmark).
        if (line.includes('"msg":"ready"')) {
          const pid = sup.pid(e.name);
          setTimeout(() => {
            if (pid !== undefined && sup.pid(e.name) === pid) log('memory', { service: e.name, child: pid, when: 'ready+2s', childRssKiB: rssKiB(pid) ?? '?', initRssKiB: rssKiB('self') ?? '?', childAnonKiB: rssKiB(pid, 'RssAnon') ?? '?', initAnonKiB: rssKiB('self', 'RssAnon') ?? '?' });
          }, 2000).unref();
        }
      } else if (e.type === 'started') {
        recordState();
        const spec = all.find((s) => s.name === e.name)!;
        startedAt.set(e.name, Date.now());
        log('service started', { service: e.name, child: e.pid, attempt: e.attempt, command: [spec.command, ...spec.args].join(' ') });
        setTimeout(() => {
          if (sup.pid(e.name) === e.pid) log('memory', { service: e.name, child: e.pid, childRssKiB: rssKiB(e.pid) ?? '?', initRssKiB: rssKiB('self') ?? '?' });
        }, 3000).unref();
      } else if (e.type === 'exited' && e.restartInMs !== undefined) {
        recordState();
        const ran = Date.now() - (startedAt.get(e.name) ?? 0);
        const n = ran > cfg.restart.maxMs ? 1 : (failures.get(e.name) ?? 0) + 1;
        failures.set(e.name, n);
        log('service exited', { service: e.name, code: e.code ?? '-', signal: e.signal ?? '-', restartInMs: e.restartInMs, failures: n });
        if (e.name === 'pki') settle('exited'); // the services go on without fresh certificates (a later `provisioned` restarts them)
        if (cfg.restart.fatalAfter > 0 && n >= cfg.restart.fatalAfter) fatal(cfg, `service ${e.name} failed ${n} times`);
      }
    },
  });
  const start = (s: BootService) => sup.start({ name: s.name, command: s.command, args: s.args, env: { PATH: '/bin', HOME: s.dataDir ?? '/data', ...s.env }, cwd: '/' });
  const tlsNames = new Set(pki?.args.flatMap((a, k) => (k > 0 && pki.args[k - 1] === '--tls' ? [a] : [])) ?? []);
  if (!pki) {
    for (const s of services) start(s);
    return { sup, started: Promise.resolve() };
  }
  start(pki);
  for (const s of services) if (!tlsNames.has(s.name)) start(s);
  const waited = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const started = Promise.race([pkiReady, new Promise<PkiOutcome>((r) => { timer = setTimeout(() => r('timed out'), PKI_WAIT_MS); })]).then((how) => {
    clearTimeout(timer);
    log(how === 'provisioned' ? 'pki provisioned' : `pki ${how === 'waiting for the clock' ? 'is waiting for the clock' : how} before provisioning; starting the services anyway`, { ms: Math.round(performance.now() - waited) });
    for (const s of services) if (tlsNames.has(s.name)) {
      if (how !== 'provisioned') startedWithout.add(s.name);
      start(s);
    }
  });
  return { sup, started };
}

/** The machine's memory as /proc tells it: for the footprint test (issue 16), on test images only. */
function memoryReport(sup: Supervisor, names: string[]): Record<string, unknown> {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? NaN);
  const oomKills = Number(/^oom_kill (\d+)/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? 0);
  const of = (pid: number | 'self') => ({ pid: pid === 'self' ? process.pid : pid, rssAnonKiB: rssKiB(pid, 'RssAnon') ?? null, vmRssKiB: rssKiB(pid) ?? null });
  // Where the rest of MemTotal - MemAvailable goes, beside the processes' own memory.
  const breakdown = ['AnonPages', 'Mapped', 'Cached', 'Shmem', 'Unevictable', 'SUnreclaim', 'PageTables', 'KernelStack'];
  return {
    memTotalKiB: kib('MemTotal'), memAvailableKiB: kib('MemAvailable'), swapTotalKiB: kib('SwapTotal'), oomKills,
    meminfoKiB: Object.fromEntries(breakdown.map((k) => [k, kib(k)])),
    init: of('self'),
    services: Object.fromEntries(names.map((n) => [n, sup.pid(n) === undefined ? null : of(sup.pid(n)!)])),
  };
}

/** Test images only (boot.json `debug`): list children, kill one on request, report memory. */
function debugServer(port: number, sup: Supervisor, names: string[]): void {
  const server = createServer((req, res) => {
    const kill = /^\/kill\/([a-z][a-z0-9-]*)$/.exec(req.url ?? '');
    if (req.method === 'GET' && req.url === '/services') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(names.map((n) => [n, { pid: sup.pid(n) ?? null }]))) + '\n');
    } else if (req.method === 'POST' && kill && names.includes(kill[1]!)) {
      const pid = sup.pid(kill[1]!);
      if (pid === undefined) return void res.writeHead(409).end('not running\n');
      log('debug: killing', { service: kill[1]!, child: pid });
      process.kill(pid, 'SIGKILL');
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ killed: pid }) + '\n');
    } else if (req.method === 'GET' && req.url === '/memory') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(memoryReport(sup, names)) + '\n');
    } else res.writeHead(404).end('GET /services, GET /memory, POST /kill/NAME\n');
  });
  server.on('error', (err) => log('debug server failed', { error: err.message }));
  server.listen(port, '0.0.0.0', () => log('debug server listening (test image)', { port }));
}

/** The clock before any service starts: restored from the data partition; SNTP starts once the network is up. */
function startClock(cfg: BootConfig, net: NetInfo): Timekeeper {
  const io = { now: Date.now, setClock: libc.setClock, log };
  const savedFile = cfg.data ? `${cfg.data.mountpoint}/kith/clock.json` : undefined;
  const notBefore = cfg.clock?.notBefore;
  const boot = restoreClock({ ...io, ...(savedFile ? { savedFile } : {}), ...(notBefore ? { notBefore } : {}) });
  const keeper = new Timekeeper({
    ...io, ...(savedFile ? { savedFile } : {}), ...(notBefore ? { notBefore } : {}), stateFile: CLOCK_STATE_FILE,
    dhcpServers: () => net.ntp, servers: cfg.clock?.servers ?? [], ...(cfg.clock?.pool ? { pool: cfg.clock.pool } : {}), resolvers: () => net.dns,
  }, boot);
  // Saved at once as well: the next boot starts from no earlier than this one did.
  keeper.save('boot');
  return keeper;
}

/** Clean stop: SIGTERM powers off, SIGINT (Ctrl-Alt-Del) reboots — services stopped, the time saved, disks synced. */
function onStopSignals(sup: Supervisor, clock: Timekeeper): void {
  let stopping = false;
  const stop = (signal: 'SIGTERM' | 'SIGINT') => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    void sup.stopAll(5000).catch(() => {}).finally(() => {
      clock.stop();
      libc.sync();
      const errno = libc.reboot(signal === 'SIGTERM' ? libc.RB_POWER_OFF : libc.RB_AUTOBOOT);
      log('reboot(2) failed; staying up', { error: libc.strerror(errno) });
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function boot(): Promise<void> {
  log('booting', { node: process.version, arch: process.arch });
  mountAll();
  const parsed = parseBootConfig(readFileSync(BOOT_JSON, 'utf8'));
  if (!parsed.ok) return fatal(undefined, `${BOOT_JSON}: ${parsed.issues.join('; ')}`);
  const cfg = parsed.value;
  const herr = libc.sethostname(cfg.hostname);
  if (herr !== 0) log('sethostname failed', { error: libc.strerror(herr) });
  loadModules(cfg.modules);
  const net: NetInfo = { dns: [], ntp: [] };
  if (cfg.data) {
    try {
      await mountData(cfg.data);
    } catch (err) {
      // Without its disk a service would write into RAM and lose it all: stop here.
      return fatal(cfg, (err as Error).message);
    }
  } else {
    mkdirSync('/data', { recursive: true });
  }
  const clock = startClock(cfg, net);
  const services = bootServices(cfg);
  for (const s of services) if (s.dataDir) mkdirSync(s.dataDir, { recursive: true });
  if (cfg.seed) {
    try {
      mkdirSync(cfg.seed.to, { recursive: true });
      log('config seeded', { from: cfg.seed.from, to: cfg.seed.to, files: seedMissingFiles(cfg.seed.to, readTree(cfg.seed.from)).length });
    } catch (err) {
      log('config seeding failed', { error: (err as Error).message });
    }
  }
  // The owner's seed at first boot (first-boot.ts): host name, config for storage, secret kept.
  const owner = (await ownerSeedAtBoot(cfg, services, log))?.adopted?.seed;
  if (owner?.timezone) for (const s of services) s.env = { TZ: owner.timezone, ...s.env };
  // The network after the data partition: DHCP then names the host as the owner seeded it.
  try {
    await bringUpNetwork(cfg.network, owner?.hostname ?? cfg.hostname, log, net);
  } catch (err) {
    // The service can still be useful on what came up (and its logs reach the console).
    log('network setup failed', { error: (err as Error).message });
  }
  if (cfg.network.mode !== 'none') clock.start();
  // A kvm guest learns the owner token's hash from `kith vm run`, on the kernel command line.
  const ownerSha256 = cfg.ownerFromCmdline ? ownerHashFromCmdline(readFileSync('/proc/cmdline', 'utf8')) : undefined;
  if (cfg.ownerFromCmdline) log(ownerSha256 ? 'owner token hash from the kernel command line' : `no ${OWNER_CMDLINE_ARG}= on the kernel command line: the owner token opens nothing here`);
  if (cfg.links || cfg.resolver || ownerSha256) {
    // PID 1 is the trust root: it alone sees every data folder. Fresh tokens each boot.
    const r = await provisionLinks(services, { ...(cfg.links ? { links: cfg.links } : {}), ...(cfg.resolver ? { resolver: cfg.resolver } : {}), ...(ownerSha256 ? { ownerToken: { sha256: ownerSha256 } } : {}) });
    for (const service of r.provisioned) log('link provisioned', { service, to: cfg.links?.storage ?? '-' });
    for (const f of r.failed) log('link provisioning failed', { service: f.service, error: f.error });
  }
  const { sup, started } = supervise(cfg, services, owner?.hostname ?? cfg.hostname);
  onStopSignals(sup, clock);
  // mDNS / DNS-SD in PID 1, beside the services, so it answers while one restarts (platform/mdns).
  // `_kith._tcp` carries the CA's fingerprint, as under kith up. The pki process makes the CA
  // on the device: with none yet (first boot), the announcement waits until the pki process
  // has provisioned (or given up, PKI_WAIT_MS) — the TLS services it announces start then too.
  if (cfg.mdns) {
    const ads = cfg.mdns.services;
    const pkiDir = cfg.pki?.args[cfg.pki.args.indexOf('--pki') + 1];
    const caFile = cfg.pki && cfg.pki.args.includes('--pki') && pkiDir ? `${pkiDir}/ca.crt` : undefined;
    const announce = () => void advertiseOnBoot(owner?.hostname ?? cfg.hostname, withCaFingerprint(ads, caFile), (msg, f) => log(msg, Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))));
    if (!caFile || existsSync(caFile)) announce();
    else void started.then(announce);
  }
  if (cfg.debug) debugServer(cfg.debug.port, sup, [...(cfg.pki ? [cfg.pki.name] : []), ...services.map((s) => s.name)]);
  await started;
  log('boot done', { ms: Math.round(performance.now() - t0), services: services.map((s) => s.name).join(','), uptimeS: readFileSync('/proc/uptime', 'utf8').split(' ')[0] });
}

if (process.pid !== 1) {
  // Mounting and reboot(2) on a development machine would be destructive.
  log('not PID 1: refusing to run the boot sequence');
  process.exitCode = 1;
} else {
  // Node's own warning printer goes; FFI (how PID 1 reaches libc) is flagged experimental
  // on every boot, which is noise. Any other warning is logged like everything else.
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'ExperimentalWarning') log('node warning', { name: w.name, message: w.message });
  });
  process.on('uncaughtException', (err) => log('uncaught exception', { error: err?.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));
  // PID 1 must never run out of work: keep one timer alive for ever.
  setInterval(() => {}, 2 ** 30);
  boot().catch((err: Error) => fatal(undefined, err?.stack ?? String(err)));
}
