/**
 * kith's init: Node as PID 1. The kernel runs /init, a copy of this bundle whose first
 * line is `#!/bin/node` (binfmt_script), so the image needs no shell and no kernel
 * command line.
 *
 * Sequence: mount /proc /sys /dev /tmp → read /kith/boot.json → hostname → kernel modules
 * (in the order the builder resolved) → network → data disk → start the service and keep
 * it running with back-off. PID 1 must never exit (the kernel panics), so every failure
 * is caught; a failure that stops boot ends in reboot(2) or power-off, as boot.json says.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeSync } from 'node:fs';
import * as libc from './libc.ts';
import { parseBootConfig, restartDelay, type BootConfig } from './boot-config.ts';
import { bringUpNetwork } from './net.ts';

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

function mountAll(): void {
  for (const m of MOUNTS) {
    mkdirSync(m.target, { recursive: true });
    const errno = libc.mount(m.source, m.target, m.fstype, m.flags, m.data);
    if (errno === libc.EBUSY) continue; // already mounted
    if (errno !== 0) throw new Error(`mount ${m.target}: ${libc.strerror(errno)}`);
  }
  log('mounted', { paths: MOUNTS.map((m) => m.target).join(',') });
}

function loadModules(paths: string[]): void {
  const started = performance.now();
  for (const path of paths) {
    const errno = libc.initModule(readFileSync(path));
    if (errno !== 0 && errno !== libc.EEXIST) log('module failed', { path, error: libc.strerror(errno) });
  }
  log('modules loaded', { count: paths.length, ms: Math.round(performance.now() - started), names: paths.map((p) => p.replace(/^.*\/|\.ko$/g, '')).join(',') });
}

async function mountData(d: NonNullable<BootConfig['data']>): Promise<void> {
  const until = Date.now() + d.waitMs;
  while (!existsSync(d.device)) {
    if (Date.now() > until) throw new Error(`data device ${d.device} did not appear within ${d.waitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  mkdirSync(d.mountpoint, { recursive: true });
  const errno = libc.mount(d.device, d.mountpoint, d.fstype, 0n, '');
  if (errno !== 0) throw new Error(`mount ${d.device} on ${d.mountpoint}: ${libc.strerror(errno)}`);
  log('data mounted', { device: d.device, mountpoint: d.mountpoint, fstype: d.fstype });
}

function rssKiB(pid: number | 'self'): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
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

/** Run the service; restart it with back-off when it dies. */
function supervise(cfg: BootConfig): void {
  let failures = 0;
  const start = () => {
    const began = Date.now();
    const child = spawn(cfg.service.command, cfg.service.args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { PATH: '/bin', HOME: '/data', ...cfg.service.env },
      cwd: '/',
    });
    child.on('error', (err) => log('service spawn failed', { service: cfg.service.name, error: err.message }));
    if (child.pid) {
      log('service started', { service: cfg.service.name, child: child.pid, command: [cfg.service.command, ...cfg.service.args].join(' ') });
      setTimeout(() => {
        if (child.exitCode === null) log('memory', { service: cfg.service.name, childRssKiB: rssKiB(child.pid!) ?? '?', initRssKiB: rssKiB('self') ?? '?' });
      }, 3000).unref();
    }
    child.on('exit', (code, signal) => {
      // A run that outlived the longest back-off counts as healthy: start counting afresh.
      failures = Date.now() - began > cfg.restart.maxMs ? 1 : failures + 1;
      const delay = restartDelay(failures, cfg.restart);
      log('service exited', { service: cfg.service.name, code: code ?? '-', signal: signal ?? '-', restartInMs: delay, failures });
      if (cfg.restart.fatalAfter > 0 && failures >= cfg.restart.fatalAfter) return fatal(cfg, `service failed ${failures} times`);
      setTimeout(start, delay);
    });
  };
  start();
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
  try {
    await bringUpNetwork(cfg.network, cfg.hostname, log);
  } catch (err) {
    // The service can still be useful on what came up (and its logs reach the console).
    log('network setup failed', { error: (err as Error).message });
  }
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
  supervise(cfg);
  log('boot done', { ms: Math.round(performance.now() - t0), uptimeS: readFileSync('/proc/uptime', 'utf8').split(' ')[0] });
}

if (process.pid !== 1) {
  // Mounting and reboot(2) on a development machine would be destructive.
  log('not PID 1: refusing to run the boot sequence');
  process.exitCode = 1;
} else {
  process.on('uncaughtException', (err) => log('uncaught exception', { error: err?.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));
  // PID 1 must never run out of work: keep one timer alive for ever.
  setInterval(() => {}, 2 ** 30);
  boot().catch((err: Error) => fatal(undefined, err?.stack ?? String(err)));
}
