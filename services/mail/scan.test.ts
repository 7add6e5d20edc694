import { describe, expect, it } from 'vitest';
import { MessageScanner } from './scan.ts';

const scan = (chunks: string[], opts = { headerBytes: 1024, eightBitAllowed: false }) => {
  const s = new MessageScanner(opts);
  const out = chunks.map((c) => s.push(Buffer.from(c, 'latin1')).toString('latin1')).join('');
  return { s, out };
};

describe('message scanner', () => {
  it('turns bare LF into CRLF, also across chunk edges, and leaves CRLF alone', () => {
    expect(scan(['a: b\nc: d\r\n\r', '\nbody\n']).out).toBe('a: b\r\nc: d\r\n\r\nbody\r\n');
    expect(scan(['x\r', '\ny\n', '\n']).out).toBe('x\r\ny\r\n\r\n');
  });
  it('refuses 8-bit data unless declared', () => {
    expect(scan(['Subject: caf\xe9\r\n\r\n']).s.error?.code).toBe(554);
    const ok = scan(['Subject: caf\xe9\r\n\r\n'], { headerBytes: 1024, eightBitAllowed: true });
    expect(ok.s.error).toBeUndefined();
    expect(ok.s.saw8bit).toBe(true);
  });
  it('limits the header section, not the body', () => {
    expect(scan(['X: ' + 'a'.repeat(2000) + '\r\n\r\n']).s.error).toEqual({ code: 552, text: expect.stringMatching(/^5\.3\.4 /) });
    expect(scan(['X: y\r\n\r\n', 'a'.repeat(5000)]).s.error).toBeUndefined();
    expect(scan(['\r\n', 'a'.repeat(5000)]).s.error).toBeUndefined();
  });
});
