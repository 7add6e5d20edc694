/**
 * The boot configuration: /kith/boot.json in the initramfs, written by the image builder.
 * It says which kernel modules to load (already in dependency order), how to bring the
 * network up, which disk holds /data, what to run — one service (`service`, the kvm image)
 * or several (`services`, the appliance), each its own sealed process — how to seed the
 * config tree and link services, and what to do when boot cannot go on.
 *
 * parseBootConfig() is pure and never throws: problems come back as a list of messages.
 */

export type NetworkConfig =
  | { mode: 'none' }
  | { mode: 'dhcp'; interface?: string }
  | { mode: 'static'; interface?: string; address: string; prefix: number; gateway?: string; dns: string[] };

/** One supervised process. */
export interface BootService {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Its own folder on the data partition (links are provisioned there). */
  dataDir?: string;
  /** What it needs from other services (platform/service.ts ServiceNeeds). */
  needs?: { configWrite: string[]; resolver?: boolean; store?: string[] };
}

export interface BootConfig {
  hostname: string;
  /** Absolute paths of .ko files, loaded in this order. */
  modules: string[];
  network: NetworkConfig;
  /**
   * Block device holding the ext4 data file system, mounted on `mountpoint`: a /dev path,
   * or LABEL=name to find it by its ext4 label (an SD card is mmcblk0p2 on a Pi, vda2 in qemu).
   * `grow`: extend the partition and its ext4 to the end of the disk first (grow.ts).
   */
  data?: { device: string; fstype: string; mountpoint: string; waitMs: number; grow?: boolean };
  /** The single service of a kvm image; ignored when `services` is given. */
  service: BootService;
  /** Every service of the appliance, each supervised on its own. */
  services?: BootService[];
  /** Copy files of `from` (read-only, in the image) under `to` when missing: the default config. */
  seed?: { from: string; to: string };
  /** Give each service with `needs` a token for storage before start (platform/links.ts). */
  links?: { storage: string; storageUrl: string };
  /** Where services with `needs.resolver` reach the appliance's DNS service. */
  resolver?: { host: string; port: number };
  /**
   * Test images only: an HTTP port where PID 1 lists its children (GET /services) and kills
   * one on request (POST /kill/NAME), so tests can prove a restart leaves the others alone.
   */
  debug?: { port: number };
  /** What PID 1 announces over mDNS / DNS-SD as HOSTNAME.local (platform/mdns/appliance.ts computes it from the plan). */
  mdns?: { services: { type: string; port: number; instance?: string; txt: Record<string, string> }[] };
  restart: { initialMs: number; maxMs: number; fatalAfter: number };
  onFatal: 'poweroff' | 'reboot';
  /**
   * Time keeping (timekeeper.ts): NTP servers to use when DHCP gives none (option 42), and
   * a pool name to resolve when neither does; notBefore (Unix ms) is the earliest the time
   * can be. The time is saved on the data partition whatever this says.
   */
  clock?: { servers: string[]; pool?: string; notBefore?: number };
  /**
   * The FAT boot partition that may hold the owner's seed (kith-seed.yaml), as LABEL=NAME or
   * a /dev path: read and applied at first boot, then removed (first-boot.ts).
   */
  ownerSeed?: { device: string };
  /**
   * The appliance's TLS and pairing process (platform/pki/appliance-pki.ts): started first and
   * supervised like a service; the services start once it logs `provisioned`, so each finds
   * its certificate. PID 1 adds `--appliance HOSTNAME`.
   */
  pki?: BootService;
  /**
   * kvm images: the owner token's SHA-256 comes on the kernel command line
   * (`kith.owner=HEX`, added by `kith vm run`, which keeps the token on the host as `kith up`
   * does), and PID 1 gives it to every service as links/owner.json before they start.
   */
  ownerFromCmdline?: boolean;
}

/** The kernel command line argument that carries the owner token's SHA-256 into a kvm guest. */
export const OWNER_CMDLINE_ARG = 'kith.owner';

/** `kith.owner=HEX` for the kernel command line. */
export function ownerCmdlineArg(tokenSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(tokenSha256)) throw new Error('the owner token hash must be 64 lower-case hex digits');
  return `${OWNER_CMDLINE_ARG}=${tokenSha256}`;
}

/** The owner token's SHA-256 from /proc/cmdline's text, or undefined when it is not there (or not a hash). */
export function ownerHashFromCmdline(cmdline: string): string | undefined {
  const hit = cmdline.trim().split(/\s+/).filter((w) => w.startsWith(`${OWNER_CMDLINE_ARG}=`)).at(-1);
  const hex = hit?.slice(OWNER_CMDLINE_ARG.length + 1);
  return hex && /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

export type Parsed = { ok: true; value: BootConfig } | { ok: false, issues: string[] };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const LABEL = /^LABEL=[A-Za-z0-9_.-]{1,16}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseBootConfig(text: string): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, issues: [`boot.json is not JSON: ${(e as Error).message}`] };
  }
  const issues: string[] = [];
  if (!isObj(raw)) return { ok: false, issues: ['boot.json must be an object'] };

  const hostname = raw.hostname ?? 'kith';
  if (!isStr(hostname) || !HOSTNAME.test(hostname)) issues.push('hostname: must be a DNS label');

  const modules = raw.modules ?? [];
  if (!Array.isArray(modules) || !modules.every((m) => isStr(m) && m.startsWith('/') && m.endsWith('.ko'))) {
    issues.push('modules: must be a list of absolute .ko paths');
  }

  let network: NetworkConfig = { mode: 'none' };
  const n = raw.network ?? { mode: 'none' };
  if (!isObj(n)) issues.push('network: must be an object');
  else if (n.interface !== undefined && !(isStr(n.interface) && IFNAME.test(n.interface))) issues.push('network.interface: bad name');
  else if (n.mode === 'none') network = { mode: 'none' };
  else if (n.mode === 'dhcp') network = { mode: 'dhcp', interface: n.interface as string | undefined };
  else if (n.mode === 'static') {
    const dns = n.dns ?? [];
    const prefix = n.prefix ?? 24;
    if (!isStr(n.address) || !IPV4.test(n.address)) issues.push('network.address: must be an IPv4 address');
    if (typeof prefix !== 'number' || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) issues.push('network.prefix: 0..32');
    if (n.gateway !== undefined && !(isStr(n.gateway) && IPV4.test(n.gateway))) issues.push('network.gateway: must be an IPv4 address');
    if (!Array.isArray(dns) || !dns.every((d) => isStr(d) && IPV4.test(d))) issues.push('network.dns: list of IPv4 addresses');
    network = { mode: 'static', interface: n.interface as string | undefined, address: n.address as string, prefix: prefix as number, gateway: n.gateway as string | undefined, dns: dns as string[] };
  } else issues.push('network.mode: none, dhcp or static');

  let data: BootConfig['data'];
  if (raw.data !== undefined && raw.data !== null) {
    const d = raw.data;
    if (!isObj(d) || !isStr(d.device) || !(d.device.startsWith('/dev/') || LABEL.test(d.device))) issues.push('data.device: a /dev path or LABEL=name');
    else {
      const mountpoint = d.mountpoint ?? '/data';
      const fstype = d.fstype ?? 'ext4';
      const waitMs = d.waitMs ?? 10_000;
      if (!isStr(mountpoint) || !mountpoint.startsWith('/')) issues.push('data.mountpoint: an absolute path');
      if (!isStr(fstype) || !/^[a-z0-9]+$/.test(fstype)) issues.push('data.fstype: a file system name');
      if (typeof waitMs !== 'number' || waitMs < 0) issues.push('data.waitMs: milliseconds');
      if (d.grow !== undefined && typeof d.grow !== 'boolean') issues.push('data.grow: true or false');
      if (d.grow === true && fstype !== 'ext4') issues.push('data.grow: only an ext4 data partition can grow');
      data = { device: d.device, fstype: fstype as string, mountpoint: mountpoint as string, waitMs: waitMs as number, ...(d.grow === true ? { grow: true } : {}) };
    }
  }

  const parseService = (s: unknown, at: string): BootService => {
    if (!isObj(s)) {
      issues.push(`${at}: required`);
      return { name: '', command: '', args: [], env: {} };
    }
    const args = s.args ?? [];
    const env = s.env ?? {};
    if (!isStr(s.name) || !/^[a-z][a-z0-9-]*$/.test(s.name)) issues.push(`${at}.name: lower-case name`);
    if (!isStr(s.command) || !s.command.startsWith('/')) issues.push(`${at}.command: an absolute path`);
    if (!Array.isArray(args) || !args.every(isStr)) issues.push(`${at}.args: list of strings`);
    if (!isObj(env) || !Object.values(env).every(isStr)) issues.push(`${at}.env: map of strings`);
    const out: BootService = { name: s.name as string, command: s.command as string, args: args as string[], env: env as Record<string, string> };
    if (s.dataDir !== undefined) {
      if (!isStr(s.dataDir) || !s.dataDir.startsWith('/')) issues.push(`${at}.dataDir: an absolute path`);
      else out.dataDir = s.dataDir;
    }
    if (s.needs !== undefined) {
      const w = isObj(s.needs) ? s.needs.configWrite ?? [] : undefined;
      if (!Array.isArray(w) || !w.every(isStr)) issues.push(`${at}.needs.configWrite: list of strings`);
      else out.needs = { configWrite: w as string[], ...(isObj(s.needs) && s.needs.resolver === true ? { resolver: true } : {}) };
      const st = isObj(s.needs) ? s.needs.store : undefined;
      if (st !== undefined && (!Array.isArray(st) || !st.every(isStr))) issues.push(`${at}.needs.store: list of strings`);
      else if (st !== undefined && out.needs) out.needs.store = st as string[];
    }
    return out;
  };
  let services: BootService[] | undefined;
  let service: BootService = { name: '', command: '', args: [], env: {} };
  if (raw.services !== undefined) {
    if (!Array.isArray(raw.services) || raw.services.length === 0) issues.push('services: a non-empty list');
    else {
      services = raw.services.map((x, k) => parseService(x, `services[${k}]`));
      const names = services.map((x) => x.name);
      if (new Set(names).size !== names.length) issues.push('services: names must be unique');
      service = services[0]!;
    }
  } else service = parseService(raw.service, 'service');

  let seed: BootConfig['seed'];
  if (raw.seed !== undefined) {
    const d = raw.seed;
    if (!isObj(d) || !isStr(d.from) || !isStr(d.to) || !d.from.startsWith('/') || !d.to.startsWith('/')) issues.push('seed: { from, to } absolute paths');
    else seed = { from: d.from, to: d.to };
  }
  let links: BootConfig['links'];
  if (raw.links !== undefined) {
    const l = raw.links;
    if (!isObj(l) || !isStr(l.storage) || !isStr(l.storageUrl) || !/^https?:\/\/[^\s]+$/.test(l.storageUrl)) issues.push('links: { storage, storageUrl }');
    else links = { storage: l.storage, storageUrl: l.storageUrl };
  }
  let resolver: BootConfig['resolver'];
  if (raw.resolver !== undefined) {
    const r = raw.resolver;
    if (!isObj(r) || !isStr(r.host) || typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) issues.push('resolver: { host, port }');
    else resolver = { host: r.host, port: r.port };
  }
  let debug: BootConfig['debug'];
  if (raw.debug !== undefined) {
    const p = isObj(raw.debug) ? raw.debug.port : undefined;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) issues.push('debug.port: 1..65535');
    else debug = { port: p };
  }

  const pki = raw.pki !== undefined ? parseService(raw.pki, 'pki') : undefined;

  let mdns: BootConfig['mdns'];
  if (raw.mdns !== undefined) {
    const list = isObj(raw.mdns) ? raw.mdns.services : undefined;
    const ok = Array.isArray(list) && list.every((x) => isObj(x) && isStr(x.type) && /^_[a-z0-9-]{1,15}\._(tcp|udp)$/.test(x.type)
      && typeof x.port === 'number' && Number.isInteger(x.port) && x.port > 0 && x.port < 65536
      && (x.instance === undefined || (isStr(x.instance) && x.instance.length <= 40)) && isObj(x.txt) && Object.values(x.txt).every(isStr));
    if (!ok) issues.push('mdns.services: a list of { type: "_name._tcp|_udp", port, instance?, txt: { key: value } }');
    else mdns = { services: list as NonNullable<BootConfig['mdns']>['services'] };
  }

  let clock: BootConfig['clock'];
  if (raw.clock !== undefined) {
    const c = raw.clock;
    const servers = isObj(c) ? c.servers ?? [] : undefined;
    if (!isObj(c)) issues.push('clock: { servers, pool, notBefore }');
    else if (!Array.isArray(servers) || !servers.every((x) => isStr(x) && (IPV4.test(x) || DNS_NAME.test(x)))) issues.push('clock.servers: list of IPv4 addresses or host names');
    else if (c.pool !== undefined && !(isStr(c.pool) && DNS_NAME.test(c.pool))) issues.push('clock.pool: a host name such as pool.ntp.org');
    else if (c.notBefore !== undefined && !(typeof c.notBefore === 'number' && Number.isSafeInteger(c.notBefore) && c.notBefore > 0)) issues.push('clock.notBefore: Unix milliseconds');
    else clock = { servers: servers as string[], ...(c.pool !== undefined ? { pool: c.pool as string } : {}), ...(c.notBefore !== undefined ? { notBefore: c.notBefore as number } : {}) };
  }

  let ownerSeed: BootConfig['ownerSeed'];
  if (raw.ownerSeed !== undefined) {
    const d = isObj(raw.ownerSeed) ? raw.ownerSeed.device : undefined;
    if (!isStr(d) || !(d.startsWith('/dev/') || /^LABEL=[A-Za-z0-9_.-]{1,11}$/.test(d))) issues.push('ownerSeed.device: a /dev path or LABEL=name (a FAT label, at most 11 characters)');
    else ownerSeed = { device: d };
  }

  if (raw.ownerFromCmdline !== undefined && typeof raw.ownerFromCmdline !== 'boolean') issues.push('ownerFromCmdline: true or false');

  const r = isObj(raw.restart) ? raw.restart : {};
  const restart = { initialMs: r.initialMs ?? 500, maxMs: r.maxMs ?? 30_000, fatalAfter: r.fatalAfter ?? 0 };
  if (![restart.initialMs, restart.maxMs, restart.fatalAfter].every((x) => typeof x === 'number' && x >= 0)) issues.push('restart: non-negative numbers');

  const onFatal = raw.onFatal ?? 'reboot';
  if (onFatal !== 'poweroff' && onFatal !== 'reboot') issues.push('onFatal: poweroff or reboot');

  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    value: {
      hostname: hostname as string, modules: modules as string[], network, data, service, restart: restart as BootConfig['restart'], onFatal: onFatal as BootConfig['onFatal'],
      ...(services ? { services } : {}), ...(seed ? { seed } : {}), ...(links ? { links } : {}), ...(resolver ? { resolver } : {}), ...(debug ? { debug } : {}),
      ...(mdns ? { mdns } : {}), ...(clock ? { clock } : {}), ...(ownerSeed ? { ownerSeed } : {}), ...(pki ? { pki } : {}),
      ...(raw.ownerFromCmdline === true ? { ownerFromCmdline: true } : {}),
    },
  };
}

/** The processes PID 1 supervises. */
export function bootServices(cfg: BootConfig): BootService[] {
  return cfg.services ?? [cfg.service];
}

/**
 * Delay before restart number `attempt` (1-based) of a service that keeps dying:
 * doubling from initialMs, capped at maxMs. A run that lasted longer than maxMs resets
 * the count (the caller decides that).
 */
export function restartDelay(attempt: number, restart: { initialMs: number; maxMs: number }): number {
  const exp = Math.min(attempt - 1, 30);
  return Math.min(restart.maxMs, restart.initialMs * 2 ** Math.max(0, exp));
}
