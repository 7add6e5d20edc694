import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { appendErrorTsig, findTsig, signMessage, verifyMessage, type TsigKey } from './tsig.ts';
import { parseKeyFile, formatKeyFile } from './keyfile.ts';
import { encodeName, readName, canonicalName } from '../wire/name.ts';
import { scanMessage } from '../wire/scan.ts';

const NOW = 1_700_000_000_000;
const key: TsigKey = { name: 'update-key', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 7) };
const other: TsigKey = { name: 'other-key', algorithm: 'hmac-sha512', secret: Buffer.alloc(64, 9) };

function query(id = 0x1234): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'example.com', class: 'IN' }] });
}

describe('signMessage / verifyMessage', () => {
  for (const algorithm of ['hmac-sha1', 'hmac-sha256', 'hmac-sha512'] as const) {
    it(`round-trips with ${algorithm}`, () => {
      const k: TsigKey = { name: 'k.example', algorithm, secret: Buffer.from('0123456789abcdef0123456789abcdef') };
      const signed = signMessage(query(), k, { now: NOW });
      const r = verifyMessage(signed.bytes, [k], { now: NOW + 1000 });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.keyName).toBe('k.example');
        expect(r.mac.equals(signed.mac)).toBe(true);
      }
      // dns-packet still reads the message (ARCOUNT counts the TSIG RR).
      expect(dnsPacket.decode(signed.bytes).additionals!.length).toBe(1);
    });
  }

  it('signs responses over the request MAC', () => {
    const req = signMessage(query(), key, { now: NOW });
    const resp = dnsPacket.encode({ type: 'response', id: 0x1234, questions: [{ type: 'A', name: 'example.com' }], answers: [{ type: 'A', name: 'example.com', data: '192.0.2.1', ttl: 60 }] });
    const signed = signMessage(resp, key, { now: NOW, requestMac: req.mac });
    expect(verifyMessage(signed.bytes, [key], { now: NOW, requestMac: req.mac }).ok).toBe(true);
    const noReq = verifyMessage(signed.bytes, [key], { now: NOW });
    expect(noReq.ok === false && noReq.error).toBe('BADSIG');
  });

  it('matches key names case-insensitively and restores the original ID', () => {
    const signed = signMessage(query(0x4242), { ...key, name: 'Update-Key' }, { now: NOW });
    // A forwarder may rewrite the ID; the MAC covers the Original ID instead.
    signed.bytes.writeUInt16BE(0x9999, 0);
    expect(verifyMessage(signed.bytes, new Map([['update-key', key]]), { now: NOW }).ok).toBe(true);
  });

  it('reports UNSIGNED for a message without TSIG', () => {
    const r = verifyMessage(query(), [key], { now: NOW });
    expect(r.ok === false && r.error).toBe('UNSIGNED');
  });

  it('BADKEY for an unknown key or a mismatched algorithm', () => {
    const signed = signMessage(query(), key, { now: NOW });
    const r1 = verifyMessage(signed.bytes, [other], { now: NOW });
    expect(r1.ok === false && r1.error).toBe('BADKEY');
    const r2 = verifyMessage(signed.bytes, [{ ...key, algorithm: 'hmac-sha1' }], { now: NOW });
    expect(r2.ok === false && r2.error).toBe('BADKEY');
  });

  it('BADSIG for a wrong secret or a tampered message', () => {
    const signed = signMessage(query(), key, { now: NOW });
    const r1 = verifyMessage(signed.bytes, [{ ...key, secret: Buffer.alloc(32, 8) }], { now: NOW });
    expect(r1.ok === false && r1.error).toBe('BADSIG');
    const tampered = Buffer.from(signed.bytes);
    tampered[13] ^= 0x20; // flip case of the first question label
    const r2 = verifyMessage(tampered, [key], { now: NOW });
    expect(r2.ok === false && r2.error).toBe('BADSIG');
  });

  it('BADTIME for old, replayed-late or future messages, after the MAC checks out', () => {
    const signed = signMessage(query(), key, { now: NOW });
    for (const now of [NOW + 301_000, NOW - 301_000, NOW + 86_400_000]) {
      const r = verifyMessage(signed.bytes, [key], { now });
      expect(r.ok === false && r.error).toBe('BADTIME');
    }
    expect(verifyMessage(signed.bytes, [key], { now: NOW + 300_000 }).ok).toBe(true);
    // A smaller fudge in the message is honoured.
    const tight = signMessage(query(), key, { now: NOW, fudge: 10 });
    const r = verifyMessage(tight.bytes, [key], { now: NOW + 11_000 });
    expect(r.ok === false && r.error).toBe('BADTIME');
  });

  it('accepts a MAC truncated to half the hash but not below', () => {
    const signed = signMessage(query(), key, { now: NOW });
    const t = findTsig(signed.bytes)!;
    const rebuild = (macLen: number) => {
      const base = Buffer.from(signed.bytes.subarray(0, t.start));
      base.writeUInt16BE(base.readUInt16BE(10) - 1, 10);
      // Re-sign to get the MAC, then splice a truncated copy by hand.
      const full = signMessage(base, key, { now: NOW });
      const tr = findTsig(full.bytes)!;
      const head = full.bytes.subarray(0, tr.start);
      const alg = encodeName('hmac-sha256');
      const owner = encodeName('update-key');
      const fixed = Buffer.alloc(10);
      fixed.writeUIntBE(tr.timeSigned, 0, 6);
      fixed.writeUInt16BE(300, 6);
      fixed.writeUInt16BE(macLen, 8);
      const tail = Buffer.alloc(6);
      tail.writeUInt16BE(tr.originalId, 0);
      const rdata = Buffer.concat([alg, fixed, tr.mac.subarray(0, macLen), tail]);
      const rrHead = Buffer.alloc(10);
      rrHead.writeUInt16BE(250, 0);
      rrHead.writeUInt16BE(255, 2);
      rrHead.writeUInt16BE(rdata.length, 8);
      return Buffer.concat([head, owner, rrHead, rdata]);
    };
    expect(verifyMessage(rebuild(16), [key], { now: NOW }).ok).toBe(true);
    const short = verifyMessage(rebuild(8), [key], { now: NOW });
    expect(short.ok === false && short.error).toBe('FORMERR');
  });

  it('error responses: BADSIG unsigned with empty MAC, BADTIME signed with server time', () => {
    const signed = signMessage(query(), key, { now: NOW });
    const t = findTsig(signed.bytes)!;
    const resp = dnsPacket.encode({ type: 'response', id: 0x1234, flags: 9, questions: [{ type: 'A', name: 'example.com' }] });
    const bad = appendErrorTsig(resp, t, 'BADSIG', NOW);
    const bt = findTsig(bad)!;
    expect(bt.error).toBe(16);
    expect(bt.mac.length).toBe(0);
    const late = signMessage(resp, key, { now: NOW + 1_000_000, requestMac: t.mac, error: 'BADTIME' });
    const lt = findTsig(late.bytes)!;
    expect(lt.error).toBe(18);
    expect(lt.otherData.readUIntBE(0, 6)).toBe(Math.floor((NOW + 1_000_000) / 1000));
    expect(verifyMessage(late.bytes, [key], { now: NOW + 1_000_000, requestMac: t.mac }).ok).toBe(true);
  });
});

describe('hostile TSIG input', () => {
  const signed = signMessage(query(), key, { now: NOW }).bytes;

  it('FORMERR when TSIG is not the last additional record', () => {
    const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    const moved = Buffer.concat([signed, opt]);
    moved.writeUInt16BE(moved.readUInt16BE(10) + 1, 10);
    const r = verifyMessage(moved, [key], { now: NOW });
    expect(r.ok === false && r.error).toBe('FORMERR');
  });

  it('FORMERR for TSIG in the answer section or with the wrong class', () => {
    const q = query();
    const tsigRr = signed.subarray(q.length);
    const inAnswer = Buffer.concat([q, tsigRr]);
    inAnswer.writeUInt16BE(1, 6);
    expect((verifyMessage(inAnswer, [key], { now: NOW }) as { error: string }).error).toBe('FORMERR');
    const wrongClass = Buffer.from(signed);
    const t = findTsig(signed)!;
    const classOff = t.start + encodeName('update-key').length + 2;
    wrongClass.writeUInt16BE(1, classOff);
    expect((verifyMessage(wrongClass, [key], { now: NOW }) as { error: string }).error).toBe('FORMERR');
  });

  it('never throws on truncations and random corruption', () => {
    for (let cut = 0; cut < signed.length; cut++) {
      const r = verifyMessage(signed.subarray(0, cut), [key], { now: NOW });
      expect(r.ok).toBe(false);
    }
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.from(signed);
      for (let k = 0; k < 3; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const r = verifyMessage(b, [key], { now: NOW });
      if (r.ok) expect(r.keyName).toBe('update-key');
    }
  });

  it('FORMERR for MAC size longer than the hash, or Other Len lying', () => {
    const t = findTsig(signed)!;
    const b = Buffer.from(signed);
    const macSizeOff = t.start + encodeName('update-key').length + 10 + encodeName('hmac-sha256').length + 8;
    b.writeUInt16BE(200, macSizeOff);
    expect((verifyMessage(b, [key], { now: NOW }) as { error: string }).error).toBe('FORMERR');
    const c = Buffer.from(signed);
    c.writeUInt16BE(5, c.length - 2);
    expect((verifyMessage(c, [key], { now: NOW }) as { error: string }).error).toBe('FORMERR');
  });

  it('rejects compression loops and forward pointers in names', () => {
    const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    loop.writeUInt16BE(1, 4);
    expect(() => scanMessage(loop)).toThrow();
    expect(() => readName(Buffer.from([0xc0, 0x05, 0, 0, 0, 0]), 0)).toThrow();
  });
});

describe('raw names', () => {
  it('canonicalises', () => {
    expect(canonicalName('Example.COM.')).toBe('example.com');
    expect(canonicalName('.')).toBe('.');
    expect(encodeName('A.b', true)).toEqual(Buffer.from([1, 0x61, 1, 0x62, 0]));
  });
});

describe('parseKeyFile', () => {
  it('reads tsig-keygen output, several keys and comments', () => {
    const text = `# generated
key "Update-Key." {
\talgorithm hmac-sha256;
\tsecret "${Buffer.alloc(32, 7).toString('base64')}";
};
/* second
   key */
key other-key { algorithm HMAC-SHA512; secret "${Buffer.alloc(64, 9).toString('base64')}"; }; // trailing
`;
    const r = parseKeyFile(text, 'dns/keys.conf');
    expect(r).toEqual({ ok: true, keys: [key, other] });
    expect(parseKeyFile(formatKeyFile(key), 'x')).toEqual({ ok: true, keys: [key] });
  });

  it('names file and line for each problem', () => {
    const text = `key "a" {\n  algorithm hmac-md5;\n  secret "!!notbase64";\n};\nkey "b" {\n  secret "${Buffer.alloc(32).toString('base64')}";\n};\n`;
    const r = parseKeyFile(text, 'dns/keys.conf');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues).toContainEqual(expect.objectContaining({ file: 'dns/keys.conf', line: 2, field: 'algorithm' }));
      expect(r.issues).toContainEqual(expect.objectContaining({ line: 3, field: 'secret' }));
      expect(r.issues).toContainEqual(expect.objectContaining({ line: 5, field: 'algorithm' }));
    }
  });

  it('reports syntax errors without throwing', () => {
    for (const bad of ['key', 'key "a"', 'key "a" { algorithm', 'options { };', 'key "a" { secret "abc', '/* open', 'key "a" { algorithm hmac-sha256; secret "AAAA"; } ', 'key "a" { x y; };', '"str"']) {
      const r = parseKeyFile(bad, 'k.conf');
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.issues[0].file).toBe('k.conf');
    }
  });
});

describe('loadKeyFile', () => {
  it('missing file → no keys; broken file → issues; good file → keys', async () => {
    const { loadKeyFile } = await import('./keyfile.ts');
    const files: Record<string, string> = { 'dns/keys.conf': formatKeyFile(key), 'dns/bad.conf': 'key "x" {' };
    const source = { read: async (p: string) => files[p] };
    expect(await loadKeyFile(source, 'dns/none.conf')).toEqual({ ok: true, value: [] });
    expect(await loadKeyFile(source, 'dns/keys.conf')).toEqual({ ok: true, value: [key] });
    const bad = await loadKeyFile(source, 'dns/bad.conf');
    expect(bad.ok).toBe(false);
    const failing = await loadKeyFile({ read: async () => { throw new Error('EACCES'); } }, 'dns/keys.conf');
    expect(failing.ok === false && failing.issues[0].message).toMatch(/EACCES/);
  });
});
