/**
 * The machine side of first boot (first-boot.ts): the FAT boot partition found by label,
 * mounted read-only to read the seed and read-write (synchronous) only to remove it, each
 * time briefly and unmounted after; files on the data partition written durably.
 */
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as libc from './libc.ts';
import { fatLabel, findByLabel, readAt } from './blockdev.ts';
import { ADOPTED_FILE, runFirstBoot, type FirstBootIo, type FirstBootOutcome, type Log, type SeedParser } from './first-boot.ts';
import { SEED_FILE } from './seed-request.ts';
import { writeFileDurableSync } from '../durable.ts';
import type { BootConfig, BootService } from './boot-config.ts';

const MOUNTPOINT = '/boot';

function withBootPartition<T>(device: string, writable: boolean, f: (dir: string) => T): T {
  const dev = device.startsWith('LABEL=') ? findByLabel(device.slice(6), '/sys/class/block', '/dev', fatLabel) : device;
  if (!dev || !existsSync(dev)) throw new Error(`no boot partition ${device}`);
  mkdirSync(MOUNTPOINT, { recursive: true });
  const flags = writable ? libc.MS_SYNCHRONOUS | libc.MS_NOATIME : libc.MS_RDONLY;
  const errno = libc.mount(dev, MOUNTPOINT, 'vfat', flags, '');
  if (errno !== 0) throw new Error(`mount ${dev} on ${MOUNTPOINT} (vfat): ${libc.strerror(errno)}`);
  try {
    return f(MOUNTPOINT);
  } finally {
    const u = libc.umount(MOUNTPOINT);
    if (u !== 0) throw new Error(`umount ${MOUNTPOINT}: ${libc.strerror(u)}`);
  }
}

export function bootFirstBootIo(device: string, log: Log): FirstBootIo {
  return {
    readBootSeed: () => withBootPartition(device, false, (dir) => {
      const p = join(dir, SEED_FILE);
      // At most one byte past the limit a seed may have (owner-seed.ts parseSeed refuses it).
      return existsSync(p) ? readAt(p, 0, 64 * 1024 + 1).toString('utf8') : undefined;
    }),
    removeBootSeed: () => withBootPartition(device, true, (dir) => {
      const p = join(dir, SEED_FILE);
      if (existsSync(p)) unlinkSync(p);
      libc.sync();
    }),
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    writeDurable: (p, text, mode) => {
      mkdirSync(dirname(p), { recursive: true });
      writeFileDurableSync(p, text, { mode: mode ?? 0o644 });
    },
    setHostname: libc.sethostname,
    log,
  };
}

/**
 * First boot for PID 1: the owner's seed, if boot.json says where it may be and /data is
 * mounted. The seed's parser (owner-seed.ts: zod and yaml, most of PID 1's code) is loaded
 * only when a seed waits to be adopted; every other boot runs without it.
 */
export async function ownerSeedAtBoot(cfg: BootConfig, services: BootService[], log: Log): Promise<FirstBootOutcome | undefined> {
  if (!cfg.ownerSeed || !cfg.data) return undefined;
  const storage = cfg.links ? services.find((s) => s.name === cfg.links!.storage)?.dataDir : undefined;
  const paths = { stateDir: join(cfg.data.mountpoint, 'kith'), ...(storage ? { storageDataDir: storage } : {}) };
  const io = bootFirstBootIo(cfg.ownerSeed.device, log);
  // The boot partition is read once: for the question here and for runFirstBoot.
  let seed: { text: string | undefined } | undefined;
  const readBootSeed = io.readBootSeed;
  io.readBootSeed = () => (seed ??= { text: readBootSeed() }).text;
  let toAdopt = false;
  if (!existsSync(join(paths.stateDir, ADOPTED_FILE))) {
    try {
      toAdopt = io.readBootSeed() !== undefined;
    } catch {
      toAdopt = true; // runFirstBoot meets the same failure and logs it
    }
  }
  const parse: SeedParser = toAdopt ? (await import('./owner-seed.ts')).parseSeed : () => { throw new Error('no seed to adopt'); };
  return runFirstBoot(io, paths, parse);
}
