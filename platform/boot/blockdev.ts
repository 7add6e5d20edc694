/**
 * Finding the data partition by its ext4 label: the same image boots on a Pi (SD card:
 * mmcblk0p2, or sda2 from USB) and under qemu (vda2), so boot.json names the partition
 * `LABEL=kith-data` instead of a device path. No blkid in the image: the label is read
 * from the superblock (ext4 disk layout: superblock at byte 1024, s_magic 0xEF53 at +0x38,
 * s_volume_name[16] at +0x78). The boot partition (FAT32, KITHBOOT) is found the same way
 * from its boot sector (Microsoft FAT spec: BS_VolLab at 0x47 and BS_FilSysType "FAT32"
 * at 0x52 on FAT32; 0x2B and 0x36 on FAT12/16; 0x55AA at 510).
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';

const SB = 1024;

/** The ext2/3/4 volume label in the first 2 KiB of a device, or undefined. Pure; never throws. */
export function ext4Label(head: Uint8Array): string | undefined {
  if (head.length < SB + 0x78 + 16) return undefined;
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b.readUInt16LE(SB + 0x38) !== 0xef53) return undefined;
  const raw = b.subarray(SB + 0x78, SB + 0x78 + 16);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? 16 : end).toString('latin1');
}

/** The FAT volume label in a device's first sector, or undefined. Pure; never throws. */
export function fatLabel(head: Uint8Array): string | undefined {
  if (head.length < 512) return undefined;
  const b = Buffer.from(head.buffer, head.byteOffset, head.length);
  if (b[510] !== 0x55 || b[511] !== 0xaa) return undefined;
  const at = b.toString('latin1', 0x52, 0x5a) === 'FAT32   ' ? 0x47 : /^FAT1[26] {3}$/.test(b.toString('latin1', 0x36, 0x3e)) ? 0x2b : undefined;
  if (at === undefined) return undefined;
  return b.toString('latin1', at, at + 11).replace(/ +$/, '');
}

/** `length` bytes of a device or file from `offset` (fewer at its end). Throws if it cannot be read. */
export function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    const n = readSync(fd, b, 0, length, offset);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function readHead(dev: string): Buffer | undefined {
  try {
    return readAt(dev, 0, 2048);
  } catch {
    return undefined;
  }
}

/** The /dev path of the block device whose ext4 label (or another, by `labelOf`) is `label`, if one is there now. */
export function findByLabel(label: string, sysBlock = '/sys/class/block', dev = '/dev', labelOf: (head: Uint8Array) => string | undefined = ext4Label): string | undefined {
  let names: string[] = [];
  try {
    names = readdirSync(sysBlock).sort();
  } catch {
    return undefined;
  }
  for (const n of names) {
    if (/^(loop|ram|zram)/.test(n)) continue;
    const head = readHead(`${dev}/${n}`);
    if (head && labelOf(head) === label) return `${dev}/${n}`;
  }
  return undefined;
}
