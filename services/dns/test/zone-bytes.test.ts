/**
 * Zone files are bytes (RFC 1035 §5.1): a TXT string holding bytes that are not UTF-8 is
 * served as those bytes, not rewritten to U+FFFD (EF BF BD) on the way in; `\DDD` escapes
 * give the same bytes; valid UTF-8 stays as it is. Read from disk through the same config
 * source the service uses, answered to dig, which shows each byte above 126 as \DDD.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { fsConfigSource } from '../../../platform/config/fs-source.ts';
import { decodeConfigText } from '../../../platform/config/text.ts';
import { loadDnsConfig } from '../config.ts';
import { createAuthHandler } from '../auth/handler.ts';
import { startDnsServer, type DnsServer } from '../server/server.ts';
import { formatZone } from '../zone/format.ts';
import { parseZone } from '../zone/parse.ts';
import { TYPE } from '../wire/constants.ts';
import { dig } from './helpers.ts';

const ZONE = Buffer.concat([
  Buffer.from('$ORIGIN bytes.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n'),
  // Raw 0xFF inside a string, the same byte as an escape, valid UTF-8 (é), a lone lead byte
  // (0xC3 then a space), and an encoded surrogate (ED A0 80), which UTF-8 forbids.
  Buffer.from('raw TXT "a'), Buffer.from([0xff]), Buffer.from('b" "\\255" "caf'), Buffer.from([0xc3, 0xa9]), Buffer.from('"\n'),
  Buffer.from('odd TXT "'), Buffer.from([0xc3]), Buffer.from(' x" "'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"\n'),
  Buffer.from('esc TXT \\255'), Buffer.from([0xfe]), Buffer.from('\n'),
]);

describe('TXT bytes from a zone file are kept (no U+FFFD)', () => {
  let dir: string;
  let srv: DnsServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kith-zone-bytes-'));
    mkdirSync(join(dir, 'dns/zones'), { recursive: true });
    writeFileSync(join(dir, 'dns/zones/bytes.test.zone'), ZONE);
    const cfg = await loadDnsConfig(fsConfigSource(dir));
    if (!cfg.ok) throw new Error(JSON.stringify(cfg.issues));
    const zones = cfg.value.zones;
    srv = await startDnsServer({ host: '127.0.0.1', port: 0, handler: createAuthHandler({ zones: () => zones }) });
  });
  afterAll(async () => {
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers raw bytes and \\DDD escapes byte-exactly (dig +short)', async () => {
    expect((await dig(srv.udpPort, '+short', 'raw.bytes.test', 'TXT')).trim()).toBe('"a\\255b" "\\255" "caf\\195\\169"');
    expect((await dig(srv.udpPort, '+short', 'odd.bytes.test', 'TXT')).trim()).toBe('"\\195 x" "\\237\\160\\128"');
    expect((await dig(srv.udpPort, '+short', 'esc.bytes.test', 'TXT')).trim()).toBe('"\\255\\254"');
  });

  it('round-trips through the zone writer (dynamic updates rewrite zone files)', () => {
    const z = parseZone(decodeConfigText(ZONE), { origin: 'bytes.test', file: 'bytes.test.zone' });
    if (!z.ok) throw new Error(JSON.stringify(z.issues));
    const rd = z.zone.get('raw.bytes.test', TYPE.TXT)!.rdata[0];
    expect([...rd]).toEqual([3, 0x61, 0xff, 0x62, 1, 0xff, 5, 0x63, 0x61, 0x66, 0xc3, 0xa9]);
    const strings = [Buffer.from([0x61, 0xff, 0x62]), Buffer.from([0xff]), Buffer.from('café')];
    const text = formatZone('bytes.test', [
      { name: 'bytes.test', type: 'SOA', ttl: 300, data: { mname: 'ns1.bytes.test', rname: 'hostmaster.bytes.test', serial: 2, refresh: 7200, retry: 900, expire: 1209600, minimum: 300 } },
      { name: 'bytes.test', type: 'NS', ttl: 300, data: 'ns1.bytes.test' },
      { name: 'raw.bytes.test', type: 'TXT', ttl: 300, data: strings },
    ]);
    expect(text).toContain('"a\\255b" "\\255" "caf\\195\\169"');
    const again = parseZone(text, { origin: 'bytes.test', file: 'bytes.test.zone' });
    if (!again.ok) throw new Error(JSON.stringify(again.issues));
    expect(again.zone.get('raw.bytes.test', TYPE.TXT)!.rdata[0]).toEqual(rd);
  });

  it('decodeConfigText loses no byte: 2,000 random buffers decode and map back exactly', () => {
    let seed = 5;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    for (let n = 0; n < 2000; n++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (n % 40) }, () => rand()));
      const text = decodeConfigText(bytes);
      const back: number[] = [];
      for (const ch of text) {
        const c = ch.charCodeAt(0);
        if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) back.push(c - 0xdc00);
        else back.push(...Buffer.from(ch, 'utf8'));
      }
      expect(Buffer.from(back)).toEqual(bytes);
    }
  });

  it('decodeConfigText: valid UTF-8 unchanged, each stray byte kept', () => {
    expect(decodeConfigText(Buffer.from('héllo ✓ 𝄞'))).toBe('héllo ✓ 𝄞');
    const s = decodeConfigText(Buffer.from([0x61, 0xff, 0xc3, 0x62, 0xf0, 0x9f, 0x98]));
    expect([...s].map((c) => c.charCodeAt(0).toString(16))).toEqual(['61', 'dcff', 'dcc3', '62', 'dcf0', 'dc9f', 'dc98']);
  });
});
