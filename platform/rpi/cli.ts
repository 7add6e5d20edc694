/**
 * The rpi target's build: `kith image build --target rpi` → buildRpiImage. A thin shell:
 * it reads which services exist (platform/services.ts), their
 * listeners and default config, resolves the kernel package, and hands it all to the pure
 * planner (plan.ts); the shared runner (platform/image/runner.ts) does the work.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptOptions, dryRun, run, type Say } from '../image/runner.ts';
import { DEFAULT_LANGUAGES, type Compression } from '../image/plan.ts';
import type { BootConfig, NetworkConfig } from '../boot/boot-config.ts';
import { kernelPackageFromDepends } from '../kvm/qemu.ts';
import { defaultConfigFiles, loadDefinitions } from '../services.ts';
import { REGISTRY_BUNDLE } from '../seal.ts';
import { DEBIAN_ARM64_SOURCES, planRpiImage, RPI_DEFAULT_MODULES, type RpiService } from './plan.ts';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface BuildRpiImageOptions {
  /** Output folder; default build/rpi/image. */
  out?: string;
  /** Folder holding <service>.mjs bundles; default dist/. */
  distDir?: string;
  /** Listener ports per service, overriding the declared appliance defaults. */
  ports?: Record<string, Record<string, number>>;
  network?: NetworkConfig;
  modules?: string[];
  compression?: Compression;
  /** ICU locale data to keep in Node (default ['en']; ['all'] keeps Node's full data). */
  languages?: string[];
  bootMiB?: number;
  /** The read-only root partition (Node, the bundles); default 192. */
  rootMiB?: number;
  dataMiB?: number;
  hostname?: string;
  /** Test images only: PID 1's debug port (list children, kill one). */
  debugPort?: number;
  /** boot.json's NTP servers and pool (default: pool.ntp.org when DHCP names none); tests give their own or none. */
  clock?: BootConfig['clock'];
  cache?: string;
  aptRoot?: string;
  kernelPackage?: string;
  nodeVersion?: string;
  dryRun?: boolean;
  say?: Say;
}

export interface BuiltRpiImage {
  dir: string;
  /** The SD-card image. */
  image: string;
  /** The same packed with zstd, to download or share, and its `sha256sum -c` file. */
  download: string;
  sha256File: string;
  partitions: { number: number; type: string; startSector: number; sectors: number; offsetBytes: number }[];
  kernel: string;
  initrd: string;
  services: string[];
}

/** Ask the private arm64 apt config which versioned package linux-image-arm64 pulls in. */
function resolveKernelPackage(aptRoot: string): string {
  const r = spawnSync('apt-cache', [...aptOptions(aptRoot, 'arm64'), 'depends', 'linux-image-arm64'], { encoding: 'utf8' });
  const pkg = kernelPackageFromDepends(r.stdout ?? '');
  if (!pkg) throw new Error(`cannot find the kernel package behind linux-image-arm64 in ${aptRoot} (run the build once without kernelPackage after apt-sources)`);
  return pkg;
}

export function loadRpiImage(dir: string): BuiltRpiImage {
  const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { image: string; download: string; sha256File: string; partitions: BuiltRpiImage['partitions']; kernel: string; initrd: string; services: string[] };
  return { dir, image: join(dir, meta.image), download: join(dir, meta.download), sha256File: join(dir, meta.sha256File), partitions: meta.partitions, kernel: meta.kernel, initrd: meta.initrd, services: meta.services };
}

export async function buildRpiImage(o: BuildRpiImageOptions = {}): Promise<BuiltRpiImage> {
  const out = resolve(o.out ?? join(REPO, 'build/rpi/image'));
  const dist = resolve(o.distDir ?? join(REPO, 'dist'));
  const cache = resolve(o.cache ?? join(REPO, 'build/cache'));
  const aptRoot = resolve(o.aptRoot ?? join(REPO, 'build/rpi/apt'));
  const defs = await loadDefinitions(REPO);
  const services: RpiService[] = defs.map((d) => ({ descriptor: d, bundle: join(dist, `${d.name}.mjs`) }));
  const registry = join(dist, REGISTRY_BUNDLE);
  if (!o.dryRun) for (const f of [...services.map((s) => s.bundle), registry]) if (!existsSync(f)) throw new Error(`no ${f}: build the services first (kith build)`);
  const inputs = {
    out, cache, aptRoot, aptSources: DEBIAN_ARM64_SOURCES,
    kernelPackage: o.kernelPackage ?? '',
    nodeVersion: o.nodeVersion ?? process.versions.node,
    bootEntry: join(REPO, 'platform/boot/init.ts'),
    pkiEntry: join(REPO, 'platform/pki/pki-main.ts'),
    services,
    ...(o.ports ? { ports: o.ports } : {}),
    registry,
    configFiles: defaultConfigFiles(defs),
    modules: o.modules ?? RPI_DEFAULT_MODULES,
    network: o.network ?? { mode: 'dhcp' as const },
    bootMiB: o.bootMiB ?? 256,
    rootMiB: o.rootMiB ?? 192,
    dataMiB: o.dataMiB ?? 256,
    compression: o.compression ?? 'zstd',
    languages: o.languages ?? DEFAULT_LANGUAGES,
    hostname: o.hostname ?? 'kith',
    debugPort: o.debugPort,
    ...(o.clock ? { clock: o.clock } : {}),
  };
  if (!inputs.kernelPackage) {
    if (o.dryRun) inputs.kernelPackage = 'linux-image-VERSION-arm64';
    else {
      // The kernel's versioned name comes from the private apt lists: set them up first.
      await run(planRpiImage({ ...inputs, kernelPackage: 'linux-image-arm64' }).filter((a) => a.kind === 'apt-sources'), () => {});
      inputs.kernelPackage = resolveKernelPackage(aptRoot);
    }
  }
  const plan = planRpiImage(inputs);
  if (o.dryRun) {
    dryRun(plan, o.say);
    return { dir: out, image: join(out, 'kith-rpi.img'), download: join(out, 'kith-rpi.img.zst'), sha256File: join(out, 'kith-rpi.img.zst.sha256'), partitions: [], kernel: '', initrd: '', services: services.map((s) => s.descriptor.name) };
  }
  await run(plan, o.say);
  return loadRpiImage(out);
}
