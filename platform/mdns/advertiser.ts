/**
 * The mDNS advertiser's shell: UDP sockets on port 5353 joined to the mDNS groups on each
 * chosen link, the links read from the machine (os.networkInterfaces, the kernel's
 * IFF_MULTICAST flag) and watched for address changes, timers for the protocol core
 * (responder.ts, RFC 6762/6763), goodbyes on stop. IPv4 (224.0.0.251) and IPv6 (ff02::fb on
 * each link with a link-local address) transport, one socket each.
 *
 * It runs in the supervisor (`kith up`, PID 1), never in a sealed service, so it keeps
 * answering while a service restarts.
 */
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { currentName, handle, initialState, MDNS_PORT, MDNS_V4, MDNS_V6, nextWake, type Event, type Input, type Link, type Send, type State } from './responder.ts';
import type { ServiceAd } from './records.ts';

const IFF_MULTICAST = 0x1000;

export interface LinkChoice {
  /** Announce only these addresses (and the links holding them); all when absent. */
  addresses?: string[];
  /** Include loopback (tests on one host); off by default: nothing on the LAN reaches it. */
  loopback?: boolean;
}

function hasMulticast(name: string): boolean {
  try {
    return (parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16) & IFF_MULTICAST) !== 0;
  } catch {
    return true; // no /sys: let the kernel refuse the membership instead
  }
}

/** The machine's links that can carry mDNS, with their addresses and IPv4 netmasks. */
export function machineLinks(choice: LinkChoice = {}): (Link & { masks: Record<string, string> })[] {
  const out: (Link & { masks: Record<string, string> })[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs || addrs.length === 0) continue;
    if (addrs.some((a) => a.internal) && choice.loopback !== true) continue;
    if (!addrs.some((a) => a.internal) && !hasMulticast(name)) continue;
    const pick = addrs.filter((a) => !choice.addresses || choice.addresses.includes(a.address));
    const v4 = pick.filter((a) => a.family === 'IPv4');
    if (v4.length === 0 && !pick.some((a) => a.family === 'IPv6')) continue;
    const v6 = pick.filter((a) => a.family === 'IPv6').map((a) => a.address);
    out.push({ name, v4: v4.map((a) => a.address), v6, masks: Object.fromEntries(v4.map((a) => [a.address, a.netmask])) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const v4num = (a: string) => a.split('.').reduce((n, o) => (n * 256 + Number(o)) >>> 0, 0);

export interface AdvertiserOptions {
  /** The host label: announced as NAME.local; renamed NAME-2 ... on a conflict. */
  name: string;
  services: ServiceAd[];
  links?: LinkChoice;
  /** How often the interfaces are looked at for address changes (ms). */
  pollMs?: number;
  onEvent?: (e: Event) => void;
  /** For tests: another port than 5353. */
  port?: number;
}

export class Advertiser {
  private state!: State;
  private socket?: dgram.Socket;
  /** IPv6 transport (ff02::fb), when the machine has IPv6. */
  private socket6?: dgram.Socket;
  private joined6 = new Set<string>();
  private timer?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;
  private joined = new Set<string>();
  private masks: Record<string, string> = {};
  private recent = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();
  private readonly port: number;

  private readonly opts: AdvertiserOptions;

  constructor(opts: AdvertiserOptions) {
    this.opts = opts;
    this.port = opts.port ?? MDNS_PORT;
  }

  /** The name this host holds now (after any rename). */
  get name(): string {
    return currentName(this.state);
  }

  get phase(): State['phase'] {
    return this.state.phase;
  }

  async start(): Promise<void> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setMulticastTTL(255);
    socket.setMulticastLoopback(true);
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', () => { /* a send to a vanished link: the next poll sorts it out */ });
    this.socket6 = await this.bind6();
    const links = this.readLinks();
    this.state = initialState(this.opts.name, this.opts.services, links, Date.now(), Math.random);
    this.schedule();
    this.poll = setInterval(() => this.feed({ kind: 'links', links: this.readLinks() }), this.opts.pollMs ?? 2000);
  }

  private async bind6(): Promise<dgram.Socket | undefined> {
    const s6 = dgram.createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
    try {
      await new Promise<void>((resolve, reject) => {
        s6.once('error', reject);
        s6.bind(this.port, '::', () => {
          s6.off('error', reject);
          resolve();
        });
      });
    } catch {
      s6.close();
      return undefined; // no IPv6 here: IPv4 alone
    }
    s6.setMulticastTTL(255);
    s6.setMulticastLoopback(true);
    s6.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    s6.on('error', () => {});
    return s6;
  }

  /** Send goodbyes (TTL 0) for everything announced, then close the socket. */
  async stop(): Promise<void> {
    if (!this.socket) return;
    clearInterval(this.poll);
    clearTimeout(this.timer);
    this.feed({ kind: 'stop' });
    await this.queue;
    const s = this.socket;
    this.socket = undefined;
    await new Promise<void>((r) => s.close(() => r()));
    const s6 = this.socket6;
    this.socket6 = undefined;
    if (s6) await new Promise<void>((r) => s6.close(() => r()));
  }

  private readLinks(): Link[] {
    const links = machineLinks(this.opts.links);
    this.masks = Object.assign({}, ...links.map((l) => l.masks));
    const want = new Set(links.flatMap((l) => l.v4.slice(0, 1)));
    for (const a of want) {
      if (this.joined.has(a)) continue;
      try {
        this.socket?.addMembership(MDNS_V4, a);
        this.joined.add(a);
      } catch { /* the link is going away or has no multicast: tried again next poll */ }
    }
    for (const a of [...this.joined]) {
      if (want.has(a)) continue;
      try { this.socket?.dropMembership(MDNS_V4, a); } catch { /* already gone with its address */ }
      this.joined.delete(a);
    }
    // IPv6: ff02::fb on each link with a link-local address (the scope names the link).
    const want6 = new Set(links.filter((l) => l.v6.some((a) => a.startsWith('fe80:'))).map((l) => l.name));
    for (const name of want6) {
      if (this.joined6.has(name) || !this.socket6) continue;
      try {
        this.socket6.addMembership(MDNS_V6, `::%${name}`);
        this.joined6.add(name);
      } catch { /* tried again next poll */ }
    }
    for (const name of [...this.joined6]) {
      if (want6.has(name)) continue;
      try { this.socket6?.dropMembership(MDNS_V6, `::%${name}`); } catch { /* gone with the link */ }
      this.joined6.delete(name);
    }
    return links.filter((l) => (l.v4.length > 0 && this.joined.has(l.v4[0]!)) || this.joined6.has(l.name)).map(({ name, v4, v6 }) => ({ name, v4, v6 }));
  }

  /** The link a packet came in on: the one whose subnet holds its source address. */
  private linkOf(address: string): string | undefined {
    const scope = /%(.+)$/.exec(address);
    if (scope) return this.state.links.some((l) => l.name === scope[1]) ? scope[1] : undefined;
    for (const l of this.state.links) {
      for (const a of l.v4) {
        const mask = v4num(this.masks[a] ?? '255.255.255.255');
        if (((v4num(a) & mask) >>> 0) === ((v4num(address) & mask) >>> 0)) return l.name;
      }
    }
    return undefined;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const digest = createHash('sha256').update(msg).digest('base64');
    const bare = rinfo.address.replace(/%.*$/, '');
    if (this.recent.has(digest) && this.state.links.some((l) => l.v4.includes(bare) || l.v6.includes(bare))) return; // our own, looped back
    const link = this.linkOf(rinfo.address);
    // RFC 6762 §11: only what comes from a link we are on (IPv6 link-local carries its scope;
    // other IPv6 sources cannot be placed and are taken as they come).
    if (!link && rinfo.family === 'IPv4' && !rinfo.address.startsWith('127.')) return;
    this.feed({ kind: 'packet', bytes: msg, from: { address: rinfo.address, port: rinfo.port }, ...(link ? { link } : {}) });
  }

  private feed(input: Input): void {
    if (!this.socket || !this.state) return;
    const r = handle(this.state, Date.now(), input);
    this.state = r.state;
    for (const s of r.sends) this.send(s);
    for (const e of r.events) this.opts.onEvent?.(e);
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const at = nextWake(this.state);
    if (at === undefined) return;
    this.timer = setTimeout(() => this.feed({ kind: 'tick' }), Math.max(0, at - Date.now()));
  }

  /** Sends go one at a time: the multicast interface is a socket-wide setting. */
  private send(s: Send): void {
    const socket = this.socket;
    if (!socket) return;
    const now = Date.now();
    for (const [k, t] of this.recent) if (now - t > 5000) this.recent.delete(k);
    this.recent.set(createHash('sha256').update(s.bytes).digest('base64'), now);
    this.queue = this.queue.then(() => new Promise<void>((resolve) => {
      try {
        if ('unicast' in s.to) {
          const via = s.to.unicast.address.includes(':') ? this.socket6 : socket;
          if (!via) return resolve();
          via.send(s.bytes, s.to.unicast.port, s.to.unicast.address, () => resolve());
          return;
        }
        const linkName = s.to.link;
        const link = this.state.links.find((l) => l.name === linkName);
        if (!link) return resolve();
        let pending = 0;
        const done = () => { if (--pending <= 0) resolve(); };
        if (link.v4.length > 0 && this.joined.has(link.v4[0]!)) {
          pending++;
          socket.setMulticastInterface(link.v4[0]!);
          socket.send(s.bytes, this.port, MDNS_V4, done);
        }
        if (this.socket6 && this.joined6.has(link.name)) {
          pending++;
          this.socket6.setMulticastInterface(`::%${link.name}`);
          this.socket6.send(s.bytes, this.port, MDNS_V6, done);
        }
        if (pending === 0) resolve();
      } catch {
        resolve();
      }
    }));
  }
}
