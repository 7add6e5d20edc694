/**
 * How PID 1 runs the appliance's TLS and pairing process (appliance-pki.ts): its boot.json
 * entry, written by the image planner. PID 1 adds `--appliance NAME` at boot, since the
 * owner's seed may rename the box.
 */
import type { BootService } from '../boot/boot-config.ts';
import { APPLIANCE_RUN_STATE } from '../run-state.ts';

/** Where the process is in the image: CommonJS like /init (Node starts it without its ESM loader). */
export const PKI_BUNDLE = '/kith/pki.cjs';
/** Where `kith pair` reaches an appliance: the port below `kith up`'s default port base, as there. */
export const APPLIANCE_PAIR_PORT = 7299;
export const PKI_DIR = '/data/pki';
/** Kept by first boot from the owner's seed (platform/boot/first-boot.ts PAIRING_SECRET_FILE). */
export const SEED_SECRET_FILE = '/data/kith/pairing-secret';

/**
 * `links`: the services PID 1 gives a token link to storage, which the pki process also
 * gives a client certificate for storage's https listener (platform/links.ts addLinkCertificate).
 */
export function pkiBootService(o: { tlsServices: string[]; servicesRoot: string; port?: number; links?: { storage: string; storageTlsUrl: string; services: string[] } }): BootService {
  const links = o.links && o.links.services.length > 0 ? ['--storage', o.links.storage, '--storage-tls-url', o.links.storageTlsUrl, ...o.links.services.flatMap((s) => ['--link', s])] : [];
  return {
    name: 'pki',
    command: '/bin/node',
    args: ['--expose-gc', PKI_BUNDLE, '--pki', PKI_DIR, '--services', o.servicesRoot, '--port', String(o.port ?? APPLIANCE_PAIR_PORT), '--seed-secret', SEED_SECRET_FILE, '--status-file', APPLIANCE_RUN_STATE, ...o.tlsServices.flatMap((s) => ['--tls', s]), ...links],
    env: {},
    dataDir: PKI_DIR,
  };
}
