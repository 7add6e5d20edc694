import { afterEach, describe, expect, it, vi } from 'vitest';
import { Buffer } from 'node:buffer';
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { startDnsServer, type DnsHandler, type DnsServer } from './server.ts';

const servers: DnsServer[] = [];
afterEach(async () => { while (servers.length) await servers.pop()!.close(); });

/** Echo handler: replies with the query bytes, QR set; 'multi' sends three messages; 'boom' throws. */
const echo: DnsHandler = async (msg) => {
  if (msg.length < 12) return null;
  const text = msg.subarray(12).toString('latin1');
  if (text.includes('boom')) throw new Error('handler bug');
  const r = Buffer.from(msg);
  r[2] |= 0x80;
  if (text.includes('slow')) await new Promise((res) => setTimeout(res, 50));
  if (text.includes('multi')) return [r, r, r];
  return r;
};

const echoSync = (msg: Buffer) => { const r = Buffer.from(msg); r[2] |= 0x80; return r; };

async function start(extra: Partial<Parameters<typeof startDnsServer>[0]> = {}): Promise<DnsServer> {
  const s = await startDnsServer({ host: '127.0.0.1', port: 0, handler: echo, log: { warn: () => {} }, ...extra });
  servers.push(s);
  return s;
}

const query = (id: number, name: string) => dnsPacket.encode({ id, type: 'query', questions: [{ name, type: 'A' }] });
const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);

/** Connect, send (running any function among the chunks in turn), collect framed replies until `count` arrive or the socket closes. */
function tcpExchange(port: number, chunks: (Buffer | (() => Promise<void>))[], count: number, gapMs = 0): Promise<{ replies: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const replies: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => { if (!done) { done = true; clearTimeout(deadline); sock.destroy(); resolve({ replies, closed }); } };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (replies.length >= count) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        if (typeof c === 'function') { await c(); continue; } // a step of the test's between writes
        sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    // Only a deadline for a reply that never comes; generous for a loaded machine.
    const deadline = setTimeout(() => finish(false), 15_000);
  });
}

/**
 * A clock for the server's TCP deadlines that moves only when the test says, so that idle
 * and message timeouts happen when the test decides, however slow the machine. `reads`
 * counts its readings: with no traffic, only the sweep (every 250 ms) reads it.
 */
function testClock() {
  const c = {
    ms: 0,
    reads: 0,
    now: () => { c.reads++; return c.ms; },
    /** Resolves once the clock has been read `n` more times (n sweeps, when nothing else is going on). */
    sweeps: (n: number) => { const target = c.reads + n; return vi.waitFor(() => expect(c.reads).toBeGreaterThanOrEqual(target), { timeout: 15_000, interval: 20 }); },
  };
  return c;
}

describe('startDnsServer', () => {
  it('serves UDP and TCP on the same port', async () => {
    const s = await start();
    expect(s.udpPort).toBe(s.tcpPort);
    const sock = dgram.createSocket('udp4');
    const reply = await new Promise<Buffer>((resolve) => {
      sock.on('message', (m) => resolve(m));
      sock.send(query(7, 'a.test'), s.udpPort, '127.0.0.1');
    });
    sock.close();
    expect(reply.readUInt16BE(0)).toBe(7);
    const { replies } = await tcpExchange(s.tcpPort, [frame(query(8, 'b.test'))], 1);
    expect(replies[0].readUInt16BE(0)).toBe(8);
  });

  it('answers pipelined queries on one connection, slow ones after fast ones', async () => {
    const s = await start();
    const msgs = [query(1, 'slow.test'), query(2, 'a.test'), query(3, 'b.test'), query(4, 'multi.test')];
    const { replies } = await tcpExchange(s.tcpPort, [Buffer.concat(msgs.map(frame))], 6);
    expect(replies.map((r) => r.readUInt16BE(0)).sort()).toEqual([1, 2, 3, 4, 4, 4]);
    expect(replies[replies.length - 1].readUInt16BE(0)).toBe(1);
  });

  it('reassembles frames split into single bytes', async () => {
    const s = await start();
    const bytes = Buffer.concat([frame(query(11, 'a.test')), frame(query(12, 'b.test'))]);
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    const { replies } = await tcpExchange(s.tcpPort, chunks, 2, 1);
    expect(replies.map((r) => r.readUInt16BE(0))).toEqual([11, 12]);
  });

  it('survives garbage, handler throws, and closes on a zero-length frame', async () => {
    const s = await start();
    const junk = Buffer.from([0, 3, 1, 2, 3]); // a 3-byte "message": the handler drops it
    const { replies } = await tcpExchange(s.tcpPort, [junk, frame(query(5, 'boom.test')), frame(query(6, 'ok.test'))], 1);
    expect(replies.map((r) => r.readUInt16BE(0))).toEqual([6]);
    const z = await tcpExchange(s.tcpPort, [Buffer.from([0, 0])], 1);
    expect(z.closed).toBe(true);
    // UDP garbage: no reply, server still alive.
    const sock = dgram.createSocket('udp4');
    sock.send(Buffer.from([1, 2, 3]), s.udpPort, '127.0.0.1');
    sock.send(query(5, 'boom.test'), s.udpPort, '127.0.0.1');
    const reply = await new Promise<Buffer>((resolve) => {
      sock.on('message', (m) => resolve(m));
      sock.send(query(9, 'fine.test'), s.udpPort, '127.0.0.1');
    });
    sock.close();
    expect(reply.readUInt16BE(0)).toBe(9);
  });

  const open = (port: number, localAddress?: string) => new Promise<net.Socket>((r) => {
    const c = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => r(c));
    c.on('error', () => {});
  });
  const closedAfter = (x: net.Socket) => new Promise<number>((r) => { const t = Date.now(); if (x.destroyed) r(0); x.on('close', () => r(Date.now() - t)); });

  it('when full, a new connection evicts the longest-idle one; idle ones close on their own', async () => {
    const reasons: string[] = [];
    const clock = testClock();
    const s = await start({ tcp: { maxConnections: 2, maxPerSource: 10, idleMs: 400, messageMs: 5000 }, onTcpClose: (r) => reasons.push(r), now: clock.now });
    const a = await open(s.tcpPort);
    const b = await open(s.tcpPort);
    const c = await open(s.tcpPort);
    // The clock stands still, so nothing is idle long enough to time out: a goes because c
    // came (the server records why before the client sees the close).
    await closedAfter(a);
    expect(reasons).toEqual(['evicted']);
    const { replies } = await tcpExchange(s.tcpPort, [frame(query(3, 'a.test'))], 1);
    expect(replies[0].readUInt16BE(0)).toBe(3); // evicts b, is answered
    expect(reasons).toEqual(['evicted', 'evicted']);
    // Idle for 399 ms of the server's clock, through two sweeps: still open.
    clock.ms = 399;
    await clock.sweeps(2);
    expect(c.destroyed).toBe(false);
    expect(reasons).toEqual(['evicted', 'evicted']);
    // 400 ms: the next sweep closes it on its own.
    clock.ms = 400;
    await closedAfter(c);
    expect(b.destroyed).toBe(true);
    expect(reasons.slice(0, 3)).toEqual(['evicted', 'evicted', 'idle']);
  });

  it('closes a client that trickles a query a byte at a time past the message deadline', async () => {
    const reasons: string[] = [];
    const s = await start({ tcp: { maxConnections: 10, maxPerSource: 10, idleMs: 10_000, messageMs: 500 }, onTcpClose: (r) => reasons.push(r) });
    const c = await open(s.tcpPort);
    const bytes = frame(query(4, 'trickle.test'));
    let i = 0;
    const t = setInterval(() => { if (!c.destroyed && i < bytes.length) c.write(bytes.subarray(i, ++i)); }, 100);
    let answered = false;
    c.on('data', () => { answered = true; });
    const took = await closedAfter(c);
    clearInterval(t);
    process.stdout.write(`dns server: a trickling client closed ${took} ms after it began (message deadline 500 ms, the whole query would take ${bytes.length * 100} ms)\n`);
    // Never before the deadline (a timer does not fire early); closed as slow before its
    // query was complete, so never answered.
    expect(took).toBeGreaterThanOrEqual(500);
    expect(reasons).toEqual(['slow']);
    expect(answered).toBe(false);
    expect(i).toBeLessThan(bytes.length);
  });

  it('does not hold a frame we stopped reading (pipelining bound) against the client', async () => {
    // One query at a time; the message deadline is 300 ms of the server's clock. The next
    // query's first bytes come with the first query; while the first is being answered, 1 s
    // passes and the server sweeps twice, then the first is answered and the tail follows:
    // while we were not reading, the partial frame's clock did not run.
    const clock = testClock();
    const reasons: string[] = [];
    let release = () => {};
    let handling = false;
    const s = await start({
      handler: async (m) => {
        if (m.readUInt16BE(0) === 1) { handling = true; await new Promise<void>((r) => { release = r; }); }
        return echoSync(m);
      },
      maxPipelined: 1,
      tcp: { maxConnections: 10, maxPerSource: 10, idleMs: 10_000, messageMs: 300 },
      now: clock.now,
      onTcpClose: (r) => reasons.push(r),
    });
    const next = frame(query(2, 'b.test'));
    let closedMeanwhile: string[] = ['not looked at'];
    const { replies, closed } = await tcpExchange(s.tcpPort, [
      Buffer.concat([frame(query(1, 'a.test')), next.subarray(0, 5)]),
      async () => {
        await vi.waitFor(() => expect(handling).toBe(true), { timeout: 15_000, interval: 10 });
        clock.ms = 1000;
        await clock.sweeps(2);
        closedMeanwhile = [...reasons];
        release();
      },
      next.subarray(5),
    ], 2);
    expect(reasons).toEqual([]);
    expect(closed).toBe(false);
    expect(closedMeanwhile).toEqual([]); // the two sweeps at 1 s did run, and closed nothing
    expect(replies.map((r) => r.readUInt16BE(0))).toEqual([1, 2]);
  });

  it('a source over its cap only evicts its own idle connections', async () => {
    const reasons: string[] = [];
    const s = await start({ tcp: { maxConnections: 100, maxPerSource: 2, idleMs: 10_000, messageMs: 5000 }, onTcpClose: (r) => reasons.push(r), now: testClock().now });
    const other = await open(s.tcpPort, '127.0.0.2');
    const a1 = await open(s.tcpPort);
    const a2 = await open(s.tcpPort);
    const a3 = await open(s.tcpPort);
    // The server's clock stands still (nothing times out); a3's admission closed a1, and
    // the server records every close it makes before the client sees one: only that one.
    await closedAfter(a1);
    expect(reasons).toEqual(['source-evicted']);
    expect([other.destroyed, a2.destroyed, a3.destroyed]).toEqual([false, false, false]);
    for (const x of [other, a2, a3]) x.destroy();
  });

  it('limits given as a function apply to the next connection', async () => {
    let max = 1;
    const reasons: string[] = [];
    const s = await start({ tcp: () => ({ maxConnections: max, maxPerSource: 10, idleMs: 10_000, messageMs: 5000 }), onTcpClose: (r) => reasons.push(r), now: testClock().now });
    const a = await open(s.tcpPort);
    const b = await open(s.tcpPort);
    await closedAfter(a); // evicted for b (the clock stands still: nothing times out)
    expect(reasons).toEqual(['evicted']);
    max = 5;
    const c = await open(s.tcpPort);
    // c's admission (under the new limit) is done once it has answered: nothing was closed for it.
    const { replies } = await tcpExchange(s.tcpPort, [frame(query(5, 'c.test'))], 1);
    expect(replies[0]!.readUInt16BE(0)).toBe(5);
    expect(reasons).toEqual(['evicted']);
    expect([b.destroyed, c.destroyed]).toEqual([false, false]);
    b.destroy();
    c.destroy();
  });

  it('passes every UDP reply, fast path or handler, through udpReply: send, replace or drop', async () => {
    const seen: string[] = [];
    const s = await start({
      fastPath: (msg) => (msg.subarray(12).toString('latin1').includes('fast') ? echoSync(msg) : undefined),
      udpReply: (reply) => {
        const text = reply.subarray(12).toString('latin1');
        seen.push(text.includes('fast') ? 'fast' : 'slow');
        if (text.includes('drop')) return undefined;
        if (text.includes('swap')) { const r = Buffer.from(reply); r[2] |= 0x02; return r; }
        return reply;
      },
    });
    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    for (const [id, name] of [[1, 'fast.test'], [2, 'drop.fast.test'], [3, 'swap.test'], [4, 'drop.test'], [5, 'plain.test']] as const) sock.send(query(id, name), s.udpPort, '127.0.0.1');
    // Once udpReply has seen all five, what was let through has been sent: wait for it.
    await vi.waitFor(() => { expect(seen).toHaveLength(5); expect(got).toHaveLength(3); }, { timeout: 15_000, interval: 10 });
    sock.close();
    expect(got.map((m) => m.readUInt16BE(0)).sort()).toEqual([1, 3, 5]);
    expect(got.find((m) => m.readUInt16BE(0) === 3)![2]! & 0x02).toBe(2);
    expect(seen.sort()).toEqual(['fast', 'fast', 'slow', 'slow', 'slow']);
  });

  it('a fast-path reply lent from shared bytes is never overwritten before it is sent (onQueuedReply)', async () => {
    // As the response cache's lend(): one buffer, the client's ID written in per reply; a
    // queued send takes that buffer with it and later replies use a fresh one. Loopback
    // never fills a send buffer, so the socket here queues every other reply for a while.
    let shared = Buffer.alloc(400, 0x61);
    let queued = 0;
    const s = await start({
      fastPath: (msg) => { shared.writeUInt16BE(msg.readUInt16BE(0), 0); shared[2] = 0x80; return shared; },
      onQueuedReply: (reply) => { queued++; if (reply === shared) shared = Buffer.from(shared); },
    });
    const realSend = dgram.Socket.prototype.send;
    let held = 0;
    let n = 0;
    const send = vi.spyOn(dgram.Socket.prototype, 'send').mockImplementation(function (this: dgram.Socket, ...args: unknown[]) {
      if (args[0] !== shared || n++ % 2 === 0) return (realSend as (...a: unknown[]) => void).apply(this, args);
      held++;
      setTimeout(() => { held--; (realSend as (...a: unknown[]) => void).apply(this, args); }, 20);
    } as typeof realSend);
    const count = vi.spyOn(dgram.Socket.prototype, 'getSendQueueCount').mockImplementation(() => held);
    try {
      const sock = dgram.createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const got: number[] = [];
      sock.on('message', (m) => got.push(m.readUInt16BE(0)));
      for (let id = 1; id <= 50; id++) sock.send(query(id, 'burst.test'), s.udpPort, '127.0.0.1');
      await vi.waitFor(() => expect(got).toHaveLength(50), { timeout: 15_000, interval: 10 });
      sock.close();
      expect(queued).toBeGreaterThan(0);
      expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    } finally {
      send.mockRestore();
      count.mockRestore();
    }
  });

  it('serves IPv6 loopback', async () => {
    let s: DnsServer;
    try {
      s = await start({ host: '::1' });
    } catch {
      return; // no IPv6 on this machine
    }
    const sock = dgram.createSocket('udp6');
    const reply = await new Promise<Buffer>((resolve) => {
      sock.on('message', (m) => resolve(m));
      sock.send(query(21, 'v6.test'), s.udpPort, '::1');
    });
    sock.close();
    expect(reply.readUInt16BE(0)).toBe(21);
    const c = net.connect(s.tcpPort, '::1');
    const got = await new Promise<number>((resolve) => {
      c.on('data', (d: Buffer) => resolve(d.readUInt16BE(2)));
      c.write(frame(query(22, 'v6.test')));
    });
    c.destroy();
    expect(got).toBe(22);
  });
});
