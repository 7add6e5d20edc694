/**
 * The service shell (service.ts) in-process, with real clients: it hands the configured
 * TSIG keys and transfer rules to the answer path (dig -y), runs the NOTIFY effects of a
 * changed zone as signed NOTIFYs to a secondary with a key (a test socket playing the
 * secondary checks the MAC and acknowledges, signed), and serves referrals from its
 * response cache without aging their TTLs.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { memoryConfigSource } from '../../../platform/config/fs-source.ts';
import { createLogger } from '../../../platform/log.ts';
import { createMetrics } from '../../../platform/metrics.ts';
import type { RunningService } from '../../../platform/service.ts';
import { loadDnsConfig, type DnsConfig } from '../config.ts';
import { startDns } from '../service.ts';
import { signMessage, verifyMessage, type TsigKey } from '../tsig/tsig.ts';
import { dig, run } from './helpers.ts';

const SECRET = Buffer.alloc(32, 9).toString('base64');
const KEY: TsigKey = { name: 'sec', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 9) };
const zone = (serial: number) => [
  '$ORIGIN example.org.', '$TTL 3600', `@ SOA ns1 hostmaster ${serial} 7200 900 1209600 300`, '@ NS ns1', 'ns1 A 192.0.2.1',
  'child NS ns.child', 'ns.child A 192.0.2.53', 'www A 192.0.2.80', '',
].join('\n');

describe('the DNS service shell: TSIG, transfer rules, signed NOTIFY, cache aging', () => {
  let dir: string;
  let svc: RunningService<DnsConfig>;
  let port: number;
  let secondary: Socket;
  let cfg: DnsConfig;
  const notifies: Array<{ ok: boolean; serialSeen: boolean }> = [];
  const logs: string[] = [];

  const load = async (serial: number, secondaryPort: number) => {
    const r = await loadDnsConfig(memoryConfigSource({
      'dns/dns.yaml': `transfer:\n  allow: ["key:sec"]\n  notify: [{ address: "127.0.0.1:${secondaryPort}", key: sec }]\nrecursion:\n  allow: []\n`,
      'dns/keys/sec.key': `key "sec" { algorithm hmac-sha256; secret "${SECRET}"; };\n`,
      'dns/zones/example.org.zone': zone(serial),
    }));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.value;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-dns-svc-'));
    // The secondary: verifies each NOTIFY with the key and acknowledges it, signed.
    secondary = createSocket('udp4');
    await new Promise<void>((r) => secondary.bind(0, '127.0.0.1', () => r()));
    secondary.on('message', (msg, rinfo) => {
      const v = verifyMessage(msg, [KEY], { now: Date.now() });
      notifies.push({ ok: v.ok, serialSeen: msg.includes(Buffer.from([0, 0, 0, 2])) });
      if (!v.ok) return;
      const ack = Buffer.from(msg.subarray(0, 12));
      ack.writeUInt16BE(0x8000 | (4 << 11) | 0x0400, 2);
      ack.writeUInt16BE(0, 4); ack.writeUInt16BE(0, 6); ack.writeUInt16BE(0, 8); ack.writeUInt16BE(0, 10);
      secondary.send(signMessage(ack, KEY, { now: Date.now(), requestMac: v.mac }).bytes, rinfo.port, rinfo.address);
    });
    cfg = await load(1, secondary.address().port);
    svc = await startDns({
      name: 'dns', dataDir: dir, configRoot: dir,
      listen: { dns: { host: '127.0.0.1', port: 0 } } as never,
      log: createLogger({ service: 'dns', write: (l) => void logs.push(l) }),
      metrics: createMetrics(),
      now: Date.now,
      facts: () => ({ addresses: ['127.0.0.1'] }),
    config: () => cfg,
      reloadConfig: () => {},
    });
    port = Number(/:(\d+)$/.exec(svc.endpoints.dns)![1]);
  });
  afterAll(async () => {
    await svc?.stop();
    secondary?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('signed queries are verified with the configured keys and answered signed', async () => {
    const ok = await dig(port, 'example.org', 'SOA', '-y', `hmac-sha256:sec:${SECRET}`);
    expect(ok).toMatch(/status: NOERROR/);
    expect(ok).not.toMatch(/could not be validated/);
    const bad = await dig(port, 'example.org', 'SOA', '-y', 'hmac-sha256:sec:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
    expect(bad).toMatch(/status: NOTAUTH/);
    expect(bad).toMatch(/BADSIG/);
  });

  it("transfer.allow: ['key:sec'] transfers to a signed AXFR only", async () => {
    const signed = await run('dig', ['@127.0.0.1', '-p', String(port), 'example.org', 'AXFR', '-y', `hmac-sha256:sec:${SECRET}`, '+time=3', '+tries=1']);
    expect(signed.stdout).toMatch(/XFR size: 7 records/);
    const plain = await run('dig', ['@127.0.0.1', '-p', String(port), 'example.org', 'AXFR', '+time=3', '+tries=1']);
    expect(plain.stdout).toMatch(/Transfer failed/);
  });

  it('a changed zone: the NOTIFY effect goes out signed, and the signed ack is taken', async () => {
    cfg = await load(2, secondary.address().port);
    await svc.applyConfig!(cfg, cfg);
    for (let i = 0; i < 300 && !logs.some((l) => l.includes('notify acknowledged')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(notifies[0]).toEqual({ ok: true, serialSeen: true });
    expect(logs.some((l) => l.includes('notify acknowledged'))).toBe(true);
  });

  it('a referral repeated from the response cache keeps the zone TTL', async () => {
    const first = await dig(port, '+nocookie', 'x.child.example.org', 'A');
    await new Promise((r) => setTimeout(r, 1200));
    const again = await dig(port, '+nocookie', 'x.child.example.org', 'A');
    expect(first).toMatch(/child\.example\.org\.\s+3600\s+IN\s+NS/);
    expect(again).toMatch(/child\.example\.org\.\s+3600\s+IN\s+NS/);
  });

  it('a start that cannot bind its port fails, and leaves no timer of its own running', async () => {
    const made: unknown[] = [];
    const cleared = new Set<unknown>();
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    const set = vi.spyOn(globalThis, 'setInterval').mockImplementation(((...args: Parameters<typeof setInterval>) => {
      const t = realSet(...args);
      made.push(t);
      return t;
    }) as typeof setInterval);
    const clear = vi.spyOn(globalThis, 'clearInterval').mockImplementation(((t: Parameters<typeof clearInterval>[0]) => {
      cleared.add(t);
      realClear(t);
    }) as typeof clearInterval);
    try {
      await expect(startDns({
        name: 'dns', dataDir: dir, configRoot: dir,
        listen: { dns: { host: '127.0.0.1', port } } as never, // taken by the service above
        log: createLogger({ service: 'dns', level: 'error', write: () => {} }),
        metrics: createMetrics(),
        now: Date.now,
        facts: () => ({ addresses: ['127.0.0.1'] }),
        config: () => cfg,
        reloadConfig: () => {},
      })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
    expect(made.length).toBeGreaterThan(0); // the coarse clock's, at least
    expect(made.filter((t) => !cleared.has(t))).toEqual([]);
  });
});
