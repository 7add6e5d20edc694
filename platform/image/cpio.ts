/**
 * The "newc" cpio format the kernel unpacks as initramfs (kernel docs:
 * filesystems/ramfs-rootfs-initramfs and early-userspace/buffer-format). Pure writer and
 * reader: entries in, bytes out. Entries are written sorted by path with uid/gid 0 and a
 * fixed mtime, so the same inputs give the same archive.
 */

export type CpioEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'chardev'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(f: { ino: number; mode: number; nlink: number; mtime: number; size: number; rdevMajor: number; rdevMinor: number; name: string }): Buffer {
  const name = Buffer.from(f.name + '\0', 'utf8');
  const fields = [f.ino, f.mode, 0, 0, f.nlink, f.mtime, f.size, 0, 0, f.rdevMajor, f.rdevMinor, name.length, 0];
  const head = Buffer.from('070701' + fields.map(hex8).join(''), 'latin1');
  return Buffer.concat([head, name, Buffer.alloc(pad4(head.length + name.length))]);
}

/** Write a newc archive; paths are relative ("bin/node"), parents must be listed too. */
export function writeCpio(entries: CpioEntry[], mtime = 0): Buffer[] {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of sorted) {
    if (e.path.startsWith('/') || e.path.split('/').includes('..') || e.path === '') throw new Error(`bad cpio path: ${e.path}`);
    let data: Buffer = Buffer.alloc(0);
    let mode: number;
    let rdevMajor = 0, rdevMinor = 0;
    if (e.type === 'dir') mode = S_IFDIR | (e.mode & 0o7777);
    else if (e.type === 'file') { mode = S_IFREG | (e.mode & 0o7777); data = e.data; }
    else if (e.type === 'symlink') { mode = S_IFLNK | 0o777; data = Buffer.from(e.target, 'utf8'); }
    else { mode = S_IFCHR | (e.mode & 0o7777); rdevMajor = e.major; rdevMinor = e.minor; }
    parts.push(header({ ino: ino++, mode, nlink: e.type === 'dir' ? 2 : 1, mtime, size: data.length, rdevMajor, rdevMinor, name: e.path }));
    if (data.length) parts.push(data, Buffer.alloc(pad4(data.length)));
  }
  parts.push(header({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0, name: 'TRAILER!!!' }));
  return parts;
}

export interface CpioMember {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  data: Buffer;
}

/** Read a newc archive back (for tests and `image inspect`); errors are values. */
export function readCpio(b: Buffer): { ok: true; value: CpioMember[] } | { ok: false; error: string } {
  const out: CpioMember[] = [];
  let at = 0;
  for (;;) {
    if (at + 110 > b.length) return { ok: false, error: `truncated header at ${at}` };
    if (b.toString('latin1', at, at + 6) !== '070701') return { ok: false, error: `bad magic at ${at}` };
    const field = (i: number) => {
      const s = b.toString('latin1', at + 6 + i * 8, at + 14 + i * 8);
      return /^[0-9a-fA-F]{8}$/.test(s) ? parseInt(s, 16) : NaN;
    };
    const [mode, uid, gid, size, namesize] = [field(1), field(2), field(3), field(6), field(11)];
    if ([mode, uid, gid, size, namesize].some(Number.isNaN) || namesize < 1) return { ok: false, error: `bad header at ${at}` };
    const nameEnd = at + 110 + namesize;
    if (nameEnd > b.length) return { ok: false, error: `truncated name at ${at}` };
    const path = b.toString('utf8', at + 110, nameEnd - 1);
    const dataAt = nameEnd + pad4(110 + namesize);
    if (dataAt + size > b.length) return { ok: false, error: `truncated data for ${path}` };
    if (path === 'TRAILER!!!') return { ok: true, value: out };
    out.push({ path, mode, uid, gid, data: b.subarray(dataAt, dataAt + size) });
    at = dataAt + size + pad4(size);
  }
}
