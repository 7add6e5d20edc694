import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { interpreter, isElf, modinfo, needed, sections, symbol } from './elf.ts';

/** A minimal ELF64 LE file with the given sections (plus the null and .shstrtab ones). */
export function fakeElf(secs: { name: string; data: Buffer }[]): Buffer {
  const names = Buffer.concat([Buffer.from('\0.shstrtab\0'), ...secs.map((s) => Buffer.from(s.name + '\0'))]);
  const all = [{ name: '', nameOff: 0, data: Buffer.alloc(0) }, ...secs.map((s, i) => ({ ...s, nameOff: 11 + secs.slice(0, i).reduce((n, x) => n + x.name.length + 1, 0) })), { name: '.shstrtab', nameOff: 1, data: names }];
  let off = 64;
  const placed = all.map((s) => { const at = off; off += s.data.length; return { ...s, at }; });
  const shoff = off;
  const head = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(head);
  head.writeBigUInt64LE(BigInt(shoff), 0x28);
  head.writeUInt16LE(64, 0x3a);
  head.writeUInt16LE(all.length, 0x3c);
  head.writeUInt16LE(all.length - 1, 0x3e);
  const shdrs = placed.map((s) => {
    const h = Buffer.alloc(64);
    h.writeUInt32LE(s.nameOff, 0);
    h.writeUInt32LE(s.name ? 1 : 0, 4);
    h.writeBigUInt64LE(BigInt(s.at), 24);
    h.writeBigUInt64LE(BigInt(s.data.length), 32);
    return h;
  });
  return Buffer.concat([head, ...placed.map((s) => s.data), ...shdrs]);
}

describe('elf', () => {
  it('reads a module .modinfo', () => {
    const mod = fakeElf([{ name: '.text', data: Buffer.alloc(16) }, { name: '.modinfo', data: Buffer.from('license=GPL\0softdep=pre: crc32c post: foo\0depends=jbd2,mbcache,crc16\0name=ext4\0vermagic=6.1\0') }]);
    expect(modinfo(mod)).toEqual({ ok: true, value: { name: 'ext4', depends: ['jbd2', 'mbcache', 'crc16'], softPre: ['crc32c'], aliases: [] } });
    const nodeps = fakeElf([{ name: '.modinfo', data: Buffer.from('depends=\0alias=virtio:d*\0name=virtio\0') }]);
    expect(modinfo(nodeps)).toEqual({ ok: true, value: { name: 'virtio', depends: [], softPre: [], aliases: ['virtio:d*'] } });
  });

  it('rejects hostile input without throwing', () => {
    const good = fakeElf([{ name: '.modinfo', data: Buffer.from('name=x\0') }]);
    expect(modinfo(Buffer.from('not elf')).ok).toBe(false);
    expect(modinfo(fakeElf([{ name: '.text', data: Buffer.alloc(4) }]))).toEqual({ ok: false, error: 'no .modinfo section' });
    for (let cut = 0; cut < good.length; cut += 7) {
      expect(() => { modinfo(good.subarray(0, cut)); needed(good.subarray(0, cut)); interpreter(good.subarray(0, cut)); }).not.toThrow();
    }
    const wild = Buffer.from(good);
    wild.writeBigUInt64LE(0xffffffffffffn, 0x28);
    expect(sections(wild).ok).toBe(false);
    const e32 = Buffer.from(good); e32[4] = 1;
    expect(sections(e32)).toEqual({ ok: false, error: 'only ELF64 little-endian is supported' });
  });

  it.runIf(process.arch === 'x64')('reads DT_NEEDED and PT_INTERP of a real program', () => {
    const bin = readFileSync('/bin/true');
    expect(isElf(bin)).toBe(true);
    const n = needed(bin);
    expect(n.ok && n.value).toContain('libc.so.6');
    expect(interpreter(bin)).toEqual({ ok: true, value: '/lib64/ld-linux-x86-64.so.2' });
    expect(needed(fakeElf([]))).toEqual({ ok: true, value: [] });
  });
});

describe('symbol', () => {
  it('finds a data symbol in the file, and says why when it cannot', () => {
    const node = readFileSync(process.execPath);
    const icu = symbol(node, /^icudt\d+_dat$/);
    expect(icu.ok).toBe(true);
    if (icu.ok) expect(node.toString('latin1', icu.value.offset + 12, icu.value.offset + 16)).toBe('CmnD');
    expect(symbol(node, /^no_such_symbol_anywhere$/)).toEqual({ ok: false, error: 'no symbol matching /^no_such_symbol_anywhere$/' });
    expect(symbol(Buffer.from('not an elf at all'), /x/)).toEqual({ ok: false, error: 'not an ELF file' });
    // Cut short: the section table lies past the end.
    expect(symbol(node.subarray(0, 4096), /x/).ok).toBe(false);
  });
});
