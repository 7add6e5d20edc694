/**
 * DHCPv4 client messages — pure codec and the client's decisions, no sockets.
 *
 * RFC 2131 §2 (message format), §3.1 (DISCOVER/OFFER/REQUEST/ACK exchange), §4.1
 * (broadcast flag: we have no address yet, so ask the server to broadcast replies);
 * RFC 2132 §3.3 subnet mask, §3.5 router, §3.8 DNS, §3.14 host name, §8.3 NTP servers, §9.1 requested
 * address, §9.2 lease time, §9.6 message type, §9.7 server identifier, §9.8 parameter list.
 * Not supported: option overload (§9.3: sname/file carrying options), relay agents,
 * RFC 3396 long-option concatenation (repeated options: the last one wins).
 *
 * decode() never throws: hostile or truncated input is an error value.
 */

export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;

const OPT_PAD = 0;
const OPT_SUBNET = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_HOSTNAME = 12;
const OPT_NTP = 42;
const OPT_REQUESTED_IP = 50;
const OPT_LEASE = 51;
const OPT_MSGTYPE = 53;
const OPT_SERVER_ID = 54;
const OPT_PARAMS = 55;
const OPT_END = 255;

const COOKIE = 0x63825363;
const FIXED = 236; // op..file, RFC 2131 figure 1
const FLAG_BROADCAST = 0x8000;

export interface DhcpMessage {
  op: 1 | 2;
  xid: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  chaddr: Buffer; // hardware address (hlen bytes)
  options: Map<number, Buffer>;
}

export type Decoded = { ok: true; value: DhcpMessage } | { ok: false; error: string };

function ip(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipBytes(s: string): Buffer {
  return Buffer.from(s.split('.').map((x) => Number(x) & 0xff));
}

export function encode(m: DhcpMessage): Buffer {
  const opts: Buffer[] = [];
  for (const [code, value] of m.options) {
    if (code === OPT_PAD || code === OPT_END) continue;
    if (value.length > 255) throw new Error(`DHCP option ${code} too long`);
    opts.push(Buffer.from([code, value.length]), value);
  }
  opts.push(Buffer.from([OPT_END]));
  const head = Buffer.alloc(FIXED + 4);
  head[0] = m.op;
  head[1] = 1; // htype: Ethernet
  head[2] = m.chaddr.length;
  head.writeUInt32BE(m.xid >>> 0, 4);
  head.writeUInt16BE(m.flags, 10);
  ipBytes(m.ciaddr).copy(head, 12);
  ipBytes(m.yiaddr).copy(head, 16);
  ipBytes(m.siaddr).copy(head, 20);
  m.chaddr.copy(head, 28, 0, 16);
  head.writeUInt32BE(COOKIE, FIXED);
  const body = Buffer.concat([head, ...opts]);
  // Some servers drop BOOTP packets shorter than 300 bytes (RFC 1542 §2.1): pad.
  return body.length >= 300 ? body : Buffer.concat([body, Buffer.alloc(300 - body.length)]);
}

export function decode(b: Buffer): Decoded {
  if (b.length < FIXED + 4) return { ok: false, error: `short packet (${b.length} bytes)` };
  const op = b[0];
  if (op !== 1 && op !== 2) return { ok: false, error: `bad op ${op}` };
  const hlen = b[2];
  if (hlen > 16) return { ok: false, error: `bad hlen ${hlen}` };
  if (b.readUInt32BE(FIXED) !== COOKIE) return { ok: false, error: 'no DHCP magic cookie' };
  const options = new Map<number, Buffer>();
  let i = FIXED + 4;
  for (;;) {
    if (i >= b.length) break; // a missing END is tolerated: the data ends the options
    const code = b[i];
    if (code === OPT_END) break;
    if (code === OPT_PAD) { i++; continue; }
    if (i + 1 >= b.length) return { ok: false, error: `option ${code} truncated` };
    const len = b[i + 1];
    if (i + 2 + len > b.length) return { ok: false, error: `option ${code} runs past the packet` };
    options.set(code, Buffer.from(b.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return {
    ok: true,
    value: {
      op, xid: b.readUInt32BE(4), flags: b.readUInt16BE(10),
      ciaddr: ip(b, 12), yiaddr: ip(b, 16), siaddr: ip(b, 20),
      chaddr: Buffer.from(b.subarray(28, 28 + hlen)), options,
    },
  };
}

const PARAMS = Buffer.from([OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_NTP, OPT_LEASE]);

function base(mac: Buffer, xid: number, type: number): DhcpMessage {
  const options = new Map<number, Buffer>([[OPT_MSGTYPE, Buffer.from([type])]]);
  return { op: 1, xid, flags: FLAG_BROADCAST, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', chaddr: mac, options };
}

export function discover(mac: Buffer, xid: number, hostname?: string): Buffer {
  const m = base(mac, xid, DHCPDISCOVER);
  m.options.set(OPT_PARAMS, PARAMS);
  if (hostname) m.options.set(OPT_HOSTNAME, Buffer.from(hostname.slice(0, 63)));
  return encode(m);
}

/** REQUEST in SELECTING state (RFC 2131 §4.3.2): requested IP + server id from the offer. */
export function request(mac: Buffer, xid: number, offer: Lease, hostname?: string): Buffer {
  const m = base(mac, xid, DHCPREQUEST);
  m.options.set(OPT_REQUESTED_IP, ipBytes(offer.address));
  m.options.set(OPT_SERVER_ID, ipBytes(offer.server));
  m.options.set(OPT_PARAMS, PARAMS);
  if (hostname) m.options.set(OPT_HOSTNAME, Buffer.from(hostname.slice(0, 63)));
  return encode(m);
}

export interface Lease {
  address: string;
  prefix: number;
  router?: string;
  dns: string[];
  /** NTP servers (option 42), in the server's order of preference. */
  ntp: string[];
  server: string;
  leaseSeconds: number;
}

/** A list of IPv4 addresses (options 6, 42): whole 4-byte groups; a trailing partial one is dropped. */
function addresses(opt: Buffer | undefined): string[] {
  const out: string[] = [];
  if (!opt) return out;
  for (let i = 0; i + 4 <= opt.length; i += 4) out.push(ip(opt, i));
  return out;
}

function maskToPrefix(mask: Buffer): number | undefined {
  if (mask.length !== 4) return undefined;
  const n = mask.readUInt32BE(0);
  // A valid mask is contiguous ones: the count of leading ones is the prefix, and the
  // mask rebuilt from it must be the same.
  const prefix = Math.clz32(~n >>> 0);
  const expect = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return expect === n ? prefix : undefined;
}

export type Reply =
  | { kind: 'ignore'; why: string }
  | { kind: 'offer'; lease: Lease }
  | { kind: 'ack'; lease: Lease }
  | { kind: 'nak'; why: string };

/**
 * What a received packet means to a client waiting with `xid` and `mac`.
 * Replies for other clients or transactions, and malformed ones, are ignored.
 */
export function interpret(packet: Buffer, xid: number, mac: Buffer): Reply {
  const d = decode(packet);
  if (!d.ok) return { kind: 'ignore', why: d.error };
  const m = d.value;
  if (m.op !== 2) return { kind: 'ignore', why: 'not a BOOTREPLY' };
  if (m.xid !== xid >>> 0) return { kind: 'ignore', why: 'other transaction' };
  if (!m.chaddr.equals(mac)) return { kind: 'ignore', why: 'other client' };
  const type = m.options.get(OPT_MSGTYPE);
  if (!type || type.length !== 1) return { kind: 'ignore', why: 'no message type' };
  if (type[0] === DHCPNAK) return { kind: 'nak', why: 'server refused the request' };
  if (type[0] !== DHCPOFFER && type[0] !== DHCPACK) return { kind: 'ignore', why: `message type ${type[0]}` };
  const server = m.options.get(OPT_SERVER_ID);
  if (!server || server.length !== 4) return { kind: 'ignore', why: 'no server identifier' };
  if (m.yiaddr === '0.0.0.0' || m.yiaddr.startsWith('255.') || Number(m.yiaddr.split('.')[0]) >= 224) {
    return { kind: 'ignore', why: `unusable address ${m.yiaddr}` };
  }
  const maskOpt = m.options.get(OPT_SUBNET);
  const prefix = maskOpt ? maskToPrefix(maskOpt) : 24;
  if (prefix === undefined) return { kind: 'ignore', why: 'bad subnet mask' };
  const router = m.options.get(OPT_ROUTER);
  const dns = addresses(m.options.get(OPT_DNS));
  // Unusable NTP addresses (0.0.0.0, broadcast, multicast) are dropped rather than tried.
  const ntp = addresses(m.options.get(OPT_NTP)).filter((a) => a !== '0.0.0.0' && Number(a.split('.')[0]) < 224);
  const leaseOpt = m.options.get(OPT_LEASE);
  const lease: Lease = {
    address: m.yiaddr,
    prefix,
    router: router && router.length >= 4 ? ip(router, 0) : undefined,
    dns,
    ntp,
    server: ip(server, 0),
    leaseSeconds: leaseOpt && leaseOpt.length === 4 ? leaseOpt.readUInt32BE(0) : 3600,
  };
  return { kind: type[0] === DHCPOFFER ? 'offer' : 'ack', lease };
}
