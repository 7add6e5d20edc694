/**
 * The appliance's pki process as the image ships it (bundled to CommonJS like /init, run by
 * Node): it provisions the CA and every TLS service's certificate, says `provisioned`, then
 * pairs with real `kith pair` by the code it logs and by the owner seed's secret.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/platform/helpers.ts';
import { createCa, verifyIssued } from './ca.ts';
import { applianceTlsNames, keepsServerCert } from './appliance-pki.ts';
import { provisionLinks, readStorageClients, readStorageLink } from '../links.ts';
import { certSha256 } from './server-tls.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const SEED = 'K7M2P-Q9R4S-T3V6W-X8Y2Z-A5B7C';

describe('appliance pki process', () => {
  const root = tempDir('kith-pki-');
  const services = path.join(root, 'data');
  const lines: Record<string, unknown>[] = [];
  let child: ChildProcess;
  let health: Server;
  const kith = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'installer/kith.ts'), ...args], { encoding: 'utf8', env: { ...process.env, HOME: root } });
  const waitFor = async (msg: string) => {
    for (let i = 0; i < 200 && !lines.some((l) => l.msg === msg); i++) await new Promise((r) => setTimeout(r, 50));
    return lines.find((l) => l.msg === msg);
  };

  beforeAll(async () => {
    const bundle = path.join(root, 'pki.cjs');
    await build({ entryPoints: [path.join(REPO, 'platform/pki/pki-main.ts')], outfile: bundle, bundle: true, platform: 'node', format: 'cjs', target: 'node26', minify: true, logLevel: 'warning', define: { 'import.meta.url': JSON.stringify('file:///kith/pki.cjs') } });
    for (const s of ['mail', 'calendar', 'dns', 'storage']) mkdirSync(path.join(services, s), { recursive: true });
    // PID 1 has provisioned dns's token link to storage; the pki process adds its certificate.
    await provisionLinks([{ name: 'storage', dataDir: path.join(services, 'storage') }, { name: 'dns', dataDir: path.join(services, 'dns'), needs: {} }], { links: { storage: 'storage', storageUrl: 'http://127.0.0.1:8080' } });
    mkdirSync(path.join(root, 'kith'));
    writeFileSync(path.join(root, 'kith', 'pairing-secret'), SEED + '\n', { mode: 0o600 });
    // PID 1's run state (platform/run-state.ts), with one service whose health this test answers.
    health = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","configGeneration":3}'));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    const at = new Date().toISOString();
    writeFileSync(path.join(root, 'run-state.json'), JSON.stringify({ pid: 1, started: at, services: [{ service: 'dns', state: 'ready', pid: 4242, started: at, restarts: 0, backoffMs: 500, endpoints: { dns: 'udp://0.0.0.0:53' }, health: `http://127.0.0.1:${(health.address() as { port: number }).port}`, logs: 'console' }] }));
    child = spawn(process.execPath, [bundle, '--status-file', path.join(root, 'run-state.json'), '--pki', path.join(services, 'pki'), '--services', services, '--appliance', 'box1', '--port', '0', '--tls', 'mail', '--tls', 'calendar', '--seed-secret', path.join(root, 'kith', 'pairing-secret'), '--storage', 'storage', '--storage-tls-url', 'https://127.0.0.1:8443', '--link', 'dns'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
  }, 60_000);
  afterAll(() => { child?.kill('SIGKILL'); health?.close(); });

  it('provisions the CA and a certificate for each TLS service, named as the box is reached', async () => {
    expect(await waitFor('provisioned'), JSON.stringify(lines)).toMatchObject({ service: 'pki', services: 'mail,calendar' });
    const ca = readFileSync(path.join(services, 'pki', 'ca.crt'), 'utf8');
    expect(statSync(path.join(services, 'pki', 'ca.key')).mode & 0o777).toBe(0o600);
    for (const s of ['mail', 'calendar']) {
      const cert = readFileSync(path.join(services, s, 'tls', 'server.crt'), 'utf8');
      expect(verifyIssued(cert, ca)).toBe(true);
      const san = new X509Certificate(cert).subjectAltName ?? '';
      for (const n of ['DNS:box1', 'DNS:box1.local', 'DNS:box1.home.arpa', 'DNS:localhost', 'IP Address:127.0.0.1']) expect(san).toContain(n);
      expect(statSync(path.join(services, s, 'tls', 'server.key')).mode & 0o777).toBe(0o600);
    }
    expect(() => statSync(path.join(services, 'dns', 'tls'))).toThrow(); // dns serves no TLS
    // dns's link to storage got a client certificate from the CA beside its token; storage knows which.
    expect(await waitFor('provisioned')).toMatchObject({ links: 'dns' });
    const link = (await readStorageLink(path.join(services, 'dns')))!;
    expect(link.tls?.url).toBe('https://127.0.0.1:8443');
    expect(verifyIssued(link.tls!.cert, ca)).toBe(true);
    expect((await readStorageClients(path.join(services, 'storage')))[0]).toMatchObject({ name: 'dns', certSha256: certSha256(link.tls!.cert) });
  });

  it('keeps a certificate from this CA that still fits, and replaces one that does not', async () => {
    await waitFor('provisioned');
    const ca = readFileSync(path.join(services, 'pki', 'ca.crt'), 'utf8');
    const names = applianceTlsNames('box1');
    expect(keepsServerCert(path.join(services, 'mail'), ca, names)).toBe(true);
    expect(keepsServerCert(path.join(services, 'mail'), ca, [...names, 'box2.local'])).toBe(false); // renamed box
    expect(keepsServerCert(path.join(services, 'mail'), ca, names, Date.now() + 824 * 86_400_000)).toBe(false); // about to expire
    expect(keepsServerCert(path.join(services, 'mail'), (await createCa('another CA')).cert, names)).toBe(false);
    expect(keepsServerCert(path.join(services, 'dns'), ca, names)).toBe(false);
  });

  it('pairs kith pair by the code it logs, and by the owner seed’s secret, which it never logs', async () => {
    const port = String((await waitFor('pairing'))!.port);
    const code = lines.find((l) => l.msg === 'pairing code')!.code as string;
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    const byCode = kith('pair', '--json', '--host', '127.0.0.1', '--port', port, '--code', code, '--device', 'laptop', '--dir', path.join(root, 'laptop'));
    expect(byCode.status, byCode.stdout + byCode.stderr).toBe(0);
    expect(JSON.parse(byCode.stdout)).toMatchObject({ ok: true, device: 'laptop' });
    const bySeed = kith('pair', '--json', '--host', '127.0.0.1', '--port', port, '--code', SEED, '--device', 'phone', '--dir', path.join(root, 'phone'));
    expect(bySeed.status, bySeed.stdout + bySeed.stderr).toBe(0);
    const ca = readFileSync(path.join(services, 'pki', 'ca.crt'), 'utf8');
    expect(readFileSync(path.join(root, 'phone', 'ca.crt'), 'utf8')).toBe(ca);
    expect(verifyIssued(readFileSync(path.join(root, 'phone', 'client.crt'), 'utf8'), ca)).toBe(true);
    expect(JSON.parse(readFileSync(path.join(services, 'pki', 'devices.json'), 'utf8'))).toMatchObject({ devices: [{ name: 'laptop' }, { name: 'phone' }] });
    expect(JSON.stringify(lines)).not.toContain(SEED);
    expect(lines.find((l) => l.msg === 'pairing')).toMatchObject({ seedSecret: 'accepted' });
  }, 60_000);

  it("answers a paired device's kith status --remote from PID 1's run state, by mutual TLS", async () => {
    const port = String((await waitFor('pairing'))!.port);
    const status = (dir: string) => run(process.execPath, [path.join(REPO, 'installer/kith.ts'), 'status', '--json', '--host', '127.0.0.1', '--port', port, '--dir', dir], { env: { ...process.env, HOME: root } })
      .then((r) => ({ code: 0, ...r }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    const paired = await status(path.join(root, 'laptop'));
    expect(paired.code, paired.stdout + paired.stderr).toBe(0);
    expect(JSON.parse(paired.stdout)).toMatchObject({ service: 'dns', state: 'healthy', pid: 4242, configGeneration: 3, kith: { pid: 1 } });
    const stranger = await status(path.join(root, 'nobody'));
    expect(stranger.code).toBe(4); // not paired: its own code, not 1 (a service unhealthy)
    expect(stranger.stderr).toMatch(/not paired/);
  }, 60_000);
});
