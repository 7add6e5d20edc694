/**
 * Cutting a run of zero bytes that nothing reads out of an ELF64 executable's file, so the
 * image carries (and the kernel unpacks, and RAM holds) that much less. The read-only LOAD
 * segment around the run is split in two at page boundaries: the part before keeps its
 * place, the part after keeps its virtual addresses but moves down in the file, and the
 * pages in between are simply not mapped. ELF lets a program header table stay the same
 * size only, so the new LOAD takes the place of the PT_NOTE entry (build-id and ABI tag:
 * the kernel and the loader do not need it). Section headers after the cut move with the
 * bytes; a section that spans it is shortened to end there.
 *
 * Only for bytes the program never reads: an access there would fault. Used for the tail
 * of the ICU data the image builder has trimmed (icu-data.ts), whose table of contents no
 * longer reaches it. Reference: System V gABI, "Program Loading"; Linux binfmt_elf.
 */
import { isElf, SHT_NOBITS, type ElfResult } from './elf.ts';

const PT_LOAD = 1;
const PT_NOTE = 4;
const PF_W = 2;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;

interface Phdr { type: number; flags: number; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; align: number }

function readPhdr(b: Buffer, at: number): Phdr {
  const n = (o: number) => Number(b.readBigUInt64LE(at + o));
  return { type: b.readUInt32LE(at), flags: b.readUInt32LE(at + 4), offset: n(8), vaddr: n(16), paddr: n(24), filesz: n(32), memsz: n(40), align: n(48) };
}

function writePhdr(b: Buffer, at: number, p: Phdr): void {
  b.writeUInt32LE(p.type, at);
  b.writeUInt32LE(p.flags, at + 4);
  [p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.align].forEach((v, i) => b.writeBigUInt64LE(BigInt(v), at + 8 + i * 8));
}

export interface CutReport {
  /** File offsets of the bytes taken out: [from, to). */
  from: number;
  to: number;
  bytes: number;
}

/**
 * A copy of the program without the whole pages (at the segment's alignment) inside the
 * file range [from, to), which must be zeros in a read-only LOAD segment. The input is
 * not changed; an error value says why nothing can be cut.
 */
export function cutZeroPages(b: Buffer, from: number, to: number): ElfResult<{ program: Buffer; report: CutReport }> {
  const fail = (error: string) => ({ ok: false as const, error: `cannot cut ${from}..${to}: ${error}` });
  if (!isElf(b) || b.length < 64) return fail('not an ELF file');
  if (b[4] !== 2 || b[5] !== 1) return fail('only ELF64 little-endian is supported');
  const phoff = Number(b.readBigUInt64LE(0x20));
  const shoff = Number(b.readBigUInt64LE(0x28));
  const phnum = b.readUInt16LE(0x38);
  const shnum = b.readUInt16LE(0x3c);
  if (b.readUInt16LE(0x36) !== PHDR_SIZE || phoff + phnum * PHDR_SIZE > b.length) return fail('bad program header table');
  if (shnum > 0 && (b.readUInt16LE(0x3a) !== SHDR_SIZE || shoff + shnum * SHDR_SIZE > b.length)) return fail('bad section header table');
  if (!(0 <= from && from < to && to <= b.length)) return fail('not a range inside the file');
  const phdrs = Array.from({ length: phnum }, (_, i) => readPhdr(b, phoff + i * PHDR_SIZE));

  const seg = phdrs.find((p) => p.type === PT_LOAD && p.offset <= from && to <= p.offset + p.filesz);
  if (!seg) return fail('not inside one LOAD segment');
  if (seg.flags & PF_W) return fail('the segment is writable');
  if (seg.filesz !== seg.memsz) return fail('the segment has bytes only in memory');
  const align = Math.max(seg.align, 4096);
  if ((align & (align - 1)) !== 0) return fail(`segment alignment ${seg.align} is not a power of two`);
  const cutFrom = Math.ceil(from / align) * align;
  const cutTo = Math.floor(to / align) * align;
  if (cutTo - cutFrom < align) return fail(`less than one ${align}-byte page lies inside`);
  if (phoff + phnum * PHDR_SIZE > cutFrom) return fail('the program header table lies after the cut');
  for (let i = cutFrom; i < cutTo; i++) if (b[i] !== 0) return fail(`byte ${i} is not zero`);
  const noteAt = phdrs.findIndex((p) => p.type === PT_NOTE);
  if (noteAt < 0) return fail('no PT_NOTE entry to give up for the second LOAD');
  const cut = cutTo - cutFrom;

  const out: Phdr[] = [];
  for (const [i, p] of phdrs.entries()) {
    if (i === noteAt) continue;
    if (p === seg) {
      out.push({ ...p, filesz: cutFrom - p.offset, memsz: cutFrom - p.offset });
      const skip = cutTo - p.offset;
      out.push({ ...p, offset: cutFrom, vaddr: p.vaddr + skip, paddr: p.paddr + skip, filesz: p.filesz - skip, memsz: p.memsz - skip });
      continue;
    }
    if (p.filesz > 0 && p.offset < cutTo && p.offset + p.filesz > cutFrom) return fail(`program header ${i} (type ${p.type}) spans the cut`);
    out.push(p.offset >= cutTo ? { ...p, offset: p.offset - cut } : p);
  }

  const program = Buffer.concat([b.subarray(0, cutFrom), b.subarray(cutTo)]);
  out.forEach((p, i) => writePhdr(program, phoff + i * PHDR_SIZE, p));
  if (shnum > 0) {
    const newShoff = shoff >= cutTo ? shoff - cut : shoff;
    if (shoff < cutTo && shoff + shnum * SHDR_SIZE > cutFrom) return fail('the section header table spans the cut');
    program.writeBigUInt64LE(BigInt(newShoff), 0x28);
    for (let i = 0; i < shnum; i++) {
      const at = newShoff + i * SHDR_SIZE;
      const type = program.readUInt32LE(at + 4);
      const off = Number(program.readBigUInt64LE(at + 24));
      const size = Number(program.readBigUInt64LE(at + 32));
      if (type !== SHT_NOBITS && off >= cutFrom && off < cutTo && size > 0) return fail(`section ${i} starts inside the cut`);
      if (off >= cutTo) program.writeBigUInt64LE(BigInt(off - cut), at + 24);
      else if (type !== SHT_NOBITS && off + size > cutFrom) program.writeBigUInt64LE(BigInt(cutFrom - off), at + 32);
    }
  }
  return { ok: true, value: { program, report: { from: cutFrom, to: cutTo, bytes: cut } } };
}
