/**
 * The root file system every image shares, as a plan: the folders PID 1 mounts on, Node 26
 * for the image's architecture (its ICU trimmed, stripped, cut) with its shared libraries,
 * the boot code as /init, the service bundles (and the config registry when a service
 * validates config), the config tree, boot.json, and the packed initramfs. The kvm and rpi
 * planners add what is theirs (kernel, firmware, disk layout) around it.
 */
import { join } from 'node:path';
import type { BootConfig } from '../boot/boot-config.ts';
import { REGISTRY_BUNDLE } from '../seal.ts';
import { PKI_BUNDLE } from '../pki/appliance-launch.ts';
import { INIT_SHEBANG, planNodeBinary, type Action, type Compression } from './plan.ts';

export interface RootfsInputs {
  root: string;
  arch: 'x64' | 'arm64';
  /** Download/extract folder of the node-linux-<arch> npm package. */
  nodeDir: string;
  nodeVersion: string;
  stripTool: string;
  /** Where the image's libc and friends come from on the host, and where they go. */
  libDirs: string[];
  guestLibDir: string;
  languages: string[];
  /** platform/boot/init.ts */
  bootEntry: string;
  /** platform/pki/pki-main.ts: the appliance's TLS and pairing process, shipped as /kith/pki.cjs. */
  pkiEntry?: string;
  /** Host paths of the service bundles, by service name (copied to /kith/<name>.mjs). */
  bundles: { name: string; from: string }[];
  /** The config registry bundle (dist/config-specs.mjs), shipped when a service validates config. */
  registry?: string;
  /** The config tree shipped read-only at /kith/config: a folder to copy, or files to write. */
  config: { dir: string } | { files: Record<string, string> } | undefined;
  /** Steps that need the tree in place but must come before boot.json (a startup snapshot). */
  beforeBootConfig?: Action[];
  bootConfig: Omit<BootConfig, 'modules'>;
  /** modules.json written by the kernel steps (the load order). */
  modulesFrom: string;
  /**
   * The tree packed as the initramfs (kvm). Without it the tree stays a folder for the
   * target to make a file system of (rpi: the read-only root partition).
   */
  initramfs?: { out: string; compression: Compression };
}

export const ROOT_DIRS = ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'data', 'etc', 'kith', 'lib/modules'];
export const CONSOLE_DEVICES = [{ path: 'dev/console', major: 5, minor: 1, mode: 0o600 }, { path: 'dev/null', major: 1, minor: 3, mode: 0o666 }];

/** The folders of the tree: first, so the kernel steps can put modules in place. */
export function planRootDirs(root: string): Action[] {
  return ROOT_DIRS.map((d) => ({ kind: 'mkdir' as const, path: join(root, d) }));
}

/** Node, libraries, /init, bundles, config, boot.json and, when asked, the initramfs. */
export function planRootfs(i: RootfsInputs): Action[] {
  const a: Action[] = [
    { kind: 'mkdir', path: i.nodeDir },
    { kind: 'fetch-npm', spec: `node-linux-${i.arch}@${i.nodeVersion}`, dir: i.nodeDir },
    { kind: 'extract-tgz', dir: i.nodeDir, dest: join(i.nodeDir, 'tree') },
    ...planNodeBinary({ nodeDir: i.nodeDir, stripTool: i.stripTool, to: join(i.root, 'bin/node'), languages: i.languages }),
    { kind: 'collect-libs', program: join(i.root, 'bin/node'), libDirs: i.libDirs, root: i.root, guestLibDir: i.guestLibDir },
    { kind: 'bundle', entry: i.bootEntry, out: join(i.root, 'init'), guestPath: '/init', banner: INIT_SHEBANG, mode: 0o755 },
  ];
  if (i.pkiEntry) a.push({ kind: 'bundle', entry: i.pkiEntry, out: join(i.root, PKI_BUNDLE.slice(1)), guestPath: PKI_BUNDLE, mode: 0o444 });
  for (const b of i.bundles) a.push({ kind: 'copy', from: b.from, to: join(i.root, 'kith', `${b.name}.mjs`), mode: 0o444 });
  if (i.registry) a.push({ kind: 'copy', from: i.registry, to: join(i.root, 'kith', REGISTRY_BUNDLE), mode: 0o444 });
  const configDir = join(i.root, 'kith/config');
  if (!i.config) a.push({ kind: 'mkdir', path: configDir });
  else if ('dir' in i.config) a.push({ kind: 'mkdir', path: configDir }, { kind: 'copy', from: join(i.config.dir, '*'), to: configDir, mode: 0o444 });
  else a.push({ kind: 'mkdir', path: configDir }, { kind: 'write-tree', dir: configDir, files: i.config.files });
  a.push(
    ...(i.beforeBootConfig ?? []),
    { kind: 'write-boot-config', to: join(i.root, 'kith/boot.json'), modulesFrom: i.modulesFrom, config: i.bootConfig },
  );
  if (i.initramfs) a.push({ kind: 'pack-initramfs', root: i.root, devices: CONSOLE_DEVICES, out: i.initramfs.out, compression: i.initramfs.compression });
  return a;
}
