/**
 * The parts of the owner's seed (owner-seed.ts) PID 1 uses on every boot — the file's
 * name, the config request it hands storage, its hash — with no zod and no yaml: those
 * two are most of PID 1's code, and are loaded only on the boot that finds a seed to
 * adopt (first-boot-io.ts), so they stay out of its memory on every other boot.
 */
import { createHash } from 'node:crypto';

export const SEED_FILE = 'kith-seed.yaml';

/** The seed without its secret: what may be kept, logged or shown. */
export function publicPart<S extends { pairingSecret?: string }>(seed: S): Omit<S, 'pairingSecret'> {
  const { pairingSecret: _secret, ...rest } = seed;
  return rest;
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** One edit storage makes in config.git: in YAML file `file`, set each key path (a list of keys, outermost first) to `value`. */
export interface ConfigEdit {
  file: string;
  set: { path: string[]; value: unknown }[];
}

/** The request PID 1 leaves in storage's data folder (first-boot.ts there applies it). */
export interface FirstBootRequest {
  version: 1;
  /** sha256 of the seed file it came from, to tell one first boot from another. */
  seed: string;
  edits: ConfigEdit[];
}

export const FIRST_BOOT_REQUEST = 'first-boot-request.json';
export const FIRST_BOOT_DONE = 'first-boot-done.json';

/**
 * The config part of a seed: the home domain becomes the zone of dns/local.yaml (the
 * appliance's local names, RFC 8375's home.arpa by default), and the host name one of its
 * names, pointing at the box itself.
 */
export function configEdits<S extends { domain?: string; hostname?: string }>(seed: S): ConfigEdit[] {
  const set: ConfigEdit['set'] = [];
  if (seed.domain) set.push({ path: ['zone'], value: seed.domain });
  if (seed.hostname) set.push({ path: ['hosts', seed.hostname], value: ['self'] });
  return set.length > 0 ? [{ file: 'dns/local.yaml', set }] : [];
}
