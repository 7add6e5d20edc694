/**
 * TLS material for services, provisioned by the supervisor: the appliance CA (created once,
 * under <data>/pki/, key 0600) issues each service with an https listener a server
 * certificate for the names it is reached by, written into that service's data folder
 * (tls/server.crt, tls/server.key, tls/ca.crt) where the sealed service can read it.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from '../durable.ts';
import type { IssueClientCert } from '../links.ts';
import { ClockNotSaneError, readClockState, type ClockState } from '../clock-state.ts';
import { makePrivateDir } from '../private-dir.ts';
import { createCa, issue, type Pem } from './ca.ts';
import { TLS_DIR } from './server-tls.ts';
import { REVOKED_FILE, revokedText } from './revocation.ts';


export async function loadOrCreateCa(pkiDir: string, name = 'kith appliance CA'): Promise<Pem & { certFile: string }> {
  const certFile = path.join(pkiDir, 'ca.crt');
  const keyFile = path.join(pkiDir, 'ca.key');
  if (existsSync(certFile) && existsSync(keyFile)) {
    await makePrivateDir(pkiDir); // an older kith made it 0755
    return { cert: await fsp.readFile(certFile, 'utf8'), key: await fsp.readFile(keyFile, 'utf8'), certFile };
  }
  await makePrivateDir(pkiDir);
  const ca = await createCa(name);
  await writeFileDurable(keyFile, ca.key, { mode: 0o600 });
  await writeFileDurable(certFile, ca.cert);
  return { ...ca, certFile };
}

/**
 * Issue (or renew) a service's server certificate. While the clock is not synchronised,
 * nothing is issued: a certificate already there is kept ('kept': the caller tries again
 * once the clock is set), and with none there a ClockNotSaneError says why.
 */
export async function provisionServerTls(ca: Pem, serviceDataDir: string, commonName: string, names: string[], clock: () => ClockState = readClockState): Promise<'issued' | 'kept'> {
  const dir = path.join(serviceDataDir, TLS_DIR);
  const state = clock();
  if (!state.synchronised) {
    if (existsSync(path.join(dir, 'server.crt')) && existsSync(path.join(dir, 'server.key'))) return 'kept';
    throw new ClockNotSaneError(`not issuing ${commonName}'s server certificate`, state);
  }
  await makePrivateDir(dir);
  const leaf = await issue(ca, { commonName, names, usage: 'server', clock: () => state });
  await writeFileDurable(path.join(dir, 'server.key'), leaf.key, { mode: 0o600 });
  await writeFileDurable(path.join(dir, 'server.crt'), leaf.cert);
  await writeFileDurable(path.join(dir, 'ca.crt'), ca.cert);
  return 'issued';
}

/**
 * The issuer of services' client certificates for their links (platform/links.ts): CN is
 * the service's name, which storage maps to the service's grants. 'owner' is the paired
 * devices' principal and is never a service's. Fresh at every provisioning.
 */
export function serviceClientIssuer(ca: Pem): IssueClientCert {
  return async (service) => {
    if (service === 'owner') throw new Error("a service may not be named 'owner': that is the owner's devices' principal");
    const leaf = await issue(ca, { commonName: service, unit: 'kith service', usage: 'client' });
    return { ca: ca.cert, cert: leaf.cert, key: leaf.key };
  };
}

/** Write the revoked serials into every TLS service's data folder, where each watches them (revocation.ts). */
export async function provisionRevocations(serviceDataDirs: string[], serials: Iterable<string>): Promise<void> {
  const text = revokedText(serials);
  for (const d of serviceDataDirs) {
    await makePrivateDir(path.join(d, TLS_DIR));
    await writeFileDurable(path.join(d, TLS_DIR, REVOKED_FILE), text);
  }
}
