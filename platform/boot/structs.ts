/**
 * Byte layouts of the Linux structures the network ioctls take (netdevice(7), route(4)):
 * struct ifreq, struct sockaddr_in and struct rtentry, for 64-bit Linux (x86_64, aarch64).
 * Pure: strings and numbers in, Buffers out.
 */

export const SIOCADDRT = 0x890b;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCSIFADDR = 0x8916;
export const SIOCSIFNETMASK = 0x891c;
export const SIOCGIFHWADDR = 0x8927;

export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_RUNNING = 0x40;

export const RTF_UP = 0x1;
export const RTF_GATEWAY = 0x2;
export const RTF_HOST = 0x4;

const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

/** Dotted quad to 4 bytes; throws on anything that is not one (config is validated first). */
export function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${address}`);
  const out = Buffer.alloc(4);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new Error(`not an IPv4 address: ${address}`);
    out[i] = Number(p);
  });
  return out;
}

export function prefixToNetmask(prefix: number): string {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad prefix length: ${prefix}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.');
}

/** struct sockaddr_in: family (host order), port (network order), address, 8 bytes of zero. */
export function sockaddrIn(address: string, port = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0); // AF_INET; little-endian on both supported targets
  b.writeUInt16BE(port, 2);
  ipv4Bytes(address).copy(b, 4);
  return b;
}

function ifreqName(name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  if (n.length === 0 || n.length >= IFNAMSIZ) throw new Error(`bad interface name: ${name}`);
  const b = Buffer.alloc(IFREQ_SIZE);
  n.copy(b, 0);
  return b;
}

/** ifreq carrying an address (SIOCSIFADDR, SIOCSIFNETMASK). */
export function ifreqAddr(name: string, address: string): Buffer {
  const b = ifreqName(name);
  sockaddrIn(address).copy(b, IFNAMSIZ);
  return b;
}

/** ifreq carrying flags (SIOCGIFFLAGS / SIOCSIFFLAGS). */
export function ifreqFlags(name: string, flags = 0): Buffer {
  const b = ifreqName(name);
  b.writeInt16LE(flags << 16 >> 16, IFNAMSIZ);
  return b;
}

export function readIfreqFlags(b: Buffer): number {
  return b.readUInt16LE(IFNAMSIZ);
}

/** ifreq for SIOCGIFHWADDR; read the MAC back with readIfreqHwaddr. */
export function ifreqEmpty(name: string): Buffer {
  return ifreqName(name);
}

export function readIfreqHwaddr(b: Buffer): Buffer {
  // struct sockaddr: 2 bytes family, then sa_data; the MAC is the first 6 bytes of sa_data.
  return Buffer.from(b.subarray(IFNAMSIZ + 2, IFNAMSIZ + 8));
}

/**
 * struct rtentry (64-bit): pad(8) dst(16)@8 gateway(16)@24 genmask(16)@40 flags(u16)@56
 * pad2@58 pad3(8)@64 pad4(ptr)@72 metric(i16)@80 dev(char*)@88 mtu@96 window@104 irtt@112;
 * 120 bytes. `devPointer` is the address of a NUL-terminated interface name, or 0n.
 */
export function rtentry(r: { dst: string; gateway: string; genmask: string; flags: number; devPointer: bigint }): Buffer {
  const b = Buffer.alloc(120);
  sockaddrIn(r.dst).copy(b, 8);
  sockaddrIn(r.gateway).copy(b, 24);
  sockaddrIn(r.genmask).copy(b, 40);
  b.writeUInt16LE(r.flags, 56);
  b.writeBigUInt64LE(r.devPointer, 88);
  return b;
}
