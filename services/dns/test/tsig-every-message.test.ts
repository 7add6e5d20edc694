/**
 * TSIG on every message (RFC 8945), with real clients: keys from `tsig-keygen`, queries and
 * zone transfers signed by `dig -y` and `kdig -y`, which verify what we send back (every
 * message of a multi-message AXFR, §5.3.1), and NSD as a secondary that takes our signed
 * NOTIFY and transfers with its key. Before this, a query or an AXFR signed with an unknown
 * key or a wrong secret was answered NOERROR, unsigned, and transferred the zone.
 * Debian packages: bind9 (tsig-keygen), bind9-dnsutils (dig), knot-dnsutils (kdig), nsd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import dnsPacket from 'dns-packet';
import { createAuthHandler } from '../auth/handler.ts';
import { isNotifyAck, notifyEffects, type NotifyEffect } from '../auth/notify.ts';
import { startDnsServer, type DnsServer } from '../server/server.ts';
import { parseKeyFile } from '../tsig/keyfile.ts';
import { findTsig, signMessage, type TsigKey } from '../tsig/tsig.ts';
import { parseZone } from '../zone/parse.ts';
import { ZoneSet } from '../zone/zone.ts';
import { dig, fixtureZones, freePort, run } from './helpers.ts';

const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
const tsigLine = (out: string) => /TSIG PSEUDOSECTION:\n(.*)/.exec(out)?.[1] ?? '';

/** A zone big enough that its transfer takes several messages (16 KiB each). */
function bigZone(): string {
  const lines = ['$ORIGIN big.test.', '$TTL 3600', '@ SOA ns1 hostmaster 1 7200 3600 1209600 300', '@ NS ns1', 'ns1 A 192.0.2.1'];
  for (let i = 0; i < 1500; i++) lines.push(`h${i} TXT "record number ${i} of a zone that needs more than one transfer message"`);
  return lines.join('\n') + '\n';
}

describe('TSIG on every message (RFC 8945)', () => {
  let dir: string;
  let srv: DnsServer;
  let key: TsigKey;
  let secret: string;
  const zones = (() => {
    const big = parseZone(bigZone(), { origin: 'big.test', file: 'big.test.zone' });
    if (!big.ok) throw new Error(JSON.stringify(big.issues));
    return new ZoneSet([...fixtureZones().zones(), big.zone]);
  })();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-tsig-all-'));
    const out = await run('/usr/sbin/tsig-keygen', ['-a', 'hmac-sha256', 'xfr-key']);
    writeFileSync(join(dir, 'xfr-key.key'), out.stdout);
    const parsed = parseKeyFile(out.stdout, 'xfr-key.key');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    key = parsed.keys[0];
    secret = key.secret.toString('base64');
    srv = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      handler: createAuthHandler({
        zones: () => zones,
        keys: () => [key],
        // Loopback may transfer, but only when signed with xfr-key.
        axfrAllow: () => [{ address: '127.0.0.0/8', key: 'xfr-key' }],
      }),
    });
  });
  afterAll(async () => {
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const NOKEY = 'hmac-sha256:nokey:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const WRONG = 'hmac-sha256:xfr-key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const good = () => `hmac-sha256:xfr-key:${secret}`;

  it('an unknown key: NOTAUTH, with an unsigned TSIG carrying BADKEY (dig and kdig)', async () => {
    const out = await dig(srv.udpPort, 'kith.test', 'SOA', '-y', NOKEY);
    expect(status(out)).toBe('NOTAUTH');
    expect(tsigLine(out)).toMatch(/^nokey\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0/);
    const k = await run('kdig', ['@127.0.0.1', '-p', String(srv.udpPort), 'kith.test', 'SOA', '-y', NOKEY]);
    expect(k.stdout).toMatch(/status: BADKEY/); // kdig shows the TSIG error as the status
    // The same for a zone transfer: nothing transferred.
    const axfr = await run('dig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'kith.test', 'AXFR', '-y', NOKEY, '+time=3', '+tries=1']);
    expect(axfr.stdout).not.toMatch(/IN\s+SOA/);
  });

  it('a wrong secret: NOTAUTH with BADSIG, and no transfer', async () => {
    const out = await dig(srv.udpPort, 'kith.test', 'SOA', '-y', WRONG);
    expect(status(out)).toBe('NOTAUTH');
    expect(tsigLine(out)).toMatch(/BADSIG 0\s*$/);
    const axfr = await run('dig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'kith.test', 'AXFR', '-y', WRONG, '+time=3', '+tries=1']);
    expect(axfr.stdout).not.toMatch(/IN\s+SOA/);
  });

  it('a request signed at the wrong time: NOTAUTH with BADTIME, signed, our time in Other Data', async () => {
    const q = dnsPacket.encode({ type: 'query', id: 0x4242, questions: [{ name: 'kith.test', type: 'SOA' }] });
    const signed = signMessage(q, key, { now: Date.now() - 3_600_000 });
    const reply = await udpExchange(srv.udpPort, signed.bytes);
    expect(reply.readUInt16BE(2) & 0xf).toBe(9);
    const t = findTsig(reply)!;
    expect(t.error).toBe(18);
    expect(t.mac.length).toBe(32);
    expect(t.otherData.length).toBe(6);
  });

  it('a valid signed query gets a signed answer that dig verifies', async () => {
    const out = await dig(srv.udpPort, 'kith.test', 'SOA', '-y', good());
    expect(status(out)).toBe('NOERROR');
    expect(out).not.toMatch(/Couldn't verify|could not be validated/);
    expect(tsigLine(out)).toMatch(/^xfr-key\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 32 \S+ \d+ NOERROR 0/);
  });

  it('a signed AXFR transfers, every message signed and verified by dig and kdig (RFC 8945 §5.3.1)', async () => {
    const d = await run('dig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'big.test', 'AXFR', '-y', good(), '+time=5', '+tries=1']);
    expect(d.stdout).not.toMatch(/Couldn't verify|could not be validated|Transfer failed/);
    const m = /XFR size: (\d+) records \(messages (\d+),/.exec(d.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(1504); // SOA, NS, A, 1500 TXT, SOA again
    expect(Number(m![2])).toBeGreaterThan(3);
    // One TSIG per message.
    expect(d.stdout.match(/\tANY\tTSIG\t/g)?.length).toBe(Number(m![2]));
    const k = await run('kdig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'big.test', 'AXFR', '-y', good()]);
    expect(k.stdout).not.toMatch(/;; (WARNING|ERROR)/);
    expect(k.stdout).toMatch(/Received \d+ B \(\d+ messages, 1504 records\)/);
  });

  it('an unsigned AXFR from an address allowed only with a key: REFUSED', async () => {
    const axfr = await run('dig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'kith.test', 'AXFR', '+time=3', '+tries=1']);
    expect(axfr.stdout).toMatch(/Transfer failed/);
    const k = await run('kdig', ['@127.0.0.1', '-p', String(srv.tcpPort), 'kith.test', 'AXFR']);
    expect(k.stdout + k.stderr).toMatch(/REFUSED/);
  });

  it('a signed NOTIFY with an unknown key: NOTAUTH/BADKEY; with the key: a signed reply', async () => {
    const n = dnsPacket.encode({ type: 'query', id: 0x1996, flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: [{ name: 'kith.test', type: 'SOA' }] });
    n.writeUInt16BE(n.readUInt16BE(2) | (4 << 11), 2); // opcode NOTIFY
    const stranger: TsigKey = { name: 'stranger', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 1) };
    const bad = await udpExchange(srv.udpPort, signMessage(n, stranger, { now: Date.now() }).bytes);
    expect(bad.readUInt16BE(2) & 0xf).toBe(9);
    expect(findTsig(bad)!.error).toBe(17);
    const ok = signMessage(n, key, { now: Date.now() });
    const reply = await udpExchange(srv.udpPort, ok.bytes);
    expect(findTsig(reply)!.mac.length).toBe(32); // signed (NOTIFY to us is NOTIMP: we are the primary)
  });
});

describe('signed NOTIFY out, and a signed transfer, with NSD as the secondary', () => {
  it('NSD acknowledges our signed NOTIFY and transfers the zone with its key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-nsd-tsig-'));
    const out = await run('/usr/sbin/tsig-keygen', ['-a', 'hmac-sha256', 'sec-key']);
    const parsed = parseKeyFile(out.stdout, 'sec-key.key');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    const key = parsed.keys[0];
    const zones = fixtureZones();
    const srv = await startDnsServer({
      host: '127.0.0.1', port: 0,
      handler: createAuthHandler({ zones: () => zones, keys: () => [key], axfrAllow: () => ['key:sec-key'] }),
    });
    let child: ChildProcess | undefined;
    try {
      const nsdPort = await freePort();
      writeFileSync(join(dir, 'nsd.conf'), [
        'server:', `  ip-address: 127.0.0.1@${nsdPort}`, '  username: ""', '  chroot: ""', `  zonesdir: "${dir}"`,
        `  pidfile: "${dir}/nsd.pid"`, '  database: ""', `  zonelistfile: "${dir}/zone.list"`, `  xfrdfile: "${dir}/xfrd.state"`,
        `  xfrdir: "${dir}"`, `  logfile: "${dir}/nsd.log"`, '  server-count: 1', '  verbosity: 2',
        'remote-control:', '  control-enable: no',
        'key:', '  name: sec-key', '  algorithm: hmac-sha256', `  secret: "${key.secret.toString('base64')}"`,
        'zone:', '  name: kith.test', '  zonefile: kith.test.zone',
        `  request-xfr: AXFR 127.0.0.1@${srv.tcpPort} sec-key`, '  allow-notify: 127.0.0.1 sec-key', '',
      ].join('\n'));
      child = spawn('nsd', ['-d', '-c', join(dir, 'nsd.conf')], { stdio: 'ignore' });
      // NSD transfers at start-up (it has no copy); it needs the signed AXFR to succeed.
      const serial = async () => /2026112301/.test(await dig(nsdPort, '+short', 'kith.test', 'SOA'));
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) { ok = await serial(); if (!ok) await new Promise((r) => setTimeout(r, 100)); }
      const log = () => (existsSync(join(dir, 'nsd.log')) ? readFileSync(join(dir, 'nsd.log'), 'utf8') : '');
      expect(ok, log()).toBe(true);
      // Our NOTIFY, signed with the key: NSD answers it signed, and isNotifyAck verifies that.
      const [effect] = notifyEffects([zones.get('kith.test')!], [{ host: '127.0.0.1', port: nsdPort, key }], () => 0x5151, Date.now());
      expect(findTsig(effect.message)!.keyName).toBe('sec-key');
      const ack = await udpExchange(nsdPort, effect.message);
      expect(isNotifyAck(ack, effect.id, effect.signed)).toBe(true);
      // Unsigned, NSD refuses it (allow-notify names the key).
      const plain = notifyEffects([zones.get('kith.test')!], [{ host: '127.0.0.1', port: nsdPort }], () => 0x5152, Date.now())[0] as NotifyEffect;
      const refused = await udpExchange(nsdPort, plain.message);
      expect(isNotifyAck(refused, plain.id)).toBe(false);
    } finally {
      // NSD writes its xfrd state and log while it stops: wait for it before removing its folder.
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      await srv.close();
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  }, 30_000);
});

function udpExchange(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => { s.close(); reject(new Error('no reply')); }, 3000);
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m); });
    s.send(msg, port, '127.0.0.1');
  });
}
