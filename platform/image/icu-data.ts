/**
 * Trimming the ICU data Node carries inside its binary (the `icudtNN_dat` symbol, 33 MB
 * in Node 26, a quarter of the program). The npm Node is built with full ICU: every locale
 * of every CLDR tree. An appliance image needs English and root, as Node's own
 * `--with-intl=small-icu` build does; the rest is rewritten away in place and the freed
 * tail zeroed, so the compressed image shrinks while the program stays byte-for-byte the
 * same everywhere else (the symbol's address and size are unchanged; ICU only reads the
 * package through its table of contents).
 *
 * The format is ICU's "common data" package (source/common/ucmndata.h): a data header
 * (headerSize, magic 0xda27, UDataInfo with format "CmnD"), then a table of contents —
 * count, then count × (nameOffset, dataOffset), both relative to the start of the table —
 * then NUL-terminated item names sorted by strcmp (ICU binary-searches them), then the
 * items, each 16-byte aligned. An item's length is the distance to the next item.
 */
import { Buffer } from 'node:buffer';
import { cutZeroPages, type CutReport } from './elf-cut.ts';
import { symbol } from './elf.ts';

export interface IcuItem {
  /** Full name as ICU looks it up, e.g. `icudt78l/coll/root.res`. */
  name: string;
  data: Buffer;
}

export interface IcuPackage {
  /** The data header, copied as it is (size, magic, UDataInfo, copyright). */
  header: Buffer;
  items: IcuItem[];
}

export type IcuResult<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error: `ICU data: ${error}` });

/** Parse an ICU common data package (little-endian, as on x86_64 and arm64). */
export function parseIcuPackage(b: Buffer): IcuResult<IcuPackage> {
  if (b.length < 32) return fail(`${b.length} bytes is too short for a data header`);
  const headerSize = b.readUInt16LE(0);
  if (b[2] !== 0xda || b[3] !== 0x27) return fail('no 0xda27 magic at the start (not an ICU data package)');
  if (headerSize < 24 || headerSize > b.length - 4 || headerSize % 4 !== 0) return fail(`bad header size ${headerSize}`);
  if (b[8] !== 0) return fail('big-endian packages are not supported');
  const format = b.toString('latin1', 12, 16);
  if (format !== 'CmnD') return fail(`data format is "${format}", not "CmnD" (a common data package)`);
  const toc = headerSize;
  const count = b.readUInt32LE(toc);
  if (count === 0 || 4 + count * 8 > b.length - toc) return fail(`table of contents claims ${count} items, more than the ${b.length} bytes can hold`);
  const entries: { name: string; data: number }[] = [];
  for (let i = 0; i < count; i++) {
    const nameOff = b.readUInt32LE(toc + 4 + i * 8);
    const dataOff = b.readUInt32LE(toc + 8 + i * 8);
    const nameAt = toc + nameOff;
    if (nameOff < 4 + count * 8 || nameAt >= b.length) return fail(`item ${i}: name offset ${nameOff} is outside the package`);
    const end = b.indexOf(0, nameAt);
    if (end < 0 || end - nameAt > 255) return fail(`item ${i}: name is not NUL-terminated`);
    const name = b.toString('latin1', nameAt, end);
    if (!/^[\x21-\x7e]+$/.test(name)) return fail(`item ${i}: name ${JSON.stringify(name)} is not printable ASCII`);
    if (toc + dataOff > b.length) return fail(`item ${name}: data offset ${dataOff} is outside the package`);
    if (entries.length) {
      const prev = entries[entries.length - 1]!;
      if (prev.name >= name) return fail(`item names are not sorted (${prev.name} before ${name}); ICU could not find them`);
      if (prev.data > dataOff) return fail(`item ${name}: data starts before the previous item's`);
    }
    entries.push({ name, data: dataOff });
  }
  const items = entries.map((e, i) => ({
    name: e.name,
    data: b.subarray(toc + e.data, i + 1 < entries.length ? toc + entries[i + 1]!.data : b.length),
  }));
  return { ok: true, value: { header: b.subarray(0, headerSize), items } };
}

const align16 = (n: number) => (n + 15) & ~15;

/** Lay a package out again: header, table, names, then each item 16-byte aligned. */
export function writeIcuPackage(p: IcuPackage): Buffer {
  const items = [...p.items].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const tocBytes = 4 + items.length * 8;
  let namesBytes = 0;
  for (const it of items) namesBytes += Buffer.byteLength(it.name, 'latin1') + 1;
  // Items start 16-aligned in the whole package, as ICU's own tools place them.
  let at = align16(p.header.length + tocBytes + namesBytes) - p.header.length;
  const dataOffsets: number[] = [];
  for (const it of items) {
    dataOffsets.push(at);
    at = align16(p.header.length + at + it.data.length) - p.header.length;
  }
  const last = items.length ? dataOffsets[items.length - 1]! + items[items.length - 1]!.data.length : tocBytes;
  const out = Buffer.alloc(p.header.length + last);
  p.header.copy(out, 0);
  const toc = p.header.length;
  out.writeUInt32LE(items.length, toc);
  let nameAt = tocBytes;
  items.forEach((it, i) => {
    out.writeUInt32LE(nameAt, toc + 4 + i * 8);
    out.writeUInt32LE(dataOffsets[i]!, toc + 8 + i * 8);
    nameAt += out.write(it.name, toc + nameAt, 'latin1') + 1;
    it.data.copy(out, toc + dataOffsets[i]!);
  });
  return out;
}

/** The CLDR trees whose items are named after locales (root.res, en_GB.res, ...). */
const LOCALE_TREES = new Set(['', 'brkitr', 'coll', 'curr', 'lang', 'rbnf', 'region', 'unit', 'zone']);
const LOCALE_ITEM = /^([a-z]{2,3}|root)(_[A-Za-z0-9]*)*\.res$/;

export interface IcuKeepPolicy {
  /** Languages whose locales are kept (every region and script variant), besides root. */
  languages: string[];
}

/**
 * What an appliance keeps: everything that is not locale data (normalization, properties,
 * time zones, plural rules, converters for TextDecoder, collation and break rules) and the
 * locale data of root and the chosen languages. Dropped as well: the word-break
 * dictionaries for Thai, Lao, Khmer, Burmese and CJK (ICU falls back to breaking those
 * scripts per character) and transliteration, which neither V8 nor Node uses.
 */
export function keepIcuItem(name: string, policy: IcuKeepPolicy): boolean {
  const rel = name.slice(name.indexOf('/') + 1);
  const slash = rel.lastIndexOf('/');
  const tree = slash < 0 ? '' : rel.slice(0, slash);
  const file = rel.slice(slash + 1);
  if (tree === 'translit') return false;
  if (file.endsWith('.dict')) return false;
  if (!LOCALE_TREES.has(tree) || file === 'pool.res' || file === 'res_index.res') return true;
  const m = LOCALE_ITEM.exec(file);
  if (!m) return true; // res_index.res, supplementalData.res, ucadata.icu, *.brk, ...
  return m[1] === 'root' || policy.languages.includes(m[1]!);
}

export interface IcuTrimReport {
  symbol: string;
  itemsBefore: number;
  itemsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Rewrite the ICU package inside a program (an unstripped ELF, so its symbol table names
 * `icudtNN_dat`) keeping only what the policy keeps. The buffer is changed in place (a
 * copy of 150 MB buys nothing: callers read the file fresh) and returned with a report;
 * on an error it is left untouched.
 */
export function trimIcuInProgram(program: Buffer, policy: IcuKeepPolicy): IcuResult<{ program: Buffer; report: IcuTrimReport }> {
  const sym = symbol(program, /^icudt\d+_dat$/);
  if (!sym.ok) return fail(`${sym.error} (strip the program only after trimming)`);
  const region = program.subarray(sym.value.offset, sym.value.offset + sym.value.size);
  const parsed = parseIcuPackage(region);
  if (!parsed.ok) return parsed;
  const kept = parsed.value.items.filter((it) => keepIcuItem(it.name, policy));
  if (!kept.some((it) => /\/root\.res$/.test(it.name))) return fail('the trimmed package would have no root.res');
  const packed = writeIcuPackage({ header: parsed.value.header, items: kept });
  if (packed.length > region.length) return fail(`the trimmed package (${packed.length} bytes) is larger than the original (${region.length})`);
  packed.copy(program, sym.value.offset);
  program.fill(0, sym.value.offset + packed.length, sym.value.offset + sym.value.size);
  return {
    ok: true,
    value: {
      program,
      report: { symbol: sym.value.name, itemsBefore: parsed.value.items.length, itemsAfter: kept.length, bytesBefore: region.length, bytesAfter: packed.length },
    },
  };
}

/**
 * Take the zeroed tail of a trimmed ICU package out of the (stripped) program's file:
 * 23 MB of Node 26's 116 that the image would otherwise carry, and the kernel unpack into
 * RAM, for nothing (elf-cut.ts). Found through .dynsym, which strip keeps.
 */
export function cutIcuTail(program: Buffer): IcuResult<{ program: Buffer; report: CutReport }> {
  const sym = symbol(program, /^icudt\d+_dat$/, 'dynsym');
  if (!sym.ok) return fail(sym.error);
  const end = sym.value.offset + sym.value.size;
  const last = program.subarray(sym.value.offset, end).findLastIndex((byte) => byte !== 0);
  const from = sym.value.offset + last + 1;
  const cut = cutZeroPages(program, from, end);
  return cut.ok ? cut : fail(cut.error);
}
