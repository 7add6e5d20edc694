/**
 * RFC 7766 §6.2 under attack (issue 17 item 2): 2,000 hostile TCP connections to the
 * service, half idle (re-opened as soon as they are closed) and half trickling one byte
 * every 4 s, while `dig +tcp` is answered within a second, 20 times in a row.
 *
 * Before the connection table (tcp-table.ts) the first 128 connections held the service's
 * TCP side for good and dig +tcp timed out every time.
 */
import { execFile } from 'node:child_process';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
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

interface HostileStats { opened: number; live: number; closedByServer: number }

/** tcp-hostile.ts in its own process, under the repository's Node when there is one. */
function hostile(port: number, count: number) {
  const node = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url));
  const child = fork(fileURLToPath(new URL('./tcp-hostile.ts', import.meta.url)), [String(port), String(count)], { execPath: existsSync(node) ? node : process.execPath, stdio: 'ignore' });
  const stats = () => new Promise<HostileStats>((resolve) => { child.once('message', (m) => resolve(m as HostileStats)); child.send('stats'); });
  return {
    stats,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || !child.connected) return resolve();
      child.once('exit', () => resolve());
      child.send('stop');
      setTimeout(() => { child.kill('SIGKILL'); }, 3000).unref();
    }),
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
      for (let i = 0; i < 100 && (await h.stats()).opened < HOSTILE; i++) await sleep(100);
      await sleep(1500);
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await digTcp(dns.port);
        expect(r.out, `dig +tcp #${i + 1} after ${Math.round(r.ms)} ms, ${JSON.stringify(await h.stats())}`).toMatch(/status: NOERROR/);
        expect(r.out).toMatch(/192\.0\.2\.80/);
        times.push(Math.round(r.ms));
        await sleep(300);
      }
      const closed = Object.fromEntries(await Promise.all(['idle', 'slow', 'evicted', 'source-evicted', 'full', 'source-full'].map(async (reason) => [reason, await dns.metric('kith_dns_tcp_closed_total', { reason })])));
      const st = await h.stats();
      console.log(`dig +tcp ms: ${times.join(' ')}; hostile: ${st.opened} opened, ${st.live} open now, ${st.closedByServer} closed by the server; kith_dns_tcp_closed_total ${JSON.stringify(closed)}`);
      expect(Math.max(...times)).toBeLessThan(1000);
      // The table filled and made room (the tricklers go at their deadline, or sooner, for room).
      expect(closed.evicted).toBeGreaterThan(0);
    } finally {
      await h.stop();
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
