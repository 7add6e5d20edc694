/**
 * Find the compressed kernel inside a bzImage, the way the kernel's own
 * scripts/extract-vmlinux does: scan for a compressor's magic bytes and try to
 * decompress from there until the result is an ELF file. Booting that ELF as PVH skips
 * the kernel's self-decompression, which roughly halves boot time under qemu TCG.
 * Pure: this only finds candidate offsets; decompression is the runner's job.
 */

export type Compression = 'xz' | 'gzip' | 'zstd' | 'lz4';

const MAGICS: [Compression, Buffer][] = [
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['gzip', Buffer.from([0x1f, 0x8b, 0x08])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['lz4', Buffer.from([0x02, 0x21, 0x4c, 0x18])],
];

/** Every offset where a compressed payload may start, in file order. */
export function payloadCandidates(image: Buffer): { compression: Compression; offset: number }[] {
  const out: { compression: Compression; offset: number }[] = [];
  for (const [compression, magic] of MAGICS) {
    for (let i = image.indexOf(magic); i >= 0; i = image.indexOf(magic, i + 1)) out.push({ compression, offset: i });
  }
  return out.sort((a, b) => a.offset - b.offset);
}
