/**
 * Reaching a paired appliance from the owner's machine: where it is (mDNS `_kith._tcp`, or
 * --host and --port), and this machine's identity from `kith pair` (the appliance CA, the
 * client certificate and its key, under ~/.config/kith/<appliance>/ or --dir). `kith pair`
 * finds appliances the same way; `kith status` and `kith config log` then talk to the
 * supervisor's port by mutual TLS (platform/pki/pair-server.ts GET /status).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { browse, type Found } from '../platform/mdns/browse.ts';
import { KITH_TYPE } from '../platform/mdns/appliance.ts';
import { tlsFetch, type ClientTls } from '../platform/tls-fetch.ts';

export interface Target {
  name: string;
  host: string;
  port: number;
  caSha256?: string;
}

export interface FindOptions {
  appliance?: string;
  host?: string;
  port?: string;
  /** Seconds to listen for answers. */
  wait?: string;
  /** Each appliance found, as it is found (kith pair shows them). */
  onFound?: (f: Found) => void;
}

/** The appliance to talk to, or why there is none (with the exit code: 2 none found, 64 usage). */
export async function findAppliance(o: FindOptions): Promise<{ target: Target; found: Found[] } | { code: number; error: string; found: Found[] }> {
  if (o.host) {
    const port = Number(o.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { code: 64, error: '--host needs --port N (the pairing port kith up printed)', found: [] };
    return { target: { name: o.appliance ?? o.host, host: o.host, port }, found: [] };
  }
  const found = await browse(KITH_TYPE, Number(o.wait ?? 1.5) * 1000);
  for (const f of found) o.onFound?.(f);
  const pick = o.appliance ? found.filter((f) => f.instance === o.appliance || f.host === `${o.appliance}.local`) : found;
  if (pick.length === 0) return { code: 2, error: o.appliance ? `no appliance named ${o.appliance} answered (found: ${found.map((f) => f.instance).join(', ') || 'none'})` : 'no kith appliance answered on the local network; is it up and on this network? (or give --host and --port)', found };
  if (pick.length > 1) return { code: 64, error: `several appliances answered (${pick.map((f) => f.instance).join(', ')}): choose one with --appliance NAME`, found };
  const f = pick[0]!;
  const v4 = f.addresses.find((a) => !a.includes(':')) ?? f.from;
  return { target: { name: f.instance, host: v4, port: f.port, ...(f.txt.ca ? { caSha256: f.txt.ca } : {}) }, found };
}

/** Where `kith pair` keeps what pairing with `appliance` gave this machine. */
export const pairedDir = (appliance: string, dir?: string) => path.resolve(dir ?? path.join(homedir(), '.config', 'kith', appliance));

/** This machine's paired identity, or a sentence saying what to do. */
export function pairedIdentity(dir: string): ClientTls | string {
  try {
    const [ca, cert, key] = ['ca.crt', 'client.crt', 'client.key'].map((f) => readFileSync(path.join(dir, f), 'utf8'));
    return { ca: ca!, cert: cert!, key: key! };
  } catch (err) {
    return `this machine is not paired (${(err as Error).message}): run \`kith pair\` first, or give --dir with the folder it wrote`;
  }
}

/** GET the supervisor's /status by mutual TLS. */
export async function applianceStatus<T>(target: Target, id: ClientTls, timeoutMs = 10_000): Promise<T> {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const res = await tlsFetch(id)(`https://${host}:${target.port}/status`, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `the appliance answered ${res.status}`);
  return body;
}

/** Options of commands that can talk to a paired appliance instead of the kith up beside them. */
export const REMOTE_OPTIONS = {
  remote: { type: 'boolean' }, appliance: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, dir: { type: 'string' }, wait: { type: 'string' },
} as const;

export const REMOTE_HELP = `  --remote           the paired appliance found on the local network (mDNS), by mutual TLS
  --appliance NAME   ... the one of that name, when several answer
  --host ADDR        skip discovery: the appliance's address ...
  --port N           ... and port (the pairing port)
  --dir DIR          this machine's pairing (default: ~/.config/kith/<appliance>)
`;

export const wantsRemote = (v: { remote?: boolean; appliance?: string; host?: string }) => v.remote === true || v.appliance !== undefined || v.host !== undefined;

/** Find the appliance, load this machine's pairing, and GET its /status; or why not (exit code 2 none found, 64 usage, 4 not paired, 3 no answer). */
export async function askAppliance<T>(o: FindOptions & { dir?: string }): Promise<{ target: Target; id: ClientTls; status: T } | { code: number; error: string }> {
  const where = await findAppliance(o);
  if ('error' in where) return where;
  const id = pairedIdentity(pairedDir(where.target.name, o.dir));
  // Not 1: for `kith status` that means a service is unhealthy.
  if (typeof id === 'string') return { code: 4, error: id };
  try {
    return { target: where.target, id, status: await applianceStatus<T>(where.target, id) };
  } catch (err) {
    return { code: 3, error: `cannot ask ${where.target.name} at ${where.target.host}:${where.target.port}: ${(err as Error).message}` };
  }
}
