/**
 * `kith up`: every existing service as its own sealed process on loopback, with the
 * built-in default config seeded under the data folder; waits for each to be healthy,
 * prints how to reach it, restarts one that dies, stops all on Ctrl-C / SIGTERM.
 */
import { createWriteStream, promises as fsp, readFileSync, type WriteStream } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { planAppliance } from '../../platform/appliance.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { provisionLinks } from '../../platform/links.ts';
import { loadOrCreateOwnerToken } from '../../platform/owner.ts';
import { makePrivateDir } from '../../platform/private-dir.ts';
import { loadOrCreateCa, provisionServerTls, serviceClientIssuer } from '../../platform/pki/provision.ts';
import { defaultConfigFiles } from '../../platform/services.ts';
import { describeServices } from '../../platform/descriptors.ts';
import { Supervisor } from '../../platform/supervisor.ts';
import type { Advertiser } from '../../platform/mdns/advertiser.ts';
import { advertisePlan, defaultMdnsName, tlsNamesFor } from '../../platform/mdns/supervise.ts';
import { loadDevices, syncDevices } from '../../platform/pki/devices.ts';
import { servePairing, type PairingHandle } from '../../platform/pki/pair-supervisor.ts';
import { normalSerial } from '../../platform/pki/revocation.ts';
import { readServerTls } from '../../platform/pki/server-tls.ts';
import { statusWithHealth } from '../../platform/run-state.ts';

/** Storage's own token file, from before `kith up` kept the owner token (taken over once). */
const LEGACY_STORAGE_TOKEN = 'access-token';
import { buildAll } from './build.ts';
import { pidAlive, readRunFile, RunRecorder, runServices, stopLeftovers, type RunService } from '../run-file.ts';
import { repoRoot } from '../paths.ts';

const KITH_VERSION = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const HELP = `Usage: kith up [options]

Starts every kith service on loopback, each as its own sealed process, with a default
config seeded on first run. Prints how to reach each service; Ctrl-C stops them all.

Options:
  --data DIR         where config, data and logs live (default: .kith)
  --port-base N      first port; service k uses N+10k .. N+10k+9 (default 7300)
  --host HOST        address to listen on (default 127.0.0.1)
  --json             one JSON object per line per ready service, then events
  --no-build         use the bundles already in dist/
  --timeout SEC      how long to wait for every service to be healthy (default 60)
  --mdns, --no-mdns  announce the services over mDNS/DNS-SD (default: on unless --host is
                     loopback, which nothing on the network could reach; --mdns then
                     announces on loopback)
  --hostname NAME    the name announced as NAME.local (default: this machine's host name)
  --pair-port N      where \`kith pair\` reaches this kith (default: port base - 1); the
                     pairing code is printed (and logged as JSON with --json)
  -h, --help         this help

Exit codes: 0 stopped cleanly, 1 a service did not become healthy, 64 usage error.
`;

/** What `kith up --json` prints per ready service: what run.json records, and access. */
export interface ReadyInfo extends RunService {
  /** Local-mode credentials (the storage access token). */
  token?: string;
  /** The appliance CA certificate, for https endpoints. */
  ca?: string;
}


export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        'port-base': { type: 'string' },
        host: { type: 'string' },
        json: { type: 'boolean' },
        'no-build': { type: 'boolean' },
        mdns: { type: 'boolean' },
        'no-mdns': { type: 'boolean' },
        hostname: { type: 'string' },
        'pair-port': { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const json = values.json === true;
  const portBase = Number(values['port-base'] ?? 7300);
  if (!Number.isInteger(portBase) || portBase < 1 || portBase > 65000) {
    process.stderr.write(`kith up: --port-base ${values['port-base']}: expected a whole number from 1 to 65000\n`);
    return 64;
  }
  const host = values.host ?? '127.0.0.1';
  const timeoutMs = Number(values.timeout ?? 60) * 1000;
  const dataRoot = path.resolve(values.data ?? '.kith');
  const configRoot = path.join(dataRoot, 'config');
  const logsDir = path.join(dataRoot, 'logs');
  const say = (text: string) => { if (!json) process.stdout.write(text + '\n'); };
  const emit = (obj: object) => { if (json) process.stdout.write(JSON.stringify(obj) + '\n'); };

  const already = await readRunFile(dataRoot);
  if (already && pidAlive(already.pid)) {
    process.stderr.write(`kith up: kith is already up with this data folder (pid ${already.pid}); see \`kith status --data ${values.data ?? '.kith'}\`\n`);
    return 1;
  }
  // Services a dead kith up left running are stopped (installer/run-file.ts).
  if (already) for (const pid of await stopLeftovers(dataRoot, already)) say(`stopped pid ${pid}, left running by an earlier kith up (pid ${already.pid})`);
  // Declarations as data, read by a child: the services' code never loads in this long-lived process.
  const defs = await describeServices(repoRoot);
  if (defs.length === 0) {
    process.stderr.write('kith up: no services exist yet (services/<name>/main.ts)\n');
    return 1;
  }
  if (!values['no-build']) {
    const reports = await buildAll();
    say(`built ${reports.map((r) => `${r.service} (${Math.round(r.bytes / 1024)} KiB)`).join(', ')}`);
  }
  const mdnsName = values.hostname ?? defaultMdnsName();
  const plan = planAppliance(defs, { target: 'local', host, portBase, dataRoot, distDir: path.join(repoRoot, 'dist'), node: process.execPath, tlsNames: tlsNamesFor(mdnsName, host) });
  await makePrivateDir(dataRoot); // it holds tokens, keys and the CA: the owner's alone
  await fsp.mkdir(logsDir, { recursive: true });
  // Each service finds its defaults in the working tree; storage makes those of a service
  // new to config.git a commit there (platform/appliance.ts: the one seeding policy).
  const seeded = seedMissingFiles(configRoot, defaultConfigFiles(defs));
  if (seeded.length > 0) say(`seeded default config in ${configRoot} (${seeded.length} files)`);

  const logs = new Map<string, WriteStream>();
  const tails = new Map<string, string[]>();
  const ready = new Map<string, ReadyInfo>();
  let resolveAll: () => void = () => {};
  const allReady = new Promise<void>((r) => { resolveAll = r; });

  // run.json follows every start, exit and ready (after this handler ran).
  const recorder = new RunRecorder(dataRoot, () => runServices(supervisor.status(), ready), (err) => process.stderr.write(`kith up: cannot write run.json: ${err.message}\n`));
  const supervisor = new Supervisor({
    onEvent(e) {
      if (e.type !== 'line' || e.line.includes('"msg":"ready"')) queueMicrotask(() => recorder.update());
      if (e.type === 'line') {
        logs.get(e.name)?.write(e.line + '\n');
        const tail = tails.get(e.name) ?? [];
        tail.push(e.line);
        if (tail.length > 20) tail.shift();
        tails.set(e.name, tail);
        let rec: { msg?: string; endpoints?: Record<string, string>; health?: string } | undefined;
        try { rec = JSON.parse(e.line); } catch { /* not JSON: kept in the log file */ }
        if (rec?.msg === 'ready' && rec.endpoints) {
          const info: ReadyInfo = { service: e.name, pid: supervisor.pid(e.name) ?? 0, endpoints: rec.endpoints, health: rec.health ?? '', logs: path.join(logsDir, `${e.name}.log`) };
          const again = ready.has(e.name);
          ready.set(e.name, info);
          if (again) {
            emit({ event: 'restarted', ...info });
            say(`${e.name} is back (pid ${info.pid})`);
          }
          if (ready.size === defs.length) resolveAll();
        }
      } else if (e.type === 'exited' && e.restartInMs !== undefined) {
        emit({ event: 'exited', service: e.name, code: e.code, signal: e.signal, restartInMs: e.restartInMs });
        if (!json) process.stderr.write(`${e.name} exited (${e.signal ?? `code ${e.code}`}); restarting in ${e.restartInMs} ms; see ${path.join(logsDir, `${e.name}.log`)}\n`);
      }
    },
  });

  // The owner's token (kept here, its hash given to every service) and the links: each
  // service that needs storage gets its own token and grants, fresh each run. A data folder
  // from before the supervisor kept the token: storage's own token is taken over. Each
  // service that needs storage also gets a client certificate from the appliance CA (kept
  // under <data>/pki), its way into storage's https listener.
  const ownerToken = await loadOrCreateOwnerToken(dataRoot, path.join(dataRoot, 'data', 'storage', LEGACY_STORAGE_TOKEN));
  const ca = await loadOrCreateCa(path.join(dataRoot, 'pki'));
  {
    const r = await provisionLinks(plan.services, { ownerToken, issue: serviceClientIssuer(ca), ...(plan.links ? { links: plan.links } : {}), ...(plan.resolver ? { resolver: plan.resolver } : {}) });
    for (const f of r.failed) process.stderr.write(`kith up: could not provision ${f.service}: ${f.error}\n`);
  }
  // TLS: the appliance CA issues each https service its certificate.
  for (const s of plan.services) if (s.tlsNames) await provisionServerTls(ca, s.dataDir, s.name, s.tlsNames);
  await syncDevices(path.join(dataRoot, 'pki'), path.join(dataRoot, 'data')); // revoked devices stay refused, paired ones' passwords work

  for (const s of plan.services) {
    logs.set(s.name, createWriteStream(path.join(logsDir, `${s.name}.log`), { flags: 'a' }));
    supervisor.start({ name: s.name, command: s.command, args: s.args });
  }

  let mdns: Advertiser | undefined;
  let pairing: PairingHandle | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    say('stopping…');
    await mdns?.stop(); // goodbyes (TTL 0) while the services still answer
    await pairing?.close();
    await supervisor.stopAll();
    await recorder.remove();
    for (const l of logs.values()) l.end();
    emit({ event: 'stopped' });
    say('stopped.');
    return code;
  };

  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const outcome = await Promise.race([allReady.then(() => 'ready' as const), timeout]);
  if (outcome === 'timeout') {
    for (const def of defs) {
      if (ready.has(def.name)) continue;
      process.stderr.write(`kith up: ${def.name} did not become healthy within ${timeoutMs / 1000}s; last log lines:\n`);
      for (const l of tails.get(def.name) ?? []) process.stderr.write(`  ${l}\n`);
    }
    return stop(1);
  }
  for (const def of defs) {
    const info = ready.get(def.name)!;
    // The owner token opens storage (and every service that takes a password).
    const token = def.name === plan.links?.storage ? ownerToken : undefined;
    if (token) info.token = token;
    if (Object.values(info.endpoints).some((u) => u.startsWith('https:'))) info.ca = ca.certFile;
    emit(info);
    say(`\n${def.name.padEnd(9)} pid ${info.pid}   ${def.description}`);
    for (const [name, url] of Object.entries(info.endpoints)) say(`  ${name.padEnd(12)} ${url}`);
    say(`  ${'health'.padEnd(12)} ${info.health}/healthz   metrics ${info.health}/metrics`);
    const dnsUrl = /^udp:\/\/(.+):(\d+)$/.exec(info.endpoints.dns ?? '');
    if (dnsUrl) say(`  ${'try'.padEnd(12)} dig @${dnsUrl[1]!.replace(/^\[|\]$/g, '')} -p ${dnsUrl[2]} kith.home.arpa`);
    if (token && info.endpoints.git) {
      say(`  ${'token'.padEnd(12)} ${token}`);
      say(`  ${'try'.padEnd(12)} git clone ${info.endpoints.git.replace('://', `://kith:${token}@`)}`);
      if (info.endpoints.gits) say(`  ${''.padEnd(12)} GIT_SSL_CAINFO=${ca.certFile} git clone ${info.endpoints.gits.replace('://', `://kith:${token}@`)}`);
    }
  }
  await recorder.flush();
  // Pairing (platform/pki/pairing.ts): the code is shown here; `kith pair` on the owner's machine types it.
  // The same port answers paired devices by mutual TLS, with kith up's own certificate.
  const pkiDir = path.join(dataRoot, 'pki');
  await provisionServerTls(ca, pkiDir, 'kith', [...new Set(['localhost', '127.0.0.1', '::1', ...(host === '0.0.0.0' || host === '::' ? [] : [host]), ...tlsNamesFor(mdnsName, host)])]);
  const supervisorTls = (await readServerTls(pkiDir))!;
  pairing = await servePairing({ pkiDir: path.join(dataRoot, 'pki'), servicesRoot: path.join(dataRoot, 'data'), ca, appliance: mdnsName, host, port: Number(values['pair-port'] ?? portBase - 1),
    onCode: (code, expiresAt, why) => (json ? emit({ event: 'pair-code', code, expiresAt: new Date(expiresAt).toISOString(), why }) : say(`pairing code ${code} (until ${new Date(expiresAt).toLocaleTimeString()}; ${why})`)),
    onPaired: (device) => (json ? emit({ event: 'paired', device }) : say(`paired ${device}`)),
    // GET /status by mutual TLS: `kith status --remote` on a paired machine (platform/pki/pair-server.ts).
    status: { tls: supervisorTls, isRevoked: (serial) => loadDevices(pkiDir).some((d) => d.revokedAt !== undefined && normalSerial(d.serial) === normalSerial(serial)),
      status: () => statusWithHealth(mdnsName, { pid: process.pid, started: recorder.started, services: runServices(supervisor.status(), ready) }, ownerToken) } })
    .catch((err: Error) => { process.stderr.write(`kith up: pairing is off: ${err.message} (choose another --pair-port)\n`); return undefined; });
  if (pairing) (json ? emit({ event: 'pairing', host, port: pairing.port }) : say(`pairing on ${host}:${pairing.port}: kith pair --host ${host} --port ${pairing.port} (or just kith pair, from the network)`));
  // mDNS / DNS-SD from the plan, in this supervisor, so it outlives service restarts (platform/mdns).
  if (values['no-mdns'] !== true) mdns = await advertisePlan({ name: mdnsName, services: plan.services, descriptors: defs, version: KITH_VERSION, caCert: ca.cert, kithPort: pairing?.port, force: values.mdns === true, log: (msg, f) => (json ? emit({ event: 'mdns', msg, ...f }) : say(`${msg} ${JSON.stringify(f)}`)) });
  say(`\nconfig: ${configRoot}   logs: ${logsDir}\nkith is up. Press Ctrl-C to stop; \`kith status\` shows how it is.`);

  return new Promise<number>((resolve) => {
    const onSignal = () => void stop(0).then(resolve);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
