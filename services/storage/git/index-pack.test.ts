import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { applyDelta, indexPack, PackError } from './index-pack.ts';
import { prng } from '../../../test/support/prng.ts';

const indexPackNative = async (pack: Buffer, idxFile: string) => {
  const r = await indexPack(pack);
  writeFileSync(idxFile, r.idx);
  return r;
};

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'buffer', stdio: ['pipe', 'pipe', 'pipe'] });

/** A repository with history that git packs with deltas (edits of the same files). */
function repoWithDeltas(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kith-idx-'));
  git(dir, 'init', '-q', '-b', 'main');
  let text = Array.from({ length: 400 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`).join('\n');
  for (let c = 0; c < 30; c++) {
    text = text.replace(`line ${c * 7}`, `changed ${c}`);
    writeFileSync(path.join(dir, 'a.txt'), text);
    writeFileSync(path.join(dir, `f${c % 5}.txt`), `${text.slice(c * 10)}\n${c}`);
    git(dir, 'add', '.');
    git(dir, 'commit', '-qm', `c${c}`);
  }
  git(dir, 'tag', '-a', '-m', 'v1', 'v1');
  return dir;
}

describe('indexPackNative', () => {
  it('writes the same .idx as git index-pack, for a pack with OFS and REF deltas', async () => {
    const dir = repoWithDeltas();
    for (const flags of [[] as string[], ['--no-delta-base-offset']]) {
      const pack = execFileSync('git', ['pack-objects', '--stdout', '--revs', ...flags], { cwd: dir, input: 'main\nv1\n' });
      const ours = path.join(dir, `ours${flags.length}.idx`);
      const { oids } = await indexPackNative(pack, ours);
      const packFile = path.join(dir, `theirs${flags.length}.pack`);
      writeFileSync(packFile, pack);
      execFileSync('git', ['index-pack', packFile], { cwd: dir });
      expect(readFileSync(ours)).toEqual(readFileSync(packFile.replace(/\.pack$/, '.idx')));
      const verify = execFileSync('git', ['verify-pack', '-v', packFile], { cwd: dir, encoding: 'utf8' });
      expect(verify).toMatch(/chain length = [1-9]/);
      expect(oids.length).toBe(Number(/non delta: (\d+)/.exec(verify)?.[1] ?? 0) + [...verify.matchAll(/chain length = \d+: (\d+) objects?/g)].reduce((n, m) => n + Number(m[1]), 0));
    }
  });

  it('refuses broken and hostile packs with a reason', async () => {
    const dir = repoWithDeltas();
    const pack = execFileSync('git', ['pack-objects', '--stdout', '--revs'], { cwd: dir, input: 'main\n' });
    const idx = path.join(dir, 'x.idx');
    await expect(indexPackNative(Buffer.from('PACK'), idx)).rejects.toThrow(PackError);
    const truncated = Buffer.concat([pack.subarray(0, pack.length - 500), pack.subarray(pack.length - 20)]);
    await expect(indexPackNative(truncated, idx)).rejects.toThrow(PackError);
    const wrongCount = Buffer.from(pack);
    wrongCount.writeUInt32BE(wrongCount.readUInt32BE(8) + 1, 8);
    await expect(indexPackNative(wrongCount, idx)).rejects.toThrow(/pack ends after/);
    // A thin pack: deltas against objects it does not carry.
    const thin = execFileSync('git', ['pack-objects', '--stdout', '--revs', '--thin'], { cwd: dir, input: 'main\n^main~3\n' });
    await expect(indexPackNative(thin, idx)).rejects.toThrow(/thin pack/);
    // Seeded, so a failing case is the same on every run.
    const random = prng(17);
    for (let i = 0; i < 300; i++) {
      const evil = Buffer.from(pack);
      for (let k = 0; k < 4; k++) evil[12 + Math.floor(random() * (evil.length - 32))] = Math.floor(random() * 256);
      await indexPackNative(evil, idx).catch((err: Error) => expect(err).toBeInstanceOf(PackError));
    }
  });

  it('refuses a large (streamed) entry whose deflate data breaks midway, and does not hang on it', async () => {
    const big = randomBytes(3 << 20);
    const z = deflateSync(big);
    z[z.length >> 1] ^= 0xff;
    z[(z.length >> 1) + 1] ^= 0xff;
    const header = Buffer.from([(3 << 4) | (big.length & 0x0f) | 0x80, ...(() => { const out: number[] = []; for (let rest = Math.floor(big.length / 16); rest > 0; rest = Math.floor(rest / 128)) out.push((rest & 0x7f) | (rest >= 128 ? 0x80 : 0)); return out; })()]);
    const body = Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 1]), header, z]);
    const pack = Buffer.concat([body, createHash('sha1').update(body).digest()]);
    await expect(indexPack(pack)).rejects.toThrow(/object 1 does not inflate|inflates to/);
  });

  it('streams large entries and deflate streams longer than usual, with the same .idx as git', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kith-idx-stream-'));
    const entryHeader = (type: number, size: number) => {
      const out = [(type << 4) | (size & 0x0f)];
      for (let rest = Math.floor(size / 16); rest > 0; rest = Math.floor(rest / 128)) {
        out[out.length - 1]! |= 0x80;
        out.push(rest & 0x7f);
      }
      return Buffer.from(out);
    };
    // A valid zlib stream of one stored block per byte: ~6× longer than its data, so it does
    // not fit where a usual stream would and is streamed from the file instead.
    const storedPerByte = (data: Buffer) => {
      const parts = [Buffer.from([0x78, 0x01])];
      for (const b of data) parts.push(Buffer.from([0x00, 0x01, 0x00, 0xfe, 0xff, b]));
      parts.push(Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]));
      const adler = Buffer.alloc(4);
      let a = 1;
      let c = 0;
      for (const b of data) {
        a = (a + b) % 65521;
        c = (c + a) % 65521;
      }
      adler.writeUInt32BE(((c << 16) | a) >>> 0);
      parts.push(adler);
      return Buffer.concat(parts);
    };
    const big = randomBytes(3 << 20);
    const odd = randomBytes(3000);
    const body = Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 2]), entryHeader(3, big.length), deflateSync(big), entryHeader(3, odd.length), storedPerByte(odd)]);
    const pack = Buffer.concat([body, createHash('sha1').update(body).digest()]);
    const ours = path.join(dir, 'ours.idx');
    const { oids } = await indexPackNative(pack, ours);
    const packFile = path.join(dir, 'theirs.pack');
    writeFileSync(packFile, pack);
    execFileSync('git', ['index-pack', packFile], { cwd: dir });
    expect(readFileSync(ours)).toEqual(readFileSync(packFile.replace(/\.pack$/, '.idx')));
    const blobId = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
    expect([...oids].sort()).toEqual([blobId(big), blobId(odd)].sort());
    // The same odd stream under a header that claims less: refused, not read past.
    const lying = Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 1]), entryHeader(3, 100), storedPerByte(odd)]);
    await expect(indexPackNative(Buffer.concat([lying, createHash('sha1').update(lying).digest()]), ours)).rejects.toThrow(PackError);
  });

  it('applies delta copy and insert instructions, and refuses out-of-range ones', () => {
    const base = Buffer.from('hello world');
    // src 11, dst 11: copy 6 bytes from 0 ("hello "), insert "WORLD"
    const delta = Buffer.from([11, 11, 0x90, 6, 5, ...Buffer.from('WORLD')]);
    expect(applyDelta(base, delta).toString()).toBe('hello WORLD');
    expect(() => applyDelta(base, Buffer.from([11, 20, 0x91, 5, 100]))).toThrow(PackError);
    expect(() => applyDelta(base, Buffer.from([12, 1, 1, 0x41]))).toThrow(/base is 11 bytes/);
  });
});
