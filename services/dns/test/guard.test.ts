/**
 * The DNS service under hostile load, with real clients over real sockets (issue 17 items
 * 2, 3 and 8). One file, so that its floods never run beside each other.
 *
 * TCP (RFC 7766 §6.2): 2,000 hostile TCP connections (tcp-hostile.ts, its own process),
 * half idle and re-opened 5-10 s after the server closes them, half trickling one byte
 * every 4 s, while `dig +tcp` is answered, 20 times in a row (within a second on a quiet
 * machine: the figures are printed; the bound asserted is a generous 5 s). Before the
 * connection table (server/tcp-table.ts) the first 128 connections held the service's TCP
 * side and dig +tcp failed at once (connection reset).
 *
 * Response rate limiting (rrl/) and DNS cookies (cookie/): a UDP flood of one name from
 * loopback gets a few answers, then truncated (TC) replies for every 2nd and nothing for
 * the rest, counted in /metrics; a dig client that sends back the server cookie it learnt
 * is answered every time meanwhile. Loopback is in the default recursion allow list,
 * whose clients are never limited, so these tests set `recursion.allow` to a network that
 * is not loopback. Before RRL, 16,552 of the 20,000 flood queries were answered in full.
 */
import { execFile, fork } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXAMPLE_ZONE, startDnsService, type DnsUnderTest } from './service.ts';

const HOSTILE = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connect, ask www.example.test A over TCP, and resolve with the ms to the answer (Infinity if none in 5 s). */
function tcpProbe(port: number): Promise<number> {
  const t = performance.now();
  return new Promise((resolve) => {
    const q = dnsPacket.encode({ id: 77, type: 'query', questions: [{ name: 'www.example.test', type: 'A' }] });
    const sock = net.connect(port, '127.0.0.1', () => sock.write(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])));
    let got = Buffer.alloc(0);
    const done = (ms: number) => { clearTimeout(timer); sock.destroy(); resolve(ms); };
    const timer = setTimeout(() => done(Infinity), 5000);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) done(performance.now() - t);
    });
    sock.on('error', () => done(Infinity));
  });
}

function digTcp(port: number): Promise<{ ms: number; out: string }> {
  const t = performance.now();
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+tcp', '+time=5', '+tries=1', '+norec', 'www.example.test', 'A'], { timeout: 15_000 }, (_e, stdout) => {
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

  it('answers dig +tcp, 20 times in a row, while 2,000 idle and trickling connections are held', async () => {
    const h = hostile(dns.port, HOSTILE);
    try {
      // Let the first burst of 2,000 connects be taken in (the table full, the rest evicted)
      // before asking: the test is about connections held, not a SYN flood's first second.
      for (let i = 0; i < 100 && (await h.stats()).opened < HOSTILE; i++) await sleep(100);
      const turnedAway = async () => (await dns.metric('kith_dns_tcp_closed_total', { reason: 'evicted' })) + (await dns.metric('kith_dns_tcp_closed_total', { reason: 'full' }));
      for (let i = 0; i < 200 && (await turnedAway()) < HOSTILE - 512; i++) await sleep(100);
      await sleep(1000);
      const times: number[] = [];
      const probes: number[] = [];
      for (let i = 0; i < 20; i++) {
        // dig, the real client: +time=5 +tries=1 bounds its connect and its wait for the
        // answer by 5 s each (a starved server never answers: the held connections stay).
        const r = await digTcp(dns.port);
        expect(r.out, `dig +tcp #${i + 1} after ${Math.round(r.ms)} ms, ${JSON.stringify(await h.stats())}`).toMatch(/status: NOERROR/);
        expect(r.out).toMatch(/192\.0\.2\.80/);
        times.push(Math.round(r.ms));
        // And the whole exchange timed from here, connect to answer, with no process start.
        probes.push(Math.round(await tcpProbe(dns.port)));
        await sleep(300);
      }
      const closed = Object.fromEntries(await Promise.all(['idle', 'slow', 'evicted', 'source-evicted', 'full', 'source-full'].map(async (reason) => [reason, await dns.metric('kith_dns_tcp_closed_total', { reason })])));
      const st = await h.stats();
      console.log(`dig +tcp ms (whole process): ${times.join(' ')}; connect-to-answer ms: ${probes.join(' ')}; hostile: ${st.opened} opened, ${st.live} open now, ${st.closedByServer} closed by the server; kith_dns_tcp_closed_total ${JSON.stringify(closed)}`);
      // Issue 17 asks for an answer within a second; that figure is printed above. The bound
      // is five times that, for a loaded CI machine: starved, the answer never comes at all.
      expect(Math.max(...probes)).toBeLessThan(5000);
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
    // Printed, and told apart from the default idle timeout (10 s) with room for a loaded machine.
    process.stdout.write(`dns guard: idle connection closed ${Date.now() - t} ms after it became the only one (idleTimeout 0.5 s, default 10 s)\n`);
    expect(Date.now() - t).toBeLessThan(8000);
    expect((await dns.write({ 'dns/dns.yaml': 'tcp:\n  maxConnections: 5\n' })).applied).toBe(true);
    const c = await open();
    const d = await open();
    await sleep(100);
    expect([c.destroyed, d.destroyed]).toEqual([false, false]);
    c.destroy();
    d.destroy();
  });
});

const OUTSIDE = 'recursion:\n  allow: [192.0.2.0/24]\n';

/** Send `count` queries for one name as fast as the socket takes them; count what comes back. */
async function flood(port: number, name: string, count: number, perBatch = 200): Promise<{ sent: number; answered: number; truncated: number }> {
  const sock = dgram.createSocket('udp4');
  let answered = 0;
  let truncated = 0;
  sock.on('message', (m) => {
    if (m.length >= 4 && m[2]! & 0x02) truncated++;
    else answered++;
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  // With EDNS (1232 bytes), so the 600-byte answer is not truncated for size.
  const q = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name, type: 'TXT' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer] });
  let sent = 0;
  const started = Date.now();
  while (sent < count && Date.now() - started < 8000) {
    for (let i = 0; i < perBatch && sent < count; i++, sent++) {
      q.writeUInt16BE(sent & 0xffff, 0);
      sock.send(q, port, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return { sent, answered, truncated };
}

/** dig, waiting up to 5 s for an answer that must come: room for a loaded machine. */
function dig(port: number, ...args: string[]): Promise<string> {
  return digWaiting(5, port, ...args);
}

/** dig where the rate limit may drop the query: each drop costs the wait, so 2 s. */
function digMayDrop(port: number, ...args: string[]): Promise<string> {
  return digWaiting(2, port, ...args);
}

function digWaiting(seconds: number, port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), `+time=${seconds}`, '+tries=1', '+norec', ...args], { timeout: 15_000 }, (_e, stdout) => resolve(String(stdout)));
  });
}

describe('response rate limiting', () => {
  let dns: DnsUnderTest;
  beforeAll(async () => { dns = await startDnsService({ 'dns/zones/example.test.zone': EXAMPLE_ZONE, 'dns/dns.yaml': OUTSIDE }); });
  afterAll(async () => { await dns?.stop(); });

  it('answers a flood of one name a few times, then slips every 2nd as TC and drops the rest, counted in /metrics', async () => {
    const f = await flood(dns.port, 'big.example.test', 20_000);
    const slipped = await dns.metric('kith_dns_rrl_total', { action: 'slipped', reason: 'answer' });
    const dropped = await dns.metric('kith_dns_rrl_total', { action: 'dropped', reason: 'answer' });
    console.log(`flood: ${JSON.stringify(f)}; /metrics: slipped ${slipped}, dropped ${dropped}`);
    expect(f.answered).toBeGreaterThan(0);
    expect(f.answered).toBeLessThan(200); // 10/s, a few seconds
    expect(f.truncated).toBeGreaterThan(1000);
    expect(slipped).toBeGreaterThan(1000);
    expect(dropped).toBeGreaterThan(1000);
    expect(Math.abs(slipped - dropped)).toBeLessThan(0.05 * dropped); // every 2nd slips
    // dig told to ignore truncation sees the slip: TC, no answer; over TCP it is answered.
    // (The bucket is still in debt: each dig is slipped or dropped; two in a row see a slip.)
    const udp = [await digMayDrop(dns.port, '+ignore', '+nocookie', 'big.example.test', 'TXT'), await digMayDrop(dns.port, '+ignore', '+nocookie', 'big.example.test', 'TXT')].join('\n');
    expect(udp).toMatch(/flags: qr aa tc; QUERY: 1, ANSWER: 0/);
    expect(await dig(dns.port, '+tcp', 'big.example.test', 'TXT')).toMatch(/x{200}/);
    // Another name has its own bucket.
    expect(await dig(dns.port, 'www.example.test', 'A')).toMatch(/192\.0\.2\.80/);
  });

  it('never limits the home network (the recursion allow list), and the limits apply live', async () => {
    const limited = () => dns.metric('kith_dns_rrl_total');
    const before = await limited();
    expect((await dns.write({ 'dns/dns.yaml': undefined })).applied).toBe(true);
    const f = await flood(dns.port, 'ns1.example.test', 3000);
    expect(f.truncated).toBe(0);
    expect(f.answered).toBeGreaterThan(100); // the rest lost to full socket buffers, not to RRL
    expect((await dns.write({ 'dns/dns.yaml': OUTSIDE + 'rrl:\n  enabled: false\n' })).applied).toBe(true);
    const g = await flood(dns.port, 'www.example.test', 3000);
    expect(g.truncated).toBe(0);
    expect((await dns.write({ 'dns/dns.yaml': OUTSIDE + 'rrl:\n  exempt: [127.0.0.0/8]\n' })).applied).toBe(true);
    const h = await flood(dns.port, 'www.example.test', 3000);
    expect(h.truncated).toBe(0);
    expect(await limited()).toBe(before);
  });

  it('answers a client with a valid server cookie every time during a flood from its own network', async () => {
    expect((await dns.write({ 'dns/dns.yaml': OUTSIDE })).applied).toBe(true);
    // Learn the server cookie (RFC 7873 §5.1), then send it back with each query.
    const first = await dig(dns.port, '+cookie', 'ns1.example.test', 'A'); // a name no flood has put in debt
    const cookie = /; COOKIE: ([0-9a-f]{48}) \(good\)/.exec(first)?.[1];
    expect(cookie, first).toBeDefined();
    const flooding = flood(dns.port, 'big.example.test', 30_000, 50); // ~10,000 a second for 3 s
    await new Promise((r) => setTimeout(r, 300));
    const before = await dns.metric('kith_dns_rrl_total');
    const answers: string[] = [];
    for (let i = 0; i < 10; i++) answers.push(await dig(dns.port, `+cookie=${cookie}`, '+nobadcookie', '+ignore', 'big.example.test', 'TXT'));
    const f = await flooding;
    const limited = (await dns.metric('kith_dns_rrl_total')) - before;
    console.log(`flood during the cookie client: ${JSON.stringify(f)}; limited meanwhile: ${limited}; cookie client: ${answers.filter((a) => /x{200}/.test(a)).length}/10 answered`);
    expect(limited).toBeGreaterThan(1000);
    for (const a of answers) {
      expect(a).toMatch(/status: NOERROR/);
      expect(a).toMatch(/x{200}/);
      expect(a).toMatch(/; COOKIE: [0-9a-f]{48} \(good\)/);
    }
    expect(await dns.metric('kith_dns_cookies_total', { result: 'valid' })).toBeGreaterThanOrEqual(10);
    // A client cookie without a (valid) server cookie, rate limited: BADCOOKIE with a new
    // server cookie in place of the TC slip, so it can come back with the cookie.
    await flood(dns.port, 'big.example.test', 2000);
    const bad = [];
    for (let i = 0; i < 4; i++) bad.push(await digMayDrop(dns.port, '+cookie', '+nobadcookie', '+showbadcookie', '+ignore', 'big.example.test', 'TXT'));
    expect(bad.join('\n')).toMatch(/status: BADCOOKIE/);
  });

  it('interoperates with kdig (Knot): a server cookie learnt, sent back, found valid', async () => {
    const kdig = (...args: string[]) => new Promise<string>((resolve) => {
      execFile('kdig', ['@127.0.0.1', '-p', String(dns.port), '+time=5', '+retry=0', '+norec', ...args], { timeout: 15_000 }, (_e, stdout) => resolve(String(stdout)));
    });
    const first = await kdig('+cookie', 'ns1.example.test', 'A');
    const cookie = /;; COOKIE: ([0-9A-F]{48})/i.exec(first)?.[1];
    expect(cookie, first).toBeDefined();
    const valid = await dns.metric('kith_dns_cookies_total', { result: 'valid' });
    const again = await kdig(`+cookie=${cookie}`, 'ns1.example.test', 'A');
    expect(again).toMatch(/status: NOERROR/);
    expect(again).toMatch(/192\.0\.2\.1/);
    expect(await dns.metric('kith_dns_cookies_total', { result: 'valid' })).toBe(valid + 1);
  });

  it('answers FORMERR to a malformed cookie and a server cookie to a cookie-only query (RFC 7873 §5.2.2, §5.4)', async () => {
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    const opt = (data: Buffer) => ({ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 10, data }] } as unknown as dnsPacket.Answer);
    sock.send(dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'www.example.test', type: 'A' }], additionals: [opt(Buffer.alloc(9, 1))] }), dns.port, '127.0.0.1');
    sock.send(dnsPacket.encode({ id: 2, type: 'query', questions: [], additionals: [opt(Buffer.alloc(8, 1))] }), dns.port, '127.0.0.1');
    await vi.waitFor(() => expect(replies).toHaveLength(2), { timeout: 15_000, interval: 10 });
    sock.close();
    const byId = new Map(replies.map((r) => [r.readUInt16BE(0), r]));
    expect(byId.get(1)![3]! & 0x0f).toBe(1);
    const two = dnsPacket.decode(byId.get(2)!);
    const o = two.additionals![0] as unknown as { extendedRcode: number; options: { code: number; data: Buffer }[] };
    expect((o.extendedRcode << 4) | (byId.get(2)![3]! & 0x0f)).toBe(23); // BADCOOKIE
    expect(o.options[0]!.data.length).toBe(24);
    expect(o.options[0]!.data.subarray(0, 8)).toEqual(Buffer.alloc(8, 1));
  });
});

/** A zone of `n` A/AAAA/TXT records under `origin`, serial `serial`. */
function bigZone(origin: string, n: number, serial: number, extra = ''): string {
  const lines = [`$ORIGIN ${origin}.`, '$TTL 300', `@ IN SOA ns1 hostmaster ${serial} 7200 900 1209600 300`, '@ IN NS ns1', 'ns1 IN A 192.0.2.1'];
  for (let i = 0; i < n; i++) lines.push(i % 3 === 0 ? `h${i} IN TXT "v=spf1 include:example.net -all"` : i % 3 === 1 ? `h${i} IN A 192.0.${(i >> 8) & 255}.${i & 255}` : `h${i} IN AAAA 2001:db8::${(i & 0xffff).toString(16)}`);
  return lines.join('\n') + '\n' + extra;
}

describe('zone set reloads (issue 11 item 6)', () => {
  const ZONES = 3;
  const PER_ZONE = 20_000;
  let dns: DnsUnderTest;
  beforeAll(async () => {
    const files: Record<string, string> = { 'dns/dns.yaml': 'limits:\n  zoneRecords: 200000\n', 'dns/zones/example.test.zone': EXAMPLE_ZONE };
    for (let z = 0; z < ZONES; z++) files[`dns/zones/big${z}.test.zone`] = bigZone(`big${z}.test`, PER_ZONE, 1);
    dns = await startDnsService(files);
  });
  afterAll(async () => { await dns?.stop(); });

  it('keeps answering from the old zones while a large zone set reloads beside them', async () => {
    // A query every 5 ms; the longest time between two answers while the reload runs, in
    // wall time and in this process's CPU time (the server runs here): a blocked event
    // loop burns CPU all through its silence, while a process the machine's other work
    // keeps off the CPU burns none, so the CPU figure is the one a busy machine cannot blur.
    const sock = dgram.createSocket('udp4');
    const answeredAt: { wall: number; cpu: number }[] = [];
    const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    sock.on('message', () => answeredAt.push({ wall: performance.now(), cpu: cpuMs() }));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const q = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'www.example.test', type: 'A' }] });
    let id = 0;
    const ticker = setInterval(() => { q.writeUInt16BE(++id & 0xffff, 0); sock.send(q, dns.port, '127.0.0.1'); }, 5);
    await new Promise((r) => setTimeout(r, 200));
    const files: Record<string, string> = {};
    for (let z = 0; z < ZONES; z++) files[`dns/zones/big${z}.test.zone`] = bigZone(`big${z}.test`, PER_ZONE, 2, 'new IN A 192.0.2.222\n');
    const rssBefore = process.memoryUsage().rss;
    const t0 = { wall: performance.now(), cpu: cpuMs() };
    const applied = await dns.write(files);
    const t1 = { wall: performance.now(), cpu: cpuMs() };
    await new Promise((r) => setTimeout(r, 100));
    clearInterval(ticker);
    sock.close();
    expect(applied.applied).toBe(true);
    const during = [t0, ...answeredAt.filter((t) => t.wall > t0.wall && t.wall < t1.wall), t1];
    let gap = 0;
    let cpuGap = 0;
    for (let i = 1; i < during.length; i++) {
      gap = Math.max(gap, during[i]!.wall - during[i - 1]!.wall);
      cpuGap = Math.max(cpuGap, during[i]!.cpu - during[i - 1]!.cpu);
    }
    const cpuTotal = t1.cpu - t0.cpu;
    console.log(`reload of ${ZONES * PER_ZONE} records took ${Math.round(t1.wall - t0.wall)} ms (${Math.round(cpuTotal)} ms CPU); ${during.length - 2} answers meanwhile; longest gap ${Math.round(gap)} ms (${Math.round(cpuGap)} ms CPU, ${Math.round((100 * cpuGap) / cpuTotal)}% of the reload's); rss ${Math.round(rssBefore / 1e6)} -> ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
    expect(during.length - 2).toBeGreaterThan(10);
    // Before zone loading ran in slices (zone/steps.ts) this reload answered nothing for
    // 2.6 s of its 5.5 s (17 answers); at load average 20, 3.3 s holding 668 ms of CPU.
    // Now the longest gap holds ~45-60 ms of CPU, ~5% of the reload's, and ~100-200 ms of wall
    // time on a quiet machine. The CPU bound is a share of the reload's own CPU time, so a
    // slower machine (both grow alike) or a busier one (neither grows) does not move it;
    // the wall-time bound is only against a stall, many times the figure printed.
    expect(cpuGap / cpuTotal).toBeLessThan(0.2); // loading in one piece: 32% here
    expect(gap).toBeLessThan(5000);
    expect(await dig(dns.port, 'new.big1.test', 'A')).toMatch(/192\.0\.2\.222/);
  });
});
