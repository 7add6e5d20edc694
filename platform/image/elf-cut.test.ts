import { describe, expect, it } from 'vitest';
import { cutZeroPages } from './elf-cut.ts';
import { sections } from './elf.ts';

const PAGE = 0x1000;

/**
 * A small ELF64 executable shape: a read-only LOAD over the first 6 pages (zeros in pages
 * 2-4, marked bytes elsewhere), a writable LOAD after it, a NOTE, and section headers
 * (.rodata over pages 1-5, .data in the writable page, .shstrtab) at the end.
 */
function fakeElf(o: { note?: boolean; writable?: boolean } = {}): Buffer {
  const size = 7 * PAGE;
  const b = Buffer.alloc(size + 0x100 + 4 * 64);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; b[5] = 1; b[6] = 1;
  b.writeUInt16LE(2, 0x10); // ET_EXEC
  b.writeBigUInt64LE(64n, 0x20); // e_phoff
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(3, 0x38);
  const ph = (i: number, type: number, flags: number, off: number, vaddr: number, len: number) => {
    const at = 64 + i * 56;
    b.writeUInt32LE(type, at); b.writeUInt32LE(flags, at + 4);
    [off, vaddr, vaddr, len, len, PAGE].forEach((v, k) => b.writeBigUInt64LE(BigInt(v), at + 8 + k * 8));
  };
  ph(0, o.note === false ? 6 /* PT_PHDR */ : 4, 4, 0x200, 0x400200, 0x20);
  ph(1, 1, o.writable ? 6 : 4, 0, 0x400000, 6 * PAGE);
  ph(2, 1, 6, 6 * PAGE, 0x800000, PAGE);
  for (const p of [1, 5, 6]) b.fill(0xab, p * PAGE, (p + 1) * PAGE);
  b.fill(0xcd, 0x2000 - 16, 0x2000); // the tail of the data before the zeros
  // section names and headers
  const names = '\0.rodata\0.data\0.shstrtab\0';
  const strOff = size;
  b.write(names, strOff, 'latin1');
  const shoff = size + 0x100;
  b.writeBigUInt64LE(BigInt(shoff), 0x28);
  b.writeUInt16LE(64, 0x3a); b.writeUInt16LE(4, 0x3c); b.writeUInt16LE(3, 0x3e);
  const sh = (i: number, name: number, off: number, addr: number, len: number) => {
    const at = shoff + i * 64;
    b.writeUInt32LE(name, at); b.writeUInt32LE(1, at + 4);
    b.writeBigUInt64LE(BigInt(addr), at + 16); b.writeBigUInt64LE(BigInt(off), at + 24); b.writeBigUInt64LE(BigInt(len), at + 32);
  };
  sh(1, 1, PAGE, 0x401000, 5 * PAGE);
  sh(2, 9, 6 * PAGE, 0x800000, PAGE);
  sh(3, 15, strOff, 0, names.length);
  b.writeUInt32LE(3, shoff + 3 * 64 + 4); // SHT_STRTAB
  return b;
}

const phdrs = (b: Buffer) => Array.from({ length: b.readUInt16LE(0x38) }, (_, i) => {
  const at = 64 + i * 56;
  return { type: b.readUInt32LE(at), offset: Number(b.readBigUInt64LE(at + 8)), vaddr: Number(b.readBigUInt64LE(at + 16)), filesz: Number(b.readBigUInt64LE(at + 32)) };
});

describe('cutting zero pages out of an ELF file', () => {
  it('splits the LOAD around the whole zero pages, keeps every address, and moves what follows down', () => {
    const b = fakeElf();
    const r = cutZeroPages(b, 0x2000 - 8 + 8, 5 * PAGE);
    if (!r.ok) throw new Error(r.error);
    const out = r.value.program;
    expect(r.value.report).toEqual({ from: 2 * PAGE, to: 5 * PAGE, bytes: 3 * PAGE });
    expect(out.length).toBe(b.length - 3 * PAGE);
    expect(b.readUInt32BE(0)).toBe(0x7f454c46); // input untouched
    expect(phdrs(out)).toEqual([
      { type: 1, offset: 0, vaddr: 0x400000, filesz: 2 * PAGE },
      { type: 1, offset: 2 * PAGE, vaddr: 0x405000, filesz: PAGE },
      { type: 1, offset: 3 * PAGE, vaddr: 0x800000, filesz: PAGE },
    ]);
    // The bytes each address maps to are the same as before.
    expect(out.subarray(2 * PAGE, 3 * PAGE).equals(b.subarray(5 * PAGE, 6 * PAGE))).toBe(true);
    expect(out.subarray(0x2000 - 16, 0x2000).equals(b.subarray(0x2000 - 16, 0x2000))).toBe(true);
    const secs = sections(out);
    if (!secs.ok) throw new Error(secs.error);
    expect(secs.value.map((s) => [s.name, s.offset, s.size])).toEqual([
      ['', 0, 0], ['.rodata', PAGE, PAGE], ['.data', 3 * PAGE, PAGE], ['.shstrtab', 4 * PAGE, 25],
    ]);
  });

  it('rounds inward to whole pages', () => {
    const r = cutZeroPages(fakeElf(), 0x2000 + 1, 5 * PAGE - 1);
    expect(r.ok && r.value.report).toEqual({ from: 3 * PAGE, to: 4 * PAGE, bytes: PAGE });
  });

  it('refuses, with the reason, what it must not cut', () => {
    const cases: [Buffer, number, number, RegExp][] = [
      [Buffer.from('not an elf at all, just some text to look at'), 0, 10, /not an ELF file/],
      [fakeElf(), 0x2000, 0x2800, /less than one 4096-byte page/],
      [fakeElf(), PAGE, 5 * PAGE, /byte 4096 is not zero/],
      [fakeElf(), 0x2000, 8 * PAGE, /not a range inside the file|not inside one LOAD/],
      [fakeElf(), 6 * PAGE, 7 * PAGE, /the segment is writable|byte/],
      [fakeElf({ writable: true }), 0x2000, 5 * PAGE, /the segment is writable/],
      [fakeElf({ note: false }), 0x2000, 5 * PAGE, /no PT_NOTE entry/],
      [fakeElf(), 5 * PAGE, 2 * PAGE, /not a range inside the file/],
    ];
    for (const [b, from, to, why] of cases) {
      const r = cutZeroPages(b, from, to);
      expect(r.ok, `${from}..${to}`).toBe(false);
      if (!r.ok) expect(r.error).toMatch(why);
    }
  });

  it('refuses truncated and garbled headers without throwing', () => {
    const b = fakeElf();
    for (let n = 0; n < 300; n++) {
      const m = Buffer.from(b.subarray(0, 64 + 3 * 56 + (n % 7) * 1000));
      m[(n * 7919) % 232] ^= 0xff; // flip one header byte
      expect(() => cutZeroPages(m, 0x2000, 5 * PAGE)).not.toThrow();
    }
  });
});
