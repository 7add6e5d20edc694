/**
 * A minimal ELF64 little-endian reader for the image builder: section lookup, a kernel
 * module's .modinfo (name=, depends=, softdep=), a program's DT_NEEDED libraries and its
 * PT_INTERP loader, and where a named data symbol lies in the file. Pure: bytes in, values out; malformed input gives an error value.
 * Reference: the System V gABI, "Object Files" (ELF header, section header, dynamic section).
 */

export type ElfResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface Section {
  name: string;
  type: number;
  /** Virtual address when loaded (sh_addr). */
  addr: number;
  offset: number;
  size: number;
  link: number;
}

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export function isElf(b: Buffer): boolean {
  return b.length >= 4 && b.subarray(0, 4).equals(ELF_MAGIC);
}

function within(b: Buffer, off: number, len: number): boolean {
  return Number.isSafeInteger(off) && Number.isSafeInteger(len) && off >= 0 && len >= 0 && off + len <= b.length;
}

export function sections(b: Buffer): ElfResult<Section[]> {
  if (!isElf(b) || b.length < 64) return { ok: false, error: 'not an ELF file' };
  if (b[4] !== 2 || b[5] !== 1) return { ok: false, error: 'only ELF64 little-endian is supported' };
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  if (shentsize < 64 || !within(b, shoff, shentsize * shnum) || shstrndx >= shnum) return { ok: false, error: 'bad section header table' };
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    raw.push({
      nameOff: b.readUInt32LE(at), type: b.readUInt32LE(at + 4), addr: Number(b.readBigUInt64LE(at + 16)),
      offset: Number(b.readBigUInt64LE(at + 24)), size: Number(b.readBigUInt64LE(at + 32)), link: b.readUInt32LE(at + 40),
    });
  }
  const strtab = raw[shstrndx];
  if (!within(b, strtab.offset, strtab.size)) return { ok: false, error: 'bad section name table' };
  const names = b.subarray(strtab.offset, strtab.offset + strtab.size);
  const out: Section[] = [];
  for (const s of raw) {
    const end = names.indexOf(0, s.nameOff);
    const name = s.nameOff < names.length ? names.toString('latin1', s.nameOff, end < 0 ? names.length : end) : '';
    out.push({ name, type: s.type, addr: s.addr, offset: s.offset, size: s.size, link: s.link });
  }
  return { ok: true, value: out };
}

export const SHT_NOBITS = 8;

function sectionBytes(b: Buffer, s: Section): Buffer | undefined {
  if (s.type === SHT_NOBITS || !within(b, s.offset, s.size)) return undefined;
  return b.subarray(s.offset, s.offset + s.size);
}

export interface ModInfo {
  name: string;
  depends: string[];
  /** softdep "pre:" modules (e.g. ext4 wants crc32c before it). */
  softPre: string[];
  /** alias= values, e.g. crc32c_generic is also "crypto-crc32c" (ext4's soft dependency). */
  aliases: string[];
}

/** A kernel module's .modinfo: NUL-separated key=value strings. */
export function modinfo(b: Buffer): ElfResult<ModInfo> {
  const secs = sections(b);
  if (!secs.ok) return secs;
  const s = secs.value.find((x) => x.name === '.modinfo');
  const bytes = s && sectionBytes(b, s);
  if (!bytes) return { ok: false, error: 'no .modinfo section' };
  const info: ModInfo = { name: '', depends: [], softPre: [], aliases: [] };
  for (const entry of bytes.toString('latin1').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq < 0) continue;
    const key = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (key === 'name') info.name = value;
    else if (key === 'depends') info.depends.push(...value.split(',').filter(Boolean));
    else if (key === 'alias') info.aliases.push(value);
    else if (key === 'softdep') {
      const m = /pre:\s*([^:]*?)(\s+post:|$)/.exec(value);
      if (m) info.softPre.push(...m[1].split(/\s+/).filter(Boolean));
    }
  }
  if (!info.name) return { ok: false, error: '.modinfo has no name=' };
  return { ok: true, value: info };
}

/** DT_NEEDED entries of a dynamically linked program or library. */
export function needed(b: Buffer): ElfResult<string[]> {
  const secs = sections(b);
  if (!secs.ok) return secs;
  const dyn = secs.value.find((x) => x.name === '.dynamic');
  if (!dyn) return { ok: true, value: [] }; // static
  const dynBytes = sectionBytes(b, dyn);
  const strSec = secs.value[dyn.link];
  const strBytes = strSec && sectionBytes(b, strSec);
  if (!dynBytes || !strBytes) return { ok: false, error: 'bad .dynamic section' };
  const out: string[] = [];
  for (let i = 0; i + 16 <= dynBytes.length; i += 16) {
    const tag = dynBytes.readBigInt64LE(i);
    if (tag === 0n) break; // DT_NULL
    if (tag !== 1n) continue; // DT_NEEDED
    const off = Number(dynBytes.readBigUInt64LE(i + 8));
    if (off >= strBytes.length) return { ok: false, error: 'DT_NEEDED points outside .dynstr' };
    const end = strBytes.indexOf(0, off);
    out.push(strBytes.toString('latin1', off, end < 0 ? strBytes.length : end));
  }
  return { ok: true, value: out };
}

/** The PT_INTERP program loader path, if any. */
export function interpreter(b: Buffer): ElfResult<string | undefined> {
  if (!isElf(b) || b.length < 64 || b[4] !== 2 || b[5] !== 1) return { ok: false, error: 'not an ELF64 LE file' };
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  if (phentsize < 56 || !within(b, phoff, phentsize * phnum)) return { ok: false, error: 'bad program header table' };
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (b.readUInt32LE(at) !== 3) continue; // PT_INTERP
    const off = Number(b.readBigUInt64LE(at + 8));
    const size = Number(b.readBigUInt64LE(at + 32));
    if (!within(b, off, size)) return { ok: false, error: 'bad PT_INTERP' };
    return { ok: true, value: b.toString('latin1', off, off + size).replace(/\0.*$/s, '') };
  }
  return { ok: true, value: undefined };
}

export interface SymbolLocation {
  name: string;
  /** File offset of the symbol's bytes. */
  offset: number;
  size: number;
}

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;

/**
 * The first symbol whose name matches, located in the file (it must have bytes there):
 * from .symtab, or from .dynsym (which survives strip) when `table` says so.
 */
export function symbol(b: Buffer, name: RegExp, table: 'symtab' | 'dynsym' = 'symtab'): ElfResult<SymbolLocation> {
  const secs = sections(b);
  if (!secs.ok) return secs;
  const symtab = secs.value.find((x) => x.type === (table === 'symtab' ? SHT_SYMTAB : SHT_DYNSYM));
  if (!symtab) return { ok: false, error: table === 'symtab' ? 'no symbol table (a stripped program)' : 'no dynamic symbol table' };
  const symBytes = sectionBytes(b, symtab);
  const strSec = secs.value[symtab.link];
  const strBytes = strSec && sectionBytes(b, strSec);
  if (!symBytes || !strBytes) return { ok: false, error: `bad .${table} section` };
  for (let i = 0; i + 24 <= symBytes.length; i += 24) {
    const nameOff = symBytes.readUInt32LE(i);
    if (nameOff === 0 || nameOff >= strBytes.length) continue;
    const end = strBytes.indexOf(0, nameOff);
    const symName = strBytes.toString('latin1', nameOff, end < 0 ? strBytes.length : end);
    if (!name.test(symName)) continue;
    const shndx = symBytes.readUInt16LE(i + 6);
    const value = Number(symBytes.readBigUInt64LE(i + 8));
    const size = Number(symBytes.readBigUInt64LE(i + 16));
    const sec = secs.value[shndx];
    if (!sec || sec.type === SHT_NOBITS) return { ok: false, error: `symbol ${symName} has no bytes in the file` };
    const offset = sec.offset + (value - sec.addr);
    if (value < sec.addr || !within(b, offset, size) || offset + size > sec.offset + sec.size) return { ok: false, error: `symbol ${symName} lies outside its section` };
    return { ok: true, value: { name: symName, offset, size } };
  }
  return { ok: false, error: `no symbol matching ${name}` };
}
