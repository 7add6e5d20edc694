import { describe, expect, it } from 'vitest';
import { check, decode, fromUnixMs, request, serverReply, toUnixMs, NTP_PACKET } from './sntp.ts';

const T1 = Date.UTC(2026, 11, 2, 7, 0, 0);

function exchange(over: Parameters<typeof serverReply>[0] extends infer O ? Partial<O> : never = {}) {
  const { packet, transmit } = request();
  // The server is 1 h ahead; 10 ms each way, 2 ms inside the server.
  const reply = serverReply({ origin: transmit, receiveMs: T1 + 3_600_000 + 10, transmitMs: T1 + 3_600_000 + 12, ...over });
  return { packet, transmit, reply };
}

describe('sntp codec (RFC 4330)', () => {
  it('builds a client request: VN 4, mode 3, only the transmit timestamp set', () => {
    const { packet, transmit } = request();
    expect(packet.length).toBe(NTP_PACKET);
    expect(packet[0]).toBe(0x23);
    expect(packet.subarray(1, 40).every((b) => b === 0)).toBe(true);
    expect(packet.subarray(40).equals(transmit)).toBe(true);
    // random: two requests never share a transmit timestamp
    expect(request().transmit.equals(request().transmit)).toBe(false);
  });

  it('converts timestamps both ways, across the 2036 era boundary', () => {
    for (const ms of [Date.UTC(2026, 0, 1), Date.UTC(2036, 1, 7, 6, 28, 15), Date.UTC(2036, 1, 7, 6, 28, 17), Date.UTC(2100, 0, 1) + 0.5]) {
      expect(Math.abs(toUnixMs(fromUnixMs(ms), ms)! - ms)).toBeLessThan(0.001);
    }
    // RFC 4330 §3: bit 0 set is era 0 (1968–2036) for a clock near today; clear is era 1
    expect(toUnixMs(Buffer.from('8000000000000000', 'hex'))).toBe((2 ** 31 - 2_208_988_800) * 1000);
    expect(toUnixMs(Buffer.from('0000000100000000', 'hex'))).toBe((2 ** 32 + 1 - 2_208_988_800) * 1000);
    expect(toUnixMs(Buffer.alloc(8))).toBeUndefined();
    expect(toUnixMs(Buffer.alloc(7, 1))).toBeUndefined();
  });

  it('takes a good reply: offset and delay from T1..T4', () => {
    const { transmit, reply } = exchange();
    const r = check(reply, transmit, T1, T1 + 22);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sample.offsetMs).toBeCloseTo(3_600_000, 0);
    expect(r.sample.delayMs).toBeCloseTo(20, 0);
    expect(r.sample.stratum).toBe(2);
    expect(r.sample.refId).toBe('192.0.2.1');
    const mine = exchange({ stratum: 1, refId: Buffer.from('GPS\0') });
    const g = check(mine.reply, mine.transmit, T1, T1 + 22);
    expect(g.ok && g.sample.refId).toBe('GPS');
  });

  it('refuses bad replies, saying why', () => {
    const cases: [string, Partial<Parameters<typeof serverReply>[0]>, RegExp][] = [
      ['wrong mode (a client request echoed)', { mode: 3 }, /mode 3/],
      ['broadcast mode', { mode: 5 }, /mode 5/],
      ['version 0', { version: 0 }, /version 0/],
      ['version 7', { version: 7 }, /version 7/],
      ['kiss-o\'-death RATE', { stratum: 0, refId: Buffer.from('RATE') }, /kiss-o'-death RATE/],
      ['kiss-o\'-death DENY', { stratum: 0, refId: Buffer.from('DENY') }, /kiss-o'-death DENY/],
      ['stratum 16', { stratum: 16 }, /stratum 16/],
      ['leap alarm', { leap: 3 }, /leap indicator 3/],
      ['zero transmit timestamp', { transmitMs: -2_208_988_800_000 }, /transmit timestamp is zero/],
      ['zero receive timestamp', { receiveMs: -2_208_988_800_000 }, /receive timestamp is zero/],
      ['replied before receiving', { receiveMs: T1 + 3_600_000 + 50 }, /before it received/],
    ];
    for (const [name, over, why] of cases) {
      const { transmit, reply } = exchange(over);
      const r = check(reply, transmit, T1, T1 + 22);
      expect(r.ok, name).toBe(false);
      if (!r.ok) expect(r.why, name).toMatch(why);
    }
    const kod = exchange({ stratum: 0, refId: Buffer.from('RATE') });
    expect(check(kod.reply, kod.transmit, T1, T1 + 22)).toMatchObject({ ok: false, kiss: 'RATE' });
    // origin mismatch: a reply to someone else's (or an old) request
    const { reply } = exchange();
    expect(check(reply, request().transmit, T1, T1 + 22)).toMatchObject({ ok: false, why: expect.stringMatching(/origin timestamp/) });
    // a round trip that cannot be: T4 before T1, or a minute long
    const a = exchange();
    expect(check(a.reply, a.transmit, T1, T1 - 5).ok).toBe(false);
    expect(check(a.reply, a.transmit, T1, T1 + 60_000).ok).toBe(false);
    expect(check(Buffer.alloc(47), a.transmit, T1, T1 + 1)).toMatchObject({ ok: false, why: expect.stringMatching(/short packet/) });
  });

  it('survives hostile input (fuzz): decode and check never throw', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 0xff;
    const { transmit, reply } = exchange();
    let accepted = 0;
    for (let n = 0; n < 5000; n++) {
      const b = Buffer.from(reply);
      for (let k = 0; k < 1 + (n % 6); k++) b[rnd() % b.length] = rnd();
      const cut = n % 7 === 0 ? b.subarray(0, rnd() % 60) : n % 11 === 0 ? Buffer.concat([b, Buffer.alloc(rnd())]) : b;
      expect(() => decode(cut)).not.toThrow();
      const r = check(cut, transmit, T1, T1 + 22);
      if (r.ok) {
        accepted++;
        expect(Number.isFinite(r.sample.offsetMs) && Number.isFinite(r.sample.delayMs)).toBe(true);
        expect(r.sample.delayMs).toBeLessThanOrEqual(10_000);
      }
    }
    // wholly random packets: never accepted (the origin cannot match)
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.from(Array.from({ length: rnd() }, rnd));
      expect(check(b, transmit, T1, T1 + 22).ok).toBe(false);
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
