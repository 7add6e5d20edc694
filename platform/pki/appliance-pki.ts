/**
 * The appliance's TLS and pairing, as its own process beside the services (`/kith/pki.cjs`,
 * supervised by PID 1 like a service). PID 1 itself stays small: the X.509 code lives here.
 *
 * At each start: the appliance CA under `--pki` (made once, key 0600), a server certificate
 * for every service named by `--tls` (the names it is reached by: NAME, NAME.local,
 * NAME.home.arpa, loopback and the machine's addresses, which DHCP has given by then), and
 * the revoked serials and the paired devices' password hashes written to every TLS service,
 * and (`--link`) a client certificate for each service PID 1 linked to storage, for
 * storage's https listener (`--storage-tls-url`), and its own certificate for the pairing
 * port, which answers a paired device's GET /status from PID 1's run state (`--status-file`).
 * Then it logs `provisioned` — PID 1
 * starts the services after that line — and serves pairing on `--port`: the short code is
 * logged for the console, the owner seed's secret (`--seed-secret FILE`) is accepted too and
 * never logged.
 *
 * `kith up` runs the same process (dist/kith-pki.cjs) beside its services, so that its own
 * long-lived process holds no X.509 code: it listens on `--host` (kith up's --host, named in
 * the certificate too), its status file is run.json, and its health probes carry the owner
 * token (`--owner-token-file`), as kith up's own did. It stops when its supervisor is gone
 * (platform/lifeline.ts), which PID 1 never is but kith up may be.
 *
 *   node pki.cjs --pki /data/pki --services /data --appliance NAME --port 7299 --tls mail --tls calendar \
 *     --storage storage --storage-tls-url https://127.0.0.1:8443 --link dns --link mail
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { tlsNamesFor } from '../mdns/supervise.ts';
import { servePairing, type PairingHandle } from './pair-supervisor.ts';
import { governMemory } from '../memory-governor.ts';
import { normalCode } from './pairing.ts';
import { loadOrCreateCa, provisionServerTls, serviceClientIssuer } from './provision.ts';
import { addLinkCertificate } from '../links.ts';
import type { Pem } from './ca.ts';
import { loadDevices, syncDevices } from './devices.ts';
import { normalSerial } from './revocation.ts';
import { readServerTls } from './server-tls.ts';
import { statusWithHealth, type RunInfo } from '../run-state.ts';
import { readClockState, type ClockState } from '../clock-state.ts';
import { APPLIANCE_PAIR_PORT } from './appliance-launch.ts';
import { watchLifeline } from '../lifeline.ts';

const USAGE = 'usage: pki.cjs --pki DIR --services DIR --appliance NAME [--host ADDR] [--port N] [--tls SERVICE]... [--seed-secret FILE] [--storage NAME --storage-tls-url URL --link SERVICE...] [--status-file FILE [--owner-token-file FILE]]';

export function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, service: 'pki', msg, ...fields }) + '\n');
}

/** The names a service certificate on the appliance carries (and `host`, an address it alone listens on). */
export function applianceTlsNames(appliance: string, host?: string): string[] {
  const own = host && host !== '0.0.0.0' && host !== '::' ? [host] : [];
  return [...new Set([appliance, ...tlsNamesFor(appliance, '0.0.0.0'), 'localhost', '127.0.0.1', '::1', ...own])];
}

/** How long a kept service certificate must still be valid to be kept. */
const RENEW_BEFORE_MS = 30 * 86_400_000;

/** A name as a certificate shows it: lower case; IPv6 written out in eight groups (OpenSSL's form). */
function canonicalName(name: string): string {
  if (!name.includes(':')) return name.toLowerCase();
  const [head, tail] = name.toLowerCase().split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/**
 * Whether a service's certificate can stay: issued by this CA, valid for a month more, for
 * every name the box has now. A boot then issues nothing unless an address or name changed.
 */
export function keepsServerCert(dataDir: string, caPem: string, names: string[], now = Date.now()): boolean {
  try {
    const cert = new X509Certificate(readFileSync(path.join(dataDir, 'tls', 'server.crt')));
    if (!existsSync(path.join(dataDir, 'tls', 'server.key'))) return false;
    if (!cert.verify(new X509Certificate(caPem).publicKey) || Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return false;
    const san = new Set((cert.subjectAltName ?? '').split(', ').map((e) => canonicalName(e.replace(/^(DNS|IP Address):/, ''))));
    return names.every((n) => san.has(canonicalName(n)));
  } catch {
    return false;
  }
}

/** Resolves once PID 1's clock state says synchronised (SNTP answered); says once that it waits. */
async function clockSynchronised(why: string, read: () => ClockState = readClockState): Promise<void> {
  let state = read();
  if (state.synchronised) return;
  log('warn', 'waiting for the clock', { why, source: state.source, ...(state.lastError ? { lastError: state.lastError } : {}) });
  while (!(state = read()).synchronised) await new Promise((r) => setTimeout(r, 1000));
  log('info', 'clock synchronised', { source: state.source });
}

/** The owner seed's pairing secret, when first boot kept one (platform/boot/first-boot.ts). */
function readSeedSecret(file: string | undefined): string | undefined {
  if (!file || !existsSync(file)) return undefined;
  const secret = readFileSync(file, 'utf8').trim();
  return normalCode(secret).length === 25 ? secret : undefined;
}

/**
 * Each linked service's certificate for storage's https listener, added to the token link
 * PID 1 wrote this boot (platform/links.ts addLinkCertificate). Only with a synchronised
 * clock: a certificate stamped with a wrong one could fail where the token works, so the
 * links stay token-only until the next start instead.
 */
async function certifyLinks(values: { services?: string; storage?: string; 'storage-tls-url'?: string; link?: string[] }, ca: Pem): Promise<string[]> {
  const { storage, link = [] } = values;
  const url = values['storage-tls-url'];
  if (!storage || !url || link.length === 0 || !values.services) return [];
  if (!readClockState().synchronised) {
    log('warn', 'links stay token-only: the clock is not synchronised', { links: link.join(',') });
    return [];
  }
  const done: string[] = [];
  for (const service of link) {
    const ok = await addLinkCertificate({ service, serviceDataDir: path.join(values.services, service), storageDataDir: path.join(values.services, storage), storageTlsUrl: url, issue: serviceClientIssuer(ca) })
      .catch((err: Error) => { log('warn', 'link certificate not provisioned; the token stays', { service, error: err.message }); return false; });
    if (ok) done.push(service);
  }
  return done;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({ args: argv, options: {
    pki: { type: 'string' }, services: { type: 'string' }, appliance: { type: 'string' }, port: { type: 'string' },
    tls: { type: 'string', multiple: true }, 'seed-secret': { type: 'string' },
    storage: { type: 'string' }, 'storage-tls-url': { type: 'string' }, link: { type: 'string', multiple: true },
    'status-file': { type: 'string' }, host: { type: 'string' }, 'owner-token-file': { type: 'string' },
  } });
  if (!values.pki || !values.services || !values.appliance) throw new Error(USAGE);
  const port = Number(values.port ?? APPLIANCE_PAIR_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: a TCP port`);
  const host = values.host ?? '0.0.0.0';
  // Its supervisor gone (kith up killed), nobody shows its codes or reads its log: stop.
  let pairing: PairingHandle | undefined;
  watchLifeline(() => void (pairing?.close() ?? Promise.resolve()).finally(() => process.exit(0)));

  // A bad service name must not write outside the services' root.
  for (const service of values.tls ?? []) if (!/^[a-z][a-z0-9-]*$/.test(service)) throw new Error(`--tls ${service}: a service name`);
  for (const service of [...(values.link ?? []), ...(values.storage ? [values.storage] : [])]) if (!/^[a-z][a-z0-9-]*$/.test(service)) throw new Error(`--link/--storage ${service}: a service name`);
  // Dates stamped from a wrong clock (a Pi boots in 1970 or at the last saved time) would
  // make a CA or a certificate not yet valid, or expired, once the time is set: wait for it.
  if (!existsSync(path.join(values.pki, 'ca.crt'))) await clockSynchronised('to make the appliance CA');
  const ca = await loadOrCreateCa(values.pki);
  const names = applianceTlsNames(values.appliance, host);
  const stale = (values.tls ?? []).filter((service) => !keepsServerCert(path.join(values.services!, service), ca.cert, names));
  // The pairing port's own certificate (GET /status by mutual TLS), kept apart from the services' folders.
  const own = path.join(values.pki, 'server');
  const ownStale = !keepsServerCert(own, ca.cert, names);
  if (stale.length > 0 || ownStale) await clockSynchronised(`to issue certificates for ${[...stale, ...(ownStale ? ['kith'] : [])].join(', ')}`);
  for (const service of stale) await provisionServerTls(ca, path.join(values.services, service), service, names);
  if (ownStale) await provisionServerTls(ca, own, 'kith', names);
  const issued = stale;
  await syncDevices(values.pki, values.services);
  const linked = await certifyLinks(values, ca);
  log('info', 'provisioned', { services: (values.tls ?? []).join(','), issued: issued.join(',') || 'none', names: names.join(','), ...(values.link ? { links: linked.join(',') || 'none' } : {}) });

  const standingSecret = readSeedSecret(values['seed-secret']);
  // GET /status for a paired device: PID 1's run state (--status-file, in RAM) with each
  // service's health probed here on loopback (`kith status --remote`).
  const statusFile = values['status-file'];
  const ownTls = statusFile ? await readServerTls(own) : undefined;
  const pkiDir = values.pki;
  const tokenFile = values['owner-token-file'];
  const statusAccess = statusFile && ownTls ? {
    tls: ownTls,
    isRevoked: (serial: string) => loadDevices(pkiDir).some((d) => d.revokedAt !== undefined && normalSerial(d.serial) === normalSerial(serial)),
    status: async () => statusWithHealth(values.appliance!, JSON.parse(readFileSync(statusFile, 'utf8')) as RunInfo, tokenFile ? readFileSync(tokenFile, 'utf8').trim() : undefined),
  } : undefined;
  pairing = await servePairing({
    pkiDir: values.pki, servicesRoot: values.services, ca, appliance: values.appliance, host, port,
    ...(standingSecret ? { standingSecret } : {}),
    onCode: (code, expiresAt, why) => log('info', 'pairing code', { code, until: new Date(expiresAt).toISOString(), why }),
    onPaired: (device) => log('info', 'paired', { device }),
    ...(statusAccess ? { status: statusAccess } : {}),
  });
  const served = pairing;
  log('info', 'pairing', { host, port: served.port, seedSecret: standingSecret ? 'accepted' : 'none' });
  // Provisioning's garbage (keys, certificates, X.509 parsing) is not kept while it waits:
  // a 512 MB board counts every MiB (platform/memory-governor.ts; --expose-gc from the launch args).
  governMemory({ softLimitBytes: 16 * 2 ** 20 }).settle();
  process.on('SIGTERM', () => void served.close().finally(() => process.exit(0)));
}

