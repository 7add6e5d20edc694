import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { symbol } from './elf.ts';
import { cutIcuTail, keepIcuItem, parseIcuPackage, trimIcuInProgram, writeIcuPackage, type IcuPackage } from './icu-data.ts';

/** The Node that runs the tests: the same npm build the images ship. */
const NODE = process.execPath;

/** A small valid package: a real-looking header and three items. */
function samplePackage(): IcuPackage {
  const header = Buffer.alloc(32);
  header.writeUInt16LE(32, 0);
  header[2] = 0xda;
  header[3] = 0x27;
  header.writeUInt16LE(20, 4);
  header[10] = 2; // sizeof(UChar)
  header.write('CmnD', 12, 'latin1');
  header[16] = 1;
  return {
    header,
    items: [
      { name: 'icudt78l/coll/root.res', data: Buffer.from('collation root data') },
      { name: 'icudt78l/de.res', data: Buffer.from('german') },
      { name: 'icudt78l/root.res', data: Buffer.alloc(40, 7) },
    ],
  };
}

describe('ICU common data packages', () => {
  it('writes and reads back the same items, 16-byte aligned', () => {
    const bytes = writeIcuPackage(samplePackage());
    const back = parseIcuPackage(bytes);
    expect(back.ok).toBe(true);
    if (!back.ok) return;
    expect(back.value.items.map((i) => i.name)).toEqual(['icudt78l/coll/root.res', 'icudt78l/de.res', 'icudt78l/root.res']);
    // Every item but the last is padded up to the next 16-byte boundary.
    expect(back.value.items[2]!.data).toEqual(Buffer.alloc(40, 7));
    expect(back.value.items[0]!.data.subarray(0, 19).toString()).toBe('collation root data');
    for (const it of back.value.items) expect((it.data.byteOffset - bytes.byteOffset) % 16).toBe(0);
  });

  it('refuses hostile packages with a message, never by throwing', () => {
    const good = writeIcuPackage(samplePackage());
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /too short/],
      ['bad magic', Buffer.concat([Buffer.from([32, 0, 0xde, 0xad]), good.subarray(4)]), /magic/],
      ['another format', Buffer.from(good).fill(0x58, 12, 16), /data format is "XXXX"/],
      ['huge count', (() => { const b = Buffer.from(good); b.writeUInt32LE(0xffffffff, 32); return b; })(), /claims 4294967295 items/],
      ['name outside', (() => { const b = Buffer.from(good); b.writeUInt32LE(1 << 30, 36); return b; })(), /name offset/],
      ['data outside', (() => { const b = Buffer.from(good); b.writeUInt32LE(1 << 30, 40); return b; })(), /data offset/],
      ['truncated', good.subarray(0, 40), /claims 3 items/],
      ['header size', (() => { const b = Buffer.from(good); b.writeUInt16LE(0xfff0, 0); return b; })(), /bad header size/],
      ['unsorted', (() => { const b = Buffer.from(good); const n = b.indexOf('icudt78l/de.res'); b.write('icudt78l/aa.res', n, 'latin1'); return b; })(), /not sorted/],
    ];
    for (const [what, bytes, message] of cases) {
      const r = parseIcuPackage(bytes);
      expect(r.ok, what).toBe(false);
      if (!r.ok) expect(r.error, what).toMatch(message);
    }
    // Random damage anywhere in a valid package: an error value or a package, never a throw.
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      expect(() => parseIcuPackage(b.subarray(0, Math.floor(rand() * b.length) + 1))).not.toThrow();
    }
  });

  it('keeps root, the chosen languages and everything that is not locale data', () => {
    const keep = (n: string) => keepIcuItem(`icudt78l/${n}`, { languages: ['en'] });
    for (const n of ['root.res', 'en.res', 'en_GB.res', 'en_001.res', 'coll/root.res', 'coll/en.res', 'zone/en_AU.res', 'res_index.res', 'coll/res_index.res',
      'pool.res', 'zone/pool.res', 'supplementalData.res', 'zoneinfo64.res', 'nfkc.nrm', 'uts46.nrm', 'ibm-5348_P100-1997.cnv', 'cnvalias.icu', 'coll/ucadata.icu', 'brkitr/word.brk']) {
      expect(keep(n), n).toBe(true);
    }
    for (const n of ['de.res', 'de_CH.res', 'coll/de_.res', 'lang/fil.res', 'zh_Hant_TW.res', 'brkitr/ja.res', 'brkitr/cjdict.dict', 'brkitr/thaidict.dict', 'translit/root.res', 'translit/en.res']) {
      expect(keep(n), n).toBe(false);
    }
    expect(keepIcuItem('icudt78l/de_AT.res', { languages: ['en', 'de'] })).toBe(true);
  });

  it('finds no ICU data in a stripped program, and says to trim first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kith-icu-'));
    try {
      const stripped = join(dir, 'node.stripped');
      const s = spawnSync('strip', ['-o', stripped, NODE]);
      expect(s.status, String(s.stderr)).toBe(0);
      const r = trimIcuInProgram(readFileSync(stripped), { languages: ['en'] });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(/stripped program.*trim.*before|strip the program only after trimming/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Node with its ICU data trimmed to English', () => {
  let dir: string;
  let trimmed: string;
  let report: { itemsBefore: number; itemsAfter: number; bytesBefore: number; bytesAfter: number };
  let kept: IcuPackage;
  let cut: string;
  let cutReport: { bytes: number };
  let strippedBytes: number;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kith-icu-'));
    const original = readFileSync(NODE);
    const r = trimIcuInProgram(readFileSync(NODE), { languages: ['en'] });
    if (!r.ok) throw new Error(r.error);
    report = r.value.report;
    trimmed = join(dir, 'node');
    writeFileSync(trimmed, r.value.program, { mode: 0o755 });
    // The program is unchanged outside the package; the package region is rewritten.
    const sym = symbol(original, /^icudt\d+_dat$/);
    if (!sym.ok) throw new Error(sym.error);
    expect(r.value.program.length).toBe(original.length);
    expect(r.value.program.subarray(0, sym.value.offset).equals(original.subarray(0, sym.value.offset))).toBe(true);
    expect(r.value.program.subarray(sym.value.offset + sym.value.size).equals(original.subarray(sym.value.offset + sym.value.size))).toBe(true);
    const pkg = r.value.program.subarray(sym.value.offset, sym.value.offset + report.bytesAfter);
    const parsed = parseIcuPackage(pkg);
    if (!parsed.ok) throw new Error(parsed.error);
    kept = parsed.value;
    // icupkg wants the file named after the package (icudt78l.dat for icudt78l/ items).
    writeFileSync(join(dir, `${packageName()}.dat`), pkg);
    // As the image builder does next: strip, then cut the zeroed tail out of the file.
    const stripped = join(dir, 'node.stripped');
    const st = spawnSync('strip', ['-o', stripped, trimmed]);
    if (st.status !== 0) throw new Error(`strip: ${st.stderr}`);
    const c = cutIcuTail(readFileSync(stripped));
    if (!c.ok) throw new Error(c.error);
    cutReport = c.value.report;
    cut = join(dir, 'node.cut');
    writeFileSync(cut, c.value.program, { mode: 0o755 });
    strippedBytes = readFileSync(stripped).length;
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const packageName = () => kept.items[0]!.name.slice(0, kept.items[0]!.name.indexOf('/'));

  it('keeps under a third of the data', () => {
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore / 3);
    expect(report.itemsAfter).toBeLessThan(report.itemsBefore / 3);
  });

  it('is a package ICU\'s own icupkg reads, listing exactly the kept items', () => {
    const r = spawnSync('icupkg', ['-l', join(dir, `${packageName()}.dat`)], { encoding: 'utf8' });
    // icupkg checks dependencies between items: the only missing ones are the word-break
    // dictionaries we drop on purpose (ICU loads them lazily, and breaks those scripts per
    // character without them, as the segmenter check below shows).
    const missing = r.stderr.split('\n').filter(Boolean);
    expect(missing.length).toBeGreaterThan(0);
    for (const line of missing) expect(line).toMatch(/^Item brkitr\/root\.res depends on missing item brkitr\/(cj|thai|lao|khmer|burmese)dict\.dict$/);
    const listed = r.stdout.split('\n').filter(Boolean);
    expect(listed).toEqual(kept.items.map((i) => i.name.slice(packageName().length + 1)));
  });

  it('formats English exactly as full ICU does, and other locales fall back to it openly', () => {
    const script = `
      const d = new Date(Date.UTC(2026, 10, 23, 14, 5, 9));
      const r = {};
      for (const l of ['en', 'en-GB', 'en-IN']) {
        r[l] = [
          new Intl.DateTimeFormat(l, { dateStyle: 'full', timeStyle: 'long', timeZone: 'Europe/Berlin' }).format(d),
          new Intl.NumberFormat(l, { style: 'currency', currency: 'EUR' }).format(1234567.891),
          new Intl.NumberFormat(l, { style: 'unit', unit: 'kilometer-per-hour' }).format(50),
          new Intl.NumberFormat(l, { notation: 'compact' }).format(1234567),
          new Intl.PluralRules(l).select(1), ['b', 'A', 'a', 'ä'].sort(new Intl.Collator(l).compare).join(''),
          new Intl.DisplayNames(l, { type: 'region' }).of('DE'), new Intl.ListFormat(l).format(['a', 'b', 'c']),
          new Intl.RelativeTimeFormat(l).format(-3, 'day'), new Intl.DateTimeFormat(l).resolvedOptions().locale,
        ];
      }
      r.de = new Intl.DateTimeFormat('de').resolvedOptions().locale;
      r.supported = Intl.DateTimeFormat.supportedLocalesOf(['de', 'en-GB']);
      r.words = [...new Intl.Segmenter('en', { granularity: 'word' }).segment("Isn't it?")].map((s) => s.segment);
      r.thai = [...new Intl.Segmenter('th', { granularity: 'word' }).segment('สวัสดีครับ')].length;
      r.nf = ['e\\u0301'.normalize('NFC').length, '\\ufb01'.normalize('NFKC')];
      r.idn = new URL('http://bücher.example/').host;
      r.decoders = ['windows-1252', 'iso-8859-2', 'shift_jis', 'gb18030', 'big5', 'euc-kr'].map((e) => new TextDecoder(e).decode(new Uint8Array([0x41, 0xa4, 0xa2])));
      r.tz = new Date(0).toLocaleString('en', { timeZone: 'Asia/Kathmandu' });
      console.log(JSON.stringify(r));
    `;
    const run = (node: string) => {
      const p = spawnSync(node, ['-e', script], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
      expect(p.status, p.stderr).toBe(0);
      return JSON.parse(p.stdout) as Record<string, unknown>;
    };
    const full = run(NODE);
    const small = run(trimmed);
    for (const k of ['en', 'en-GB', 'en-IN', 'words', 'nf', 'idn', 'decoders', 'tz']) expect(small[k], k).toEqual(full[k]);
    expect(full.de).toBe('de');
    expect(small.de).toBe('en-US');
    expect(small.supported).toEqual(['en-GB']);
    // Without the Thai dictionary a Thai run is one word instead of two; nothing fails.
    expect([full.thai, small.thai]).toEqual([2, 1]);
    // With the zeroed tail cut out of the file, the same answers.
    expect(run(cut)).toEqual(small);
  }, 30_000);

  it('cuts the zeroed tail out of the stripped file: whole pages, nothing the package reaches', () => {
    expect(cutReport.bytes % 4096).toBe(0);
    expect(cutReport.bytes).toBeGreaterThan(report.bytesBefore - report.bytesAfter - 2 * 65536);
    expect(readFileSync(cut).length).toBe(strippedBytes - cutReport.bytes);
    // A second cut finds nothing to take (the symbol now reaches past its section).
    expect(cutIcuTail(readFileSync(cut)).ok).toBe(false);
  });
});
