/**
 * The kvm target's commands: build an image for one service, and run an image under qemu.
 * `kith image build --target kvm --service NAME` → buildKvmImage;
 * `kith vm run NAME` → runVm. Both are thin shells over the pure planner (plan.ts) and
 * qemu argv builder (qemu.ts).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dryRun, run, type Say } from '../image/runner.ts';
import { startQemuProcess, type QemuProcess } from '../image/qemu-process.ts';
import { DEFAULT_LANGUAGES, type Compression } from '../image/plan.ts';
import type { BootConfig, NetworkConfig } from '../boot/boot-config.ts';
import { KVM_DEFAULT_MODULES, KVM_NET_MODULES, planKvmImage, type KvmCompanion } from './plan.ts';
import { kvmCompanions, type ServiceDescriptor } from '../appliance.ts';
import { ownerCmdlineArg } from '../boot/boot-config.ts';
import { loadDefinitions } from '../services.ts';
import { REGISTRY_BUNDLE } from '../seal.ts';
import { kernelPackageFromDepends, qemuArgs, type Forward } from './qemu.ts';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface BuildKvmImageOptions {
  service: string;
  /** Output folder; default build/kvm/<service>. */
  out?: string;
  /** Default dist/<service>.mjs. */
  serviceBundle?: string;
  configDir?: string;
  network?: NetworkConfig;
  data?: BootConfig['data'];
  onFatal?: BootConfig['onFatal'];
  compression?: Compression;
  /** ICU locale data to keep in Node (default ['en']; ['all'] keeps Node's full data). */
  languages?: string[];
  /** The service's declaration; default: services/<service>/main.ts's (a service outside services/ runs on its declared defaults). */
  descriptor?: ServiceDescriptor;
  /**
   * Ship a V8 startup snapshot of the service (from serviceEntry, default
   * services/<service>/main.ts), when this host runs the image's Node (x86_64, the same version).
   */
  snapshot?: boolean;
  serviceEntry?: string;
  /**
   * The service by itself, without the services its links reach (those links then stay
   * unprovisioned): for measuring one service's boot (bench/boot).
   */
  alone?: boolean;
  modules?: string[];
  cache?: string;
  kernelPackage?: string;
  nodeVersion?: string;
  dryRun?: boolean;
  say?: Say;
}

export interface BuiltImage {
  dir: string;
  kernel: string;
  initrd: string;
  append: string;
  /** Built to mount a data disk (/dev/vda, ext4) on /data; otherwise /data is in memory. */
  dataDisk: boolean;
}

function resolveKernelPackage(): string {
  const r = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const pkg = kernelPackageFromDepends(r.stdout ?? '');
  if (!pkg) throw new Error('cannot find the kernel package behind linux-image-amd64 (apt-get update?)');
  return pkg;
}

/** Read an image folder's image.json. */
export function loadImage(dir: string): BuiltImage {
  const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { kernel: string; initrd: string; append: string; dataDisk?: boolean };
  return { dir, kernel: join(dir, meta.kernel), initrd: join(dir, meta.initrd), append: meta.append, dataDisk: meta.dataDisk === true };
}

export async function buildKvmImage(o: BuildKvmImageOptions): Promise<BuiltImage> {
  const out = resolve(o.out ?? join(REPO, 'build/kvm', o.service));
  const serviceBundle = resolve(o.serviceBundle ?? join(REPO, 'dist', `${o.service}.mjs`));
  const serviceEntry = resolve(o.serviceEntry ?? join(REPO, 'services', o.service, 'main.ts'));
  if (!o.dryRun && !existsSync(serviceBundle)) throw new Error(`no bundle for ${o.service} at ${serviceBundle}: build the service first (kith build)`);
  const definitions = await loadDefinitions(REPO);
  const descriptor = o.descriptor ?? definitions.find((d) => d.name === o.service) ?? { name: o.service, description: o.service, listeners: {} };
  // The services its links lead to (storage for the calendar's store), each from its own bundle.
  const companions: KvmCompanion[] = o.alone ? [] : kvmCompanions([descriptor, ...definitions.filter((d) => d.name !== descriptor.name)], descriptor.name).map((d) => ({
    descriptor: d, bundle: join(dirname(serviceBundle), `${d.name}.mjs`), entry: join(REPO, 'services', d.name, 'main.ts'),
  }));
  const missing = companions.filter((c) => !existsSync(c.bundle));
  if (!o.dryRun && missing.length > 0) throw new Error(`${o.service} needs ${missing.map((c) => c.descriptor.name).join(', ')} in its image, and there is no bundle at ${missing.map((c) => c.bundle).join(', ')}: build them first (kith build)`);
  const hostNode = process.arch === 'x64' && (o.nodeVersion ?? process.versions.node) === process.versions.node;
  const plan = planKvmImage({
    service: descriptor,
    serviceBundle,
    companions,
    registry: join(dirname(serviceBundle), REGISTRY_BUNDLE),
    configDir: o.configDir && resolve(o.configDir),
    bootEntry: join(REPO, 'platform/boot/init.ts'),
    out,
    cache: resolve(o.cache ?? join(REPO, 'build/cache')),
    kernelPackage: o.kernelPackage ?? resolveKernelPackage(),
    nodeVersion: o.nodeVersion ?? process.versions.node,
    // Without a data disk, /data lives in RAM: no block driver or file system to load.
    modules: o.modules ?? (o.data ? KVM_DEFAULT_MODULES : KVM_NET_MODULES),
    network: o.network ?? { mode: 'dhcp' },
    data: o.data,
    onFatal: o.onFatal ?? 'reboot',
    compression: o.compression ?? 'zstd',
    languages: o.languages ?? DEFAULT_LANGUAGES,
    ...(o.snapshot && hostNode && [serviceEntry, ...companions.map((c) => c.entry)].every((e) => existsSync(e)) ? { snapshot: { entry: serviceEntry, listeners: Object.keys(descriptor.listeners) } } : {}),
  });
  if (o.dryRun) dryRun(plan, o.say);
  else await run(plan, o.say);
  return o.dryRun ? { dir: out, kernel: join(out, 'vmlinux'), initrd: '', append: '', dataDisk: o.data !== undefined } : loadImage(out);
}

/**
 * A new data disk for a kvm image: a sparse file holding an empty ext4 file system
 * (labelled kith-data, 4 KiB blocks), so the first boot finds /data ready.
 */
export function createDataDisk(file: string, sizeMiB: number): void {
  if (existsSync(file)) throw new Error(`${file} exists already; it would be erased`);
  writeFileSync(file, '');
  truncateSync(file, sizeMiB * 2 ** 20);
  const r = spawnSync('mke2fs', ['-q', '-t', 'ext4', '-b', '4096', '-L', 'kith-data', '-F', file], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(file, { force: true });
    throw new Error(`mke2fs ${file}: ${r.error?.message ?? r.stderr.trim()} (install e2fsprogs)`);
  }
}

export interface RunVmOptions {
  /** An image folder (with image.json) or a BuiltImage. */
  image: string | BuiltImage;
  forwards: Forward[];
  memoryMiB?: number;
  cpus?: number;
  dataDisk?: string;
  /** 'auto' uses KVM when /dev/kvm is usable, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /** Where console output goes besides the buffer (e.g. process.stdout). */
  echo?: NodeJS.WritableStream;
  /** The owner token's SHA-256, for PID 1 to give every service (kernel command line `kith.owner=`). */
  ownerTokenSha256?: string;
}

export interface RunningVm extends QemuProcess {
  accel: 'kvm' | 'tcg';
}

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The initramfs qemu hands the guest: a decompressed copy of the image's, made once on the
 * host (beside it, redone when the image is newer). The kernel would otherwise inflate it
 * itself — 1.7 s of a 10 s boot under TCG, where the host does it natively in 0.2 s. The
 * compressed file stays the image; the copy is a boot cache, as vmlinux is for the bzImage.
 */
export function bootInitrd(initrd: string): string {
  const m = /^(.*)\.(zst|gz)$/.exec(initrd);
  if (!m) return initrd;
  const out = m[1]!;
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(initrd).mtimeMs) return out;
  const packed = readFileSync(initrd);
  const data = m[2] === 'zst' ? zstdDecompressSync(packed) : gunzipSync(packed);
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, out);
  } catch {
    // A read-only image folder: boot the compressed file, only slower.
    rmSync(tmp, { force: true });
    return initrd;
  }
  return out;
}

function startQemu(img: BuiltImage, o: RunVmOptions, accel: 'kvm' | 'tcg'): RunningVm {
  const args = qemuArgs({ kernel: img.kernel, initrd: bootInitrd(img.initrd), append: o.ownerTokenSha256 ? `${img.append} ${ownerCmdlineArg(o.ownerTokenSha256)}` : img.append, accel, memoryMiB: o.memoryMiB ?? 1024, cpus: o.cpus ?? 1, forwards: o.forwards, dataDisk: o.dataDisk });
  return { ...startQemuProcess('qemu-system-x86_64', args, o.echo), accel };
}

/**
 * Boot an image. With accel 'auto', KVM is tried first when /dev/kvm is there; nested
 * KVM can accept the VM and still fail to run it, so a qemu that dies before PID 1's
 * first line is retried under TCG.
 */
export async function runVm(o: RunVmOptions): Promise<RunningVm> {
  const img = typeof o.image === 'string' ? loadImage(o.image) : o.image;
  const want = o.accel ?? 'auto';
  if (want === 'tcg' || (want === 'auto' && !kvmUsable())) return startQemu(img, o, 'tcg');
  const vm = startQemu(img, o, 'kvm');
  if (want === 'kvm') return vm;
  // Nested KVM can accept the VM and then abort seconds later (an MSR it cannot set), or
  // hang before the guest prints anything. Under KVM PID 1 speaks within a couple of
  // seconds; a VM that has died, or is still silent after 20 s, is booted again under TCG.
  const spoke = await new Promise<boolean>((r) => {
    const t = setTimeout(() => r(false), 20_000);
    vm.child.once('exit', () => { clearTimeout(t); r(false); });
    vm.waitFor(/kith-init pid=1/, 20_000).then(() => { clearTimeout(t); r(true); }, () => {});
  });
  if (spoke) return vm;
  await vm.stop();
  return startQemu(img, o, 'tcg');
}
