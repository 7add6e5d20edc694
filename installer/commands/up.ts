/**
 * `kith up`: every existing service as its own sealed process on loopback, with the
 * built-in default config seeded under the data folder; waits for each to be healthy,
 * prints how to reach it, restarts one that dies, stops all on Ctrl-C / SIGTERM.
 */
import { createWriteStream, existsSync, promises as fsp, type WriteStream } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Supervisor } from '../../platform/supervisor.ts';
import { provisionOwnerPassword, provisionStorageLink } from '../../platform/links.ts';
import { CONFIG_BRANCH, writeConfigFiles } from '../../services/storage/config/config-repo.ts';
import { listTreeFiles } from '../../services/storage/config/git-tree-source.ts';
import git from 'isomorphic-git';

const resolveConfigHead = (gitdir: string) => git.resolveRef({ fs: { promises: fsp }, gitdir, ref: CONFIG_BRANCH });
import { loadOrCreateCa, provisionServerTls } from '../../platform/pki/provision.ts';
import { discoverServices } from '../../platform/services.ts';
import { buildAll } from './build.ts';
import { pidAlive, readRunFile, RUN_FILE, writeRunFile, type RunService } from '../run-file.ts';
import { loadOrCreateToken, TOKEN_FILE } from '../../services/storage/auth.ts';
import { repoRoot } from '../paths.ts';
import { defaultConfigFiles, loadDefinitions, localDefaults, seedConfigTree } from '../seed.ts';

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

/** The storage service's access token, which `kith up` hands to the owner. */
async function readToken(dataRoot: string, service: string): Promise<string | undefined> {
  if (service !== 'storage') return undefined;
  return (await fsp.readFile(path.join(dataRoot, 'data', 'storage', TOKEN_FILE), 'utf8').catch(() => '')).trim() || undefined;
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

  const runFile = path.join(dataRoot, RUN_FILE);
  const already = await readRunFile(dataRoot);
  if (already && pidAlive(already.pid)) {
    process.stderr.write(`kith up: kith is already up with this data folder (pid ${already.pid}); see \`kith status --data ${values.data ?? '.kith'}\`\n`);
    return 1;
  }
  const services = discoverServices(repoRoot);
  if (services.length === 0) {
    process.stderr.write('kith up: no services exist yet (services/<name>/main.ts)\n');
    return 1;
  }
  if (!values['no-build']) {
    const reports = await buildAll();
    say(`built ${reports.map((r) => `${r.service} (${Math.round(r.bytes / 1024)} KiB)`).join(', ')}`);
  }
  const defs = await loadDefinitions(repoRoot);
  await fsp.mkdir(logsDir, { recursive: true });
  // Once config.git exists it is the truth, and what the owner deleted stays deleted; only
  // a service that is new since then (no folder of its own in config.git) gets its defaults,
  // as a commit there — or storage would publish them away again.
  const configGit = path.join(dataRoot, 'data', 'storage', 'repos', 'config.git');
  const haveRepo = existsSync(path.join(configGit, 'HEAD'));
  const inRepo = haveRepo ? new Set([...(await listTreeFiles(configGit, await resolveConfigHead(configGit))).keys()].map((p) => p.split('/')[0]!)) : new Set<string>();
  const defaults = localDefaults(defaultConfigFiles(defs.filter((d) => !inRepo.has(d.name))), host);
  const seeded = await seedConfigTree(configRoot, defaults);
  if (seeded.length > 0) say(`seeded default config in ${configRoot} (${seeded.length} files)`);
  if (haveRepo && seeded.length > 0) {
    const files = await Promise.all(seeded.map(async (p) => ({ path: p, content: await fsp.readFile(path.join(configRoot, p)), expectedBlob: null })));
    const r = await writeConfigFiles(configGit, files, { author: { name: 'kith', email: 'kith@localhost' }, message: `Add the default configuration of new services\n\n${seeded.join('\n')}` });
    if (!r.ok) process.stderr.write(`kith up: could not add the new defaults to config.git: ${r.messages.join('; ')}\n`);
  }

  const logs = new Map<string, WriteStream>();
  const tails = new Map<string, string[]>();
  const ready = new Map<string, ReadyInfo>();
  let resolveAll: () => void = () => {};
  const allReady = new Promise<void>((r) => { resolveAll = r; });

  const supervisor = new Supervisor({
    onEvent(e) {
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
            void writeRunFile(dataRoot, defs.flatMap((d) => ready.get(d.name) ?? []));
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

  const portOf = (service: string, listener: string): number | undefined => {
    const def = defs.find((d) => d.name === service);
    const j = def ? Object.keys(def.listeners).indexOf(listener) : -1;
    return def && j >= 0 ? portBase + services.find((s) => s.name === service)!.slot * 10 + j : undefined;
  };
  // Links: each service that needs storage gets its own token and grants, fresh each run.
  const storagePort = portOf('storage', 'http');
  for (const def of defs) {
    if (!def.needs || storagePort === undefined) continue;
    await provisionStorageLink({
      service: def.name,
      needs: def.needs,
      serviceDataDir: path.join(dataRoot, 'data', def.name),
      storageDataDir: path.join(dataRoot, 'data', 'storage'),
      storageUrl: `http://${host.includes(':') ? `[${host}]` : host}:${storagePort}`,
    });
  }

  // The owner's access token, as a password hash, for services with users of their own.
  for (const def of defs) {
    if (!def.needs?.ownerPassword) continue;
    const ownerToken = await loadOrCreateToken(path.join(dataRoot, 'data', 'storage'));
    await provisionOwnerPassword({ serviceDataDir: path.join(dataRoot, 'data', def.name), ownerToken });
  }

  // TLS: the appliance CA (kept under <data>/pki) issues each https service its certificate.
  const ca = await loadOrCreateCa(path.join(dataRoot, 'pki'));
  for (const def of defs) {
    if (!Object.values(def.listeners).some((l) => l.protocol === 'https')) continue;
    await provisionServerTls(ca, path.join(dataRoot, 'data', def.name), def.name, [...new Set(['localhost', '127.0.0.1', '::1', host])]);
  }

  for (const def of defs) {
    const listenArgs = Object.keys(def.listeners).flatMap((name) => ['--listen', `${name}=${host}:${portOf(def.name, name)}`]);
    logs.set(def.name, createWriteStream(path.join(logsDir, `${def.name}.log`), { flags: 'a' }));
    supervisor.start({
      name: def.name,
      command: process.execPath,
      args: [path.join(repoRoot, 'dist', `${def.name}.mjs`), '--config', configRoot, '--data', path.join(dataRoot, 'data', def.name), ...listenArgs],
    });
  }

  let stopping = false;
  const stop = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    say('stopping…');
    await supervisor.stopAll();
    await fsp.rm(runFile, { force: true });
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
    const token = await readToken(dataRoot, def.name);
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
  await writeRunFile(dataRoot, defs.flatMap((d) => ready.get(d.name) ?? []));
  say(`\nconfig: ${configRoot}   logs: ${logsDir}\nkith is up. Press Ctrl-C to stop; \`kith status\` shows how it is.`);

  return new Promise<number>((resolve) => {
    const onSignal = () => void stop(0).then(resolve);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
