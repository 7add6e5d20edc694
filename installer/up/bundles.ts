/**
 * The two processes `kith up` leaves running besides the services, each one CommonJS bundle
 * under dist/ (platform/build/process-bundle.ts), rebuilt whenever their sources changed:
 * the supervisor (installer/up/main.ts) and the pairing process (platform/pki/pki-main.ts,
 * the appliance's, also shipped in images as /kith/pki.cjs).
 */
import * as path from 'node:path';
import { ensureProcessBundle, type ProcessBundle } from '../../platform/build/process-bundle.ts';
import { repoRoot } from '../paths.ts';

export const UP_BUNDLE = 'kith-up.cjs';
export const PKI_BUNDLE = 'kith-pki.cjs';

/**
 * V8 flags of the supervisor, which is not CPU-bound: a 1 MB young generation, and no
 * optimizing compilers (--lite-mode), whose code in the Node binary it then never maps
 * (measured: docs/decisions.md, footprint levers).
 */
export const SUPERVISOR_NODE_FLAGS = ['--max-semi-space-size=1', '--lite-mode'];
/**
 * The pairing process's: the young generation only (pairing's CPace math is JavaScript), and
 * gc for its memory governor (platform/memory-governor.ts), as on the appliance.
 */
export const PKI_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'];

export function buildUpBundles(out = path.join(repoRoot, 'dist')): Promise<{ up: ProcessBundle; pki: ProcessBundle }> {
  return Promise.all([
    ensureProcessBundle(repoRoot, 'installer/up/main.ts', path.join(out, UP_BUNDLE)),
    ensureProcessBundle(repoRoot, 'platform/pki/pki-main.ts', path.join(out, PKI_BUNDLE)),
  ]).then(([up, pki]) => ({ up, pki }));
}
