/**
 * Growing the data partition to fill its disk on boot, as Raspberry Pi OS and Home
 * Assistant OS do: the SD-card image carries a small ext4 data partition, the card is
 * 16–256 GB. PID 1 extends the partition's MBR entry to the end of the disk (1 MiB
 * aligned), tells the kernel (BLKPG), mounts it, then grows ext4 online
 * (EXT4_IOC_RESIZE_FS). Each step checks what is on disk first, so a boot cut off half-way
 * finishes the job on the next boot and a grown disk is left alone.
 *
 * The planning is pure (bytes in, decision out) and tested with hostile tables; the rest
 * is a few reads, one 512-byte write and two ioctls.
 */
import { Buffer } from 'node:buffer';
import { closeSync, fsyncSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import * as libc from './libc.ts';
import { hasMbrSignature, MBR_ENTRIES_AT, readMbrEntries } from '../image/mbr.ts';
import { readAt } from './blockdev.ts';

const SECTOR = 512;
const ALIGN = 2048; // sectors: 1 MiB
const MBR_MAX_SECTORS = 0xffffffff;
const EXTENDED = new Set([0x05, 0x0f, 0x85]);

export type GrowPlan =
  | { grow: true; mbr: Buffer; startSector: number; fromSectors: number; toSectors: number }
  | { grow: false; reason: string };

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Should primary partition `partNo` (1–4) grow to the end of a disk of `diskSectors`
 * (512-byte) sectors, and if so, the new MBR. Refuses anything it does not understand:
 * no MBR signature, a partition that is not Linux (0x83), one that is not the last on the
 * disk, one that already runs past the disk's end.
 */
export function planGrow(mbr: Buffer, diskSectors: number, partNo: number): Result<GrowPlan> {
  if (mbr.length < SECTOR) return { ok: false, error: `MBR: ${mbr.length} bytes, need 512` };
  if (!hasMbrSignature(mbr)) return { ok: false, error: 'MBR: no 0x55AA signature (not an MBR-partitioned disk)' };
  if (!Number.isInteger(partNo) || partNo < 1 || partNo > 4) return { ok: false, error: `partition ${partNo}: only primary partitions 1–4 can grow` };
  if (!Number.isSafeInteger(diskSectors) || diskSectors <= 0) return { ok: false, error: `disk size ${diskSectors} sectors is not a size` };
  const all = readMbrEntries(mbr);
  const me = all[partNo - 1]!;
  if (me.type === 0 || me.sectors === 0) return { ok: false, error: `partition ${partNo} is empty in the MBR` };
  if (me.type !== 0x83) return { ok: false, error: `partition ${partNo} has type 0x${me.type.toString(16)}, not Linux (0x83)` };
  const end = me.start + me.sectors;
  if (end > diskSectors) return { ok: false, error: `partition ${partNo} ends at sector ${end}, past the disk's ${diskSectors}: a truncated image?` };
  for (const [i, e] of all.entries()) {
    if (i === partNo - 1 || e.type === 0 || e.sectors === 0) continue;
    if (e.start < end && e.start + e.sectors > me.start) return { ok: false, error: `partition ${partNo} overlaps partition ${i + 1}` };
    if (e.start >= end) return { ok: true, value: { grow: false, reason: `partition ${i + 1}${EXTENDED.has(e.type) ? ' (extended)' : ''} follows it` } };
  }
  const newEnd = Math.floor(Math.min(diskSectors, MBR_MAX_SECTORS) / ALIGN) * ALIGN;
  if (newEnd < end + ALIGN) return { ok: true, value: { grow: false, reason: 'it already fills the disk' } };
  const out = Buffer.from(mbr.subarray(0, SECTOR));
  const at = MBR_ENTRIES_AT + (partNo - 1) * 16;
  out.writeUInt32LE(newEnd - me.start, at + 12);
  // CHS end: "beyond CHS, use LBA", as fdisk and sfdisk write for large disks.
  out[at + 5] = 0xfe; out[at + 6] = 0xff; out[at + 7] = 0xff;
  return { ok: true, value: { grow: true, mbr: out, startSector: me.start, fromSectors: me.sectors, toSectors: newEnd - me.start } };
}

export interface Ext4Size { blocks: number; blockSize: number }

/** Block count and block size from an ext2/3/4 superblock (the 1 KiB at byte 1024). */
export function ext4Size(sb: Buffer): Result<Ext4Size> {
  if (sb.length < 0x158) return { ok: false, error: 'ext4 superblock: too short' };
  if (sb.readUInt16LE(0x38) !== 0xef53) return { ok: false, error: 'ext4 superblock: no 0xEF53 magic' };
  const log = sb.readUInt32LE(0x18);
  if (log > 6) return { ok: false, error: `ext4 superblock: block size 1024 << ${log} is not one ext4 uses` };
  const is64 = (sb.readUInt32LE(0x60) & 0x80) !== 0;
  const blocks = sb.readUInt32LE(0x04) + (is64 ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  return { ok: true, value: { blocks, blockSize: 1024 << log } };
}

/** The blocks to resize to, when the partition holds at least 1 MiB more than the file system. */
export function fsGrowTarget(fs: Ext4Size, partitionBytes: number): number | undefined {
  const target = Math.floor(partitionBytes / fs.blockSize);
  return (target - fs.blocks) * fs.blockSize >= 1 << 20 ? target : undefined;
}

// <linux/blkpg.h>, <linux/fs.h>, <linux/ext4.h> ioctl numbers (the same on x86_64 and aarch64).
const BLKPG = 0x1269;
const BLKPG_RESIZE_PARTITION = 3;
const EXT4_IOC_RESIZE_FS = 0x40086610;

type Log = (msg: string, fields?: Record<string, unknown>) => void;

interface PartitionInfo { disk: string; partNo: number; sectors: number; diskSectors: number }

/** A partition's disk, number and sizes, from sysfs (sizes there are in 512-byte units). */
function partitionInfo(device: string): PartitionInfo {
  const name = basename(realpathSync(device));
  const sys = `/sys/class/block/${name}`;
  const partNo = Number(readFileSync(`${sys}/partition`, 'utf8'));
  const diskName = basename(dirname(realpathSync(sys)));
  return {
    disk: `/dev/${diskName}`, partNo,
    sectors: Number(readFileSync(`${sys}/size`, 'utf8')),
    diskSectors: Number(readFileSync(`/sys/class/block/${diskName}/size`, 'utf8')),
  };
}

/** Step 1, before mounting: extend the partition in the MBR and in the kernel's view. */
export function growPartition(device: string, log: Log): void {
  let info: PartitionInfo;
  try {
    info = partitionInfo(device);
  } catch (err) {
    return log('data partition not grown', { device, reason: `not a partition sysfs knows: ${(err as Error).message}` });
  }
  const plan = planGrow(readAt(info.disk, 0, SECTOR), info.diskSectors, info.partNo);
  if (!plan.ok) return log('data partition not grown', { device, reason: plan.error });
  if (!plan.value.grow) {
    if (plan.value.reason !== 'it already fills the disk') log('data partition not grown', { device, reason: plan.value.reason });
    return;
  }
  const p = plan.value;
  const fd = openSync(info.disk, 'r+');
  try {
    writeSync(fd, p.mbr, 0, SECTOR, 0);
    fsyncSync(fd);
    // The kernel keeps its own copy of the table: resize that one partition (BLKPG works
    // while the disk's other partitions are in use, where re-reading the table would not).
    const part = Buffer.alloc(152); // struct blkpg_partition
    part.writeBigInt64LE(BigInt(p.startSector) * 512n, 0);
    part.writeBigInt64LE(BigInt(p.toSectors) * 512n, 8);
    part.writeInt32LE(info.partNo, 16);
    const arg = Buffer.alloc(24); // struct blkpg_ioctl_arg
    arg.writeInt32LE(BLKPG_RESIZE_PARTITION, 0);
    arg.writeInt32LE(part.length, 8);
    arg.writeBigUInt64LE(libc.pointerOf(part), 16);
    const errno = libc.ioctl(fd, BLKPG, arg);
    part.fill(0); // keeps `part` alive until the ioctl has returned
    if (errno !== 0) log('data partition table written; the kernel sees the new size after a reboot', { device, error: libc.strerror(errno) });
  } finally {
    closeSync(fd);
  }
  log('data partition grown', { device, fromMiB: Math.round(p.fromSectors / ALIGN), toMiB: Math.round(p.toSectors / ALIGN) });
}

/** Step 2, once mounted: grow ext4 online to fill the partition. */
export function growFilesystem(device: string, mountpoint: string, log: Log): void {
  try {
    const fs = ext4Size(readAt(device, 1024, 1024));
    if (!fs.ok) return log('data file system not grown', { device, reason: fs.error });
    const target = fsGrowTarget(fs.value, partitionInfo(device).sectors * SECTOR);
    if (target === undefined) return;
    const started = performance.now();
    const fd = openSync(mountpoint, 'r');
    try {
      const arg = Buffer.alloc(8);
      arg.writeBigUInt64LE(BigInt(target));
      const errno = libc.ioctl(fd, EXT4_IOC_RESIZE_FS, arg);
      if (errno !== 0) return log('data file system not grown', { device, error: libc.strerror(errno) });
    } finally {
      closeSync(fd);
    }
    const mib = (blocks: number) => Math.round((blocks * fs.value.blockSize) / 2 ** 20);
    log('data file system grown', { device, fromMiB: mib(fs.value.blocks), toMiB: mib(target), ms: Math.round(performance.now() - started) });
  } catch (err) {
    log('data file system not grown', { device, error: (err as Error).message });
  }
}
