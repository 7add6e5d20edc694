/**
 * `kith up`'s long-lived part: the process the owner's Ctrl-C and `kill -9` reach, whose pid
 * run.json records. It runs from dist/kith-up.cjs (installer/up/main.ts), into which the
 * one-shot part (installer/commands/up.ts) turned the same process by process.execve once
 * everything was built, seeded and certified, so none of that code (TypeScript stripping,
 * esbuild, the CA's X.509 code, zod, yaml) stays loaded for the supervisor's life (issue 16).
 *
 * It starts every service (platform/supervisor.ts: lifeline, restarts with back-off), waits
 * for each to say ready, prints how to reach it (or one JSON line each, then events),
 * keeps run.json, starts the pairing process (platform/pki/appliance-pki.ts, as on the
 * appliance: the code, the pairing port, `GET /status` from run.json) and relays what it
 * logs, announces the services over mDNS, and stops everything on SIGINT / SIGTERM.
 */
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import * as path from 'node:path';
import type { Advertiser } from '../../platform/mdns/advertiser.ts';
import { advertisePlan } from '../../platform/mdns/supervise.ts';
import { Supervisor } from '../../platform/supervisor.ts';
import { RunRecorder, runServices } from '../run-file.ts';
import type { ReadyInfo, UpHandoff } from './handoff.ts';

/** The pairing process among the supervised children: not a service, so not in run.json. */
const PKI = 'pki';
/** How long the services' summary waits for the pairing port before mDNS starts without it. */
const PAIRING_WAIT_MS = 30_000;

/** What the pairing process logs (appliance-pki.ts log()), the parts used here. */
interface PkiLine { msg?: string; code?: string; until?: string; why?: string; device?: string; port?: number; error?: string }

/**
 * HH:MM:SS on this machine's clock. Not toLocaleTimeString: the first use of ICU's locale
 * data maps ~8 MB of the Node binary into this long-lived process (measured, issue 16).
 */
export function localTime(d: Date): string {
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export async function supervise(h: UpHandoff): Promise<number> {
  const { json } = h;
  const logsDir = path.join(h.dataRoot, 'logs');
  const configRoot = path.join(h.dataRoot, 'config');
  const say = (text: string) => { if (!json) process.stdout.write(text + '\n'); };
  const emit = (obj: object) => { if (json) process.stdout.write(JSON.stringify(obj) + '\n'); };
  const ownerToken = readFileSync(h.ownerTokenFile, 'utf8').trim();

  const logs = new Map<string, WriteStream>();
  const tails = new Map<string, string[]>();
  const ready = new Map<string, ReadyInfo>();
  let resolveAll: () => void = () => {};
  const allReady = new Promise<void>((r) => { resolveAll = r; });
  let pairingPort: number | undefined;
  let pairingSettled: () => void = () => {};
  const pairingOutcome = new Promise<void>((r) => { pairingSettled = r; });
  let pairingFailureSaid = false;
  /** The pairing process said `pairing` in its current run: its death is news, a failed start was said once. */
  let pkiServing = false;

  const showCode = (rec: PkiLine) => {
    if (json) emit({ event: 'pair-code', code: rec.code, expiresAt: rec.until, why: rec.why });
    else say(`pairing code ${rec.code} (until ${localTime(new Date(rec.until!))}; ${rec.why})`);
  };
  /** A code made before the pairing port is open: shown once it is (a run that cannot listen shows none). */
  let heldCode: PkiLine | undefined;
  /** The pairing process's lines, as kith up's own pairing printed them. */
  const onPkiLine = (line: string) => {
    let rec: PkiLine;
    try { rec = JSON.parse(line) as PkiLine; } catch { return; }
    if (rec.msg === 'pairing code' && rec.code && rec.until) {
      if (pkiServing) showCode(rec);
      else heldCode = rec;
    } else if (rec.msg === 'paired' && rec.device) {
      if (json) emit({ event: 'paired', device: rec.device });
      else say(`paired ${rec.device}`);
    } else if (rec.msg === 'pairing' && typeof rec.port === 'number') {
      pairingPort = rec.port;
      pkiServing = true;
      if (heldCode) showCode(heldCode);
      heldCode = undefined;
      if (json) emit({ event: 'pairing', host: h.host, port: rec.port });
      else say(`pairing on ${h.host}:${rec.port}: kith pair --host ${h.host} --port ${rec.port} (or just kith pair, from the network)`);
      pairingSettled();
    } else if (rec.msg === 'pki failed') {
      // Restarted with back-off like any child (the port may come free): said once.
      if (!pairingFailureSaid) process.stderr.write(`kith up: pairing is off for now: ${rec.error} (choose another --pair-port; kith up keeps trying, see ${path.join(logsDir, `${PKI}.log`)})\n`);
      pairingFailureSaid = true;
      pairingSettled();
    }
  };

  // run.json follows every start, exit and ready (after this handler ran).
  const services = () => supervisor.status().filter((c) => c.name !== PKI);
  const recorder = new RunRecorder(h.dataRoot, () => runServices(services(), ready), (err) => process.stderr.write(`kith up: cannot write run.json: ${err.message}\n`));
  const supervisor = new Supervisor({
    onEvent(e) {
      if (e.type !== 'line' || e.line.includes('"msg":"ready"')) queueMicrotask(() => recorder.update());
      if (e.type === 'line') {
        logs.get(e.name)?.write(e.line + '\n');
        const tail = tails.get(e.name) ?? [];
        tail.push(e.line);
        if (tail.length > 20) tail.shift();
        tails.set(e.name, tail);
        if (e.name === PKI) return onPkiLine(e.line);
        let rec: { msg?: string; endpoints?: Record<string, string>; health?: string } | undefined;
        // Only a ready line is read here; every other line only goes to the log file.
        if (e.line.includes('"msg":"ready"')) try { rec = JSON.parse(e.line); } catch { /* not JSON: kept in the log file */ }
        if (rec?.msg === 'ready' && rec.endpoints) {
          const info: ReadyInfo = { service: e.name, pid: supervisor.pid(e.name) ?? 0, endpoints: rec.endpoints, health: rec.health ?? '', logs: path.join(logsDir, `${e.name}.log`) };
          const again = ready.has(e.name);
          ready.set(e.name, info);
          if (again) {
            emit({ event: 'restarted', ...info });
            say(`${e.name} is back (pid ${info.pid})`);
          }
          if (ready.size === h.services.length) resolveAll();
        }
      } else if (e.type === 'exited' && e.restartInMs !== undefined) {
        emit({ event: 'exited', service: e.name, code: e.code, signal: e.signal, restartInMs: e.restartInMs });
        const quiet = e.name === PKI && !pkiServing; // a pairing port it cannot take: said once (onPkiLine)
        if (e.name === PKI) { pkiServing = false; heldCode = undefined; }
        if (!json && !quiet) process.stderr.write(`${e.name} exited (${e.signal ?? `code ${e.code}`}); restarting in ${e.restartInMs} ms; see ${path.join(logsDir, `${e.name}.log`)}\n`);
      }
    },
  });
  const start = (name: string, command: string, args: string[], env?: Record<string, string>) => {
    logs.set(name, createWriteStream(path.join(logsDir, `${name}.log`), { flags: 'a' }));
    supervisor.start({ name, command, args, ...(env ? { env: { ...process.env, ...env } } : {}) });
  };
  for (const s of h.services) start(s.name, s.command, s.args, s.env);

  let mdns: Advertiser | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    say('stopping…');
    await mdns?.stop(); // goodbyes (TTL 0) while the services still answer
    await supervisor.stopAll(); // the pairing process too
    await recorder.remove();
    for (const l of logs.values()) l.end();
    emit({ event: 'stopped' });
    say('stopped.');
    return code;
  };
  // Ctrl-C / SIGTERM stop everything cleanly from here on, while waiting for the services too.
  let stoppedBySignal: (code: number) => void = () => {};
  const bySignal = new Promise<number>((r) => { stoppedBySignal = r; });
  const onSignal = () => void stop(0).then(stoppedBySignal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), h.timeoutMs).unref());
  const outcome = await Promise.race([allReady.then(() => 'ready' as const), timeout, bySignal.then(() => 'signal' as const)]);
  if (outcome === 'signal') return bySignal;
  if (outcome === 'timeout') {
    for (const s of h.services) {
      if (ready.has(s.name)) continue;
      process.stderr.write(`kith up: ${s.name} did not become healthy within ${h.timeoutMs / 1000}s; last log lines:\n`);
      for (const l of tails.get(s.name) ?? []) process.stderr.write(`  ${l}\n`);
    }
    return stop(1);
  }
  for (const s of h.services) {
    const info = ready.get(s.name)!;
    // The owner token opens storage (and every service that takes a password).
    const token = s.name === h.storage ? ownerToken : undefined;
    if (token) info.token = token;
    if (Object.values(info.endpoints).some((u) => u.startsWith('https:'))) info.ca = h.caCertFile;
    emit(info);
    say(`\n${s.name.padEnd(9)} pid ${info.pid}   ${s.description}`);
    for (const [name, url] of Object.entries(info.endpoints)) say(`  ${name.padEnd(12)} ${url}`);
    say(`  ${'health'.padEnd(12)} ${info.health}/healthz   metrics ${info.health}/metrics`);
    const dnsUrl = /^udp:\/\/(.+):(\d+)$/.exec(info.endpoints.dns ?? '');
    if (dnsUrl) say(`  ${'try'.padEnd(12)} dig @${dnsUrl[1]!.replace(/^\[|\]$/g, '')} -p ${dnsUrl[2]} kith.home.arpa`);
    if (token && info.endpoints.git) {
      say(`  ${'token'.padEnd(12)} ${token}`);
      say(`  ${'try'.padEnd(12)} git clone ${info.endpoints.git.replace('://', `://kith:${token}@`)}`);
      if (info.endpoints.gits) say(`  ${''.padEnd(12)} GIT_SSL_CAINFO=${h.caCertFile} git clone ${info.endpoints.gits.replace('://', `://kith:${token}@`)}`);
    }
  }
  await recorder.flush();
  if (stopping) return bySignal; // a signal came meanwhile: nothing more is started
  // Pairing (platform/pki/pairing.ts) in its own process, which answers paired devices' GET
  // /status by mutual TLS from run.json; its code is shown here, and `kith pair` types it.
  start(PKI, h.pki.command, h.pki.args);
  await Promise.race([pairingOutcome, bySignal, new Promise((r) => setTimeout(r, PAIRING_WAIT_MS).unref())]);
  // mDNS / DNS-SD from the plan, in this supervisor, so it outlives service restarts (platform/mdns).
  if (h.mdns.enabled && !stopping) {
    const adv = await advertisePlan({ name: h.mdns.name, services: h.services, descriptors: h.descriptors, version: h.version, caCert: readFileSync(h.caCertFile, 'utf8'), kithPort: pairingPort, force: h.mdns.force, log: (msg, f) => (json ? emit({ event: 'mdns', msg, ...f }) : say(`${msg} ${JSON.stringify(f)}`)) });
    if (stopping) await adv?.stop(); // stop() ran while it started, and could not see it
    else mdns = adv;
  }
  if (!stopping) say(`\nconfig: ${configRoot}   logs: ${logsDir}\nkith is up. Press Ctrl-C to stop; \`kith status\` shows how it is.`);
  return bySignal;
}
