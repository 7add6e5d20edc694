/**
 * The four primary entries of an MBR partition table (sector 0: 446 bytes of boot code,
 * 4 × 16-byte entries, the 0x55AA signature). Shared by the boot code that grows the data
 * partition and by `kith flash`, which checks an image before writing it.
 */
import { Buffer } from 'node:buffer';

export const MBR_ENTRIES_AT = 446;

export interface MbrEntry {
  /** 0x80: bootable. */
  status: number;
  type: number;
  /** First sector (LBA) and length, in 512-byte sectors. */
  start: number;
  sectors: number;
}

export function hasMbrSignature(b: Buffer): boolean {
  return b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa;
}

/** The four entries of a sector already known to be 512 bytes long. */
export function readMbrEntries(b: Buffer): MbrEntry[] {
  return [0, 1, 2, 3].map((i) => {
    const at = MBR_ENTRIES_AT + i * 16;
    return { status: b[at]!, type: b[at + 4]!, start: b.readUInt32LE(at + 8), sectors: b.readUInt32LE(at + 12) };
  });
}

/** A sector 0 holding these entries (missing fields 0) and the signature. */
export function mbrSector(entries: Partial<MbrEntry>[]): Buffer {
  const b = Buffer.alloc(512);
  entries.forEach((e, i) => {
    const at = MBR_ENTRIES_AT + i * 16;
    b[at] = e.status ?? 0;
    b[at + 4] = e.type ?? 0;
    b.writeUInt32LE(e.start ?? 0, at + 8);
    b.writeUInt32LE(e.sectors ?? 0, at + 12);
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}
