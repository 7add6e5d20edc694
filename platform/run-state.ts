/**
 * The supervision state of a set of services as `kith status` shows it: how to reach each
 * ready one, where its supervision stands, and how it answers its health probe. `kith up`
 * records it in <data>/run.json (installer/run-file.ts); PID 1 keeps it in RAM for its pki
 * process, which answers the owner's `kith status --remote` by mutual TLS
 * (platform/pki/pair-server.ts GET /status).
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { ChildStatus } from './supervisor.ts';

/** How to reach a ready service (what `kith up --json` prints, less the access fields). */
export interface RunService {
  service: string;
  pid: number;
  endpoints: Record<string, string>;
  health: string;
  logs: string;
}

/** One service in run.json: how to reach it, and where its supervision stands. */
export interface RunServiceState extends Partial<RunService> {
  service: string;
  /** starting: running, not ready yet; ready; backing-off: died, restarts at restartAt; stopped. */
  state: 'starting' | 'ready' | 'backing-off' | 'stopped';
  /** The live pid (absent while backing off). */
  pid?: number;
  /** Start of the current run. */
  started: string;
  restarts: number;
  lastExit?: { code: number | null; signal: string | null; at: string };
  restartAt?: string;
  /** The wait before the next restart (the current one while backing off). */
  backoffMs: number;
}

export interface RunInfo {
  /** kith up itself. */
  pid: number;
  /** When kith up started (does not move when a service restarts). */
  started: string;
  updated?: string;
  services: RunServiceState[];
}

/** What a service answers on /healthz (the parts `kith status` shows). */
export interface Health {
  status?: string;
  detail?: string;
  configGeneration?: number;
  lastConfigError?: string;
}

export interface Probe { state: string; health: Health }

/** What a supervisor's GET /status answers (platform/pki/pair-server.ts): the run state and each service's health. */
export interface ApplianceStatus extends RunInfo { appliance: string; probes: Probe[] }

/** Where PID 1 keeps its run state (RAM: the initramfs), for the pki process's GET /status. */
export const APPLIANCE_RUN_STATE = '/run/kith-status.json';

/** The run state with each service's health probed, as GET /status answers it. */
export async function statusWithHealth(appliance: string, info: RunInfo, token?: string): Promise<ApplianceStatus> {
  return { appliance, ...info, probes: await Promise.all(info.services.map((s) => probeHealth(s, token))) };
}

/** Ask a service's /healthz (with the owner's token, which a health listener facing the LAN wants for details). */
export async function probeHealth(s: RunServiceState, token?: string): Promise<Probe> {
  if (s.state === 'backing-off') return { state: 'restarting', health: {} };
  if (s.state === 'stopped') return { state: 'stopped', health: {} };
  if (!s.health) return { state: 'starting', health: {} };
  try {
    const res = await fetch(`${s.health}/healthz`, { signal: AbortSignal.timeout(2000), headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { state: res.ok ? 'healthy' : 'unhealthy', health: (await res.json()) as Health };
  } catch {
    return { state: s.state === 'starting' ? 'starting' : 'unreachable', health: {} };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** run.json's view of each supervised child: its supervision state and, when ready, how to reach it. */
export function runServices(children: ChildStatus[], ready: ReadonlyMap<string, RunService>): RunServiceState[] {
  return children.map((c) => {
    const r = ready.get(c.name);
    const isReady = c.state === 'running' && r !== undefined && r.pid === c.pid;
    return {
      ...(r ? { endpoints: r.endpoints, health: r.health, logs: r.logs } : {}),
      service: c.name,
      state: c.state === 'running' ? (isReady ? 'ready' : 'starting') : c.state,
      ...(c.pid !== undefined ? { pid: c.pid } : {}),
      started: iso(c.startedAt),
      restarts: c.restarts,
      ...(c.lastExit ? { lastExit: { code: c.lastExit.code, signal: c.lastExit.signal, at: iso(c.lastExit.at) } } : {}),
      ...(c.restartAt !== undefined ? { restartAt: iso(c.restartAt) } : {}),
      backoffMs: c.backoffMs,
    };
  });
}


/** Replace the run state file whole (write beside, rename): a reader never sees half of it. */
export function writeRunStateSync(file: string, info: RunInfo): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(info) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** A service's `ready` log line (platform/runner.ts) as run state, or undefined for any other line. */
export function readyLine(service: string, pid: number | undefined, line: string): RunService | undefined {
  if (!line.includes('"msg":"ready"') || pid === undefined) return undefined;
  try {
    const rec = JSON.parse(line) as { msg?: string; endpoints?: Record<string, string>; health?: string };
    return rec.msg === 'ready' && rec.endpoints ? { service, pid, endpoints: rec.endpoints, health: rec.health ?? '', logs: 'console' } : undefined;
  } catch {
    return undefined;
  }
}
