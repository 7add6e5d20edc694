/**
 * The downloadable SD-card image (issue 15 item 2): how small and how fast each packing is,
 * on the real image (build/rpi/image/kith-rpi.img; build it with kith image build --target
 * rpi). Measures kith's own packing (node:zlib zstd with the build's parameters,
 * IMAGE_ZSTD_PARAMS) beside the xz and zstd programs, each packed and unpacked once, and
 * prints size, pack time and unpack time against the ≤ 50 MB target. The choice and its
 * figures are in docs/decisions.md. A benchmark, not a test: exit 0 whatever the figures.
 *
 *   node bench/image/compress.ts [--image FILE] [--only zstd-node,zstd,xz] [--json]
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { IMAGE_ZSTD_PARAMS } from '../../platform/image/runner.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORK = path.join(REPO, 'build/bench/image');
const TARGET_BYTES = 50e6;

interface Row { name: string; bytes: number; packS: number; unpackS: number }

const { values } = parseArgs({ options: { image: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('Usage: node bench/image/compress.ts [--image FILE] [--only zstd-node,zstd,xz] [--json]\n');
  process.exit(0);
}
const image = path.resolve(values.image ?? path.join(REPO, 'build/rpi/image/kith-rpi.img'));
const only = new Set((values.only ?? 'zstd-node,zstd,xz').split(','));
mkdirSync(WORK, { recursive: true });
const secs = (t0: number) => (performance.now() - t0) / 1000;
const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });

function tool(name: string, packArgs: string[], unpackArgs: string[], ext: string): Row | undefined {
  if (spawnSync('sh', ['-c', `command -v ${packArgs[0]}`]).status !== 0) return undefined;
  const out = path.join(WORK, `kith-rpi.img${ext}`);
  let t0 = performance.now();
  const p = spawnSync('sh', ['-c', `${packArgs.join(' ')} < "${image}" > "${out}"`]);
  if (p.status !== 0) throw new Error(`${name}: ${p.stderr}`);
  const packS = secs(t0);
  t0 = performance.now();
  const u = spawnSync('sh', ['-c', `${unpackArgs.join(' ')} < "${out}" > /dev/null`]);
  if (u.status !== 0) throw new Error(`${name}: ${u.stderr}`);
  const row = { name, bytes: statSync(out).size, packS, unpackS: secs(t0) };
  rmSync(out);
  return row;
}

const rows: Row[] = [];
process.stderr.write(`image: ${image} (${(statSync(image).size / 1e6).toFixed(1)} MB)\n`);
if (only.has('zstd-node')) {
  const out = path.join(WORK, 'kith-rpi.img.zst');
  let t0 = performance.now();
  await pipeline(createReadStream(image, { highWaterMark: 4 << 20 }), zlib.createZstdCompress({ pledgedSrcSize: statSync(image).size, params: IMAGE_ZSTD_PARAMS }), createWriteStream(out));
  const packS = secs(t0);
  t0 = performance.now();
  await pipeline(createReadStream(out), zlib.createZstdDecompress(), sink());
  rows.push({ name: 'kith build: node:zlib zstd 12, long window 27', bytes: statSync(out).size, packS, unpackS: secs(t0) });
  rmSync(out);
}
if (only.has('zstd')) {
  const r = tool('zstd -12 --long=27 -T2', ['zstd', '-q', '-12', '--long=27', '-T2', '-c'], ['zstd', '-q', '-d', '-c'], '.zst');
  if (r) rows.push(r);
}
if (only.has('xz')) {
  const r = tool('xz -6 -T2', ['xz', '-6', '-T2', '-c'], ['xz', '-d', '-T2', '-c'], '.xz');
  if (r) rows.push(r);
}
if (values.json) process.stdout.write(JSON.stringify({ image, imageBytes: statSync(image).size, rows }) + '\n');
else {
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(48)} ${(r.bytes / 1e6).toFixed(1).padStart(6)} MB  pack ${r.packS.toFixed(1).padStart(6)} s  unpack ${r.unpackS.toFixed(1).padStart(5)} s  ${r.bytes <= TARGET_BYTES ? 'PASS' : 'FAIL'} (<= 50 MB)\n`);
  }
}
