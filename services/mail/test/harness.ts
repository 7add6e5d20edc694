/**
 * Test harness for the mail suites: the bundled service run sealed with a given
 * mail/mail.yaml (TLS material from a test CA, the owner token provisioned as kith up
 * does), and services/mail/test/sink.py (aiosmtpd) as the smarthost or remote MX.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, promises as fsp, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { loadOrCreateCa, provisionServerTls } from '../../../platform/pki/provision.ts';
import { startBundle, tempDir, type ServiceProcess } from '../../../test/platform/helpers.ts';
import { freeTcpPort } from '../../../test/support/ports.ts';
import { provisionLinks } from '../../../platform/links.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
export const BUNDLE = path.join(repoRoot, 'dist', 'mail.mjs');
const SINK = path.join(import.meta.dirname, 'sink.py');

export interface Sink {
  port: number;
  dir: string;
  messages(): { file: string; from: string; to: string[]; tls: boolean; auth: boolean; raw: string }[];
  waitFor(n: number, timeoutMs?: number): Promise<ReturnType<Sink['messages']>>;
  stop(): Promise<void>;
}

export async function startSink(o: { tls?: { cert: string; key: string }; auth?: string } = {}): Promise<Sink> {
  const port = await freeTcpPort();
  const dir = tempDir('kith-sink-');
  const args = [SINK, '--port', String(port), '--dir', dir, ...(o.tls ? ['--tls', o.tls.cert, o.tls.key] : []), ...(o.auth ? ['--auth', o.auth] : [])];
  const child: ChildProcess = spawn('/usr/bin/python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`sink did not start: ${err}`)), 15_000);
    createInterface({ input: child.stdout! }).once('line', () => { clearTimeout(t); resolve(); });
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`sink exited ${c}: ${err}`)); });
  });
  const messages = () => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const env = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { from: string; to: string[]; tls: boolean; auth: boolean };
    const file = path.join(dir, f.replace(/\.json$/, '.eml'));
    return { ...env, file, raw: readFileSync(file, 'latin1') };
  });
  return {
    port,
    dir,
    messages,
    async waitFor(n, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const m = messages();
        if (m.length >= n) return m;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the sink got ${messages().length} messages, expected ${n}`);
    },
    // The messages go with the sink: read them before stop().
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.stdin!.end();
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }).then(() => fsp.rm(dir, { recursive: true, force: true })),
  };
}

export interface MailUnderTest {
  proc: ServiceProcess;
  data: string;
  config: string;
  ports: { health: number; smtp: number; submission: number; submissions: number; control: number };
  token: string;
  ca: string;
  /** Rewrite mail/mail.yaml and wait until the service applied it. */
  reconfigure(yaml: string): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export const TOKEN = 'test-owner-token-0123456789abcdefghij';

/** A test CA's server certificate for 127.0.0.1 (for the sink's STARTTLS). */
export async function testCert(dir: string): Promise<{ cert: string; key: string; ca: string }> {
  const ca = await loadOrCreateCa(path.join(dir, 'pki'));
  const out = path.join(dir, 'sink');
  await provisionServerTls(ca, out, 'sink', ['127.0.0.1', 'localhost']);
  return { cert: path.join(out, 'tls', 'server.crt'), key: path.join(out, 'tls', 'server.key'), ca: ca.certFile };
}

/** Config, data folder (TLS, owner token, DNS link) and arguments for the bundle, as a supervisor prepares them. */
export async function prepareMail(yaml: string, o: { data?: string; dns?: { host: string; port: number } } = {}) {
  const root = o.data ?? tempDir('kith-mail-');
  const config = path.join(root, 'config');
  const data = path.join(root, 'data');
  mkdirSync(path.join(config, 'mail'), { recursive: true });
  writeFileSync(path.join(config, 'mail', 'mail.yaml'), yaml);
  const ca = await loadOrCreateCa(path.join(root, 'pki'));
  if (!existsSync(path.join(data, 'tls', 'server.crt'))) await provisionServerTls(ca, data, 'mail', ['127.0.0.1', 'localhost']);
  // What the supervisor provisions: the owner token's hash, and the DNS service's address.
  await provisionLinks([{ name: 'mail', dataDir: data, needs: { resolver: true } }], { ownerToken: TOKEN, ...(o.dns ? { resolver: o.dns } : {}) });
  const ports = { health: await freeTcpPort(), smtp: await freeTcpPort(), submission: await freeTcpPort(), submissions: await freeTcpPort(), control: await freeTcpPort() };
  const args = [BUNDLE, '--config', config, '--data', data, ...Object.entries(ports).flatMap(([k, v]) => ['--listen', `${k}=127.0.0.1:${v}`])];
  return { root, config, data, ports, args, ca: ca.certFile };
}

export async function startMail(yaml: string, o: { data?: string; dns?: { host: string; port: number } } = {}): Promise<MailUnderTest> {
  const prepared = await prepareMail(yaml, o);
  const { config, data, ports } = prepared;
  const args = () => prepared.args.slice(1); // startBundle puts the bundle first itself
  const m: MailUnderTest = {
    proc: await startBundle(BUNDLE, args(), 60_000),
    data,
    config,
    ports,
    token: TOKEN,
    ca: prepared.ca,
    async reconfigure(text) {
      const n = m.proc.lines.filter((l) => l.msg === 'config applied' || l.msg === 'config change refused').length;
      await fsp.writeFile(path.join(config, 'mail', 'mail.yaml'), text);
      await m.proc.waitFor(() => m.proc.lines.filter((l) => l.msg === 'config applied' || l.msg === 'config change refused').length > n, 20_000);
    },
    async restart() {
      await m.proc.stop();
      m.proc = await startBundle(BUNDLE, args(), 60_000);
    },
    stop: async () => { await m.proc.stop(); },
  };
  return m;
}

/** Run swaks; returns its transcript and exit code. */
export function swaks(args: string[], input?: string): { out: string; code: number | null } {
  const r = spawnSync('swaks', ['--suppress-data', '--timeout', '20', ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { out: r.stdout + r.stderr, code: r.status };
}

/** The server's replies in a swaks transcript ('<-', '<~', '<**' lines). */
export const replies = (out: string) => out.split('\n').filter((l) => /^<[~*-]/.test(l)).map((l) => l.replace(/^<\S*\s+/, ''));

export function dkimVerify(file: string, records: Record<string, string>): { selector: string; algorithm: string; domain: string; ok: boolean }[] {
  const r = spawnSync('/usr/bin/python3', [path.join(import.meta.dirname, 'dkim_verify.py'), file, JSON.stringify(records)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dkim_verify.py failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
