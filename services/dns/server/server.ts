/**
 * The socket shell: one handler served on UDP and TCP (RFC 1035 §4.2.1, §4.2.2; RFC 7766 §6
 * for TCP: pipelined queries, replies sent as they complete; §6.2 connection management:
 * idle and per-message deadlines, oldest-idle eviction and a per-source cap, in tcp-table.ts).
 *
 * Everything protocol-related lives in the handler; this file only moves bytes. Nothing a
 * client sends can throw out of here: a handler failure is logged and the query dropped.
 */
import { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { DEFAULT_TCP_LIMITS, TcpTable, type CloseReason, type TcpLimits } from './tcp-table.ts';

export interface RemoteInfo {
  address: string;
  port: number;
}

export interface HandlerInfo {
  transport: 'udp' | 'tcp';
  remote: RemoteInfo;
  /**
   * Set by the service while answering when the query carried a valid server cookie
   * (RFC 7873): the client has shown it receives at its source address.
   */
  validCookie?: boolean;
}

/** Bytes in, reply bytes out; an array for multi-message answers (AXFR), null to drop. */
export type DnsHandler = (msg: Buffer, info: HandlerInfo) => Promise<Buffer | Buffer[] | null>;

export interface ServerLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

export interface DnsServerOptions {
  host: string;
  /** 0 picks a free port (the same number for UDP and TCP when possible). */
  port: number;
  handler: DnsHandler;
  /** Tried first, synchronously: an answer, or undefined to call `handler`. Must not throw. */
  fastPath?: (msg: Buffer, info: HandlerInfo) => Buffer | undefined;
  /**
   * Told when a fast-path UDP reply was queued by the socket rather than handed to the
   * kernel at once (its send buffer was full): the bytes stay in use until sent, so a
   * fastPath that lends out bytes it will change later must stop using them. Must not throw.
   */
  onQueuedReply?: (reply: Buffer) => void;
  /**
   * The last look at each UDP reply (fast or slow path) before it is sent: the bytes to
   * send (the reply, or a replacement such as a truncated one), or undefined to drop it.
   * Response rate limiting lives here. Must not throw.
   */
  udpReply?: (reply: Buffer, info: HandlerInfo) => Buffer | undefined;
  log?: ServerLog;
  /**
   * TCP connection limits (tcp-table.ts), or a function read on every connection and sweep
   * so that a config change applies live. Defaults: DEFAULT_TCP_LIMITS.
   */
  tcp?: Partial<TcpLimits> | (() => TcpLimits);
  /** Told each time a TCP connection is closed or refused by the limits, with the reason. */
  onTcpClose?: (reason: CloseReason) => void;
  /** The clock (ms), for the TCP deadlines. */
  now?: () => number;
  /** Queries being answered at once on one TCP connection before we stop reading (default 16). */
  maxPipelined?: number;
}

export interface DnsServer {
  udpPort: number;
  tcpPort: number;
  close(): Promise<void>;
}

const MAX_UDP_REPLY = 65507;
/** Reply bytes queued to one TCP client before we stop reading its queries. */
const MAX_TCP_BACKLOG = 1 << 20;
/** How often TCP deadlines are checked. */
const SWEEP_MS = 250;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const log = opts.log;
  const family = net.isIPv6(opts.host) ? 'udp6' : 'udp4';
  let lastErr: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const udp = dgram.createSocket({ type: family, reuseAddr: false, lookup: literalLookup });
    try {
      const udpPort = await bindUdp(udp, opts.host, opts.port);
      const tcp = createTcp(opts);
      try {
        const tcpPort = await listenTcp(tcp.server, opts.host, udpPort);
        wireUdp(udp, opts);
        return {
          udpPort,
          tcpPort,
          close: async () => {
            await new Promise<void>((r) => udp.close(() => r()));
            clearInterval(tcp.sweeper);
            for (const s of tcp.sockets) s.destroy();
            await new Promise<void>((r) => tcp.server.close(() => r()));
          },
        };
      } catch (e) {
        lastErr = e;
        clearInterval(tcp.sweeper);
        tcp.server.close();
        await new Promise<void>((r) => udp.close(() => r()));
        if (opts.port !== 0) throw e;
      }
    } catch (e) {
      lastErr = e;
      try { udp.close(); } catch { /* already closed */ }
      if (opts.port !== 0) throw e;
    }
  }
  log?.warn('dns: could not bind the same port on UDP and TCP', { error: String(lastErr) });
  throw lastErr;
}

function bindUdp(udp: dgram.Socket, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    udp.once('error', onErr);
    udp.bind(port, host, () => {
      udp.off('error', onErr);
      resolve(udp.address().port);
    });
  });
}

function listenTcp(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once('error', onErr);
    // A deep accept queue: under a connection flood a new client's SYN is queued rather
    // than dropped (and retried a second later), and the table then makes room for it.
    server.listen({ host, port, exclusive: true, backlog: 4096 }, () => {
      server.off('error', onErr);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** The last address literalLookup was asked for, and its family. */
let lastLiteral = '';
let lastFamily = 4;

/**
 * Replies go to the address a query came from, always an IP literal: hand it back as it
 * is. dgram's default lookup goes through dns.lookup, which for a literal still defers
 * the send to the next tick — per packet, on the hottest path there is.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  // Most replies go where the last one went: a string comparison is cheaper than isIP's regex.
  if (address === lastLiteral) return callback(null, address, lastFamily);
  const v = net.isIP(address);
  if (v !== 0) {
    lastLiteral = address;
    lastFamily = v;
    return callback(null, address, v);
  }
  dns.lookup(address, typeof family === 'number' ? family : 0, (err, a, f) => callback(err, a, f));
}

function wireUdp(udp: dgram.Socket, opts: DnsServerOptions): void {
  const gate = opts.udpReply;
  const queued = opts.onQueuedReply;
  udp.on('error', (e) => opts.log?.warn('dns: udp socket error', { error: String(e) }));
  udp.on('message', (msg, rinfo) => {
    // Source port 0 means no reply is possible (RFC 768), and dgram's send throws on it:
    // such a datagram, always forged, is dropped unread.
    if (rinfo.port === 0) return;
    // rinfo is a fresh object per datagram: the handler may keep it as its remote.
    const info: HandlerInfo = { transport: 'udp', remote: rinfo };
    // A ready answer (a cache hit) goes out at once, without the promise machinery.
    let fast: Buffer | undefined;
    try {
      fast = opts.fastPath?.(msg, info);
    } catch {
      fast = undefined; // the slow path answers (or drops) it
    }
    if (fast) {
      if (gate) fast = gateReply(gate, fast, info);
      if (fast && fast.length <= MAX_UDP_REPLY) {
        // With an IP literal (literalLookup) the send is tried at once; when the kernel
        // took it, nothing holds the bytes after this line. The queue count is libuv's:
        // it also counts a send made at once whose completion is not yet reported — a
        // false alarm costs one copy, never a wrong reply.
        udp.send(fast, rinfo.port, rinfo.address);
        if (queued && udp.getSendQueueCount() > 0) queued(fast);
      }
      return;
    }
    run(opts, msg, info).then((reply) => {
      // UDP carries one message; multi-message answers (AXFR) are TCP-only.
      let first: Buffer | null | undefined = Array.isArray(reply) ? reply[0] : reply;
      if (first && gate) first = gateReply(gate, first, info);
      if (!first || first.length > MAX_UDP_REPLY) return;
      const failed = (err: unknown) => opts.log?.debug?.('dns: udp send failed', { error: String(err) });
      try {
        udp.send(first, rinfo.port, rinfo.address, (err) => { if (err) failed(err); });
      } catch (e) {
        failed(e); // the socket closed while this query was being answered
      }
    });
  });
}

/** The udpReply hook; a throw sends the reply as it is (a bug there must not silence us). */
function gateReply(gate: NonNullable<DnsServerOptions['udpReply']>, reply: Buffer, info: HandlerInfo): Buffer | undefined {
  try {
    return gate(reply, info);
  } catch {
    return reply;
  }
}

/** Call the handler; any throw or rejection becomes a drop, logged. */
async function run(opts: DnsServerOptions, msg: Buffer, info: HandlerInfo): Promise<Buffer | Buffer[] | null> {
  try {
    return await opts.handler(msg, info);
  } catch (e) {
    opts.log?.warn('dns: handler failed; query dropped', { error: String(e), transport: info.transport });
    return null;
  }
}

function createTcp(opts: DnsServerOptions): { server: net.Server; sockets: Set<net.Socket>; sweeper: NodeJS.Timeout } {
  const sockets = new Set<net.Socket>();
  const table = new TcpTable<net.Socket>();
  const limits = (): TcpLimits => (typeof opts.tcp === 'function' ? opts.tcp() : { ...DEFAULT_TCP_LIMITS, ...opts.tcp });
  const maxPipelined = opts.maxPipelined ?? 16;
  const now = opts.now ?? Date.now;
  const close = (sock: net.Socket, reason: CloseReason) => {
    opts.onTcpClose?.(reason);
    sock.destroy();
  };
  // One pass over the table every SWEEP_MS closes the idle, the slow and the stalled.
  const sweeper = setInterval(() => {
    for (const x of table.sweep(now(), limits())) close(x.handle, x.reason);
  }, SWEEP_MS);
  sweeper.unref();
  const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: false }, (sock) => {
    sock.on('error', () => { /* resets and the like: nothing to do but close */ });
    const remote = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    const admitted = table.admit(now(), sock, remote.address, limits());
    if (!admitted.ok) {
      close(sock, admitted.reason);
      return;
    }
    for (const x of admitted.evict) close(x.handle, x.reason);
    sockets.add(sock);
    let pending: Buffer = Buffer.alloc(0);
    let inflight = 0;
    let closed = false;
    sock.setNoDelay(true);
    sock.on('close', () => {
      closed = true;
      sockets.delete(sock);
      table.remove(sock);
    });
    const pump = () => {
      // A client that sends but never reads must not make us buffer replies without bound.
      let completed = 0;
      while (!closed && inflight < maxPipelined && sock.writableLength < MAX_TCP_BACKLOG && pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (len === 0) { sock.destroy(); return; } // nothing legitimate is empty
        if (pending.length < 2 + len) break;
        const msg = Buffer.from(pending.subarray(2, 2 + len));
        pending = pending.subarray(2 + len);
        inflight++;
        completed++;
        table.inflight(now(), sock, 1);
        run(opts, msg, { transport: 'tcp', remote }).then((reply) => {
          inflight--;
          table.inflight(now(), sock, -1);
          if (!closed && reply) {
            let ok = true;
            for (const m of Array.isArray(reply) ? reply : [reply]) {
              if (m.length > 65535) continue;
              const frame = Buffer.alloc(2 + m.length);
              frame.writeUInt16BE(m.length, 0);
              m.copy(frame, 2);
              ok = sock.write(frame) && ok;
            }
            if (!ok) table.writeBlocked(now(), sock, true);
          }
          if (!closed) {
            if (sock.isPaused() && inflight < maxPipelined && sock.writableLength < MAX_TCP_BACKLOG) sock.resume();
            pump();
          }
        });
      }
      if (inflight >= maxPipelined || sock.writableLength >= MAX_TCP_BACKLOG) sock.pause();
      // Only an incomplete frame we are reading runs against the message deadline: whole
      // ones held back by the pipelining bound, and the rest of a frame while we are not
      // reading, wait on us, not on the client.
      const partial = !sock.isPaused() && pending.length > 0 && (pending.length < 2 || pending.length < 2 + pending.readUInt16BE(0));
      table.received(now(), sock, completed, partial);
    };
    sock.on('drain', () => {
      table.writeBlocked(now(), sock, false);
      if (!closed && sock.isPaused() && inflight < maxPipelined) sock.resume();
      pump();
    });
    sock.on('data', (chunk: Buffer) => {
      // At most one maximal frame plus a partial one is ever kept: pause bounds the rest.
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pump();
    });
  });
  server.on('error', (e) => opts.log?.warn('dns: tcp server error', { error: String(e) }));
  return { server, sockets, sweeper };
}
