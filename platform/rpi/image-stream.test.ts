import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocks, detectFormat, gzipSize, openImageStream, parseSha256File, xzUncompressedSize, zstdContentSize, type ReadAt } from './image-stream.ts';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tool = (cmd: string, args: string[], input: Buffer): Buffer => {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const readerOf = (b: Buffer): ReadAt => (offset, length) => b.subarray(Math.max(0, offset), Math.max(0, offset) + length);

/** Some MiB that compress, but not to nothing. */
function sample(mib: number): Buffer {
  const b = Buffer.alloc(mib << 20);
  let x = 12345;
  for (let i = 0; i < b.length; i += 64) {
    x = (x * 1103515245 + 12345) >>> 0;
    if (x % 3 === 0) b.fill(x & 0xff, i, i + 64);
  }
  return b;
}

describe('detectFormat', () => {
  it('goes by magic bytes, and refuses a name that promises another format', () => {
    expect(detectFormat('a.img', Buffer.from([0x1f, 0x8b, 8, 0]))).toEqual({ ok: true, value: 'gzip' });
    expect(detectFormat('a.img.zst', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toEqual({ ok: true, value: 'zstd' });
    expect(detectFormat('a.img.XZ', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toEqual({ ok: true, value: 'xz' });
    expect(detectFormat('a.img', Buffer.alloc(512))).toEqual({ ok: true, value: 'raw' });
    expect(detectFormat('a.img', Buffer.alloc(0))).toEqual({ ok: true, value: 'raw' });
    const r = detectFormat('kith-rpi.img.zst', Buffer.from('<html>404'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/ends in \.zst but it is not compressed \(a damaged or incomplete download\?\)/);
    const g = detectFormat('kith-rpi.img.xz', Buffer.from([0x1f, 0x8b, 8]));
    expect(g.ok || g.error).toMatch(/ends in \.xz but it is gzip-compressed/);
  });
});

describe('sizes from the packed file', () => {
  const data = sample(3);
  it('zstd: Frame_Content_Size as node:zlib and the zstd program write it', () => {
    const z = zlib.zstdCompressSync(data, { pledgedSrcSize: data.length });
    expect(zstdContentSize(z)).toBe(data.length);
    // Small sizes use the 1- and 2-byte forms.
    expect(zstdContentSize(zlib.zstdCompressSync(Buffer.alloc(100), { pledgedSrcSize: 100 }))).toBe(100);
    expect(zstdContentSize(zlib.zstdCompressSync(Buffer.alloc(1000), { pledgedSrcSize: 1000 }))).toBe(1000);
    if (have('zstd')) {
      // The zstd program states the size when it compresses a file, not a pipe.
      const dir = mkdtempSync(join(tmpdir(), 'kith-zstd-'));
      writeFileSync(join(dir, 'a'), data);
      expect(zstdContentSize(tool('zstd', ['-q', '-c', join(dir, 'a')], Buffer.alloc(0)))).toBe(data.length);
      expect(zstdContentSize(tool('zstd', ['-q', '-c'], data))).toBeUndefined();
      rmSync(dir, { recursive: true });
    }
  });
  it('gzip: ISIZE, lifted past 4 GiB by the partitions\' end', () => {
    expect(gzipSize(zlib.gzipSync(data))).toBe(data.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(100);
    expect(gzipSize(tail, 5 * 2 ** 30)).toBe(2 ** 33 + 100);
    expect(gzipSize(Buffer.alloc(3))).toBeUndefined();
  });
  it.skipIf(!have('xz'))('xz: the index of every stream, padding and blocks included', () => {
    const one = tool('xz', ['-c', '-1'], data);
    expect(xzUncompressedSize(one.length, readerOf(one))).toBe(data.length);
    // Several blocks (-T2 --block-size), two streams with padding between and after.
    const multi = tool('xz', ['-c', '-1', '-T2', '--block-size=1MiB'], data);
    const two = Buffer.concat([multi, Buffer.alloc(8), tool('xz', ['-c', '-0', '--check=sha256'], Buffer.alloc(5000, 7)), Buffer.alloc(4)]);
    expect(xzUncompressedSize(two.length, readerOf(two))).toBe(data.length + 5000);
    expect(tool('xz', ['-dc'], two).length).toBe(data.length + 5000);
  });
  it.skipIf(!have('xz'))('hostile bytes: an answer (a size or unknown), never a throw', () => {
    const xz = tool('xz', ['-c', '-0', '-T2', '--block-size=64KiB'], sample(1));
    const z = zlib.zstdCompressSync(Buffer.alloc(70000), { pledgedSrcSize: 70000 });
    let x = 7;
    for (let i = 0; i < 3000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const b = Buffer.from(xz);
      // Damage the tail (footer, index), where the size comes from.
      b[b.length - 1 - (x % 200)] = (x >>> 8) & 0xff;
      expect(() => xzUncompressedSize(b.length, readerOf(b))).not.toThrow();
      expect(() => xzUncompressedSize(x % 64, readerOf(b.subarray(0, x % 64)))).not.toThrow();
      const c = Buffer.from(z.subarray(0, 4 + (x % 16)));
      if (c.length > 4) c[4 + (x % (c.length - 4))] = (x >>> 16) & 0xff;
      expect(() => zstdContentSize(c)).not.toThrow();
    }
    // A damaged index fails its CRC32: unknown, not a wrong number.
    const b = Buffer.from(xz);
    b[b.length - 20] ^= 1;
    expect(xzUncompressedSize(b.length, readerOf(b))).toBeUndefined();
    expect(xzUncompressedSize(0, readerOf(Buffer.alloc(0)))).toBeUndefined();
    expect(xzUncompressedSize(100, readerOf(Buffer.alloc(100)))).toBeUndefined();
  });
});

describe('parseSha256File', () => {
  const h = 'a'.repeat(64);
  it('reads sha256sum text and binary lines, for the named file', () => {
    expect(parseSha256File(`${h}  kith-rpi.img.zst\n`, 'kith-rpi.img.zst')).toEqual({ ok: true, value: h });
    expect(parseSha256File(`# made by kith\n${'b'.repeat(64)}  other\n${h.toUpperCase()} *dir/kith-rpi.img.zst\r\n`, 'kith-rpi.img.zst')).toEqual({ ok: true, value: h });
  });
  it('takes the only line of a renamed download', () => {
    expect(parseSha256File(`${h}  kith-rpi.img.zst\n`, 'my-kith.img.zst')).toEqual({ ok: true, value: h });
  });
  it('refuses anything else', () => {
    expect(parseSha256File(`${h}  other\n${h}  another\n`, 'x')).toEqual({ ok: false, error: 'no line for x' });
    expect(parseSha256File('# nothing\n', 'x')).toEqual({ ok: false, error: 'no sha256sum line in it' });
    expect(parseSha256File('<html>\n', 'x').ok).toBe(false);
    expect(parseSha256File(`${h.slice(1)}  x\n`, 'x').ok).toBe(false);
    expect(parseSha256File('', 'x').ok).toBe(false);
  });
});

describe('openImageStream', () => {
  let dir: string;
  const data = sample(5);
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'kith-stream-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const drain = async (path: string) => {
    const s = openImageStream(path);
    const parts: Buffer[] = [];
    for await (const c of s.chunks()) parts.push(c);
    return { s, out: Buffer.concat(parts) };
  };

  const packs: [string, (b: Buffer) => Buffer, boolean][] = [
    ['img', (b) => b, true],
    ['img.gz', (b) => zlib.gzipSync(b), true],
    ['img.zst', (b) => zlib.zstdCompressSync(b, { pledgedSrcSize: b.length }), true],
    ['img.xz', (b) => tool('xz', ['-c', '-0', '-T2', '--block-size=1MiB'], b), have('xz')],
  ];
  for (const [ext, pack, can] of packs) {
    it.skipIf(!can)(`streams ${ext}: every byte, its stated size and the stored file's sha256`, async () => {
      const file = join(dir, `a.${ext}`);
      const packed = pack(data);
      writeFileSync(file, packed);
      const { s, out } = await drain(file);
      expect(out.equals(data)).toBe(true);
      expect(s.bytes).toBe(data.length);
      expect(s.fileBytes).toBe(packed.length);
      expect(s.fileSha256()).toBe(spawnSync('sha256sum', [file], { encoding: 'utf8' }).stdout.slice(0, 64));
    });
  }

  it('concatenated gzip members and zstd frames are one image', async () => {
    writeFileSync(join(dir, 'm.img.gz'), Buffer.concat([zlib.gzipSync(data.subarray(0, 1000)), zlib.gzipSync(data.subarray(1000))]));
    expect((await drain(join(dir, 'm.img.gz'))).out.equals(data)).toBe(true);
    writeFileSync(join(dir, 'm.img.zst'), Buffer.concat([zlib.zstdCompressSync(data.subarray(0, 1000)), zlib.zstdCompressSync(data.subarray(1000))]));
    expect((await drain(join(dir, 'm.img.zst'))).out.equals(data)).toBe(true);
  });

  it('a truncated or damaged download is an error that names the file', async () => {
    const z = zlib.zstdCompressSync(data, { pledgedSrcSize: data.length });
    writeFileSync(join(dir, 'cut.img.zst'), z.subarray(0, z.length >> 1));
    await expect(drain(join(dir, 'cut.img.zst'))).rejects.toThrow(/cut\.img\.zst: the zstd data is damaged or cut short \(.*\): download it again/);
    const gz = zlib.gzipSync(data);
    gz[gz.length >> 1] ^= 0xff;
    writeFileSync(join(dir, 'bad.img.gz'), gz);
    await expect(drain(join(dir, 'bad.img.gz'))).rejects.toThrow(/bad\.img\.gz: the gzip data is damaged/);
    writeFileSync(join(dir, 'lie.img.zst'), data);
    expect(() => openImageStream(join(dir, 'lie.img.zst'))).toThrow(/lie\.img\.zst: its name ends in \.zst but it is not compressed/);
  });

  it.skipIf(!have('xz'))('xz refusing its input is the stream\'s error, with xz\'s words', async () => {
    const xz = tool('xz', ['-c', '-0'], data);
    writeFileSync(join(dir, 'cut.img.xz'), xz.subarray(0, xz.length - 100));
    await expect(drain(join(dir, 'cut.img.xz'))).rejects.toThrow(/cut\.img\.xz: xz could not decompress it \(exit 1\): .*(Unexpected end of input|truncated)/i);
    const bad = Buffer.from(xz);
    bad[200] ^= 0xff;
    writeFileSync(join(dir, 'bad.img.xz'), bad);
    await expect(drain(join(dir, 'bad.img.xz'))).rejects.toThrow(/bad\.img\.xz: xz could not decompress it/);
  });

  it('a size the file does not state comes from image.json beside it, or stays unknown', async () => {
    const sub = mkdtempSync(join(dir, 'built-'));
    const file = join(sub, 'kith-rpi.img.zst');
    // Streamed in parts with no pledged size: no Frame_Content_Size.
    writeFileSync(file, await new Promise<Buffer>((res) => {
      const c = zlib.createZstdCompress();
      const parts: Buffer[] = [];
      c.on('data', (d: Buffer) => parts.push(d)).on('end', () => res(Buffer.concat(parts)));
      c.write(data.subarray(0, 1000));
      c.flush(() => c.end(data.subarray(1000)));
    }));
    expect(openImageStream(file).bytes).toBeUndefined();
    writeFileSync(join(sub, 'image.json'), JSON.stringify({ image: 'kith-rpi.img', download: 'kith-rpi.img.zst', bytes: data.length }));
    expect(openImageStream(file).bytes).toBe(data.length);
    writeFileSync(join(sub, 'image.json'), JSON.stringify({ image: 'other.img', bytes: 5 }));
    expect(openImageStream(file).bytes).toBeUndefined();
    writeFileSync(join(sub, 'image.json'), '{ not json');
    expect(openImageStream(file).bytes).toBeUndefined();
    expect((await drain(file)).out.equals(data)).toBe(true);
  });

  it('reads once; the file hash only after the end', async () => {
    writeFileSync(join(dir, 'once.img'), data);
    const s = openImageStream(join(dir, 'once.img'));
    expect(() => s.fileSha256()).toThrow(/only after reading it to its end/);
    const it1 = s.chunks();
    expect(() => s.chunks()).toThrow(/already read/);
    for await (const _ of it1) break;
    expect(readFileSync(join(dir, 'once.img')).length).toBe(data.length);
  });
});

describe('blocks', () => {
  it('re-cuts any chunking into exact blocks', async () => {
    async function* src() { for (const n of [1, 4095, 1, 8192, 3, 0, 5000]) yield Buffer.alloc(n, n & 0xff); }
    const sizes: number[] = [];
    for await (const b of blocks(src(), 4096)) sizes.push(b.length);
    expect(sizes).toEqual([4096, 4096, 4096, 4096, 908]);
  });
});
