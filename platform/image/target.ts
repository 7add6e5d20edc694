/**
 * An image target, as functoria's TARGET: one interface, one module per target
 * (platform/kvm/target.ts, platform/rpi/target.ts). Each plans from inputs (pure, golden
 * tested), builds by running its plan (platform/image/runner.ts), and boots a built image
 * under qemu for tests and `kith vm run`. `kith image build` is the only command entry.
 */
import type { Compression } from './plan.ts';
import type { Say } from './runner.ts';

export interface ImageBuildRequest {
  /** The one service of a per-service image (kvm); every service otherwise. */
  service?: string;
  /** A config tree to bake in (kvm: read-only at /kith/config). */
  configDir?: string;
  out?: string;
  compression?: Compression;
  languages?: string[];
  /** kvm: mount a persistent data disk on /data. */
  dataDisk?: boolean;
  dryRun?: boolean;
  say?: Say;
}

export interface BuiltArtifact {
  /** The image folder (image.json inside). */
  dir: string;
  /** What to tell the owner: where the image is and how to use it. */
  summary: string[];
}

export interface ImageTarget<Inputs = unknown, Boot = unknown, Running = unknown> {
  name: 'kvm' | 'rpi';
  /** One line for --help. */
  description: string;
  /** One service per image (--service), or every service. */
  perService: boolean;
  /** Pure: the plan for fully resolved inputs. */
  plan(inputs: Inputs): import('./plan.ts').Action[];
  /** Resolve inputs on this host, plan, and run the plan (or print it with dryRun). */
  build(request: ImageBuildRequest): Promise<BuiltArtifact>;
  /** Boot a built image under qemu. */
  boot(options: Boot): Promise<Running> | Running;
}
