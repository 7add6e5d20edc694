import { describe, expect, it } from 'vitest';
import { decode, discover, encode, interpret, request, DHCPACK, DHCPNAK, DHCPOFFER, type DhcpMessage } from './dhcp.ts';

const mac = Buffer.from('525400123456', 'hex');
const xid = 0xdeadbeef;

function reply(type: number, extra: [number, number[]][] = [], over: Partial<DhcpMessage> = {}): Buffer {
  const options = new Map<number, Buffer>([
    [53, Buffer.from([type])],
    [54, Buffer.from([10, 0, 2, 2])],
    [1, Buffer.from([255, 255, 255, 0])],
    [3, Buffer.from([10, 0, 2, 2])],
    [6, Buffer.from([10, 0, 2, 3, 1, 1, 1, 1])],
    [51, Buffer.from([0, 1, 81, 128])],
  ]);
  for (const [k, v] of extra) options.set(k, Buffer.from(v));
  return encode({ op: 2, xid, flags: 0, ciaddr: '0.0.0.0', yiaddr: '10.0.2.15', siaddr: '10.0.2.2', chaddr: mac, options, ...over });
}

describe('dhcp codec', () => {
  it('builds a DISCOVER that decodes back', () => {
    const b = discover(mac, xid, 'kith');
    expect(b.length).toBeGreaterThanOrEqual(300);
    const d = decode(b);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.value.op).toBe(1);
    expect(d.value.xid).toBe(xid);
    expect(d.value.flags).toBe(0x8000);
    expect(d.value.chaddr.equals(mac)).toBe(true);
    expect([...d.value.options.get(53)!]).toEqual([1]);
    expect(d.value.options.get(12)!.toString()).toBe('kith');
    // fixed header: htype 1, hlen 6, magic cookie at 236
    expect(b[1]).toBe(1);
    expect(b[2]).toBe(6);
    expect(b.readUInt32BE(236)).toBe(0x63825363);
  });

  it('builds a REQUEST naming the offer', () => {
    const d = decode(request(mac, xid, { address: '10.0.2.15', prefix: 24, dns: [], ntp: [], server: '10.0.2.2', leaseSeconds: 60 }));
    expect(d.ok && [...d.value.options.get(50)!]).toEqual([10, 0, 2, 15]);
    expect(d.ok && [...d.value.options.get(54)!]).toEqual([10, 0, 2, 2]);
    expect(d.ok && [...d.value.options.get(53)!]).toEqual([3]);
  });

  it('reads an OFFER and an ACK', () => {
    const o = interpret(reply(DHCPOFFER), xid, mac);
    expect(o).toEqual({ kind: 'offer', lease: { address: '10.0.2.15', prefix: 24, router: '10.0.2.2', dns: ['10.0.2.3', '1.1.1.1'], ntp: [], server: '10.0.2.2', leaseSeconds: 86400 } });
    expect(interpret(reply(DHCPACK), xid, mac).kind).toBe('ack');
    expect(interpret(reply(DHCPNAK), xid, mac).kind).toBe('nak');
  });

  it('reads NTP servers from option 42 (RFC 2132 §8.3) and asks for them', () => {
    const d = decode(discover(mac, xid));
    expect(d.ok && [...d.value.options.get(55)!]).toContain(42);
    const r = interpret(reply(DHCPACK, [[42, [10, 0, 2, 9, 192, 168, 1, 1]]]), xid, mac);
    expect(r.kind === 'ack' && r.lease.ntp).toEqual(['10.0.2.9', '192.168.1.1']);
    // a partial address is dropped; unusable ones (0.0.0.0, multicast) are not tried
    const odd = interpret(reply(DHCPACK, [[42, [10, 0, 2, 9, 0, 0, 0, 0, 224, 0, 1, 1, 10, 1]]]), xid, mac);
    expect(odd.kind === 'ack' && odd.lease.ntp).toEqual(['10.0.2.9']);
    const none = interpret(reply(DHCPACK, [[42, []]]), xid, mac);
    expect(none.kind === 'ack' && none.lease.ntp).toEqual([]);
  });

  it('ignores replies for someone else', () => {
    expect(interpret(reply(DHCPOFFER), xid + 1, mac)).toMatchObject({ kind: 'ignore', why: 'other transaction' });
    expect(interpret(reply(DHCPOFFER), xid, Buffer.from('525400000000', 'hex'))).toMatchObject({ kind: 'ignore', why: 'other client' });
    expect(interpret(discover(mac, xid), xid, mac)).toMatchObject({ kind: 'ignore', why: 'not a BOOTREPLY' });
  });

  it('survives hostile input', () => {
    const good = reply(DHCPOFFER);
    expect(decode(Buffer.alloc(0)).ok).toBe(false);
    expect(decode(good.subarray(0, 239)).ok).toBe(false);
    const badCookie = Buffer.from(good); badCookie[236] = 0;
    expect(decode(badCookie)).toEqual({ ok: false, error: 'no DHCP magic cookie' });
    const badOp = Buffer.from(good); badOp[0] = 7;
    expect(decode(badOp).ok).toBe(false);
    const badHlen = Buffer.from(good); badHlen[2] = 200;
    expect(decode(badHlen).ok).toBe(false);
    // an option whose length runs past the end
    const overrun = Buffer.concat([good.subarray(0, 240), Buffer.from([53, 200, 2])]);
    expect(decode(overrun)).toEqual({ ok: false, error: 'option 53 runs past the packet' });
    // a code byte with no length byte
    expect(decode(Buffer.concat([good.subarray(0, 240), Buffer.from([53])])).ok).toBe(false);
    // only padding and no END: accepted, no options
    const padded = decode(Buffer.concat([good.subarray(0, 240), Buffer.alloc(20)]));
    expect(padded.ok && padded.value.options.size).toBe(0);
    // non-contiguous netmask, short server id, wrong-size message type, unusable addresses
    expect(interpret(reply(DHCPOFFER, [[1, [255, 0, 255, 0]]]), xid, mac).kind).toBe('ignore');
    expect(interpret(reply(DHCPOFFER, [[54, [10, 0]]]), xid, mac).kind).toBe('ignore');
    expect(interpret(reply(DHCPOFFER, [[53, [2, 2]]]), xid, mac).kind).toBe('ignore');
    expect(interpret(reply(DHCPOFFER, [], { yiaddr: '0.0.0.0' }), xid, mac).kind).toBe('ignore');
    expect(interpret(reply(DHCPOFFER, [], { yiaddr: '239.1.1.1' }), xid, mac).kind).toBe('ignore');
    // random bytes never throw
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 0xff;
    for (let n = 0; n < 500; n++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 8; k++) b[236 + (rnd() % (b.length - 236))] = rnd();
      expect(() => interpret(b, xid, mac)).not.toThrow();
      expect(() => interpret(b.subarray(0, rnd() + 200), xid, mac)).not.toThrow();
    }
  });
});
