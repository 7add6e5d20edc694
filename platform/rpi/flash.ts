/**
 * Writing the SD-card image to a card, as Raspberry Pi Imager does: check the image is
 * ours, check the target is a whole removable disk that nothing has mounted and that is
 * big enough, write it, flush, read it back and compare. The checks are pure (facts in,
 * verdict out) so they are tested without real devices; `targetFacts` gathers the facts
 * from /sys/class/block and /proc/self/mountinfo.
 *
 * A regular file is a valid target too (a copy to write elsewhere, and what the tests
 * use); all-zero stretches stay holes in it.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { hasMbrSignature, readMbrEntries, type MbrEntry } from '../image/mbr.ts';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

export interface ImageInfo {
  bytes: number;
  /** The boot (FAT32) and data (ext4) partitions, in 512-byte sectors. */
  partitions: { type: number; start: number; sectors: number }[];
}

/** Is this a kith SD-card image: an MBR with a bootable FAT32 (LBA) partition 1 and a Linux partition 2, both inside the file? */
export function checkImage(head: Buffer, bytes: number): Result<ImageInfo> {
  const not = (why: string) => ({ ok: false as const, error: `not a kith SD-card image: ${why} (build one with kith image build --target rpi)` });
  if (head.length < 512 || bytes < 512) return not('shorter than one sector');
  if (!hasMbrSignature(head)) return not('no MBR signature');
  const [boot, data, p3, p4] = readMbrEntries(head) as [MbrEntry, MbrEntry, MbrEntry, MbrEntry];
  if (boot.type !== 0x0c || boot.status !== 0x80) return not('partition 1 is not a bootable FAT32 (LBA) partition');
  if (data.type !== 0x83) return not('partition 2 is not a Linux partition');
  if (p3.type !== 0 || p4.type !== 0) return not('it has more than two partitions');
  for (const [n, p] of [[1, boot], [2, data]] as const) {
    if (p.sectors === 0 || (p.start + p.sectors) * 512 > bytes) return not(`partition ${n} runs past the end of the file (a truncated download?)`);
  }
  if (data.start < boot.start + boot.sectors) return not('its partitions overlap');
  return { ok: true, value: { bytes, partitions: [boot, data].map(({ type, start, sectors }) => ({ type, start, sectors })) } };
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

export interface FlashProgress { phase: 'write' | 'verify'; done: number; total: number }

export interface FlashResult { bytes: number; sha256: string; verified: boolean; writeMs: number; verifyMs: number }

const CHUNK = 4 << 20;

/**
 * Write `image` to `target` (a disk or a file), flush it to the device, and unless told
 * not to, read it back and compare hashes. Throws with the offset on a short write or a
 * mismatch.
 */
export function flashImage(image: string, target: string, o: { verify: boolean; onProgress?: (p: FlashProgress) => void }): FlashResult {
  const total = statSync(image).size;
  const src = openSync(image, 'r');
  const isFile = !existsSync(target) || statSync(target).isFile();
  const dst = openSync(target, isFile ? 'w' : 'r+');
  const buf = Buffer.alloc(CHUNK);
  const hash = createHash('sha256');
  const t0 = performance.now();
  try {
    for (let off = 0; off < total;) {
      const n = readSync(src, buf, 0, Math.min(CHUNK, total - off), off);
      if (n <= 0) throw new Error(`${image}: read stopped at byte ${off} of ${total}`);
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      // A card gets every byte; a file keeps the image's holes.
      if (!(isFile && isZero(chunk))) {
        const w = writeSync(dst, chunk, 0, n, off);
        if (w !== n) throw new Error(`${target}: short write at byte ${off} (${w} of ${n})`);
      }
      off += n;
      o.onProgress?.({ phase: 'write', done: off, total });
    }
    if (isFile) ftruncateSync(dst, total);
    fsyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  const sha256 = hash.digest('hex');
  const writeMs = performance.now() - t0;
  if (!o.verify) return { bytes: total, sha256, verified: false, writeMs, verifyMs: 0 };
  const t1 = performance.now();
  const back = readBackHash(target, total, (done) => o.onProgress?.({ phase: 'verify', done, total }));
  if (back !== sha256) throw new Error(`${target}: verification failed: what was read back differs from the image (sha256 ${back.slice(0, 12)}… vs ${sha256.slice(0, 12)}…); the card may be failing or fake`);
  return { bytes: total, sha256, verified: true, writeMs, verifyMs: performance.now() - t1 };
}

/** sha256 of the first `bytes` bytes of a file or device. */
export function readBackHash(path: string, bytes: number, onProgress?: (done: number) => void): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(CHUNK);
  const hash = createHash('sha256');
  try {
    const st = fstatSync(fd);
    if (st.isFile() && st.size < bytes) throw new Error(`${path}: holds ${st.size} bytes, fewer than the image's ${bytes}`);
    for (let off = 0; off < bytes;) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, bytes - off), off);
      if (n <= 0) throw new Error(`${path}: read back stopped at byte ${off} of ${bytes}`);
      hash.update(buf.subarray(0, n));
      off += n;
      onProgress?.(off);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function isZero(b: Buffer): boolean {
  // Compare 8 bytes at a time; images are mostly holes.
  const words = b.byteOffset % 8 === 0 ? b.length >>> 3 : 0;
  const v = new BigUint64Array(b.buffer, b.byteOffset, words);
  for (let i = 0; i < words; i++) if (v[i] !== 0n) return false;
  for (let i = words << 3; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
