/**
 * <data>/run.json: what a running `kith up` started — its pid and start time, and per
 * service the live pid, when its current run started, how many restarts, the back-off
 * state and its endpoints — so `kith status` can show it, a second `kith up` on the same
 * data folder is refused, and one after a crash finds the leftover children and stops
 * them. Rewritten (durably) whenever a child starts, dies or becomes ready; removed when
 * kith up stops. The token is not in it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../platform/durable.ts';
import { findStrays, processAlive, stopStrays } from '../platform/process.ts';
import type { RunInfo, RunServiceState } from '../platform/run-state.ts';

export const RUN_FILE = 'run.json';

export type { RunInfo, RunService, RunServiceState } from '../platform/run-state.ts';
export { runServices } from '../platform/run-state.ts';

export const pidAlive = (pid: number): boolean => processAlive(pid) === true;

/**
 * Keeps run.json up to date: update() after anything changed; writes are durable, one at
 * a time, and a burst of changes becomes one more write with the latest state.
 */
export class RunRecorder {
  readonly started = new Date().toISOString();
  private writing?: Promise<void>;
  private dirty = false;
  private closed = false;

  private readonly dataRoot: string;
  private readonly services: () => RunServiceState[];
  private readonly onError: (err: Error) => void;

  constructor(dataRoot: string, services: () => RunServiceState[], onError: (err: Error) => void = () => {}) {
    this.dataRoot = dataRoot;
    this.services = services;
    this.onError = onError;
  }

  update(): void {
    if (this.closed) return;
    this.dirty = true;
    this.writing ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      const info: RunInfo = { pid: process.pid, started: this.started, updated: new Date().toISOString(), services: this.services() };
      await writeFileDurable(path.join(this.dataRoot, RUN_FILE), JSON.stringify(info, null, 1) + '\n').catch(this.onError);
    }
    this.writing = undefined;
  }

  /** Wait for pending writes. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** No more writes; then remove run.json. */
  async remove(): Promise<void> {
    this.closed = true;
    await this.flush();
    await fsp.rm(path.join(this.dataRoot, RUN_FILE), { force: true });
  }
}

export async function readRunFile(dataRoot: string): Promise<RunInfo | undefined> {
  try {
    const info = JSON.parse(await fsp.readFile(path.join(dataRoot, RUN_FILE), 'utf8')) as RunInfo;
    return typeof info.pid === 'number' && Array.isArray(info.services) ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A `kith up` that died without stopping its services (SIGKILL, a crash) left run.json:
 * stop whatever of its services still runs. A pid counts only if its command line still
 * names this data folder (`--data <root>/data/<service>`), never a pid reused by another
 * program. Returns the pids stopped.
 */
export async function stopLeftovers(dataRoot: string, info: RunInfo, graceMs = 3000): Promise<number[]> {
  return stopStrays(leftoverCandidates(dataRoot, info), graceMs);
}

/** The services of a dead kith up that still run (what stopLeftovers would stop). */
export function findLeftovers(dataRoot: string, info: RunInfo): { service: string; pid: number }[] {
  const alive = new Set(findStrays(leftoverCandidates(dataRoot, info)));
  return info.services.flatMap((s) => (s.pid !== undefined && alive.has(s.pid) ? [{ service: s.service, pid: s.pid }] : []));
}

const leftoverCandidates = (dataRoot: string, info: RunInfo) =>
  info.services.flatMap((s) => (typeof s.pid === 'number' && s.pid > 0 ? [{ pid: s.pid, marker: ['--data', path.join(dataRoot, 'data', s.service)] }] : []));
