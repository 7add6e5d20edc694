/**
 * The forwarder's real `send`: one query over UDP from a fresh socket (a random source
 * port per query, RFC 5452 §9.2), retried over TCP when the answer comes back truncated
 * (RFC 1035 §4.2.1, RFC 7766 §5). Datagrams from another address or with another ID are
 * ignored rather than taken as the answer (RFC 5452 §9.1). The core validates the rest.
 */
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import type { Send, Upstream } from './forwarder.ts';

const MAX_TCP = 65_535;

export function tcpQuery(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: up.host, port: up.port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, out?: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(() => done(new Error(`TCP ${up.host}:${up.port} timed out`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > MAX_TCP + 2) return done(new Error('TCP answer too long'));
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => done(new Error(`TCP ${up.host}:${up.port} closed before a full answer`)));
  });
}

export function udpQuery(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(up.host) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    let finished = false;
    const done = (err: Error | undefined, out?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(() => done(new Error(`UDP ${up.host}:${up.port} timed out`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.port !== up.port || msg.length < 12 || msg.readUInt16BE(0) !== id) return;
      if (normalize(rinfo.address) !== normalize(up.host)) return;
      done(undefined, msg);
    });
    sock.send(query, up.port, up.host, (err) => {
      if (err) done(err);
    });
  });
}

const normalize = (a: string) => a.replace(/^::ffff:/, '').toLowerCase();

/** UDP first, TCP when truncated; the TCP retry gets what is left of the time. */
export function createUdpSend(): Send {
  return async (up, query, { timeoutMs }) => {
    const started = Date.now();
    const answer = await udpQuery(up, query, timeoutMs);
    if (answer[2] & 0x02) {
      return tcpQuery(up, query, Math.max(1, timeoutMs - (Date.now() - started)));
    }
    return answer;
  };
}
