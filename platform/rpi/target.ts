/** The rpi target (platform/image/target.ts): one SD-card image with every service, booted under qemu's arm64 virt machine in tests. */
import { relative } from 'node:path';
import type { ImageTarget } from '../image/target.ts';
import { buildRpiImage } from './cli.ts';
import { planRpiImage, type RpiPlanInputs } from './plan.ts';
import { bootVirt, type VirtOptions, type VirtVm } from './qemu.ts';

export const rpiTarget: ImageTarget<RpiPlanInputs, VirtOptions & { echo?: NodeJS.WritableStream }, VirtVm> = {
  name: 'rpi',
  description: 'an SD-card image (arm64) for Raspberry Pi 3 / 4 / 400 / Zero 2 W, running every service; write it to a card with kith flash',
  perService: false,
  plan: planRpiImage,
  async build(r) {
    const img = await buildRpiImage({
      ...(r.out ? { out: r.out } : {}),
      ...(r.compression ? { compression: r.compression } : {}),
      ...(r.languages ? { languages: r.languages } : {}),
      dryRun: r.dryRun === true,
      ...(r.say ? { say: r.say } : {}),
    });
    return {
      dir: img.dir,
      summary: [
        `SD-card image: ${relative(process.cwd(), img.image)} (services: ${img.services.join(', ')})`,
        `to download or share: ${relative(process.cwd(), img.download)} (zstd), checksum in ${relative(process.cwd(), img.sha256File)}`,
        'write it to a card: kith flash DEVICE (or kith flash IMAGE.zst DEVICE)',
      ],
    };
  },
  boot: bootVirt,
};
