// The real send (UDP, TCP on truncation) against a scripted local upstream, and the whole
// forwarder against dnsmasq as a real upstream (Debian package dnsmasq-base).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { createUdpSend, udpQuery } from './udp.ts';
import { createForwarder, decodeResponse as decode, type DecodedResponse } from './forwarder.ts';
import { freePort as freeUdpPort, startDnsmasq, type Dnsmasq } from '../test/helpers.ts';

describe('createUdpSend against a scripted upstream', () => {
  let udp: Socket;
  let tcp: Server;
  let port = 0;
  let tcpQueries = 0;

  const big = (q: DecodedResponse) =>
    dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions,
      answers: Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: q.questions[0].name, ttl: 60, data: `10.0.0.${i}` })),
    });

  beforeAll(async () => {
    for (let attempt = 0; attempt < 20 && !port; attempt++) {
      udp = createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      const p = udp.address().port;
      tcp = createServer((conn) => {
        conn.once('data', (d: Buffer) => {
          tcpQueries++;
          const q = decode(d.subarray(2));
          const out = big(q);
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          conn.end(Buffer.concat([len, out]));
        });
        conn.on('error', () => {});
      });
      const ok = await new Promise<boolean>((r) => {
        tcp.once('error', () => r(false));
        tcp.listen(p, '127.0.0.1', () => r(true));
      });
      if (ok) port = p;
      else udp.close();
    }
    udp.on('message', (msg, rinfo) => {
      const q = decode(msg);
      const name = q.questions[0].name;
      if (name === 'silent.test') return;
      // A spoof with the wrong ID first: it must be ignored, not taken as the answer.
      udp.send(dnsPacket.encode({ type: 'response', id: (q.id + 1) & 0xffff, questions: q.questions, answers: [{ type: 'A', name, ttl: 60, data: '6.6.6.6' }] }), rinfo.port, rinfo.address);
      if (name === 'big.test') {
        const tc = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.TRUNCATED_RESPONSE, questions: q.questions });
        udp.send(tc, rinfo.port, rinfo.address);
      } else {
        udp.send(dnsPacket.encode({ type: 'response', id: q.id, questions: q.questions, answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.8' }] }), rinfo.port, rinfo.address);
      }
    });
  });

  afterAll(() => {
    udp?.close();
    tcp?.close();
  });

  const query = (name: string, id = 0x5151) => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });

  it('returns the answer with our ID, ignoring a spoofed one', async () => {
    const send = createUdpSend();
    const out = decode(await send({ host: '127.0.0.1', port }, query('small.test'), { timeoutMs: 1000 }));
    expect(out.id).toBe(0x5151);
    expect(out.answers![0]).toMatchObject({ data: '192.0.2.8' });
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    const send = createUdpSend();
    const out = decode(await send({ host: '127.0.0.1', port }, query('big.test'), { timeoutMs: 1000 }));
    expect(out.flag_tc).toBe(false);
    expect(out.answers).toHaveLength(40);
    expect(tcpQueries).toBe(1);
  });

  it('times out on silence and on a closed port', async () => {
    await expect(udpQuery({ host: '127.0.0.1', port }, query('silent.test'), 50)).rejects.toThrow(/timed out/);
    const dead = await freeUdpPort();
    const fwd = createForwarder({ upstreams: [{ host: '127.0.0.1', port: dead }], timeoutMs: 100, totalTimeoutMs: 300, now: Date.now, send: createUdpSend() });
    const r = decode(dnsPacket.encode(await fwd.resolve({ name: 'x.test', type: 'A', class: 'IN' })));
    expect(r.rcode).toBe('SERVFAIL');
  });
});

describe('forwarder with dnsmasq as the upstream', () => {
  let proc: Dnsmasq | undefined;
  let port = 0;

  beforeAll(async () => {
    proc = await startDnsmasq(['--local=/test/', '--host-record=host.test,192.0.2.7', '--txt-record=txt.test,hello']);
    port = proc.port;
  });

  afterAll(() => {
    proc?.stop();
  });

  it('forwards, caches, and passes NXDOMAIN through', async () => {
    expect(port).toBeGreaterThan(0);
    let misses = 0;
    const fwd = createForwarder({ upstreams: [{ host: '127.0.0.1', port }], timeoutMs: 1000, now: Date.now, send: createUdpSend(), metrics: { miss: () => misses++ } });
    const a = await fwd.resolve({ name: 'Host.Test', type: 'A', class: 'IN' }, { id: 321 });
    expect(a.id).toBe(321);
    expect(a.questions![0].name).toBe('Host.Test');
    expect(a.answers![0]).toMatchObject({ type: 'A', data: '192.0.2.7' });
    await fwd.resolve({ name: 'host.test', type: 'A', class: 'IN' });
    expect(misses).toBe(1);
    const txt = await fwd.resolve({ name: 'txt.test', type: 'TXT', class: 'IN' });
    expect(String((txt.answers![0] as { data: Buffer[] }).data[0])).toBe('hello');
    const nx = decode(dnsPacket.encode(await fwd.resolve({ name: 'nothing.test', type: 'A', class: 'IN' })));
    expect(nx.rcode).toBe('NXDOMAIN');
  });
});
