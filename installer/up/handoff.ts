/**
 * What `kith up` hands from its one-shot part (installer/commands/up.ts: build, seed, owner
 * token, CA, links, certificates) to its long-lived part (installer/up/supervise.ts, run
 * from dist/kith-up.cjs in the same process after process.execve): everything the
 * supervisor needs, as data, so that none of the code that computed it loads there.
 * Written into the (private) data folder and removed once read. It holds paths, not
 * secrets: the owner token stays in its own file.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceDescriptor, ServiceLaunch } from '../../platform/appliance.ts';
import type { RunService } from '../../platform/run-state.ts';

export const HANDOFF_FILE = 'up-handoff.json';

/** What `kith up --json` prints per ready service: what run.json records, and access. */
export interface ReadyInfo extends RunService {
  /** Local-mode credentials (the storage access token). */
  token?: string;
  /** The appliance CA certificate, for https endpoints. */
  ca?: string;
}

export interface UpHandoff {
  dataRoot: string;
  json: boolean;
  /** How long to wait for every service to be healthy. */
  timeoutMs: number;
  /** What the services listen on (kith up --host). */
  host: string;
  version: string;
  /** The services in slot order, as the plan launches them. */
  services: Pick<ServiceLaunch, 'name' | 'description' | 'command' | 'args' | 'env' | 'listen' | 'dataDir' | 'writableConfig'>[];
  /** Their listeners as declared: what mDNS announces. */
  descriptors: Pick<ServiceDescriptor, 'name' | 'listeners'>[];
  /** The service the owner token opens (storage), whose ready line carries it. */
  storage?: string;
  ownerTokenFile: string;
  caCertFile: string;
  /** The pairing process (dist/kith-pki.cjs): the CA's code lives there, not in the supervisor. */
  pki: { command: string; args: string[] };
  mdns: { name: string; enabled: boolean; force: boolean };
}

export function writeHandoff(h: UpHandoff): string {
  const file = path.join(h.dataRoot, HANDOFF_FILE);
  writeFileSync(file, JSON.stringify(h) + '\n', { mode: 0o600 });
  return file;
}

/** Read once: the file goes, so a later kith up never takes a stale one. */
export function takeHandoff(file: string): UpHandoff {
  const h = JSON.parse(readFileSync(file, 'utf8')) as UpHandoff;
  rmSync(file, { force: true });
  return h;
}
