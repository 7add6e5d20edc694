/**
 * The rpi target's command: `kith image build --target rpi` → buildRpiImage. A thin shell:
 * it reads which services exist (platform/services.ts through installer/seed.ts), their
 * listeners and default config, resolves the kernel package, and hands it all to the pure
 * planner (plan.ts); the shared runner (platform/image/runner.ts) does the work.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptOptions, dryRun, run, type Say } from '../image/runner.ts';
import { DEFAULT_LANGUAGES, type Compression } from '../image/plan.ts';
import type { NetworkConfig } from '../boot/boot-config.ts';
import { kernelPackageFromDepends } from '../kvm/qemu.ts';
import { defaultConfigFiles, loadDefinitions } from '../../installer/seed.ts';
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
  dataMiB?: number;
  hostname?: string;
  /** Test images only: PID 1's debug port (list children, kill one). */
  debugPort?: number;
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
  const meta = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as { image: string; partitions: BuiltRpiImage['partitions']; kernel: string; initrd: string; services: string[] };
  return { dir, image: join(dir, meta.image), partitions: meta.partitions, kernel: meta.kernel, initrd: meta.initrd, services: meta.services };
}

export async function buildRpiImage(o: BuildRpiImageOptions = {}): Promise<BuiltRpiImage> {
  const out = resolve(o.out ?? join(REPO, 'build/rpi/image'));
  const dist = resolve(o.distDir ?? join(REPO, 'dist'));
  const cache = resolve(o.cache ?? join(REPO, 'build/cache'));
  const aptRoot = resolve(o.aptRoot ?? join(REPO, 'build/rpi/apt'));
  const defs = await loadDefinitions(REPO);
  const services: RpiService[] = defs.map((d) => ({
    name: d.name,
    bundle: join(dist, `${d.name}.mjs`),
    ports: { ...Object.fromEntries(Object.entries(d.listeners).map(([n, l]) => [n, l.port])), ...o.ports?.[d.name] },
    ...(d.writableConfig ? { writableConfig: true } : {}),
    ...(d.needs ? { needs: { configWrite: d.needs.configWrite ?? [], ...(d.needs.store ? { store: d.needs.store } : {}), ...(d.needs.ownerPassword ? { ownerPassword: true } : {}) } } : {}),
  }));
  if (!o.dryRun) for (const s of services) if (!existsSync(s.bundle)) throw new Error(`no bundle for ${s.name} at ${s.bundle}: build the services first (kith build)`);
  const inputs = {
    out, cache, aptRoot, aptSources: DEBIAN_ARM64_SOURCES,
    kernelPackage: o.kernelPackage ?? '',
    nodeVersion: o.nodeVersion ?? process.versions.node,
    bootEntry: join(REPO, 'platform/boot/init.ts'),
    services,
    configFiles: defaultConfigFiles(defs),
    modules: o.modules ?? RPI_DEFAULT_MODULES,
    network: o.network ?? { mode: 'dhcp' as const },
    bootMiB: o.bootMiB ?? 256,
    dataMiB: o.dataMiB ?? 256,
    compression: o.compression ?? 'zstd',
    languages: o.languages ?? DEFAULT_LANGUAGES,
    hostname: o.hostname ?? 'kith',
    debugPort: o.debugPort,
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
    return { dir: out, image: join(out, 'kith-rpi.img'), partitions: [], kernel: '', initrd: '', services: services.map((s) => s.name) };
  }
  await run(plan, o.say);
  return loadRpiImage(out);
}

export const RPI_HELP = `Usage: node platform/rpi/cli.ts [options]

Builds the Raspberry Pi SD-card image (Pi 3 / 4 / 400 / Zero 2 W, arm64) with every service
in dist/ (build them first: node installer/kith.ts build). Prints each step and each part's
size; the image is build/rpi/image/kith-rpi.img unless --out says otherwise.

Options:
  --out DIR         output folder (default build/rpi/image)
  --boot-mib N      FAT32 boot partition size (default 256, at least 128)
  --data-mib N      ext4 data partition size (default 256, at least 64)
  --dry-run         print the plan, do nothing
  -h, --help        this help
`;

if (import.meta.main) {
  const { parseArgs } = await import('node:util');
  let values;
  try {
    ({ values } = parseArgs({ options: { out: { type: 'string' }, 'boot-mib': { type: 'string' }, 'data-mib': { type: 'string' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${RPI_HELP}`);
    process.exit(64);
  }
  if (values.help) {
    process.stdout.write(RPI_HELP);
    process.exit(0);
  }
  // The boot files take ~95 MB; FAT32 with 1 KiB clusters needs > 64 MiB anyway.
  const mib = (v: string | undefined, name: string, min: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > 65536) {
      process.stderr.write(`--${name} ${v}: a whole number of MiB from ${min} to 65536\n`);
      process.exit(64);
    }
    return n;
  };
  const dry = values['dry-run'] === true;
  const img = await buildRpiImage({ dryRun: dry, out: values.out, bootMiB: mib(values['boot-mib'], 'boot-mib', 128), dataMiB: mib(values['data-mib'], 'data-mib', 64) });
  if (!dry) process.stdout.write(`\n${img.image}\n`);
}
