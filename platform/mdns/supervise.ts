/**
 * The supervisor's mDNS: `kith up` and PID 1 call `advertisePlan` once the services are
 * started; it announces what the appliance plan says (appliance.ts) and logs each
 * responder event (probing, conflict and the new name, announced, address changes).
 * `stop()` sends the goodbyes.
 */
import { hostname as osHostname, networkInterfaces } from 'node:os';
import type { ServiceDescriptor, ServiceLaunch } from '../appliance.ts';
import { Advertiser } from './advertiser.ts';
import { announceLinks, announcements } from './appliance.ts';
import type { ServiceAd } from './records.ts';
import type { Event } from './responder.ts';

/** A DNS label from the machine's host name (`My_Box.lan` → `my-box`); `kith` if none is left. */
export function defaultMdnsName(raw = osHostname()): string {
  const label = raw.split('.')[0]!.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return label || 'kith';
}

/**
 * The names a service certificate carries beyond loopback: NAME.local (what mDNS
 * announces), NAME.home.arpa, and the machine's addresses when the services listen on all
 * of them (RFC 8375 for home.arpa).
 */
export function tlsNamesFor(name: string, listenHost: string): string[] {
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::';
  const addresses = wildcard ? Object.values(networkInterfaces()).flatMap((as) => (as ?? []).filter((a) => !a.internal && !a.address.startsWith('fe80:')).map((a) => a.address)) : [];
  return [`${name}.local`, `${name}.home.arpa`, ...addresses];
}

export interface AdvertisePlan {
  name: string;
  services: Pick<ServiceLaunch, 'name' | 'listen' | 'dataDir' | 'writableConfig'>[];
  descriptors: Pick<ServiceDescriptor, 'name' | 'listeners'>[];
  version?: string;
  caCert?: string;
  /** The pairing port, announced as `_kith._tcp`. */
  kithPort?: number;
  /** Announce even when every service listens on loopback (then on loopback). */
  force?: boolean;
  log: (msg: string, fields: Record<string, unknown>) => void;
}

/** Start announcing; undefined (with the reason logged) when there is nothing a LAN could reach. */
export async function advertisePlan(o: AdvertisePlan): Promise<Advertiser | undefined> {
  const links = announceLinks(o.services, o.force);
  if (!links) {
    o.log('mdns off', { reason: 'every service listens on loopback; nothing on the network could reach it (kith up --host 0.0.0.0, or --mdns)' });
    return undefined;
  }
  const ads = announcements(o);
  const adv = new Advertiser({
    name: o.name,
    services: ads,
    links,
    onEvent: (e: Event) => o.log(`mdns ${e.kind}`, {
      ...e, kind: undefined,
      // The certificates were issued for the name asked for, not the one won.
      ...(e.kind === 'conflict' ? { hint: `another host on the network is ${e.name}.local; this one is now ${e.next}.local, which the service certificates do not name: choose a free name with --hostname` } : {}),
    }),
  });
  try {
    await adv.start();
  } catch (err) {
    o.log('mdns off', { reason: `cannot listen on UDP port 5353: ${(err as Error).message}` });
    return undefined;
  }
  o.log('mdns advertising', { name: `${o.name}.local`, services: ads.map((a) => `${a.type}:${a.port}`).join(' ') });
  return adv;
}

/** PID 1: announce what boot.json says (computed from the appliance plan when the image was built). */
export async function advertiseOnBoot(name: string, services: ServiceAd[], log: (msg: string, fields: Record<string, unknown>) => void): Promise<Advertiser | undefined> {
  const adv = new Advertiser({ name, services, links: {}, onEvent: (e: Event) => log(`mdns ${e.kind}`, { ...e, kind: undefined }) });
  try {
    await adv.start();
    return adv;
  } catch (err) {
    log('mdns off', { reason: `cannot listen on UDP port 5353: ${(err as Error).message}` });
    return undefined;
  }
}
