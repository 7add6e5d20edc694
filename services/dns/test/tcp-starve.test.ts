/**
 * RFC 7766 §6.2 under attack (issue 17 item 2): 2,000 hostile TCP connections to the
 * service, half idle (re-opened as soon as they are closed) and half trickling one byte
 * every 4 s, while `dig +tcp` is answered within a second, 20 times in a row.
 *
 * Before the connection table (tcp-table.ts) the first 128 connections held the service's
 * TCP side for good and dig +tcp timed out every time.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_ZONE, startDnsService, type DnsUnderTest } from './service.ts';

const HOSTILE = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function digTcp(port: number): Promise<{ ms: number; out: string }> {
  const t = performance.now();
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+tcp', '+time=1', '+tries=1', '+norec', 'www.example.test', 'A'], { timeout: 5000 }, (_e, stdout) => {
      resolve({ ms: performance.now() - t, out: String(stdout) });
    });
  });
}

/** Keeps `count` connections open (re-opening closed ones after 1–2 s); half trickle. */
function hostile(port: number, count: number) {
  let stopped = false;
  const live = new Set<net.Socket>();
  let opened = 0;
  let closedByServer = 0;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  };
  const one = (i: number) => {
    if (stopped) return;
    // Spread over 100 loopback sources (127.0.0.2-101): under the per-source cap each.
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 100)}` });
    opened++;
    live.add(sock);
    sock.on('error', () => {});
    let trickle: NodeJS.Timeout | undefined;
    if (i % 2 === 1) {
      // A query sent one byte every 4 s: never complete within any sane deadline.
      const q = Buffer.from([0, 29, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1]);
      let n = 0;
      sock.on('connect', () => {
        sock.write(q.subarray(n, ++n));
        trickle = setInterval(() => { if (n < q.length) sock.write(q.subarray(n, ++n)); }, 4000);
      });
    }
    sock.on('close', () => {
      if (trickle) clearInterval(trickle);
      live.delete(sock);
      if (!stopped) {
        closedByServer++;
        later(1000 + Math.random() * 1000, () => one(i));
      }
    });
  };
  for (let i = 0; i < count; i++) one(i);
  return {
    get live() { return live.size; },
    get opened() { return opened; },
    get closedByServer() { return closedByServer; },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of live) s.destroy();
    },
  };
}

describe('TCP that cannot be starved (RFC 7766 §6.2)', () => {
  let dns: DnsUnderTest;
  beforeAll(async () => { dns = await startDnsService({ 'dns/zones/example.test.zone': EXAMPLE_ZONE }); });
  afterAll(async () => { await dns?.stop(); });

  it('answers dig +tcp within 1 s, 20 times in a row, while 2,000 idle and trickling connections are held', async () => {
    const h = hostile(dns.port, HOSTILE);
    try {
      // Let every hostile connection get in (or be turned away) first.
      for (let i = 0; i < 50 && h.opened < HOSTILE; i++) await sleep(100);
      await sleep(1500);
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await digTcp(dns.port);
        expect(r.out, `dig +tcp #${i + 1} after ${Math.round(r.ms)} ms, ${h.live} hostile connections open`).toMatch(/status: NOERROR/);
        expect(r.out).toMatch(/192\.0\.2\.80/);
        times.push(Math.round(r.ms));
        await sleep(300);
      }
      const closed = Object.fromEntries(await Promise.all(['idle', 'slow', 'evicted', 'source-evicted', 'full', 'source-full'].map(async (reason) => [reason, await dns.metric('kith_dns_tcp_closed_total', { reason })])));
      console.log(`dig +tcp ms: ${times.join(' ')}; hostile: ${h.opened} opened, ${h.live} open now, ${h.closedByServer} closed by the server; kith_dns_tcp_closed_total ${JSON.stringify(closed)}`);
      expect(Math.max(...times)).toBeLessThan(1000);
      // The table filled and made room (the tricklers go at their deadline, or sooner, for room).
      expect(closed.evicted).toBeGreaterThan(0);
    } finally {
      h.stop();
    }
  });

  it('takes its limits from dns/dns.yaml, live', async () => {
    const open = () => new Promise<net.Socket>((r) => { const c = net.connect(dns.port, '127.0.0.1', () => r(c)); c.on('error', () => {}); });
    const closed = (x: net.Socket) => new Promise<void>((r) => { if (x.destroyed) r(); x.on('close', () => r()); });
    expect((await dns.write({ 'dns/dns.yaml': 'tcp:\n  maxConnections: 1\n  idleTimeout: 0.5\n' })).applied).toBe(true);
    const a = await open();
    const b = await open();
    await closed(a); // evicted for b at once
    const t = Date.now();
    await closed(b); // idle for half a second
    expect(Date.now() - t).toBeLessThan(1500);
    expect((await dns.write({ 'dns/dns.yaml': 'tcp:\n  maxConnections: 5\n' })).applied).toBe(true);
    const c = await open();
    const d = await open();
    await sleep(100);
    expect([c.destroyed, d.destroyed]).toEqual([false, false]);
    c.destroy();
    d.destroy();
  });
});
