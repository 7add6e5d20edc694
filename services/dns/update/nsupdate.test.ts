// Real-client test: BIND's `nsupdate -k keyfile` (keys from `tsig-keygen`) against a tiny
// UDP+TCP server made of our tsig and update modules over an in-memory store.
// Needs Debian packages bind9 (tsig-keygen) and bind9-dnsutils (nsupdate).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKeyFile } from '../tsig/keyfile.ts';
import type { TsigKey } from '../tsig/tsig.ts';
import { createUpdateHandler } from './handler.ts';
import { grantPolicy } from './policy.ts';
import { applyChanges, memoryStore, type StoredRR, type UpdateResult } from './update.ts';
import { seedZone } from './testutil.ts';


function runTool(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (process.env.KITH_DEBUG) console.log(args.join(" "), input, stdout + stderr);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

describe('nsupdate against the update handler', () => {
  let dir: string;
  let udp: Socket;
  let tcp: Server;
  let port = 0;
  let records: StoredRR[] = seedZone();
  const results: UpdateResult[] = [];
  const keyFiles: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-nsupdate-'));
    const keys: TsigKey[] = [];
    for (const name of ['laptop-key', 'stranger-key']) {
      const out = await runTool('/usr/sbin/tsig-keygen', ['-a', 'hmac-sha256', name]);
      keyFiles[name] = join(dir, `${name}.key`);
      writeFileSync(keyFiles[name], out.out);
      const parsed = parseKeyFile(out.out, `${name}.key`);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
      if (name === 'laptop-key') keys.push(...parsed.keys); // stranger-key is unknown to the server
    }
    const handler = createUpdateHandler({
      store: memoryStore(['home.arpa'], () => records),
      keys,
      now: () => Date.now(),
      authorize: grantPolicy([{ key: 'laptop-key', names: ['*.dyn.home.arpa'], types: ['A', 'AAAA', 'TXT', 'ANY'] }]),
      async run({ changes }) {
        records = applyChanges(records, changes);
      },
      onResult: (r) => results.push(r),
    });

    // UDP and TCP on the same port: take a free UDP port, then the same TCP port (retry on clash).
    for (let attempt = 0; attempt < 20 && !port; attempt++) {
      udp = createSocket('udp4');
      await new Promise<void>((res) => udp.bind(0, '127.0.0.1', () => res()));
      const p = udp.address().port;
      const ok = await new Promise<boolean>((res) => {
        tcp = createServer((conn) => {
          let buf = Buffer.alloc(0);
          conn.on('data', async (d: Buffer) => {
            buf = Buffer.concat([buf, d]);
            while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
              const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
              buf = buf.subarray(2 + msg.length);
              const out = await handler.handle(msg);
              if (out) {
                const len = Buffer.alloc(2);
                len.writeUInt16BE(out.length);
                conn.write(Buffer.concat([len, out]));
              }
            }
          });
          conn.on('error', () => {});
        });
        tcp.once('error', () => res(false));
        tcp.listen(p, '127.0.0.1', () => res(true));
      });
      if (ok) port = p;
      else udp.close();
    }
    udp.on('message', async (msg, rinfo) => {
      const out = await handler.handle(msg);
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
  });

  afterAll(() => {
    udp?.close();
    tcp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const nsupdate = (key: string, lines: string[], tcpFlag = false) =>
    runTool('/usr/bin/nsupdate', [...(tcpFlag ? ['-v'] : []), '-t', '5', '-k', keyFiles[key]], [`server 127.0.0.1 ${port}`, 'zone home.arpa', ...lines, 'send', ''].join('\n'));

  const has = (name: string, type: string) => records.filter((r) => r.name === name && r.type === type);

  it('adds a record over UDP, and the serial moves', async () => {
    const serial = (has('home.arpa', 'SOA')[0].data as { serial: number }).serial;
    const r = await nsupdate('laptop-key', ['update add Laptop.dyn.home.arpa 300 A 192.168.1.50']);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
    expect(has('laptop.dyn.home.arpa', 'A')).toEqual([{ name: 'laptop.dyn.home.arpa', type: 'A', ttl: 300, data: '192.168.1.50' }]);
    expect((has('home.arpa', 'SOA')[0].data as { serial: number }).serial).toBe(serial + 1);
  });

  it('adds TXT and AAAA with a prerequisite, over TCP', async () => {
    const r = await nsupdate('laptop-key', [
      'prereq yxrrset laptop.dyn.home.arpa A',
      'update add laptop.dyn.home.arpa 300 AAAA fd00::50',
      'update add laptop.dyn.home.arpa 300 TXT "hello world" "second"',
    ], true);
    expect(r.code, r.out).toBe(0);
    expect(has('laptop.dyn.home.arpa', 'AAAA')[0].data).toBe('fd00::50');
    const txt = has('laptop.dyn.home.arpa', 'TXT')[0].data as Buffer[];
    expect(txt.map(String)).toEqual(['hello world', 'second']);
  });

  it('reports a failed prerequisite and changes nothing', async () => {
    const before = records;
    const r = await nsupdate('laptop-key', ['prereq nxdomain laptop.dyn.home.arpa', 'update add other.dyn.home.arpa 60 A 10.0.0.2']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/YXDOMAIN/);
    expect(records).toBe(before);
  });

  it('deletes one record, then the whole name', async () => {
    let r = await nsupdate('laptop-key', ['update delete laptop.dyn.home.arpa AAAA fd00::50']);
    expect(r.code, r.out).toBe(0);
    expect(has('laptop.dyn.home.arpa', 'AAAA')).toEqual([]);
    expect(has('laptop.dyn.home.arpa', 'A')).toHaveLength(1);
    r = await nsupdate('laptop-key', ['update delete laptop.dyn.home.arpa']);
    expect(r.code, r.out).toBe(0);
    expect(records.filter((x) => x.name === 'laptop.dyn.home.arpa')).toEqual([]);
  });

  it('refuses names outside the grant, and keys the server does not know', async () => {
    let r = await nsupdate('laptop-key', ['update add www.home.arpa 60 A 10.6.6.6']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/REFUSED/);
    r = await nsupdate('stranger-key', ['update add evil.dyn.home.arpa 60 A 10.6.6.6']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/NOTAUTH\(BADKEY\)/);
    // Same key name, different secret (a second tsig-keygen run): BADSIG.
    const forged = await runTool('/usr/sbin/tsig-keygen', ['-a', 'hmac-sha256', 'laptop-key']);
    keyFiles.forged = join(dir, 'forged.key');
    writeFileSync(keyFiles.forged, forged.out);
    r = await nsupdate('forged', ['update add evil.dyn.home.arpa 60 A 10.6.6.6']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/NOTAUTH\(BADSIG\)/);
    expect(has('evil.dyn.home.arpa', 'A')).toEqual([]);
    expect(results.some((x) => x.rcode === 'NOTAUTH')).toBe(true);
  });

  it('an unsigned UPDATE is REFUSED with the zone section as it was sent, which dnspython parses', async () => {
    // dnspython reads responses strictly: a zone section rebuilt as (name, SOA, ANY) made it
    // raise instead of returning REFUSED. Its zone name in mixed case must come back as sent.
    const script = [
      'import dns.update, dns.query, dns.rcode, sys',
      "u = dns.update.UpdateMessage('Home.ARPA')",
      "u.add('x.dyn', 60, 'A', '10.0.0.9')",
      `r = dns.query.udp(u, '127.0.0.1', port=${port}, timeout=5)`,
      'print(dns.rcode.to_text(r.rcode()), r.zone[0].to_text() if r.zone else "-", r.zone[0].rdtype if r.zone else "-", r.zone[0].rdclass if r.zone else "-")',
    ].join('\n');
    const r = await runTool('/usr/bin/python3', ['-c', script]);
    expect(r.out.trim()).toBe('REFUSED Home.ARPA. IN SOA 6 1');
    expect(has('x.dyn.home.arpa', 'A')).toEqual([]);
  });
});
