/**
 * Disk images without root: an MBR layout computed here (pure), written by `sfdisk` onto a
 * plain file; each partition is built as its own file (mkfs.vfat + mcopy, mke2fs -d) and
 * copied in at its offset with dd. No loop devices, no mounts.
 *
 * Partitions start on 4 MiB boundaries (SD cards erase in 4 MiB blocks; the Pi images do
 * the same), sizes are whole MiB.
 */

export const SECTOR = 512;
const MiB = 1024 * 1024;
const ALIGN_MIB = 4;

export interface PartitionSpec {
  /** MBR type byte in hex as sfdisk takes it: 'c' = FAT32 (LBA), '83' = Linux. */
  type: string;
  sizeMiB: number;
  bootable?: boolean;
}

export interface PlacedPartition extends PartitionSpec {
  startSector: number;
  sectors: number;
  offsetBytes: number;
}

export interface MbrLayout {
  totalBytes: number;
  partitions: PlacedPartition[];
}

export function mbrLayout(parts: PartitionSpec[]): MbrLayout {
  if (parts.length === 0 || parts.length > 4) throw new Error('an MBR holds 1 to 4 primary partitions');
  let nextMiB = ALIGN_MIB;
  const placed: PlacedPartition[] = [];
  for (const p of parts) {
    if (!Number.isInteger(p.sizeMiB) || p.sizeMiB < 1) throw new Error(`partition size ${p.sizeMiB} MiB: a whole number of MiB ≥ 1`);
    if (!/^[0-9a-f]{1,2}$/.test(p.type)) throw new Error(`partition type ${p.type}: one hex byte`);
    const startSector = (nextMiB * MiB) / SECTOR;
    const sectors = (p.sizeMiB * MiB) / SECTOR;
    placed.push({ ...p, startSector, sectors, offsetBytes: startSector * SECTOR });
    nextMiB += Math.ceil(p.sizeMiB / ALIGN_MIB) * ALIGN_MIB;
  }
  return { totalBytes: nextMiB * MiB, partitions: placed };
}

/** The sfdisk(8) script for a layout. */
export function sfdiskScript(l: MbrLayout): string {
  return ['label: dos', 'unit: sectors', '', ...l.partitions.map((p) => `start=${p.startSector}, size=${p.sectors}, type=${p.type}${p.bootable ? ', bootable' : ''}`), ''].join('\n');
}
