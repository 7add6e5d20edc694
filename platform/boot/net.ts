/**
 * Network bring-up for PID 1: loopback, then the first NIC with a static address or a
 * DHCP lease (RFC 2131, codec in dhcp.ts), the default route and /etc/resolv.conf.
 * Interfaces are configured with the classic netdevice(7)/route(4) ioctls through libc.ts,
 * since the image has no `ip` binary and the kernel's own IP autoconfig (CONFIG_IP_PNP)
 * is off in Debian's kernels.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as libc from './libc.ts';
import * as st from './structs.ts';
import * as dhcp from './dhcp.ts';
import type { NetworkConfig } from './boot-config.ts';

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

function withSocket<T>(f: (fd: number) => T): T {
  const s = libc.socket(libc.AF_INET, libc.SOCK_DGRAM, 0);
  if (s.fd < 0) throw new Error(`socket: ${libc.strerror(s.errno)}`);
  try {
    return f(s.fd);
  } finally {
    libc.close(s.fd);
  }
}

function must(what: string, errno: number): void {
  if (errno !== 0) throw new Error(`${what}: ${libc.strerror(errno)} (errno ${errno})`);
}

export function linkUp(ifname: string): void {
  withSocket((fd) => {
    const req = st.ifreqFlags(ifname);
    must(`SIOCGIFFLAGS ${ifname}`, libc.ioctl(fd, st.SIOCGIFFLAGS, req));
    const flags = st.readIfreqFlags(req) | st.IFF_UP | st.IFF_RUNNING;
    must(`SIOCSIFFLAGS ${ifname}`, libc.ioctl(fd, st.SIOCSIFFLAGS, st.ifreqFlags(ifname, flags)));
  });
}

export function setAddress(ifname: string, address: string, prefix: number): void {
  withSocket((fd) => {
    must(`SIOCSIFADDR ${ifname} ${address}`, libc.ioctl(fd, st.SIOCSIFADDR, st.ifreqAddr(ifname, address)));
    must(`SIOCSIFNETMASK ${ifname}`, libc.ioctl(fd, st.SIOCSIFNETMASK, st.ifreqAddr(ifname, st.prefixToNetmask(prefix))));
  });
}

/** Add a route; EEXIST (already there, e.g. on lease renewal) is fine. */
export function addRoute(r: { dst: string; genmask: string; gateway?: string; ifname?: string }): void {
  const dev = r.ifname ? Buffer.from(r.ifname + '\0') : undefined;
  let flags = st.RTF_UP;
  if (r.gateway) flags |= st.RTF_GATEWAY;
  if (r.genmask === '255.255.255.255') flags |= st.RTF_HOST;
  const entry = st.rtentry({ dst: r.dst, gateway: r.gateway ?? '0.0.0.0', genmask: r.genmask, flags, devPointer: dev ? libc.pointerOf(dev) : 0n });
  withSocket((fd) => {
    const errno = libc.ioctl(fd, st.SIOCADDRT, entry);
    if (errno !== libc.EEXIST) must(`SIOCADDRT ${r.dst}/${r.genmask} via ${r.gateway ?? '-'}`, errno);
  });
  void dev; // keep the name buffer alive until after the ioctl
}

export function hwaddr(ifname: string): Buffer {
  return withSocket((fd) => {
    const req = st.ifreqEmpty(ifname);
    must(`SIOCGIFHWADDR ${ifname}`, libc.ioctl(fd, st.SIOCGIFHWADDR, req));
    return st.readIfreqHwaddr(req);
  });
}

/** Wait for a network interface other than lo to appear (drivers probe asynchronously). */
export async function waitForInterface(wanted: string | undefined, timeoutMs: number): Promise<string | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let names: string[] = [];
    try {
      names = readdirSync('/sys/class/net').filter((n) => n !== 'lo').sort();
    } catch { /* sysfs not there yet */ }
    const hit = wanted ? names.find((n) => n === wanted) : names[0];
    if (hit) return hit;
    if (Date.now() > until) return undefined;
    await sleep(25);
  }
}

/** Some NICs (e1000) need a moment for carrier after link-up; virtio has it at once. */
async function waitForCarrier(ifname: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (readFileSync(`/sys/class/net/${ifname}/carrier`, 'utf8').trim() === '1') return true;
    } catch { /* EINVAL while down */ }
    if (Date.now() > until) return false;
    await sleep(25);
  }
}

function writeResolvConf(dns: string[]): void {
  if (dns.length === 0) return;
  writeFileSync('/etc/resolv.conf', dns.map((d) => `nameserver ${d}\n`).join(''));
}

/** One DORA exchange on `ifname`; resolves with the ACKed lease or rejects after timeoutMs. */
export function dhcpLease(ifname: string, mac: Buffer, hostname: string, timeoutMs: number, log: Log): Promise<dhcp.Lease> {
  return new Promise((resolve, reject) => {
    const xid = randomInt(0, 2 ** 32 - 1);
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    let packet = dhcp.discover(mac, xid, hostname);
    let state: 'selecting' | 'requesting' = 'selecting';
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (err: Error | undefined, lease?: dhcp.Lease) => {
      clearTimeout(timer);
      clearTimeout(overall);
      try { sock.close(); } catch { /* already closed */ }
      if (err) reject(err); else resolve(lease!);
    };
    const send = () => {
      tries++;
      sock.send(packet, 67, '255.255.255.255', (err) => { if (err) log('dhcp send failed', { error: err.message }); });
      // RFC 2131 §4.1: retransmit with doubling delays (shortened: boot time matters here).
      timer = setTimeout(send, Math.min(4000, 500 * 2 ** Math.min(tries, 3)));
    };
    const overall = setTimeout(() => done(new Error(`no DHCP lease after ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (msg) => {
      const r = dhcp.interpret(msg, xid, mac);
      if (r.kind === 'offer' && state === 'selecting') {
        state = 'requesting';
        log('dhcp offer', { address: r.lease.address, server: r.lease.server });
        packet = dhcp.request(mac, xid, r.lease, hostname);
        clearTimeout(timer);
        tries = 0;
        send();
      } else if (r.kind === 'ack') {
        done(undefined, r.lease);
      } else if (r.kind === 'nak') {
        log('dhcp nak; starting over');
        state = 'selecting';
        packet = dhcp.discover(mac, xid, hostname);
      }
    });
    sock.bind(68, '0.0.0.0', () => {
      sock.setBroadcast(true);
      send();
    });
  });
}

function applyLease(ifname: string, lease: dhcp.Lease, info: NetInfo): void {
  setAddress(ifname, lease.address, lease.prefix);
  if (lease.router) addRoute({ dst: '0.0.0.0', genmask: '0.0.0.0', gateway: lease.router, ifname });
  writeResolvConf(lease.dns);
  info.dns = lease.dns;
  info.ntp = lease.ntp;
}

/** What the network told us: resolvers and NTP servers (DHCP options 6 and 42). A renewal updates it in place. */
export interface NetInfo {
  dns: string[];
  ntp: string[];
}

/** Bring the network up as configured. Throws with a reason when it cannot. */
export async function bringUpNetwork(cfg: NetworkConfig, hostname: string, log: Log, info: NetInfo = { dns: [], ntp: [] }): Promise<NetInfo> {
  linkUp('lo');
  setAddress('lo', '127.0.0.1', 8);
  log('interface up', { ifname: 'lo', address: '127.0.0.1/8' });
  if (cfg.mode === 'none') return info;
  const ifname = await waitForInterface(cfg.interface, 10_000);
  if (!ifname) throw new Error(`no network interface${cfg.interface ? ` named ${cfg.interface}` : ''} appeared`);
  linkUp(ifname);
  if (!(await waitForCarrier(ifname, 5000))) log('no carrier yet; going on', { ifname });
  if (cfg.mode === 'static') {
    setAddress(ifname, cfg.address, cfg.prefix);
    if (cfg.gateway) addRoute({ dst: '0.0.0.0', genmask: '0.0.0.0', gateway: cfg.gateway, ifname });
    writeResolvConf(cfg.dns);
    info.dns = cfg.dns;
    log('interface up', { ifname, address: `${cfg.address}/${cfg.prefix}`, gateway: cfg.gateway ?? '-' });
    return info;
  }
  const mac = hwaddr(ifname);
  // With no address yet there is no route for 255.255.255.255: add a host route through
  // the NIC so the DISCOVER can leave (the classic udhcpc trick, without a raw socket).
  addRoute({ dst: '255.255.255.255', genmask: '255.255.255.255', ifname });
  const started = Date.now();
  const lease = await dhcpLease(ifname, mac, hostname, 20_000, log);
  applyLease(ifname, lease, info);
  log('dhcp lease', { ifname, address: `${lease.address}/${lease.prefix}`, router: lease.router ?? '-', dns: lease.dns.join(',') || '-', ntp: lease.ntp.join(',') || '-', lease: lease.leaseSeconds, ms: Date.now() - started });
  scheduleRenewal(ifname, mac, hostname, lease, log, info);
  return info;
}

/** Renew at T1 = lease/2 (RFC 2131 §4.4.5), by running the exchange again. */
function scheduleRenewal(ifname: string, mac: Buffer, hostname: string, lease: dhcp.Lease, log: Log, info: NetInfo): void {
  const ms = Math.min(Math.max(lease.leaseSeconds, 60) * 500, 2 ** 31 - 1);
  setTimeout(() => {
    dhcpLease(ifname, mac, hostname, 30_000, log).then(
      (next) => {
        applyLease(ifname, next, info);
        log('dhcp renewed', { address: next.address, lease: next.leaseSeconds });
        scheduleRenewal(ifname, mac, hostname, next, log, info);
      },
      (err: Error) => {
        log('dhcp renewal failed; keeping the address and retrying', { error: err.message });
        scheduleRenewal(ifname, mac, hostname, { ...lease, leaseSeconds: 120 }, log, info);
      },
    );
  }, ms).unref();
}
