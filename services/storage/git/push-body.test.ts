import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandListLength, readPushBody } from './push-body.ts';
import { FLUSH, pktLine } from './pktline.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const gitdir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'kith-push-body-'));
  dirs.push(d);
  return d;
};
const packDir = (g: string) => path.join(g, 'objects', 'pack');
const files = (g: string): string[] => { try { return readdirSync(packDir(g)); } catch { return []; } };

/** The body cut into pieces of random sizes, as the network would. */
async function* pieces(body: Buffer, seed = 1): AsyncGenerator<Buffer> {
  let x = seed;
  for (let at = 0; at < body.length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % 70_000);
    yield body.subarray(at, at + n);
    at += n;
  }
}

const commands = Buffer.concat([pktLine(`${'0'.repeat(40)} ${'1'.repeat(40)} refs/heads/main\0report-status`), FLUSH]);
const withTrailer = (b: Buffer) => Buffer.concat([b, createHash('sha1').update(b).digest()]);

describe('push body', () => {
  it('keeps the command list and streams the pack to a temp file, checking its trailer, however it is cut', async () => {
    const pack = withTrailer(Buffer.concat([Buffer.from('PACK'), randomBytes(300_000)]));
    for (const seed of [1, 2, 3]) {
      const g = gitdir();
      const r = await readPushBody(pieces(Buffer.concat([commands, pack]), seed), g, 1 << 30);
      if ('refused' in r) throw new Error('refused');
      expect(r.head.equals(commands)).toBe(true);
      expect(r.pack!.checksumOk).toBe(true);
      expect(r.pack!.size).toBe(pack.length);
      expect(readFileSync(r.pack!.file).equals(pack)).toBe(true);
      expect(path.basename(r.pack!.file)).toMatch(/^tmp_pack_\d+-[0-9a-f]{8}$/);
    }
  });

  it('notices a wrong trailer, and a body with no pack makes no file', async () => {
    const g = gitdir();
    const bad = Buffer.concat([Buffer.from('PACK'), randomBytes(5000)]);
    const r = await readPushBody(pieces(Buffer.concat([commands, bad])), g, 1 << 30);
    expect('refused' in r || r.pack?.checksumOk).toBe(false);
    const g2 = gitdir();
    const none = await readPushBody(pieces(commands), g2, 1 << 30);
    expect('refused' in none ? 'refused' : none.pack).toBeUndefined();
  });

  it('refuses past the limit, keeping the command list for the answer and no file', async () => {
    const g = gitdir();
    // Over the limit after the first 1 MiB write reached the temp file: it is removed.
    const r = await readPushBody(pieces(Buffer.concat([commands, randomBytes(3 << 20)])), g, 3 << 19);
    expect('refused' in r).toBe(true);
    if (!('refused' in r)) return;
    expect(r.size).toBe(commands.length + (3 << 20));
    expect(files(g)).toEqual([]);
    expect(r.head.subarray(0, commands.length).equals(commands)).toBe(true);
  });

  it('finds the end of hostile command lists without reading past what it has', () => {
    expect(commandListLength(Buffer.from('00'))).toBeUndefined();
    expect(commandListLength(Buffer.from('0010abc'))).toBeUndefined();
    expect(commandListLength(Buffer.from('zzzz'))).toBe(4); // malformed: parseCommands says why
    expect(commandListLength(Buffer.from('00010000PACK'))).toBe(8);
    expect(commandListLength(Buffer.from('0008abcd0000PACK'))).toBe(12);
    expect(commandListLength(Buffer.alloc(100_000, 'f'))).toBeUndefined(); // one 64 KiB packet, cut
  });
});
