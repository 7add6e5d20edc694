/**
 * The service side of TLS: the server certificate, key and CA that the supervisor
 * provisioned into the service's data folder (platform/pki/provision.ts). Kept apart from
 * the CA code so a sealed service bundles none of it.
 */
import { X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export const TLS_DIR = 'tls';

export interface ServerTls {
  key: string;
  cert: string;
  /** The appliance CA: client certificates must chain to it. */
  ca: string;
}

export async function readServerTls(serviceDataDir: string): Promise<ServerTls | undefined> {
  const dir = path.join(serviceDataDir, TLS_DIR);
  try {
    const [key, cert, ca] = await Promise.all(['server.key', 'server.crt', 'ca.crt'].map((f) => fsp.readFile(path.join(dir, f), 'utf8')));
    return { key: key!, cert: cert!, ca: ca! };
  } catch {
    return undefined;
  }
}

/** SHA-256 of a PEM certificate's DER, lower-case hex (mDNS TXT, and how storage pins a service's certificate). */
export function certSha256(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}
