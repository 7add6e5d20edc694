/**
 * The service contract: what a kith service declares about itself.
 *
 * A service's main file is a short declaration (like MirageOS's config.ml): its name, the
 * listeners it opens, how its configuration is loaded and validated, and `start`, which
 * receives everything it needs from the platform in a ServiceContext. The runner
 * (platform/runner.ts) seals the process, loads config, starts the service, serves
 * /healthz and /metrics, watches config and applies valid changes live.
 */
import type { ConfigSpec, MachineFacts } from './config/spec.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { PendingWrites } from './pending-writes.ts';
import type { MemoryGovernor } from './memory-governor.ts';

/** One socket a service opens. `port` is the appliance default; `kith up` remaps it. */
export interface ListenerSpec {
  /** udp, tcp, http, https or dns (dns = the same port on udp and tcp). */
  protocol: 'udp' | 'tcp' | 'dns' | 'http' | 'https';
  port: number;
  /** Speaks TLS (implicit or STARTTLS) on a tcp listener: the supervisor provisions a certificate, as for https. */
  tls?: boolean;
  description: string;
  /**
   * Announce this listener over DNS-SD (RFC 6763) as `type`, e.g. `_domain._udp`, with these
   * TXT pairs; the supervisor's mDNS advertiser (platform/mdns) adds `version` and, for
   * https, the certificate's fingerprint.
   */
  dnssd?: { type: `_${string}._tcp` | `_${string}._udp`; txt?: Record<string, string> };
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ServiceContext<C> {
  readonly name: string;
  /** The service's own writable data folder (the only place it may write). */
  readonly dataDir: string;
  /** The whole config working tree (read-only); this service's files are under `<configRoot>/<name>/`. */
  readonly configRoot: string;
  /** Resolved listen addresses, one per declared listener. */
  readonly listen: Readonly<Record<string, ListenAddress>>;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The clock, injectable for tests (milliseconds since the epoch). */
  readonly now: () => number;
  /** Current validated config. */
  config(): C;
  /** The machine facts configs are validated against now (platform/facts.ts). */
  facts(): MachineFacts;
  /**
   * Load the config again although no file changed, because something it is derived from
   * did (the machine's addresses, for DNS's 'self'). Applied like a file change.
   */
  reloadConfig(reason: string): void;
  /**
   * Writes the disk may refuse (a read-only or full data folder): `attempt(name, write)`
   * runs one; on EROFS/ENOSPC it is kept and retried, and /healthz reports unhealthy with
   * the reason, instead of the service failing. For state that can wait (snapshots, zone
   * serials), never for what must be on disk before an acknowledgement.
   */
  readonly dataWrites?: PendingWrites;
  /** `settle()` after heavy work (a pack, a large body): its garbage is collected once things are quiet. */
  readonly memory?: Pick<MemoryGovernor, 'settle'>;
}

export interface RunningService<C> {
  /** How to reach the service, e.g. { dns: 'udp://127.0.0.1:5353' }. Printed by `kith up`. */
  endpoints: Record<string, string>;
  /** Apply a new, already validated config without a restart. Throwing keeps the old one. */
  applyConfig?(next: C, previous: C): Promise<void> | void;
  /** Extra health detail; the runner reports unhealthy when ok is false. */
  health?(): { ok: boolean; detail?: string };
  /** Close sockets and flush; called on SIGTERM/SIGINT. */
  stop(): Promise<void>;
}

export interface ServiceDefinition<C> {
  name: string;
  description: string;
  listeners: Record<string, ListenerSpec>;
  config: ConfigSpec<C>;
  /** Only the storage service: it publishes the config working tree other services read. */
  writableConfig?: boolean;
  /**
   * Extra V8/Node flags for the sealed process, for the memory budget: a smaller young
   * generation (--max-semi-space-size=1), a cap on the old one (--max-old-space-size=64),
   * where V8 would otherwise let its heap grow on a machine with plenty of RAM.
   */
  nodeFlags?: string[];
  /**
   * The soft limit on V8's heap plus Buffers, MiB (platform/memory-governor.ts): above it a
   * major GC runs. Default 24.
   */
  softMemoryMb?: number;
  /**
   * Environment the service runs with, over the supervisor's glibc malloc settings
   * (platform/malloc-env.ts); an empty value leaves that variable unset (glibc's default).
   */
  env?: Record<string, string>;
  /** What the service needs from other services; the supervisor provisions it (platform/links.ts). */
  needs?: ServiceNeeds;
  start(ctx: ServiceContext<C>): Promise<RunningService<C>>;
}

export interface ServiceNeeds {
  /** Config paths (prefixes, e.g. 'dns/zones/') this service may change through the storage service. */
  configWrite?: string[];
  /**
   * The address of the appliance's DNS service (the service with a `dns` listener), in
   * `links/resolver.json` (platform/links.ts readResolverLink): where a service that
   * resolves names (mail's MX and SPF lookups) asks, never the host's resolver.
   */
  resolver?: boolean;
  /** Repositories of storage's versioned store this service reads and writes (storage creates them). */
  store?: string[];
}

/** Identity helper that keeps the declaration's types. */
export function defineService<C>(def: ServiceDefinition<C>): ServiceDefinition<C> {
  return def;
}
