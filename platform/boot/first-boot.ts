/**
 * First boot: PID 1 takes the owner's seed (owner-seed.ts) from the boot partition and
 * applies it, in steps that each check whether they are done, so a power cut at any moment
 * is finished cleanly on the next boot and a finished first boot is never redone:
 *
 *   1. adopt    — no seed.json on the data partition yet: read kith-seed.yaml from the boot
 *                 partition and validate it. A bad seed is logged (file, line, field — never
 *                 a value) and the box boots with its defaults: never a boot loop. A good one
 *                 is kept on the data partition (the pairing secret 0600 apart, the owner's key,
 *                 then seed.json last: its presence means "adopted").
 *   2. hostname — every boot: the seed's host name, at once.
 *   3. request  — the config part (home domain, host name in dns/local.yaml) as a request
 *                 file in storage's data folder, unless storage has done it or it is there;
 *                 storage commits it as "first boot" when it starts
 *                 (services/storage/config/first-boot.ts).
 *   4. scrub    — the seed file is removed from the boot partition, but only the one that was
 *                 adopted (same sha256): it holds the secret.
 *
 * The machine is reached through FirstBootIo, so the steps are tested with injected
 * failures at every point (first-boot.test.ts); init.ts gives it the real mounts and files.
 */
import { join } from 'node:path';
import { configEdits, FIRST_BOOT_DONE, FIRST_BOOT_REQUEST, publicPart, sha256, SEED_FILE, type FirstBootRequest } from './seed-request.ts';
import type { OwnerSeed } from './owner-seed.ts';
import { formatIssue, type ConfigResult } from '../config/spec.ts';

/** owner-seed.ts parseSeed, passed in: PID 1 loads it only when there is a seed to adopt (first-boot-io.ts). */
export type SeedParser = (text: string, file: string) => ConfigResult<OwnerSeed>;

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

export interface FirstBootIo {
  /** kith-seed.yaml on the boot partition: its text, or undefined when there is none. Throws when the partition cannot be read. */
  readBootSeed(): string | undefined;
  /** Remove kith-seed.yaml from the boot partition (and make it so on disk). */
  removeBootSeed(): void;
  /** A file on the data partition, or undefined. */
  readFile(path: string): string | undefined;
  /** Written, synced, renamed (platform/durable.ts). */
  writeDurable(path: string, text: string, mode?: number): void;
  setHostname(name: string): number;
  log: Log;
}

export interface FirstBootPaths {
  /** PID 1's own folder on the data partition, e.g. /data/kith. */
  stateDir: string;
  /** Storage's data folder, where the config request goes (no storage: no config part). */
  storageDataDir?: string;
}

/** What is kept on the data partition once a seed is adopted (no secret in it). */
export interface AdoptedSeed {
  seed: Omit<OwnerSeed, 'pairingSecret'>;
  /** sha256 of the seed file on the boot partition. */
  sha256: string;
  hasPairingSecret: boolean;
}

export const ADOPTED_FILE = 'seed.json';
export const PAIRING_SECRET_FILE = 'pairing-secret';
export const OWNER_KEY_FILE = 'owner-key.pub';

export type Step = 'adopt' | 'hostname' | 'request' | 'scrub';

export interface FirstBootOutcome {
  adopted?: AdoptedSeed;
  /** Steps that failed this boot (each is retried next boot). */
  failed: Step[];
  /** Steps that did something this boot. */
  did: Step[];
}

function readAdopted(io: FirstBootIo, paths: FirstBootPaths): AdoptedSeed | undefined {
  const text = io.readFile(join(paths.stateDir, ADOPTED_FILE));
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as AdoptedSeed;
    return typeof v.sha256 === 'string' && typeof v.seed === 'object' && v.seed !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

export function runFirstBoot(io: FirstBootIo, paths: FirstBootPaths, parseSeed: SeedParser): FirstBootOutcome {
  const out: FirstBootOutcome = { failed: [], did: [] };
  const step = (name: Step, f: () => boolean | void) => {
    try {
      if (f() === true) out.did.push(name);
    } catch (err) {
      out.failed.push(name);
      io.log('first boot step failed; it is retried at the next boot', { step: name, error: (err as Error).message });
    }
  };

  // 1. adopt
  let adopted = readAdopted(io, paths);
  let bootText: string | undefined;
  let bootRead = false;
  const readBoot = () => {
    if (!bootRead) { bootText = io.readBootSeed(); bootRead = true; }
    return bootText;
  };
  step('adopt', () => {
    if (adopted) return false;
    const text = readBoot();
    if (text === undefined) return false;
    const parsed = parseSeed(text, SEED_FILE);
    if (!parsed.ok) {
      for (const issue of parsed.issues) io.log('owner seed refused; booting with the defaults', { problem: formatIssue(issue) });
      return false;
    }
    const seed = parsed.value;
    if (seed.pairingSecret) io.writeDurable(join(paths.stateDir, PAIRING_SECRET_FILE), seed.pairingSecret + '\n', 0o600);
    if (seed.ownerKey) io.writeDurable(join(paths.stateDir, OWNER_KEY_FILE), seed.ownerKey + '\n', 0o644);
    const a: AdoptedSeed = { seed: publicPart(seed), sha256: sha256(text), hasPairingSecret: seed.pairingSecret !== undefined };
    io.writeDurable(join(paths.stateDir, ADOPTED_FILE), JSON.stringify(a, null, 2) + '\n', 0o644);
    adopted = a;
    io.log('owner seed adopted', { hostname: a.seed.hostname ?? '-', domain: a.seed.domain ?? '-', timezone: a.seed.timezone ?? '-', ownerKey: a.seed.ownerKey ? 'yes' : 'no', pairingSecret: a.hasPairingSecret ? 'kept' : 'none' });
    return true;
  });
  if (!adopted) return out;
  out.adopted = adopted;
  const a = adopted;

  // 2. hostname
  step('hostname', () => {
    if (!a.seed.hostname) return false;
    const errno = io.setHostname(a.seed.hostname);
    if (errno !== 0) throw new Error(`sethostname: errno ${errno}`);
    io.log('hostname set', { hostname: a.seed.hostname, from: 'owner seed' });
    return true;
  });

  // 3. request
  step('request', () => {
    const edits = configEdits(a.seed);
    if (edits.length === 0 || !paths.storageDataDir) return false;
    const done = io.readFile(join(paths.storageDataDir, FIRST_BOOT_DONE));
    if (done !== undefined && done.includes(a.sha256)) return false;
    const pending = io.readFile(join(paths.storageDataDir, FIRST_BOOT_REQUEST));
    if (pending !== undefined && pending.includes(a.sha256)) return false;
    const req: FirstBootRequest = { version: 1, seed: a.sha256, edits };
    io.writeDurable(join(paths.storageDataDir, FIRST_BOOT_REQUEST), JSON.stringify(req, null, 2) + '\n', 0o644);
    io.log('first boot config handed to storage', { files: edits.map((e) => e.file).join(',') });
    return true;
  });

  // 4. scrub
  step('scrub', () => {
    const text = readBoot();
    if (text === undefined) return false;
    if (sha256(text) !== a.sha256) {
      io.log('a seed on the boot partition is ignored: this box has had its first boot', { file: SEED_FILE });
      return false;
    }
    io.removeBootSeed();
    io.log('owner seed removed from the boot partition', { file: SEED_FILE });
    return true;
  });
  return out;
}
