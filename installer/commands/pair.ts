/**
 * `kith pair`: pair this machine with a kith appliance. Finds appliances on the local
 * network over mDNS (`_kith._tcp`), shows them, and runs the pairing exchange with the code
 * the appliance shows (platform/pki/pairing.ts: CPace, the code never sent). Result: the
 * appliance CA (checked against the fingerprint it announces), a client certificate for a
 * key made here and never sent, and a device password (for SMTP submission and CalDAV),
 * under ~/.config/kith/<appliance>/.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import * as path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { writeFileDurable } from '../../platform/durable.ts';
import { certSha256 } from '../../platform/mdns/appliance.ts';
import { findAppliance, pairedDir } from '../paired.ts';
import { defaultMdnsName } from '../../platform/mdns/supervise.ts';
import { makePrivateDir } from '../../platform/private-dir.ts';
import { pairWith, PairingError } from '../../platform/pki/pairing.ts';

const HELP = `Usage: kith pair [options]

Finds kith appliances on the local network (mDNS, _kith._tcp), shows them, and pairs this
machine with one using the code the appliance prints (kith up shows it; an appliance shows
it on its console and log). The code is never sent: a password-authenticated key exchange
(CPace) proves it. Afterwards this machine trusts the appliance CA and holds a client
certificate for a key that never left it, and a device password for the protocols that
need one (mail submission, CalDAV/CardDAV), shown once and kept in DIR/password.

Options:
  --code CODE        the pairing code the appliance shows, or the pairing secret of the
                     owner's seed that kith flash printed (asked for when absent)
  --appliance NAME   which appliance, when several answer
  --host ADDR        skip discovery: the appliance's address ...
  --port N           ... and pairing port
  --device NAME      this machine's name on the appliance (default: its host name)
  --dir DIR          where to keep ca.crt, client.crt, client.key, password (default: ~/.config/kith/<appliance>)
  --wait SEC         how long to listen for appliances (default 1.5)
  --timeout SEC      how long to wait for each answer of the appliance (default 30; a
                     Pi Zero computing the exchange in JavaScript takes a few seconds)
  --json             one JSON object: what was found and the result
  -h, --help         this help

Exit codes: 0 paired, 1 refused (wrong or expired code), 2 no appliance found, 64 usage
error, 75 too many wrong codes for now (try again after the time given).
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    code: { type: 'string' }, appliance: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
    device: { type: 'string' }, dir: { type: 'string' }, wait: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const json = values.json === true;
  const say = (t: string) => { if (!json) process.stdout.write(t + '\n'); };
  const fail = (code: number, message: string, extra: object = {}) => {
    if (json) process.stdout.write(JSON.stringify({ ok: false, error: message, ...extra }) + '\n');
    else process.stderr.write(`kith pair: ${message}\n`);
    return code;
  };

  const where = await findAppliance({ ...values, onFound: (f) => say(`found ${f.instance}  ${f.host} ${f.addresses.join(' ')} port ${f.port}  version ${f.txt.version ?? '?'}  CA sha256 ${f.txt.ca ?? '?'}`) });
  if ('error' in where) return fail(where.code, where.error, where.found.length > 0 || !values.host ? { found: where.found } : {});
  const { target, found } = where;

  let code = values.code;
  if (!code) {
    if (json || !process.stdin.isTTY) return fail(64, '--code CODE is needed (no terminal to ask on)');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    code = await rl.question(`pairing code shown by ${target.name}: `);
    rl.close();
  }
  const device = values.device ?? defaultMdnsName();
  const timeoutMs = Number(values.timeout ?? 30) * 1000;
  if (!(timeoutMs > 0)) return fail(64, `--timeout ${values.timeout}: seconds, more than 0`);
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const base = `http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  let result;
  try {
    result = await pairWith({
      code, device,
      publicKeySpki: new Uint8Array(keys.publicKey.export({ type: 'spki', format: 'der' })),
      async post(p, body) {
        const res = await fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
        const reply = (await res.json().catch(() => ({}))) as { error?: string; retryAfterMs?: number };
        if (!res.ok) throw new PairingError(res.status, reply.error ?? `HTTP ${res.status}`, reply.retryAfterMs);
        return reply;
      },
    });
  } catch (err) {
    if (err instanceof PairingError) {
      if (err.status === 429) return fail(75, `${err.message} (${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s)`, { status: 429, retryAfterMs: err.retryAfterMs });
      return fail(err.status === 64 ? 64 : 1, err.message, { status: err.status });
    }
    return fail(1, `cannot reach ${base}: ${(err as Error).message}`);
  }
  const caSha256 = certSha256(result.ca);
  if (target.caSha256 && target.caSha256 !== caSha256) return fail(1, `the CA ${target.name} sent (sha256 ${caSha256}) is not the one it announces (${target.caSha256}): not trusting it`);
  const dir = pairedDir(result.appliance, values.dir);
  await makePrivateDir(dir);
  const files: { ca: string; cert: string; key: string; password?: string } = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'client.crt'), key: path.join(dir, 'client.key') };
  await writeFileDurable(files.key, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  await writeFileDurable(files.cert, result.cert);
  await writeFileDurable(files.ca, result.ca);
  // The device password (mail submission, CalDAV/CardDAV): kept here only, 0600; the appliance keeps its hash.
  if (result.password) {
    files.password = path.join(dir, 'password');
    await writeFileDurable(files.password, result.password + '\n', { mode: 0o600 });
  }
  const serial = new X509Certificate(result.cert).serialNumber.toLowerCase();
  if (json) process.stdout.write(JSON.stringify({ ok: true, appliance: result.appliance, host: target.host, port: target.port, device, caSha256, serial, files, found }) + '\n');
  else {
    say(`paired with ${result.appliance} as ${device}\n  CA sha256 ${caSha256}\n  ${files.ca}\n  ${files.cert}\n  ${files.key}\ntry: curl --cacert ${files.ca} --cert ${files.cert} --key ${files.key} https://${result.appliance}.local:PORT/`);
    if (result.password && files.password) say(`device password (shown once; also in ${files.password}): ${result.password}\n  for mail submission and CalDAV/CardDAV, as the owner's user (kith); \`kith revoke ${device}\` on the appliance ends it`);
  }
  return 0;
}
