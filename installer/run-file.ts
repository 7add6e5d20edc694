/**
 * <data>/run.json: what a running `kith up` started (its pid, each service's pid and
 * endpoints), so `kith status` can find it and a second `kith up` on the same data
 * folder is refused. Removed when kith up stops. The token is not in it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../platform/durable.ts';
import { processAlive } from '../platform/process.ts';

export const RUN_FILE = 'run.json';

export interface RunService {
  service: string;
  pid: number;
  endpoints: Record<string, string>;
  health: string;
  logs: string;
}

export interface RunInfo {
  pid: number;
  started: string;
  services: RunService[];
}

export const pidAlive = (pid: number): boolean => processAlive(pid) === true;

export async function writeRunFile(dataRoot: string, services: RunService[]): Promise<void> {
  const info: RunInfo = {
    pid: process.pid,
    started: new Date().toISOString(),
    services: services.map(({ service, pid, endpoints, health, logs }) => ({ service, pid, endpoints, health, logs })),
  };
  await writeFileDurable(path.join(dataRoot, RUN_FILE), JSON.stringify(info, null, 1) + '\n');
}

export async function readRunFile(dataRoot: string): Promise<RunInfo | undefined> {
  try {
    const info = JSON.parse(await fsp.readFile(path.join(dataRoot, RUN_FILE), 'utf8')) as RunInfo;
    return typeof info.pid === 'number' && Array.isArray(info.services) ? info : undefined;
  } catch {
    return undefined;
  }
}
