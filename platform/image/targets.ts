/** Every image target by name: what `kith image build --target NAME` chooses from. */
import { kvmTarget } from '../kvm/target.ts';
import { rpiTarget } from '../rpi/target.ts';
import type { ImageTarget } from './target.ts';

export const TARGETS: Readonly<Record<string, ImageTarget<never, never, unknown>>> = { kvm: kvmTarget as ImageTarget<never, never, unknown>, rpi: rpiTarget as ImageTarget<never, never, unknown> };
