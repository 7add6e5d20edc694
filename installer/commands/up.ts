/**
 * `kith up`: every existing service as its own sealed process on loopback, with the
 * built-in default config seeded under the data folder; waits for each to be healthy,
 * prints how to reach it, restarts one that dies, stops all on Ctrl-C / SIGTERM.
 *
 * This file is the one-shot part (build, seed, owner token, CA, links, certificates); it
 * then execs, in the same process, the long-lived supervisor bundle (installer/up/), so
 * that what stays running holds none of this code (issue 16: ≤ 64 MB VmRSS).
 */
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { planAppliance } from '../../platform/appliance.ts';
import { stopBundler } from '../../platform/build/bundle.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { provisionLinks } from '../../platform/links.ts';
import { loadOrCreateOwnerToken, OWNER_TOKEN_FILE } from '../../platform/owner.ts';
import { makePrivateDir } from '../../platform/private-dir.ts';
import { loadOrCreateCa, provisionServerTls, serviceClientIssuer } from '../../platform/pki/provision.ts';
import { defaultConfigFiles } from '../../platform/services.ts';
import { describeServices } from '../../platform/descriptors.ts';
import { defaultMdnsName, tlsNamesFor } from '../../platform/mdns/supervise.ts';
import { syncDevices } from '../../platform/pki/devices.ts';
import { buildAll } from './build.ts';
import { pidAlive, readRunFile, RUN_FILE, stopLeftovers } from '../run-file.ts';
import { childrenOf } from '../../platform/process.ts';
import { repoRoot } from '../paths.ts';
import { writeHandoff } from '../up/handoff.ts';
import { buildUpBundles, PKI_BUNDLE, PKI_NODE_FLAGS, SUPERVISOR_NODE_FLAGS, UP_BUNDLE } from '../up/bundles.ts';
import { describeProcessBundle } from '../../platform/build/process-bundle.ts';

export type { ReadyInfo } from '../up/handoff.ts';

/** Storage's own token file, from before `kith up` kept the owner token (taken over once). */
const LEGACY_STORAGE_TOKEN = 'access-token';

const KITH_VERSION = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const HELP = `Usage: kith up [options]

Starts every kith service on loopback, each as its own sealed process, with a default
config seeded on first run. Prints how to reach each service; Ctrl-C stops them all.

Options:
  --data DIR         where config, data and logs live (default: .kith)
  --port-base N      first port; service k uses N+10k .. N+10k+9 (default 7300)
  --host HOST        address to listen on (default 127.0.0.1)
  --json             one JSON object per line per ready service, then events
  --no-build         use the service bundles already in dist/ (kith up's own two are
                     still rebuilt when their sources changed)
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
  // kith up's own processes: built whenever their sources changed, --no-build or not (they are not services).
  const own = await buildUpBundles();
  if (own.up.built || own.pki.built) say(`built ${describeProcessBundle(own.up)}, ${describeProcessBundle(own.pki)}`);
  const mdnsName = values.hostname ?? defaultMdnsName();
  const plan = planAppliance(defs, { target: 'local', host, portBase, dataRoot, distDir: path.join(repoRoot, 'dist'), node: process.execPath, tlsNames: tlsNamesFor(mdnsName, host) });
  await makePrivateDir(dataRoot); // it holds tokens, keys and the CA: the owner's alone
  await fsp.mkdir(logsDir, { recursive: true });
  // Each service finds its defaults in the working tree; storage makes those of a service
  // new to config.git a commit there (platform/appliance.ts: the one seeding policy).
  const seeded = seedMissingFiles(configRoot, defaultConfigFiles(defs));
  if (seeded.length > 0) say(`seeded default config in ${configRoot} (${seeded.length} files)`);

  // The owner's token (kept here, its hash given to every service) and the links: each
  // service that needs storage gets its own token and grants, fresh each run. A data folder
  // from before the supervisor kept the token: storage's own token is taken over. Each
  // service that needs storage also gets a client certificate from the appliance CA (kept
  // under <data>/pki), its way into storage's https listener.
  const ownerToken = await loadOrCreateOwnerToken(dataRoot, path.join(dataRoot, 'data', 'storage', LEGACY_STORAGE_TOKEN));
  const pkiDir = path.join(dataRoot, 'pki');
  const ca = await loadOrCreateCa(pkiDir);
  {
    const r = await provisionLinks(plan.services, { ownerToken, issue: serviceClientIssuer(ca), ...(plan.links ? { links: plan.links } : {}), ...(plan.resolver ? { resolver: plan.resolver } : {}) });
    for (const f of r.failed) process.stderr.write(`kith up: could not provision ${f.service}: ${f.error}\n`);
  }
  // TLS: the appliance CA issues each https service its certificate.
  for (const s of plan.services) if (s.tlsNames) await provisionServerTls(ca, s.dataDir, s.name, s.tlsNames);
  await syncDevices(pkiDir, path.join(dataRoot, 'data')); // revoked devices stay refused, paired ones' passwords work

  // The rest runs for as long as kith up does. This process becomes the supervisor's bundle
  // (installer/up/supervise.ts) — the same pid, so Ctrl-C, kill -9 and run.json reach it —
  // which starts the services and the pairing process (the CA's code lives there, and the
  // pairing port's certificate is made there) from what is handed over.
  const dist = path.join(repoRoot, 'dist');
  const handoff = writeHandoff({
    dataRoot, json, timeoutMs, host, version: KITH_VERSION,
    services: plan.services.map((s) => ({ name: s.name, description: s.description, command: s.command, args: s.args, ...(s.env ? { env: s.env } : {}), listen: s.listen, dataDir: s.dataDir, writableConfig: s.writableConfig })),
    descriptors: defs.map((d) => ({ name: d.name, listeners: d.listeners })),
    ...(plan.links ? { storage: plan.links.storage } : {}),
    ownerTokenFile: path.join(dataRoot, OWNER_TOKEN_FILE),
    caCertFile: ca.certFile,
    pki: {
      command: process.execPath,
      args: [...PKI_NODE_FLAGS, path.join(dist, PKI_BUNDLE), '--pki', pkiDir, '--services', path.join(dataRoot, 'data'), '--appliance', mdnsName,
        '--host', host, '--port', values['pair-port'] ?? String(portBase - 1), '--status-file', path.join(dataRoot, RUN_FILE), '--owner-token-file', path.join(dataRoot, OWNER_TOKEN_FILE)],
    },
    mdns: { name: mdnsName, enabled: values['no-mdns'] !== true, force: values.mdns === true },
  });
  // Exec only once every child of this part is gone and reaped: esbuild's service process
  // (stopped without waiting) or any other would stay a zombie child of the supervisor.
  await stopBundler();
  for (let i = 0; i < 250 && childrenOf(process.pid).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  if (typeof process.execve !== 'function') throw new Error(`kith up needs process.execve (Node ≥ 22.15 on Unix); this is Node ${process.version}`);
  process.execve(process.execPath, [process.execPath, ...SUPERVISOR_NODE_FLAGS, path.join(dist, UP_BUNDLE), handoff], process.env);
  return 1; // not reached: execve replaced this process
}
