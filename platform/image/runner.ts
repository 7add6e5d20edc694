/**
 * Runners for image plans (plan.ts): `dryRun` prints what would happen; `run` does it.
 * Each action is idempotent where it touches the cache (downloads and extractions are
 * skipped when their result is already there), so rebuilding an image is quick.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chmodSync, copyFileSync, createReadStream, createWriteStream, renameSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import type { Action, Compression } from './plan.ts';
import { describeAction } from './plan.ts';
import { interpreter, isElf, modinfo, needed, type ModInfo } from './elf.ts';
import { loadOrder, moduleIndex } from './modules.ts';
import { writeCpio, type CpioEntry } from './cpio.ts';
import { cutIcuTail, trimIcuInProgram } from './icu-data.ts';
import { buildServiceSnapshot } from './snapshot.ts';
import { payloadCandidates } from './vmlinux.ts';

export type Say = (line: string) => void;

/** apt-get options that make apt use the private configuration under `root` only. */
export function aptOptions(root: string, architecture?: string): string[] {
  const o = [
    `Dir::Etc::sourcelist=${join(root, 'sources.list')}`, 'Dir::Etc::sourceparts=-',
    `Dir::State::Lists=${join(root, 'lists')}`, `Dir::Cache=${join(root, 'cache')}`,
    `Dir::State::status=${join(root, 'status')}`, 'Debug::NoLocking=1',
  ];
  if (architecture) o.push(`APT::Architecture=${architecture}`, `APT::Architectures::=${architecture}`);
  return o.flatMap((x) => ['-o', x]);
}

function aptArch(root: string): string | undefined {
  try {
    return readFileSync(join(root, 'architecture'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function aptSources(a: Extract<Action, { kind: 'apt-sources' }>): void {
  for (const d of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(a.root, d), { recursive: true });
  const list = a.sources.join('\n') + '\n';
  const listFile = join(a.root, 'sources.list');
  const same = existsSync(listFile) && readFileSync(listFile, 'utf8') === list;
  writeFileSync(listFile, list);
  writeFileSync(join(a.root, 'architecture'), a.architecture + '\n');
  if (!existsSync(join(a.root, 'status'))) writeFileSync(join(a.root, 'status'), '');
  const stamp = join(a.root, 'updated');
  if (same && existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < 86_400_000) return;
  exec('apt-get', [...aptOptions(a.root, a.architecture), '-qq', 'update']);
  writeFileSync(stamp, new Date().toISOString() + '\n');
}

function makeVfat(a: Extract<Action, { kind: 'make-vfat' }>): void {
  rmSync(a.out, { force: true });
  // 1 KiB clusters keep a small FAT32 volume above the 65525-cluster minimum.
  exec('mkfs.vfat', ['-F', '32', '-s', '2', '-n', a.label, '-h', String(a.hiddenSectors), '-C', a.out, String(a.sizeMiB * 1024)]);
  const items = readdirSync(a.from).sort().map((f) => join(a.from, f));
  if (items.length) exec('mcopy', ['-i', a.out, '-s', '-p', '-Q', ...items, '::/'], undefined, undefined, { MTOOLS_SKIP_CHECK: '1' });
}

function makeExt4(a: Extract<Action, { kind: 'make-ext4' }>): void {
  rmSync(a.out, { force: true });
  // 4 KiB blocks even though it starts small (mke2fs would pick 1 KiB): it grows to fill
  // the card on first boot (platform/boot/grow.ts). A read-only one never writes, so it
  // needs no journal, no blocks kept for root and no room to grow.
  const readOnly = a.readOnly ? ['-O', '^has_journal,^resize_inode', '-m', '0'] : [];
  try {
    exec('mke2fs', ['-q', '-t', 'ext4', '-b', '4096', ...readOnly, '-L', a.label, '-E', 'root_owner=0:0', '-d', a.from, '-F', a.out, `${a.sizeMiB}M`]);
  } catch (err) {
    const need = Math.ceil(sizeOf(a.from) / 2 ** 20);
    throw new Error(`${(err as Error).message}\n${a.from} holds ${need} MiB for a ${a.sizeMiB} MiB file system (${a.label}): give the partition more room`);
  }
  // mke2fs -d keeps each file's owner; one built without root still gets root's files.
  if (a.readOnly && process.getuid?.() !== 0) {
    const script = `${a.out}.owners`;
    writeFileSync(script, walk(a.from).flatMap((r) => [`sif /${r} uid 0`, `sif /${r} gid 0`]).join('\n') + '\n');
    exec('debugfs', ['-w', '-f', script, a.out]);
    rmSync(script);
  }
}

function partition(a: Extract<Action, { kind: 'partition' }>): void {
  rmSync(a.out, { force: true });
  writeFileSync(a.out, '');
  truncateSync(a.out, a.totalBytes);
  exec('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', a.out], undefined, Buffer.from(a.script));
}

export function dryRun(plan: Action[], say: Say = (l) => process.stdout.write(l + '\n')): void {
  plan.forEach((a, n) => say(`${String(n + 1).padStart(2)}. ${describeAction(a)}`));
}

function exec(cmd: string, args: string[], cwd?: string, input?: Buffer, env?: Record<string, string>): Buffer {
  const r = spawnSync(cmd, args, { cwd, input, env: env ? { ...process.env, ...env } : undefined, maxBuffer: 1 << 30, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  // EPIPE with status 0: the tool stopped reading early on purpose (xz --single-stream).
  if (r.error && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && r.status === 0)) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.toString().trim().slice(-2000)}`);
  return r.stdout;
}

function findOne(dir: string, suffix: string): string | undefined {
  const hit = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(suffix)).sort() : [];
  return hit.length ? join(dir, hit[hit.length - 1]) : undefined;
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    out.push(r);
    if (lstatSync(join(dir, r)).isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

export function sizeOf(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  return walk(path).reduce((n, r) => n + (lstatSync(join(path, r)).isFile() ? statSync(join(path, r)).size : 0), 0);
}

function extractVmlinux(from: string, to: string): void {
  const image = readFileSync(from);
  if (isElf(image)) return copyFileSync(from, to);
  for (const c of payloadCandidates(image)) {
    const tail = image.subarray(c.offset);
    let out: Buffer | undefined;
    try {
      if (c.compression === 'xz') out = exec('xz', ['-dc', '--single-stream'], undefined, tail);
      else if (c.compression === 'gzip') out = zlib.gunzipSync(tail, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      else if (c.compression === 'zstd') out = zlib.zstdDecompressSync(tail);
    } catch { /* not a real payload: try the next candidate */ }
    if (out && isElf(out)) return writeFileSync(to, out);
  }
  throw new Error(`no ELF kernel found inside ${from}`);
}

function resolveModules(a: Extract<Action, { kind: 'resolve-modules' }>): void {
  const files = new Map<string, string>();
  const infos: ModInfo[] = [];
  for (const rel of walk(a.tree)) {
    if (!rel.endsWith('.ko')) continue;
    const info = modinfo(readFileSync(join(a.tree, rel)));
    if (!info.ok) throw new Error(`${rel}: ${info.error}`);
    infos.push(info.value);
    files.set(info.value.name, join(a.tree, rel));
  }
  const builtinFile = join(a.tree, 'modules.builtin');
  const builtin = new Set(existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map((l) => basename(l, '.ko').replace(/-/g, '_')) : []);
  const order = loadOrder(a.wanted, moduleIndex(infos), builtin);
  if (!order.ok) throw new Error(order.error);
  // Loaded by a first stage already: PID 1 would only be told EEXIST.
  const before = new Set(a.omitFrom ? (JSON.parse(readFileSync(a.omitFrom, 'utf8')) as string[]).map((p) => basename(p, '.ko')) : []);
  const guest: string[] = [];
  for (const name of order.value.filter((n) => !before.has(n))) {
    copyFileSync(files.get(name)!, join(a.destDir, `${name}.ko`));
    guest.push(`${a.guestDir}/${name}.ko`);
  }
  writeFileSync(a.orderFile, JSON.stringify(guest, null, 2) + '\n');
  if (a.listFile) writeFileSync(a.listFile, guest.map((g) => g + '\n').join(''));
}

function collectLibs(a: Extract<Action, { kind: 'collect-libs' }>, say: Say): void {
  const program = readFileSync(a.program);
  const interp = interpreter(program);
  if (!interp.ok) throw new Error(`${a.program}: ${interp.error}`);
  const queue = [program];
  const seen = new Set<string>();
  mkdirSync(join(a.root, a.guestLibDir), { recursive: true });
  while (queue.length) {
    const deps = needed(queue.shift()!);
    if (!deps.ok) throw new Error(deps.error);
    for (const lib of deps.value) {
      if (seen.has(lib)) continue;
      seen.add(lib);
      const found = a.libDirs.map((d) => join(d, lib)).find((p) => existsSync(p));
      if (!found) throw new Error(`${lib} (needed by ${a.program}) not found in ${a.libDirs.join(':')}`);
      const data = readFileSync(realpathSync(found));
      writeFileSync(join(a.root, a.guestLibDir, lib), data, { mode: 0o755 });
      queue.push(data);
    }
  }
  if (interp.value) {
    const dest = join(a.root, interp.value);
    mkdirSync(dirname(dest), { recursive: true });
    const name = basename(interp.value);
    // libc names the loader in DT_NEEDED too, so it is usually copied already: link to it.
    if (seen.has(name)) symlinkSync(relative(dirname(dest), join(a.root, a.guestLibDir, name)), dest);
    else {
      // Another architecture's loader is not on the host: look in libDirs first.
      const found = [...a.libDirs.map((d) => join(d, name)), interp.value].find((p) => existsSync(p));
      if (!found) throw new Error(`loader ${interp.value} not found`);
      copyFileSync(realpathSync(found), dest);
      chmodSync(dest, 0o755);
    }
  }
  say(`   libraries: ${[...seen].join(' ')}${interp.value ? ` + loader ${interp.value}` : ''}`);
}

function compress(data: Buffer, c: Compression): Buffer {
  if (c === 'none') return data;
  if (c === 'gzip') return zlib.gzipSync(data, { level: 6 });
  // Level 12 with long-distance matching over a 128 MiB window (the largest a decoder
  // accepts without being told): the window spans Node's binary and a service snapshot,
  // which repeats much of it. 2.2 MB smaller than plain level 9 on the kvm DNS image, for
  // 3 s more; level 19 saves little more and takes over 40 s. Decompression speed is about
  // the same at any level, and the kernel's unzstd takes such a window.
  return zlib.zstdCompressSync(data, {
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: 12,
      [zlib.constants.ZSTD_c_enableLongDistanceMatching]: 1,
      [zlib.constants.ZSTD_c_windowLog]: 27,
    },
  });
}

/**
 * The downloadable image: zstd level 12 with long-distance matching over a 128 MiB window
 * (the largest decoders take without being told, zstd's CLI and Raspberry Pi Imager's
 * libarchive included), the content size in the frame header (kith flash's progress bar
 * reads it) and a content checksum. Measured against xz in docs/decisions.md. Streams: the
 * image is never in memory. Written to a temporary name and renamed, the sha256sum line last.
 */
/** zstd parameters of the downloadable image (bench/image/compress.ts measures the same). */
export const IMAGE_ZSTD_PARAMS = {
  [zlib.constants.ZSTD_c_compressionLevel]: 12,
  [zlib.constants.ZSTD_c_enableLongDistanceMatching]: 1,
  [zlib.constants.ZSTD_c_windowLog]: 27,
  [zlib.constants.ZSTD_c_checksumFlag]: 1,
};

async function packImage(a: Extract<Action, { kind: 'compress-image' }>): Promise<string> {
  const bytes = statSync(a.from).size;
  const hash = createHash('sha256');
  const tmp = `${a.to}.partial`;
  const started = Date.now();
  await pipeline(
    createReadStream(a.from, { highWaterMark: 4 << 20 }),
    zlib.createZstdCompress({ pledgedSrcSize: bytes, params: IMAGE_ZSTD_PARAMS }),
    new Transform({ transform(c: Buffer, _e, cb) { hash.update(c); cb(null, c); } }),
    createWriteStream(tmp),
  );
  renameSync(tmp, a.to);
  const sha256 = hash.digest('hex');
  writeFileSync(a.sha256File, `${sha256}  ${basename(a.to)}\n`);
  return `${mb(bytes)} -> ${mb(statSync(a.to).size)} in ${((Date.now() - started) / 1000).toFixed(1)} s; sha256 ${sha256}`;
}

function packInitramfs(a: Extract<Action, { kind: 'pack-initramfs' }>): void {
  const entries: CpioEntry[] = [];
  for (const rel of walk(a.root)) {
    const p = join(a.root, rel);
    const st = lstatSync(p);
    if (st.isDirectory()) entries.push({ path: rel, type: 'dir', mode: st.mode & 0o7777 });
    else if (st.isSymbolicLink()) entries.push({ path: rel, type: 'symlink', target: readlinkSync(p) });
    else if (st.isFile()) entries.push({ path: rel, type: 'file', mode: st.mode & 0o7777, data: readFileSync(p) });
  }
  for (const d of a.devices) entries.push({ path: d.path, type: 'chardev', mode: d.mode, major: d.major, minor: d.minor });
  writeFileSync(a.out, compress(Buffer.concat(writeCpio(entries)), a.compression));
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export async function run(plan: Action[], say: Say = (l) => process.stdout.write(l + '\n')): Promise<void> {
  for (const [n, a] of plan.entries()) {
    const started = Date.now();
    say(`${String(n + 1).padStart(2)}. ${describeAction(a)}`);
    switch (a.kind) {
      case 'mkdir': mkdirSync(a.path, { recursive: true }); break;
      case 'clean': rmSync(a.path, { recursive: true, force: true }); break;
      case 'apt-sources': aptSources(a); break;
      case 'fetch-deb': if (!findOne(a.dir, '.deb')) exec('apt-get', [...(a.aptRoot ? aptOptions(a.aptRoot, aptArch(a.aptRoot)) : []), 'download', a.package], a.dir); break;
      case 'extract-deb': if (!existsSync(a.dest)) exec('dpkg', ['-x', findOne(a.dir, '.deb')!, a.dest]); break;
      case 'fetch-npm': if (!findOne(a.dir, '.tgz')) exec('npm', ['pack', '--silent', a.spec], a.dir); break;
      case 'extract-tgz': if (!existsSync(a.dest)) { mkdirSync(a.dest, { recursive: true }); exec('tar', ['-xzf', findOne(a.dir, '.tgz')!, '-C', a.dest]); } break;
      case 'copy': {
        const base = basename(a.from);
        const sources = base.includes('*') ? readdirSync(dirname(a.from)).filter((f) => new RegExp(`^${base.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(f)).map((f) => join(dirname(a.from), f)) : [a.from];
        for (const s of sources) {
          const dest = base.includes('*') ? join(a.to, basename(s)) : a.to;
          mkdirSync(dirname(dest), { recursive: true });
          if (statSync(s).isDirectory()) exec('cp', ['-r', s, dest]);
          else { copyFileSync(s, dest); chmodSync(dest, a.mode); }
        }
        break;
      }
      case 'strip': exec(a.tool, ['-o', a.to, a.from]); chmodSync(a.to, 0o755); break;
      case 'trim-icu': {
        const r = trimIcuInProgram(readFileSync(a.from), { languages: a.languages });
        if (!r.ok) throw new Error(`${a.from}: ${r.error}`);
        // The trimmed program sits in the shared build cache: written beside and renamed, so an
        // image build running at the same time (tests build several) never strips a half-written one.
        const tmp = `${a.to}.${process.pid}.tmp`;
        writeFileSync(tmp, r.value.program, { mode: 0o755 });
        renameSync(tmp, a.to);
        const t = r.value.report;
        say(`   ${t.symbol}: ${mb(t.bytesBefore)} -> ${mb(t.bytesAfter)} (${t.itemsAfter} of ${t.itemsBefore} items kept)`);
        break;
      }
      case 'cut-icu-tail': {
        // Only a saving: when there is nothing to cut (many languages kept) or the program's
        // layout does not allow it, the program stays as it is, and works the same.
        const r = cutIcuTail(readFileSync(a.file));
        if (!r.ok) {
          say(`   nothing cut: ${r.error}`);
          break;
        }
        writeFileSync(a.file, r.value.program, { mode: 0o755 });
        say(`   ${mb(r.value.report.bytes)} of zeros cut from the file (program now ${mb(r.value.program.length)})`);
        break;
      }
      case 'extract-vmlinux': if (!existsSync(a.to) || statSync(a.to).mtimeMs < statSync(a.from).mtimeMs) extractVmlinux(a.from, a.to); break;
      case 'resolve-modules': resolveModules(a); say(`   order: ${JSON.parse(readFileSync(a.orderFile, 'utf8')).map((p: string) => basename(p, '.ko')).join(' ')}`); break;
      case 'collect-libs': collectLibs(a, say); break;
      case 'bundle': {
        // CommonJS: Node starts a CommonJS file without its ESM loader (an extensionless
        // file with import statements is first tried as CommonJS, then loaded as ESM),
        // which PID 1 notices under emulation. import.meta.url is the file's own URL.
        await build({
          entryPoints: [a.entry], outfile: a.out, bundle: true, platform: 'node', format: 'cjs', target: 'node26', minify: true,
          banner: a.banner ? { js: a.banner } : {}, define: { 'import.meta.url': JSON.stringify(`file://${a.guestPath}`) },
          logLevel: 'warning', legalComments: 'none',
        });
        chmodSync(a.out, a.mode);
        break;
      }
      case 'service-snapshot':
        say(`   ${await buildServiceSnapshot({ node: join(a.root, 'bin/node'), entry: a.entry, blob: join(a.root, a.blob), bundle: join(a.root, a.bundle), configDir: join(a.root, a.configDir), guestBundle: a.bundle, listeners: a.listeners })}`);
        break;
      case 'write-boot-config': {
        const modules = JSON.parse(readFileSync(a.modulesFrom, 'utf8')) as string[];
        writeFileSync(a.to, JSON.stringify({ ...a.config, modules }, null, 2) + '\n');
        break;
      }
      case 'write-json': writeFileSync(a.to, JSON.stringify(a.value, null, 2) + '\n'); break;
      case 'pack-initramfs': packInitramfs(a); break;
      case 'report-sizes': for (const f of a.files) say(`   ${f.label.padEnd(32)} ${mb(sizeOf(f.path)).padStart(10)}`); break;
      case 'write-file': mkdirSync(dirname(a.to), { recursive: true }); writeFileSync(a.to, a.text); if (a.mode !== undefined) chmodSync(a.to, a.mode); break;
      case 'symlink': mkdirSync(dirname(a.path), { recursive: true }); rmSync(a.path, { force: true }); symlinkSync(a.target, a.path); break;
      case 'write-tree':
        for (const [rel, text] of Object.entries(a.files)) {
          mkdirSync(dirname(join(a.dir, rel)), { recursive: true });
          writeFileSync(join(a.dir, rel), text);
        }
        break;
      case 'make-vfat': makeVfat(a); break;
      case 'make-ext4': makeExt4(a); break;
      case 'partition': partition(a); break;
      case 'compress-image': say(`   ${await packImage(a)}`); break;
      case 'place': exec('dd', [`if=${a.from}`, `of=${a.into}`, 'bs=4M', `seek=${a.offsetBytes}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']); break;
    }
    const ms = Date.now() - started;
    if (ms > 500) say(`   (${(ms / 1000).toFixed(1)} s)`);
  }
}
