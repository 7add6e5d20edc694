/**
 * Image build plans: side effects as data (after MirageOS functoria's Action). A planner
 * turns a target's inputs into a list of Actions; runner.ts interprets them for real or as
 * a dry run. Planning is pure, so tests assert on plans and only a few touch real files.
 */
import { join } from 'node:path';
import type { BootConfig } from '../boot/boot-config.ts';

export type Compression = 'zstd' | 'gzip' | 'none';

/** Node's own ICU data in full: no trim-icu step. */
export const ALL_LANGUAGES = 'all';
/** English, as Node's own small-icu build keeps; other locales fall back to it honestly. */
export const DEFAULT_LANGUAGES = ['en'];

/** `--languages en,de` → ['en', 'de']; an error message for anything but language codes or 'all'. */
export function parseLanguages(list: string): string[] | { error: string } {
  const langs = list.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (!langs.length) return { error: 'give at least one language code (for example en), or all' };
  const bad = langs.find((l) => l !== ALL_LANGUAGES && !/^[a-z]{2,3}$/.test(l));
  if (bad) return { error: `"${bad}" is not a language code (two or three letters, as in en, de, fil), nor all` };
  return [...new Set(langs)];
}

/**
 * Node, ready for an image: its ICU data trimmed to the chosen languages (unless 'all'),
 * then stripped, then the trimmed data's zeroed tail cut out of the file. The trimmed copy stays in the node cache folder beside the original.
 */
export function planNodeBinary(o: { nodeDir: string; stripTool: string; to: string; languages: string[] }): Action[] {
  const original = join(o.nodeDir, 'tree/package/bin/node');
  if (o.languages.includes(ALL_LANGUAGES)) return [{ kind: 'strip', tool: o.stripTool, from: original, to: o.to }];
  const trimmed = join(o.nodeDir, `node.icu-${o.languages.join('+')}`);
  return [
    { kind: 'trim-icu', from: original, to: trimmed, languages: o.languages },
    { kind: 'strip', tool: o.stripTool, from: trimmed, to: o.to },
    { kind: 'cut-icu-tail', file: o.to },
  ];
}

/**
 * /init's first line. The kernel passes what follows the interpreter as one argument, so
 * there is room for one flag: --jitless. PID 1 does little work after boot, and under
 * emulation code V8 generates is code qemu must translate again: 0.1-0.3 s of boot under
 * TCG. It also turns WebAssembly off, and with it fetch (undici parses HTTP in WASM): PID 1
 * uses node:http (init.test.ts checks the bundle). init.ts itself drops Node's
 * ExperimentalWarning for FFI.
 */
export const INIT_SHEBANG = '#!/bin/node --jitless';

/** The node arguments that start a sealed service from its startup snapshot (snapshot.ts). */
export function snapshotArgs(blob: string): string[] {
  return ['--snapshot-blob', blob];
}

/** A special file the packer adds without it existing on disk (we never mknod on the host). */
export interface DeviceNode { path: string; major: number; minor: number; mode: number }

export type Action =
  | { kind: 'mkdir'; path: string }
  /** Remove a staging folder left by an earlier build. */
  | { kind: 'clean'; path: string }
  /**
   * A private apt configuration under `root` (sources.list, lists, cache, empty status):
   * another architecture's or component's packages, without touching the host's /etc/apt
   * or dpkg. `apt-get update` runs when the lists are missing or older than a day.
   */
  | { kind: 'apt-sources'; root: string; architecture: string; sources: string[] }
  /** `apt-get download PACKAGE` into dir, unless a .deb is already there (aptRoot: a private config). */
  | { kind: 'fetch-deb'; package: string; dir: string; aptRoot?: string }
  /** `dpkg -x` the .deb found in dir into dest, unless dest exists. */
  | { kind: 'extract-deb'; dir: string; dest: string }
  /** `npm pack SPEC` into dir, unless a .tgz is already there. */
  | { kind: 'fetch-npm'; spec: string; dir: string }
  /** `tar -xzf` the .tgz found in dir into dest, unless dest exists. */
  | { kind: 'extract-tgz'; dir: string; dest: string }
  /** Copy `from` (may be a glob with one `*` in its last part) to `to`. */
  | { kind: 'copy'; from: string; to: string; mode: number }
  | { kind: 'strip'; tool: string; from: string; to: string }
  /** Rewrite the ICU data inside an unstripped Node to root + these languages (icu-data.ts). */
  | { kind: 'trim-icu'; from: string; to: string; languages: string[] }
  /** Cut the zeroed tail of trimmed ICU data out of a stripped program, in place (icu-data.ts cutIcuTail). */
  | { kind: 'cut-icu-tail'; file: string }
  /** Decompress the kernel payload inside a bzImage into an ELF vmlinux (PVH boot). */
  | { kind: 'extract-vmlinux'; from: string; to: string }
  /**
   * Resolve load order from modinfo depends=, copy the .ko files, write the order as JSON.
   * `omitFrom`: another such order file, whose modules are loaded before (a first stage):
   * left out. `listFile`: the order also as one guest path a line, for a shell to read.
   */
  | { kind: 'resolve-modules'; tree: string; wanted: string[]; destDir: string; guestDir: string; orderFile: string; omitFrom?: string; listFile?: string }
  /** Copy the shared libraries (and loader) a program needs, found under libDirs. */
  | { kind: 'collect-libs'; program: string; libDirs: string[]; root: string; guestLibDir: string }
  /** esbuild one CommonJS file from entry, found at guestPath in the image; `banner` becomes its first line. */
  | { kind: 'bundle'; entry: string; out: string; guestPath: string; banner?: string; mode: number }
  /**
   * Build a V8 startup snapshot of the service (platform/image/snapshot.ts) with the image's
   * Node (`root`/bin/node, which must run on this host) and check the sealed service starts
   * from it. `entry` is the service's main.ts on the host; the other paths are inside `root`,
   * as the guest sees them.
   */
  | { kind: 'service-snapshot'; root: string; entry: string; blob: string; bundle: string; configDir: string; listeners: string[] }
  | { kind: 'write-boot-config'; to: string; config: Omit<BootConfig, 'modules'>; modulesFrom: string }
  | { kind: 'write-json'; to: string; value: unknown }
  | { kind: 'pack-initramfs'; root: string; devices: DeviceNode[]; out: string; compression: Compression }
  | { kind: 'report-sizes'; files: { label: string; path: string }[] }
  | { kind: 'write-file'; to: string; text: string; mode?: number }
  /** Write a tree of text files (path → content) under dir. */
  | { kind: 'write-tree'; dir: string; files: Record<string, string> }
  /** A FAT32 file system image of sizeMiB holding a copy of `from` (mkfs.vfat -F 32, mcopy). */
  | { kind: 'make-vfat'; out: string; sizeMiB: number; label: string; hiddenSectors: number; from: string }
  /**
   * An ext4 file system image of sizeMiB holding a copy of `from` (mke2fs -d). `readOnly`:
   * one that is only ever mounted read-only (no journal, no blocks reserved for root, no
   * room kept for growing), every file owned by root.
   */
  | { kind: 'make-ext4'; out: string; sizeMiB: number; label: string; from: string; readOnly?: boolean }
  /** A symbolic link at `path` pointing to `target` (as the guest resolves it). */
  | { kind: 'symlink'; path: string; target: string }
  /** A sparse file of totalBytes with an MBR partition table (sfdisk script). */
  | { kind: 'partition'; out: string; totalBytes: number; script: string }
  /** dd `from` into `into` at offsetBytes, without truncating. */
  | { kind: 'place'; from: string; into: string; offsetBytes: number }
  /**
   * The image to download: `from` packed with zstd into `to` (runner.ts packImage), and a
   * `sha256sum -c` file for it at `sha256File`.
   */
  | { kind: 'compress-image'; from: string; to: string; sha256File: string };

/** One line per action, for dry runs and golden tests. */
export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'mkdir': return `mkdir ${a.path}`;
    case 'clean': return `clean ${a.path}`;
    case 'apt-sources': return `apt-sources ${a.root} (${a.architecture}): ${a.sources.join(' | ')}`;
    case 'fetch-deb': return `fetch-deb ${a.package} -> ${a.dir}${a.aptRoot ? ` (apt ${a.aptRoot})` : ''}`;
    case 'extract-deb': return `extract-deb ${a.dir}/*.deb -> ${a.dest}`;
    case 'fetch-npm': return `fetch-npm ${a.spec} -> ${a.dir}`;
    case 'extract-tgz': return `extract-tgz ${a.dir}/*.tgz -> ${a.dest}`;
    case 'copy': return `copy ${a.from} -> ${a.to} (mode ${a.mode.toString(8)})`;
    case 'strip': return `strip (${a.tool}) ${a.from} -> ${a.to}`;
    case 'trim-icu': return `trim-icu ${a.from} -> ${a.to} (ICU data: root + ${a.languages.join(', ')})`;
    case 'cut-icu-tail': return `cut-icu-tail ${a.file} (the trimmed ICU data's zeroed tail leaves the file)`;
    case 'extract-vmlinux': return `extract-vmlinux ${a.from} -> ${a.to}`;
    case 'resolve-modules': return `resolve-modules ${a.wanted.join(',')} from ${a.tree} -> ${a.destDir} (order in ${a.orderFile}${a.listFile ? ` and ${a.listFile}` : ''}${a.omitFrom ? `; without those in ${a.omitFrom}` : ''})`;
    case 'collect-libs': return `collect-libs for ${a.program} from ${a.libDirs.join(':')} -> ${a.root}${a.guestLibDir}`;
    case 'bundle': return `bundle ${a.entry} -> ${a.out}${a.banner ? ` (first line ${a.banner})` : ''}`;
    case 'write-boot-config': return `write-boot-config ${a.to} ${a.config.services ? `services=${a.config.services.map((s) => s.name).join(',')}` : `service=${a.config.service.name}`} network=${a.config.network.mode} data=${a.config.data?.device ?? 'none'} on-fatal=${a.config.onFatal}`;
    case 'service-snapshot': return `service-snapshot ${a.entry} -> ${a.root}${a.blob} (checked: ${a.bundle} sealed, listeners ${a.listeners.join(',')} on loopback)`;
    case 'write-json': return `write-json ${a.to}`;
    case 'pack-initramfs': return `pack-initramfs ${a.root} + ${a.devices.map((d) => `${d.path}(${d.major},${d.minor})`).join(' ')} -> ${a.out} (${a.compression})`;
    case 'report-sizes': return `report-sizes ${a.files.map((f) => f.label).join(', ')}`;
    case 'write-file': return `write-file ${a.to}${a.mode !== undefined ? ` (mode ${a.mode.toString(8)})` : ''} (${a.text.split('\n').filter(Boolean).join('; ')})`;
    case 'write-tree': return `write-tree ${a.dir}: ${Object.keys(a.files).sort().join(', ')}`;
    case 'make-vfat': return `make-vfat ${a.out} (${a.sizeMiB} MiB, label ${a.label}, hidden ${a.hiddenSectors}) from ${a.from}`;
    case 'make-ext4': return `make-ext4 ${a.out} (${a.sizeMiB} MiB, label ${a.label}${a.readOnly ? ', read-only: no journal, owned by root' : ''}) from ${a.from}`;
    case 'symlink': return `symlink ${a.path} -> ${a.target}`;
    case 'partition': return `partition ${a.out} (${a.totalBytes} bytes): ${a.script.split('\n').filter((l) => l.startsWith('start=')).join('; ')}`;
    case 'place': return `place ${a.from} -> ${a.into} @ ${a.offsetBytes}`;
    case 'compress-image': return `compress-image ${a.from} -> ${a.to} (zstd level 12, 128 MiB long-distance window, content size and checksum in the frame; sha256 in ${a.sha256File})`;
  }
}
