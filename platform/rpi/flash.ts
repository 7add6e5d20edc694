/**
 * Writing the SD-card image to a card, as Raspberry Pi Imager does: check the image is
 * ours, check the target is a whole removable disk that nothing has mounted and that is
 * big enough, write it so that it is never half-written (the MBR last), flush, read it back
 * and compare. The checks are pure (facts in, verdict out) so they are tested without real
 * devices; `targetFacts` gathers the facts from /sys/class/block and /proc/self/mountinfo.
 * The image streams from a raw, .gz, .xz or .zst file (image-stream.ts).
 *
 * A regular file is a valid target too (a copy to write elsewhere, and what the tests
 * use); it is truncated first, so all-zero stretches stay holes in it.
 */
import { createHash } from 'node:crypto';
import { constants, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { hasMbrSignature, readMbrEntries, type MbrEntry } from '../image/mbr.ts';
import { blocks, openImageStream, type ImageStream } from './image-stream.ts';
import { dropCachedPages } from './page-cache.ts';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

export interface ImageInfo {
  bytes: number;
  /** The boot (FAT32), root (ext4, read-only) and data (ext4) partitions, in 512-byte sectors (boot and data on images before issue 16). */
  partitions: { type: number; start: number; sectors: number }[];
}

/**
 * Is this a kith SD-card image: an MBR with a bootable FAT32 (LBA) partition 1, a Linux
 * partition 2 and, from issue 16 on, a Linux partition 3 (p2 the read-only root, p3 the
 * data; before, p2 was the data), all inside the file?
 */
export function checkImage(head: Buffer, bytes: number): Result<ImageInfo> {
  const not = (why: string) => ({ ok: false as const, error: `not a kith SD-card image: ${why} (build one with kith image build --target rpi)` });
  if (head.length < 512 || bytes < 512) return not('shorter than one sector');
  if (!hasMbrSignature(head)) return not('no MBR signature');
  const [boot, second, p3, p4] = readMbrEntries(head) as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
  if (boot.type !== 0x0c || boot.status !== 0x80) return not('partition 1 is not a bootable FAT32 (LBA) partition');
  if (second.type !== 0x83) return not('partition 2 is not a Linux partition');
  if (p3.type !== 0 && p3.type !== 0x83) return not('partition 3 is not a Linux partition');
  if (p4.type !== 0) return not('it has more than three partitions');
  const parts = p3.type === 0 ? [boot, second] : [boot, second, p3];
  for (const [n, p] of parts.entries()) {
    if (p.sectors === 0 || (p.start + p.sectors) * 512 > bytes) return not(`partition ${n + 1} runs past the end of the file (a truncated download?)`);
  }
  for (let k = 1; k < parts.length; k++) if (parts[k]!.start < parts[k - 1]!.start + parts[k - 1]!.sectors) return not('its partitions overlap');
  return { ok: true, value: { bytes, partitions: parts.map(({ type, start, sectors }) => ({ type, start, sectors })) } };
}

export interface TargetFacts {
  path: string;
  kind: 'file' | 'missing' | 'disk' | 'partition' | 'other';
  /** Kernel name (sdb, mmcblk0) for disks and partitions. */
  name?: string;
  bytes?: number;
  /** /sys/class/block/NAME/removable */
  removable?: boolean;
  /** How the disk is attached, from its sysfs path. */
  bus?: 'usb' | 'mmc' | 'other';
  model?: string;
  /** What uses the disk or any of its partitions: mount points, swap, device-mapper/md holders. */
  mounted: string[];
}

export interface AssessOptions {
  imageBytes: number;
  /** Allow a disk that is neither removable nor on USB or an SD/MMC slot. */
  force?: boolean;
}

/** May the image be written to this target? The error says what to do instead. */
export function assessTarget(t: TargetFacts, o: AssessOptions): Result<{ description: string }> {
  const fail = (error: string) => ({ ok: false as const, error: `${t.path}: ${error}` });
  switch (t.kind) {
    case 'missing': return { ok: true, value: { description: `new file ${t.path}` } };
    case 'file': return { ok: true, value: { description: `file ${t.path} (replaced)` } };
    case 'other': return fail('neither a disk nor a regular file');
    case 'partition': return fail(`is a partition; give the whole card (the disk ${t.name?.replace(/p?\d+$/, '')}, not one of its partitions)`);
    case 'disk': break;
  }
  if (t.mounted.length) return fail(`is in use: ${t.mounted.join(', ')}; unmount it (or stop what uses it) first`);
  if (t.bytes === undefined || t.bytes < o.imageBytes) return fail(`holds ${gb(t.bytes ?? 0)}, less than the image's ${gb(o.imageBytes)}`);
  if (!t.removable && t.bus !== 'usb' && t.bus !== 'mmc' && !o.force) {
    return fail('does not look like an SD card or USB drive (not removable, not on USB or an SD slot); if you are sure, add --force');
  }
  return { ok: true, value: { description: `${t.name} ${t.model ? `(${t.model}, ${gb(t.bytes)})` : `(${gb(t.bytes)})`}` } };
}

const gb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(0)} MB`);

const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** major:minor → mount points, from /proc/self/mountinfo. */
export function mountsByDevice(mountinfo: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const list = out.get(f[2]!) ?? [];
    list.push(f[4]!.replace(/\\040/g, ' '));
    out.set(f[2]!, list);
  }
  return out;
}

/** What the system says about a target path. */
export function targetFacts(path: string, sys = '/sys/class/block', mountinfo = '/proc/self/mountinfo', swaps = '/proc/swaps'): TargetFacts {
  if (!existsSync(path)) return { path, kind: 'missing', mounted: [] };
  const st = statSync(path);
  if (st.isFile()) return { path, kind: 'file', bytes: st.size, mounted: [] };
  if (!st.isBlockDevice()) return { path, kind: 'other', mounted: [] };
  const name = basename(realpathSync(path));
  const dir = `${sys}/${name}`;
  if (existsSync(`${dir}/partition`)) return { path, kind: 'partition', name, mounted: [] };
  const mounts = mountsByDevice(read(mountinfo) ?? '');
  const devs = [read(`${dir}/dev`)];
  const names = [name];
  for (const child of safeList(dir)) {
    if (!existsSync(`${dir}/${child}/partition`)) continue;
    devs.push(read(`${dir}/${child}/dev`));
    names.push(child);
  }
  const swapped = (read(swaps) ?? '').split('\n').slice(1).map((l) => basename(l.split(/\s+/)[0] ?? ''));
  const inUse = [
    ...devs.flatMap((d) => (d ? mounts.get(d) ?? [] : [])).map((m) => `mounted on ${m}`),
    ...names.filter((n) => swapped.includes(n)).map((n) => `swap (${n})`),
    ...names.flatMap((n) => safeList(`${sys}/${n}/holders`).map((h) => `${h} (holds ${n})`)),
  ];
  const sysPath = (() => { try { return realpathSync(dir); } catch { return ''; } })();
  return {
    path, kind: 'disk', name,
    bytes: Number(read(`${dir}/size`) ?? 0) * 512,
    removable: read(`${dir}/removable`) === '1',
    bus: /\/usb\d*\//.test(sysPath) ? 'usb' : /\/mmc\d*\/|\/mmc_host\//.test(sysPath) || name.startsWith('mmcblk') ? 'mmc' : 'other',
    model: [read(`${dir}/device/vendor`), read(`${dir}/device/model`)].filter(Boolean).join(' ') || undefined,
    mounted: inUse,
  };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export interface FlashProgress {
  phase: 'write' | 'verify';
  /** Bytes of the uncompressed image done. */
  done: number;
  /** Bytes of the uncompressed image in all, when known (the file's header or trailer says, or the write is done). */
  total?: number;
}

export interface FlashResult {
  bytes: number;
  sha256: string;
  /** sha256 of the stored (maybe compressed) image file. */
  fileSha256: string;
  verified: boolean;
  /** Ctrl-C after the card was complete: written, not verified. */
  interrupted: boolean;
  writeMs: number;
  verifyMs: number;
}

/** The part written last: the MBR and everything before the first partition (which starts at 4 MiB). */
export const HEAD_BYTES = 1 << 20;
const CHUNK = 4 << 20;

/**
 * A write that stopped before the partition table went on: the target does not boot.
 * `interrupted` when it was Ctrl-C, rather than a failure.
 */
export class IncompleteWrite extends Error {
  readonly interrupted: boolean;
  constructor(message: string, interrupted: boolean) {
    super(message);
    this.interrupted = interrupted;
  }
}

export type BlockWriter = (fh: FileHandle, data: Buffer, position: number) => Promise<void>;

const writeBlock: BlockWriter = async (fh, data, position) => {
  const { bytesWritten } = await fh.write(data, 0, data.length, position);
  if (bytesWritten !== data.length) throw new Error(`short write at byte ${position} (${bytesWritten} of ${data.length})`);
};

export interface FlashOptions {
  verify: boolean;
  onProgress?: (p: FlashProgress) => void;
  /** Ctrl-C: stops between blocks, leaving a target with no partition table. */
  signal?: AbortSignal;
  /** The stored file's sha256 (its .sha256 file): checked before the partition table is written. */
  expectedFileSha256?: string;
  /** How a block reaches the target; tests swap in a failing card. */
  write?: BlockWriter;
}

/**
 * Write an image stream to `target` (a disk or a file) so that it is never half-written:
 *
 *   1. a disk's first MiB is zeroed and flushed: the old partition table is gone;
 *   2. everything after the first MiB is written and flushed (fdatasync);
 *   3. the image is checked whole: as long as its MBR says, and the stored file matching its
 *      .sha256 — a damaged download stops here;
 *   4. the first MiB (the MBR) is written and flushed.
 *
 * Stopped anywhere before 4 (Ctrl-C, a failed write, a bad download), the target has no
 * partition table and does not boot; IncompleteWrite says so. A file target is truncated
 * first, so it is known zeroed and all-zero blocks stay holes; a disk gets every byte.
 * Then, unless told not to, the target is read back and its sha256 compared.
 */
export async function flashImage(src: ImageStream, target: string, o: FlashOptions): Promise<FlashResult> {
  const isFile = !existsSync(target) || statSync(target).isFile();
  const write = o.write ?? writeBlock;
  const hash = createHash('sha256');
  const t0 = performance.now();
  let head: Buffer | undefined;
  let total = 0;
  const incomplete = (why: string, interrupted = o.signal?.aborted === true) =>
    new IncompleteWrite(`${why}; ${target} was not completely written: it has no partition table and will not boot. Run kith flash again`, interrupted);
  // A disk is opened O_EXCL: Linux then refuses it while anything has it mounted or held,
  // closing the gap between targetFacts' look and the first write.
  const fh = await open(target, isFile ? 'w' : constants.O_RDWR | constants.O_EXCL).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EBUSY' ? new Error(`${target} is in use (mounted, or held by another program): unmount it first; nothing was written`) : err;
  });
  try {
    try {
      if (!isFile) {
        await write(fh, Buffer.alloc(HEAD_BYTES), 0);
        await fh.datasync();
      }
      for await (const block of blocks(src.chunks(), CHUNK)) {
        if (o.signal?.aborted) throw incomplete('interrupted', true);
        hash.update(block);
        const from = total === 0 ? Math.min(HEAD_BYTES, block.length) : 0;
        if (total === 0) head = Buffer.from(block.subarray(0, from));
        const body = block.subarray(from);
        if (body.length && !(isFile && isZero(body))) await write(fh, body, total + from);
        total += block.length;
        o.onProgress?.({ phase: 'write', done: total, ...(src.bytes !== undefined ? { total: Math.max(src.bytes, total) } : {}) });
      }
      if (o.signal?.aborted) throw incomplete('interrupted', true);
      const whole = checkImage(head ?? Buffer.alloc(0), total);
      if (!whole.ok) throw incomplete(`${src.path}: ${whole.error}`, false);
      if (o.expectedFileSha256 && src.fileSha256() !== o.expectedFileSha256) {
        throw incomplete(`${src.path} does not match its .sha256 file (sha256 ${src.fileSha256().slice(0, 12)}… vs ${o.expectedFileSha256.slice(0, 12)}…): the download is damaged; download it again`, false);
      }
      if (isFile) await fh.truncate(total);
      await fh.datasync();
    } catch (err) {
      if (err instanceof IncompleteWrite) throw err;
      throw incomplete(`${(err as Error).message}`);
    }
    // The MBR last: from here the card boots. A Ctrl-C now waits for it (a few ms).
    await write(fh, head!, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const sha256 = hash.digest('hex');
  const fileSha256 = src.fileSha256();
  const writeMs = performance.now() - t0;
  o.onProgress?.({ phase: 'write', done: total, total });
  const result = { bytes: total, sha256, fileSha256, verified: false, interrupted: false, writeMs, verifyMs: 0 };
  if (o.signal?.aborted) return { ...result, interrupted: true };
  if (!o.verify) return result;
  const t1 = performance.now();
  const back = await readBack(target, total, (done) => o.onProgress?.({ phase: 'verify', done, total }), o.signal);
  if (back === undefined) return { ...result, interrupted: true };
  if (back !== sha256) throw new Error(`${target}: verification failed: what was read back differs from the image (sha256 ${back.slice(0, 12)}… vs ${sha256.slice(0, 12)}…); the card may be failing or fake`);
  return { ...result, verified: true, verifyMs: performance.now() - t1 };
}

/** sha256 of the first `bytes` of the target, read without blocking (Ctrl-C is heard); undefined when aborted. */
async function readBack(path: string, bytes: number, onProgress: (done: number) => void, signal?: AbortSignal): Promise<string | undefined> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(CHUNK);
  const hash = createHash('sha256');
  try {
    dropCachedPages(fh.fd); // read the card, not the memory of what was written
    for (let off = 0; off < bytes;) {
      if (signal?.aborted) return undefined;
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, bytes - off), off);
      if (bytesRead <= 0) throw new Error(`${path}: read back stopped at byte ${off} of ${bytes}`);
      hash.update(buf.subarray(0, bytesRead));
      off += bytesRead;
      onProgress(off);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** The first `bytes` of a decompressed image (its MBR, for checkImage before writing). */
export async function imageHead(path: string, bytes = 512): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  for await (const c of openImageStream(path).chunks()) {
    parts.push(c);
    have += c.length;
    if (have >= bytes) break;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

/** Where the image's last partition ends: the least an image (and a card) must hold. */
export function partitionsEnd(info: ImageInfo): number {
  return Math.max(...info.partitions.map((p) => (p.start + p.sectors) * 512));
}

export type VerifyResult =
  | { ok: true; bytes: number; sha256: string; fileSha256: string }
  | { ok: false; error: string; offset?: number };

/**
 * Compare a target with an image, block by block, without writing: the first differing
 * byte is named. The image's .sha256, when given, is checked too.
 */
export async function verifyImage(src: ImageStream, target: string, o: { onProgress?: (p: FlashProgress) => void; expectedFileSha256?: string } = {}): Promise<VerifyResult> {
  const fh = await open(target, 'r');
  const hash = createHash('sha256');
  let off = 0;
  try {
    dropCachedPages(fh.fd);
    const back = Buffer.alloc(CHUNK);
    for await (const block of blocks(src.chunks(), CHUNK)) {
      const { bytesRead } = await fh.read(back, 0, block.length, off);
      const got = back.subarray(0, bytesRead);
      if (!got.equals(block)) {
        let at = 0;
        while (at < got.length && got[at] === block[at]) at++;
        const where = off + at;
        return at >= got.length
          ? { ok: false, offset: where, error: `${target} ends at byte ${where}, before the image does (${src.path})` }
          : { ok: false, offset: where, error: `${target} differs from ${src.path} at byte ${where} (sector ${Math.floor(where / 512)}): the card was not written completely, or is failing` };
      }
      hash.update(block);
      off += block.length;
      o.onProgress?.({ phase: 'verify', done: off, ...(src.bytes !== undefined ? { total: Math.max(src.bytes, off) } : {}) });
    }
  } finally {
    await fh.close();
  }
  const fileSha256 = src.fileSha256();
  if (o.expectedFileSha256 && fileSha256 !== o.expectedFileSha256) return { ok: false, error: `${src.path} does not match its .sha256 file: the image itself is damaged; download it again` };
  return { ok: true, bytes: off, sha256: hash.digest('hex'), fileSha256 };
}

function isZero(b: Buffer): boolean {
  // Compare 8 bytes at a time; images are mostly holes.
  const words = b.byteOffset % 8 === 0 ? b.length >>> 3 : 0;
  const v = new BigUint64Array(b.buffer, b.byteOffset, words);
  for (let i = 0; i < words; i++) if (v[i] !== 0n) return false;
  for (let i = words << 3; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
