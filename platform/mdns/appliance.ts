/**
 * What the appliance announces over mDNS, derived from the appliance plan: HOSTNAME.local,
 * `_kith._tcp` at the supervisor's pairing port (or else the config-owning service's TLS port) (TXT: version, the CA's SHA-256
 * fingerprint), and every listener that declares `dnssd` in its service's declaration
 * (platform/service.ts) at the port the plan gave it (TXT: version, the declared pairs and,
 * for https, the service certificate's SHA-256 fingerprint). Also which addresses to
 * announce: those the services listen on; none when they listen on loopback only.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ServiceDescriptor, ServiceLaunch } from '../appliance.ts';
import { certSha256 } from '../pki/server-tls.ts';
import type { LinkChoice } from './advertiser.ts';
import type { ServiceAd } from './records.ts';

export const KITH_TYPE = '_kith._tcp';

/** SHA-256 of a PEM certificate's DER, lower-case hex (what TXT `certsha256` carries). */
export { certSha256 };

function serverCertSha256(dataDir: string): string | undefined {
  try {
    return certSha256(readFileSync(path.join(dataDir, 'tls', 'server.crt'), 'utf8'));
  } catch {
    return undefined;
  }
}

export interface AnnounceFrom {
  services: Pick<ServiceLaunch, 'name' | 'listen' | 'dataDir' | 'writableConfig'>[];
  descriptors: Pick<ServiceDescriptor, 'name' | 'listeners'>[];
  /** kith's version for TXT `version`; absent: no version pair. */
  version?: string;
  /** The appliance CA certificate (PEM), when there is one. */
  caCert?: string;
  /** The supervisor's own port (pairing), announced as `_kith._tcp`; else the config owner's TLS port. */
  kithPort?: number;
  /** For tests: the fingerprint of a service's server certificate (default: read from its data folder). */
  fingerprint?: (s: Pick<ServiceLaunch, 'name' | 'dataDir'>) => string | undefined;
}

export function announcements(from: AnnounceFrom): ServiceAd[] {
  const fp = from.fingerprint ?? ((s) => serverCertSha256(s.dataDir));
  const ads: ServiceAd[] = [];
  const owner = from.services.find((s) => s.writableConfig);
  const ownerDecl = owner && from.descriptors.find((d) => d.name === owner.name);
  const ownerListener = ownerDecl && (Object.entries(ownerDecl.listeners).find(([, l]) => l.protocol === 'https') ?? Object.entries(ownerDecl.listeners).find(([n, l]) => l.protocol === 'http' && n !== 'health'));
  const kithPort = from.kithPort ?? (ownerListener && owner?.listen[ownerListener[0]]?.port);
  if (kithPort !== undefined) {
    ads.push({ type: KITH_TYPE, port: kithPort, txt: { ...(from.version ? { version: from.version } : {}), ...(from.caCert ? { ca: certSha256(from.caCert) } : {}) } });
  }
  for (const s of from.services) {
    const decl = from.descriptors.find((d) => d.name === s.name);
    for (const [name, l] of Object.entries(decl?.listeners ?? {})) {
      const at = s.listen[name];
      if (!l.dnssd || !at) continue;
      const cert = l.protocol === 'https' ? fp(s) : undefined;
      ads.push({ type: l.dnssd.type, port: at.port, instance: s.name, txt: { ...(from.version ? { version: from.version } : {}), ...l.dnssd.txt, ...(cert ? { certsha256: cert } : {}) } });
    }
  }
  return ads;
}

/**
 * PID 1's announcements, planned when the image was built (before the device made its CA),
 * with the CA's fingerprint added to `_kith._tcp`'s TXT (`ca`), as `kith up` announces it:
 * `kith pair` checks the CA it is given against it. Without a CA file, unchanged.
 */
export function withCaFingerprint(ads: ServiceAd[], caCertFile: string | undefined): ServiceAd[] {
  let pem: string;
  try {
    if (!caCertFile) return ads;
    pem = readFileSync(caCertFile, 'utf8');
  } catch {
    return ads; // no CA yet (the pki process has not run, or failed): announced without
  }
  const ca = certSha256(pem);
  return ads.map((a) => (a.type === KITH_TYPE ? { ...a, txt: { ...a.txt, ca } } : a));
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;
const WILDCARD = new Set(['0.0.0.0', '::', '']);

/**
 * The links to announce on, from where the announced listeners listen: everywhere (with
 * multicast) for a wildcard, the links holding the addresses otherwise. Loopback-only
 * services are announced only when asked (`force`), on loopback: nothing on the LAN could
 * reach them.
 */
export function announceLinks(services: Pick<ServiceLaunch, 'listen'>[], force = false): LinkChoice | undefined {
  const hosts = [...new Set(services.flatMap((s) => Object.values(s.listen).map((a) => a.host)))];
  if (hosts.some((h) => WILDCARD.has(h))) return {};
  const lan = hosts.filter((h) => !LOOPBACK.test(h));
  if (lan.length > 0) return { addresses: lan };
  return force ? { addresses: hosts, loopback: true } : undefined;
}
