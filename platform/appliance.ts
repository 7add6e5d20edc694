/**
 * The appliance plan: from the service declarations and a target profile to how each
 * service is launched — its command line (bundle, sealing flags, config, data folder,
 * listen addresses), the links it is given, whether it gets TLS material — and how the
 * config tree is seeded. Pure: `kith up` (profile 'local'), PID 1's boot.json on the Pi
 * ('rpi'), a kvm image ('kvm') and the snapshot check of an image build all take their
 * launches from here, so a service added under services/ is launched the same way
 * everywhere with no edit outside its folder.
 *
 * Seeding has one policy, carried out by the storage service, which owns config.git: a
 * registered service with no folder of its own in config.git gets its defaults as a commit
 * authored by the platform (services/storage/config/seed-defaults.ts). Supervisors only
 * copy missing default files into the working tree first, so a service can start before
 * storage has published; storage then publishes config.git's head over it.
 */
import { join } from 'node:path';
import type { ListenAddress, ListenerSpec, ServiceNeeds } from './service.ts';
import { sealFlags } from './seal.ts';
import { serviceSlots } from './services.ts';
import { ALL_HOSTS, applianceListenHost, type ListenPolicy } from './listen-hosts.ts';

/** What the plan needs of a service: its declaration without code. */
export interface ServiceDescriptor {
  name: string;
  description: string;
  listeners: Record<string, ListenerSpec>;
  writableConfig?: boolean;
  needs?: ServiceNeeds;
  /** Node flags the service runs with (V8 heap sizes), sealed along with the rest. */
  nodeFlags?: string[];
  /** Environment over the supervisor's malloc settings (ServiceDefinition.env). */
  env?: Record<string, string>;
}

export type Profile =
  /** `kith up`: every service on one host address, port block N+10k..N+10k+9 for slot k; bundles seal themselves. */
  | { target: 'local'; host: string; portBase: number; dataRoot: string; distDir: string; node: string; tlsNames?: string[] }
  /**
   * A kvm image: one service and those its links reach (kvmCompanions), sealed from the
   * first instruction, maybe from startup snapshots.
   */
  | { target: 'kvm'; service: string; snapshot?: boolean }
  /** The Pi image: every service, on its declared ports, sealed from the first instruction. */
  | { target: 'rpi'; ports?: Record<string, Record<string, number>>; listen?: ListenPolicy };

export interface ServiceLaunch {
  name: string;
  description: string;
  command: string;
  args: string[];
  /** The service's own environment (ServiceDefinition.env), over the supervisor's malloc settings. */
  env?: Record<string, string>;
  /** The bundle the command runs (host path for 'local', guest path in images). */
  bundle: string;
  configRoot: string;
  dataDir: string;
  listen: Record<string, ListenAddress>;
  writableConfig: boolean;
  /** What it needs from other services (links the supervisor provisions before it starts). */
  needs?: ServiceNeeds & { configWrite: string[] };
  /** Names its server certificate is issued for: a TLS service, and under `kith up` every service (its health port speaks TLS to paired devices). */
  tlsNames?: string[];
}

export interface AppliancePlan {
  configRoot: string;
  services: ServiceLaunch[];
  /** Who provides storage links, and where they reach it; absent when no service has storage. */
  links?: { storage: string; storageUrl: string; /** Storage's https listener, when it has TLS material. */ storageTlsUrl?: string };
  /** Where services that need a resolver reach the appliance's DNS service. */
  resolver?: ListenAddress;
}

/** Everything a service's command line says, computed in one place. */
export interface LaunchArgs {
  bundle: string;
  configRoot: string;
  dataDir: string;
  listen: Record<string, ListenAddress>;
  writableConfig?: boolean;
  /** Pass the sealing flags up front (images); otherwise the bundle re-executes itself sealed. */
  sealed: boolean;
  /** A V8 startup snapshot to start from (kvm images). */
  snapshotBlob?: string;
  /** The service's own node flags (ServiceDescriptor.nodeFlags); a bundle that seals itself adds them itself. */
  nodeFlags?: string[];
  /** This machine's addresses, what 'self' means (platform/facts.ts); none: its interfaces'. */
  addresses?: string[];
  /** Peers the management ports treat as this machine (platform/peer-gate.ts setLocalPeers). */
  localPeers?: string[];
}

/** The host as a guest under qemu's user-mode networking sees it. */
export const QEMU_USER_HOST = '10.0.2.2';

const hostPort = (a: ListenAddress) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;

/** Node's argv for a service (without the node binary itself). */
export function launchArgs(l: LaunchArgs): string[] {
  return [
    ...(l.sealed ? sealFlags({ entry: l.bundle, configRoot: l.configRoot, dataDir: l.dataDir, writableConfig: l.writableConfig, ...(l.nodeFlags ? { nodeFlags: l.nodeFlags } : {}) }) : []),
    ...(l.snapshotBlob ? ['--snapshot-blob', l.snapshotBlob] : []),
    l.bundle, '--config', l.configRoot, '--data', l.dataDir,
    ...Object.entries(l.listen).flatMap(([name, a]) => ['--listen', `${name}=${hostPort(a)}`]),
    ...(l.addresses ?? []).flatMap((a) => ['--address', a]),
    ...(l.localPeers ?? []).flatMap((a) => ['--local-peer', a]),
  ];
}

/** Where an image keeps a service's startup snapshot (platform/image/snapshot.ts). */
export function snapshotPath(service: string): string {
  return `/kith/${service}.blob`;
}

/** A service that serves TLS (an https listener, or STARTTLS / implicit TLS) needs a certificate. */
export const servesTls = (d: Pick<ServiceDescriptor, 'listeners'>): boolean => Object.values(d.listeners).some((l) => l.protocol === 'https' || l.tls === true);

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::';

/** The service that keeps config.git and the versioned store: where storage links lead. */
const isStorage = (d: ServiceDescriptor) => d.writableConfig === true && d.listeners.http !== undefined;
/** The service with a DNS listener: where a resolver link leads. */
const isResolver = (d: ServiceDescriptor) => Object.values(d.listeners).some((l) => l.protocol === 'dns');

/**
 * What a kvm image of `name` holds besides it: the services its links lead to, and theirs.
 * Config writes and store repositories go through storage; a resolver is the DNS service.
 * So calendar brings storage, mail brings storage and dns, dns brings storage. In slot
 * order; a target not among `descriptors` is left out (the service runs without that link).
 */
export function kvmCompanions(descriptors: ServiceDescriptor[], name: string): ServiceDescriptor[] {
  const slots = serviceSlots(descriptors.map((d) => d.name));
  const wanted = new Set<string>([name]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of descriptors.filter((x) => wanted.has(x.name))) {
      const n = d.needs;
      const targets = [
        ...(n?.configWrite?.length || n?.store?.length ? descriptors.filter(isStorage) : []),
        ...(n?.resolver ? descriptors.filter(isResolver) : []),
      ];
      for (const t of targets) if (!wanted.has(t.name)) { wanted.add(t.name); grew = true; }
    }
  }
  return descriptors.filter((d) => d.name !== name && wanted.has(d.name)).sort((a, b) => slots.get(a.name)! - slots.get(b.name)!);
}

export function planAppliance(descriptors: ServiceDescriptor[], profile: Profile): AppliancePlan {
  const slots = serviceSlots(descriptors.map((d) => d.name));
  const named = profile.target === 'kvm' ? descriptors.find((d) => d.name === profile.service) : undefined;
  if (profile.target === 'kvm' && !named) throw new Error(`no service named ${profile.service} (have: ${descriptors.map((d) => d.name).join(', ')})`);
  // A kvm image starts with its own service; the Pi and `kith up` go in slot order.
  const chosen = named ? [named, ...kvmCompanions(descriptors, named.name)] : [...descriptors].sort((a, b) => slots.get(a.name)! - slots.get(b.name)!);
  const alone = chosen.length === 1;
  // A kvm image that holds storage is laid out as the Pi is: a folder per service under
  // /data, and the config working tree at /data/config (seeded from the image's /kith/config),
  // which storage publishes config.git's head into. Storage may not keep its config at
  // /kith/config beside /kith/config-specs.mjs: Node's permission model then refuses to read
  // /kith/config at all (it mishandles two allowed paths where one name begins the other).
  // A service alone, and not storage, keeps /data and the read-only /kith/config.
  const imageLayout = profile.target === 'kvm' && alone && chosen[0]!.writableConfig !== true;

  const configRoot = profile.target === 'local' ? join(profile.dataRoot, 'config') : imageLayout ? '/kith/config' : '/data/config';
  const listenOf = (d: ServiceDescriptor): Record<string, ListenAddress> => {
    const names = Object.keys(d.listeners);
    if (profile.target === 'local') return Object.fromEntries(names.map((n, j) => [n, { host: profile.host, port: profile.portBase + slots.get(d.name)! * 10 + j }]));
    // On the Pi, health and metrics stay on loopback (platform/listen-hosts.ts); a kvm image's
    // are reached through qemu's port forwarding, so they listen everywhere in the guest.
    const ports = profile.target === 'rpi' ? profile.ports?.[d.name] ?? {} : {};
    const hostOf = (n: string) => (profile.target === 'rpi' ? applianceListenHost(n, profile.listen) : ALL_HOSTS);
    return Object.fromEntries(names.map((n) => [n, { host: hostOf(n), port: ports[n] ?? d.listeners[n]!.port }]));
  };

  const services = chosen.map((d): ServiceLaunch => {
    const listen = listenOf(d);
    const local = profile.target === 'local';
    const bundle = local ? join(profile.distDir, `${d.name}.mjs`) : `/kith/${d.name}.mjs`;
    const dataDir = local ? join(profile.dataRoot, 'data', d.name) : imageLayout ? '/data' : `/data/${d.name}`;
    const snapshot = profile.target === 'kvm' && profile.snapshot === true;
    const args = launchArgs({
      bundle, configRoot, dataDir, listen,
      writableConfig: d.writableConfig === true,
      sealed: !local,
      ...(d.nodeFlags ? { nodeFlags: d.nodeFlags } : {}),
      ...(snapshot ? { snapshotBlob: snapshotPath(d.name) } : {}),
      // Under `kith up` services listen on one address: 'self' means that one.
      ...(local && !isWildcard(profile.host) ? { addresses: [profile.host] } : {}),
      // A kvm image is reached through qemu's forwarded ports, bound to the host's loopback:
      // its peer 10.0.2.2 is the host's own user (and a kvm image has no pairing).
      ...(profile.target === 'kvm' ? { localPeers: [QEMU_USER_HOST] } : {}),
    });
    return {
      name: d.name,
      description: d.description,
      command: local ? profile.node : '/bin/node',
      args,
      ...(d.env ? { env: d.env } : {}),
      bundle,
      configRoot,
      dataDir,
      listen,
      writableConfig: d.writableConfig === true,
      ...(d.needs ? { needs: { ...d.needs, configWrite: d.needs.configWrite ?? [] } } : {}),
      // The names a TLS service is reached by: loopback, the listen address, and what the
      // supervisor adds (NAME.local as mDNS announces it, NAME.home.arpa, the machine's addresses).
      // Under `kith up` every service gets one, TLS or not: its health port (which may face the
      // network, --host) and any plain management port speak TLS to paired devices there
      // (platform/peer-gate.ts). On the Pi those listen on loopback or serve TLS already.
      ...(local ? { tlsNames: [...new Set(['localhost', '127.0.0.1', '::1', ...(isWildcard(profile.host) ? [] : [profile.host]), ...(profile.tlsNames ?? [])])] } : {}),
    };
  });

  // Links: every service that declares needs gets a token for the storage service (in a
  // kvm image, when storage came along for another service).
  const storage = services.find((s) => s.writableConfig && s.listen.http);
  let links: AppliancePlan['links'];
  if (storage && !(profile.target === 'kvm' && alone)) {
    const a = storage.listen.http!;
    const host = isWildcard(a.host) ? '127.0.0.1' : a.host;
    links = { storage: storage.name, storageUrl: `http://${hostPort({ host, port: a.port })}` };
    // Where the supervisor issues TLS material, services reach storage by mutual TLS too
    // (platform/links.ts: a client certificate each, mapped to the same grants).
    const t = storage.tlsNames ? storage.listen.https : undefined;
    if (t) links.storageTlsUrl = `https://${hostPort({ host: isWildcard(t.host) ? '127.0.0.1' : t.host, port: t.port })}`;
  }
  // The resolver: the service with a DNS listener, reached on loopback when it listens everywhere.
  const dnsListen = services.flatMap((s) => Object.entries(s.listen).filter(([n]) => descriptors.find((d) => d.name === s.name)!.listeners[n]!.protocol === 'dns').map(([, a]) => a))[0];
  const resolver = dnsListen ? { host: isWildcard(dnsListen.host) ? '127.0.0.1' : dnsListen.host, port: dnsListen.port } : undefined;
  return { configRoot, services, ...(links ? { links } : {}), ...(resolver && !(profile.target === 'kvm' && alone) ? { resolver } : {}) };
}
