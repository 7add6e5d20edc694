/**
 * The socket shell: one handler served on UDP and TCP (RFC 1035 §4.2.1, §4.2.2; RFC 7766 §6
 * for TCP: pipelined queries, replies sent as they complete, idle timeout, connection cap).
 *
 * Everything protocol-related lives in the handler; this file only moves bytes. Nothing a
 * client sends can throw out of here: a handler failure is logged and the query dropped.
 */
import { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';

export interface RemoteInfo {
  address: string;
  port: number;
}

export interface HandlerInfo {
  transport: 'udp' | 'tcp';
  remote: RemoteInfo;
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
  log?: ServerLog;
  /** Concurrent TCP connections; more are closed at once (default 128). */
  maxTcpConnections?: number;
  /** Close a TCP connection idle this long (default 10 s, RFC 7766 §6.2.3). */
  tcpIdleMs?: number;
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
            for (const s of tcp.sockets) s.destroy();
            await new Promise<void>((r) => tcp.server.close(() => r()));
          },
        };
      } catch (e) {
        lastErr = e;
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
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onErr);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * Replies go to the address a query came from, always an IP literal: hand it back as it
 * is. dgram's default lookup goes through dns.lookup, which for a literal still defers
 * the send to the next tick — per packet, on the hottest path there is.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  const v = net.isIP(address);
  if (v !== 0) return callback(null, address, v);
  dns.lookup(address, typeof family === 'number' ? family : 0, (err, a, f) => callback(err, a, f));
}

function wireUdp(udp: dgram.Socket, opts: DnsServerOptions): void {
  udp.on('error', (e) => opts.log?.warn('dns: udp socket error', { error: String(e) }));
  udp.on('message', (msg, rinfo) => {
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
      if (fast.length <= MAX_UDP_REPLY) udp.send(fast, rinfo.port, rinfo.address);
      return;
    }
    run(opts, msg, info).then((reply) => {
      // UDP carries one message; multi-message answers (AXFR) are TCP-only.
      const first = Array.isArray(reply) ? reply[0] : reply;
      if (!first || first.length > MAX_UDP_REPLY) return;
      udp.send(first, rinfo.port, rinfo.address, (err) => {
        if (err) opts.log?.debug?.('dns: udp send failed', { error: String(err) });
      });
    });
  });
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

function createTcp(opts: DnsServerOptions): { server: net.Server; sockets: Set<net.Socket> } {
  const sockets = new Set<net.Socket>();
  const maxConns = opts.maxTcpConnections ?? 128;
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const maxPipelined = opts.maxPipelined ?? 16;
  const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: false }, (sock) => {
    if (sockets.size >= maxConns) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    const remote = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    let pending: Buffer = Buffer.alloc(0);
    let inflight = 0;
    let closed = false;
    sock.setNoDelay(true);
    sock.setTimeout(idleMs);
    sock.on('timeout', () => {
      if (inflight === 0) sock.destroy();
    });
    sock.on('error', () => { /* resets and the like: nothing to do but close */ });
    sock.on('close', () => {
      closed = true;
      sockets.delete(sock);
    });
    const pump = () => {
      // A client that sends but never reads must not make us buffer replies without bound.
      while (!closed && inflight < maxPipelined && sock.writableLength < MAX_TCP_BACKLOG && pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (len === 0) { sock.destroy(); return; } // nothing legitimate is empty
        if (pending.length < 2 + len) break;
        const msg = Buffer.from(pending.subarray(2, 2 + len));
        pending = pending.subarray(2 + len);
        inflight++;
        run(opts, msg, { transport: 'tcp', remote }).then((reply) => {
          inflight--;
          if (!closed && reply) {
            for (const m of Array.isArray(reply) ? reply : [reply]) {
              if (m.length > 65535) continue;
              const frame = Buffer.alloc(2 + m.length);
              frame.writeUInt16BE(m.length, 0);
              m.copy(frame, 2);
              sock.write(frame);
            }
          }
          if (!closed) {
            if (sock.isPaused() && inflight < maxPipelined && sock.writableLength < MAX_TCP_BACKLOG) sock.resume();
            pump();
          }
        });
      }
      if (inflight >= maxPipelined || sock.writableLength >= MAX_TCP_BACKLOG) sock.pause();
    };
    sock.on('drain', () => {
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
  return { server, sockets };
}
