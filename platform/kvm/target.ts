/** The kvm target (platform/image/target.ts): a VM image per service, booted by qemu-system-x86_64. */
import { relative } from 'node:path';
import type { ImageTarget } from '../image/target.ts';
import { buildKvmImage, runVm, type RunningVm, type RunVmOptions } from './cli.ts';
import { KVM_DATA_DISK, planKvmImage, type KvmPlanInputs } from './plan.ts';

export const kvmTarget: ImageTarget<KvmPlanInputs, RunVmOptions, RunningVm> = {
  name: 'kvm',
  description: 'a VM image for one service (x86_64); boot it with `kith vm run NAME`',
  perService: true,
  plan: planKvmImage,
  async build(r) {
    if (!r.service) throw new Error('the kvm target builds one service: name it (--service NAME)');
    const img = await buildKvmImage({
      service: r.service,
      ...(r.configDir ? { configDir: r.configDir } : {}),
      ...(r.out ? { out: r.out } : {}),
      ...(r.compression ? { compression: r.compression } : {}),
      ...(r.languages ? { languages: r.languages } : {}),
      ...(r.dataDisk ? { data: KVM_DATA_DISK } : {}), // buildKvmImage adds the disk's modules
      snapshot: true,
      dryRun: r.dryRun === true,
      ...(r.say ? { say: r.say } : {}),
    });
    return { dir: img.dir, summary: [`image: ${relative(process.cwd(), img.dir) || '.'}`, `boot it: kith vm run ${r.service}`] };
  },
  boot: runVm,
};
