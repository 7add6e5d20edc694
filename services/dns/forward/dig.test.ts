// Real client and real upstream: dig → a tiny test server made of the block list and the
// forwarder → dnsmasq. Needs Debian packages bind9-dnsutils (dig) and dnsmasq-base.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { createForwarder, decodeResponse, rcodeBits, type Forwarder } from './forwarder.ts';
import { createUdpSend } from './udp.ts';
import { createBlocker, type Blocker } from '../blocklist/blocklist.ts';
import { parseList } from '../blocklist/parse.ts';
import { freePort as freeUdpPort, startDnsmasq, type Dnsmasq } from '../test/helpers.ts';

const DIG = '/usr/bin/dig';

function dig(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(DIG, ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', ...args], { timeout: 15_000 }, (_e, stdout, stderr) => resolve(stdout + stderr));
  });
}

describe('dig → blocklist + forwarder → dnsmasq', () => {
  let upstream: Dnsmasq | undefined;
  let upPort = 0;
  let server: Socket;
  let port = 0;
  let forwarder: Forwarder;
  let blocker: Blocker;
  const hits: string[] = [];

  beforeAll(async () => {
    upstream = await startDnsmasq(['--local=/test/', '--local-ttl=300', '--host-record=host.test,192.0.2.7', '--host-record=ads.test,192.0.2.66']);
    upPort = upstream.port;
    forwarder = createForwarder({ upstreams: [{ host: '127.0.0.1', port: upPort }], timeoutMs: 1000, now: Date.now, send: createUdpSend() });
    const list = parseList('0.0.0.0 ads.test\n', 'ads.txt');
    blocker = createBlocker({ lists: [{ name: 'ads', domains: list.domains }], allow: { exact: [], wildcard: [] } }, { mode: 'null-ip', onHit: (l, n) => hits.push(`${l}:${n}`) });

    server = createSocket('udp4');
    server.on('message', async (msg, rinfo) => {
      let q;
      try {
        q = decodeResponse(msg);
      } catch {
        return;
      }
      const question = q.questions[0];
      const packet = blocker.check(question, q.id, q.flag_rd) ?? (await forwarder.resolve(question, { id: q.id, rd: q.flag_rd, cd: q.flag_cd }));
      const clientOpt = q.additionals.find((r) => r.type === 'OPT');
      if (clientOpt) packet.additionals = [...(packet.additionals ?? []), { type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer];
      packet.flags = ((packet.flags ?? 0) & ~0xf) | rcodeBits((packet as { rcode?: string }).rcode ?? 'NOERROR');
      server.send(dnsPacket.encode(packet), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    port = server.address().port;
  });

  afterAll(() => {
    server?.close();
    upstream?.stop();
  });

  it('forwards, caches with TTLs counting down, and blocks', async () => {
    expect(upPort).toBeGreaterThan(0);
    const first = await dig(port, 'Host.Test', 'A');
    expect(first).toMatch(/status: NOERROR/);
    expect(first).toMatch(/;Host\.Test\.\s+IN\s+A/);
    expect(first).toMatch(/host\.test\.\s+300\s+IN\s+A\s+192\.0\.2\.7/i);
    expect(first).toMatch(/flags: qr rd ra/);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await dig(port, 'host.test', 'A');
    expect(second).toMatch(/host\.test\.\s+2\d\d\s+IN\s+A\s+192\.0\.2\.7/); // counted down from 300

    const blocked = await dig(port, 'www.ads.test', 'A');
    expect(blocked).toMatch(/www\.ads\.test\.\s+60\s+IN\s+A\s+0\.0\.0\.0/);
    const blocked6 = await dig(port, 'ads.test', 'AAAA');
    expect(blocked6).toMatch(/ads\.test\.\s+60\s+IN\s+AAAA\s+::/);
    expect(hits).toEqual(['ads:www.ads.test', 'ads:ads.test']);

    const nx = await dig(port, 'missing.test', 'A');
    expect(nx).toMatch(/status: NXDOMAIN/);
  });
});
