import { describe, expect, it } from 'vitest';
import { ifreqAddr, ifreqFlags, ipv4Bytes, prefixToNetmask, readIfreqFlags, readIfreqHwaddr, rtentry, sockaddrIn, IFF_UP, RTF_GATEWAY, RTF_UP } from './structs.ts';

describe('structs', () => {
  it('encodes sockaddr_in', () => {
    expect(sockaddrIn('10.0.2.15', 68).toString('hex')).toBe('020000440a00020f0000000000000000');
  });
  it('rejects bad addresses and names', () => {
    for (const a of ['1.2.3', '256.1.1.1', '1.2.3.4.5', 'a.b.c.d', '', '1..2.3']) expect(() => ipv4Bytes(a)).toThrow();
    expect(() => ifreqFlags('')).toThrow();
    expect(() => ifreqFlags('x'.repeat(16))).toThrow();
  });
  it('turns prefixes into netmasks', () => {
    expect(prefixToNetmask(24)).toBe('255.255.255.0');
    expect(prefixToNetmask(0)).toBe('0.0.0.0');
    expect(prefixToNetmask(32)).toBe('255.255.255.255');
    expect(prefixToNetmask(20)).toBe('255.255.240.0');
    expect(() => prefixToNetmask(33)).toThrow();
  });
  it('lays out ifreq', () => {
    const r = ifreqAddr('eth0', '10.0.2.15');
    expect(r.length).toBe(40);
    expect(r.subarray(0, 5).toString('latin1')).toBe('eth0\0');
    expect(r.subarray(16, 24).toString('hex')).toBe('020000000a00020f');
    expect(readIfreqFlags(ifreqFlags('lo', IFF_UP | 0x8000))).toBe(0x8001);
    const hw = Buffer.alloc(40);
    Buffer.from('0001525400123456', 'hex').copy(hw, 16);
    expect(readIfreqHwaddr(hw).toString('hex')).toBe('525400123456');
  });
  it('lays out rtentry', () => {
    const r = rtentry({ dst: '0.0.0.0', gateway: '10.0.2.2', genmask: '0.0.0.0', flags: RTF_UP | RTF_GATEWAY, devPointer: 0x1234n });
    expect(r.length).toBe(120);
    expect(r.subarray(24, 32).toString('hex')).toBe('020000000a000202');
    expect(r.readUInt16LE(56)).toBe(3);
    expect(r.readBigUInt64LE(88)).toBe(0x1234n);
  });
});
