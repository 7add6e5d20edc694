/**
 * The owner's seed on the installer side (`kith flash`, `kith image build --target rpi`):
 * the options, the seed they make (a --seed YAML file overlaid by the flags, validated with
 * file:line errors; a pairing secret generated unless the file has one), and writing it as
 * kith-seed.yaml into the FAT boot partition of an image or a card with mtools' mcopy.
 * The box reads and removes it at first boot (platform/boot/first-boot.ts). Nothing here
 * prints the secret: the command prints the pairing code once, at its end.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAt } from '../platform/boot/blockdev.ts';
import { checkPublicKey, generatePairingSecret, OwnerSeedSchema, parseSeed, renderSeed, SEED_FILE, type OwnerSeed } from '../platform/boot/owner-seed.ts';
import { formatIssue } from '../platform/config/spec.ts';
import { hasMbrSignature, readMbrEntries } from '../platform/image/mbr.ts';

/** parseArgs options, shared by both commands. */
export const SEED_OPTIONS = {
  hostname: { type: 'string' },
  domain: { type: 'string' },
  timezone: { type: 'string' },
  'owner-key': { type: 'string' },
  'ssh-key': { type: 'string' },
  seed: { type: 'string' },
} as const;

export const SEED_HELP = `Owner seed (written to the card's boot partition as ${SEED_FILE}; read, applied and
removed by the box at first boot; a pairing code is made and printed once, at the end):
  --hostname NAME     the box's host name (e.g. box1)
  --domain DOMAIN     the home domain (e.g. example.net): the zone of its local names
  --timezone ZONE     a tz database name (e.g. Europe/Berlin)
  --owner-key FILE    the owner's OpenSSH public key (.pub); --ssh-key FILE is the same
  --seed FILE         all of the above as YAML (hostname, domain, timezone, ownerKey,
                      pairingSecret); the flags override it
`;

export type SeedValues = Partial<Record<keyof typeof SEED_OPTIONS, string | undefined>>;

/** Whether any seed option was given. */
export function wantsSeed(v: SeedValues): boolean {
  return (Object.keys(SEED_OPTIONS) as (keyof typeof SEED_OPTIONS)[]).some((k) => v[k] !== undefined);
}

export type SeedBuild = { ok: true; seed: OwnerSeed & { pairingSecret: string }; generated: boolean } | { ok: false; errors: string[] };

/** The seed the options describe. Errors name the file and line, or the flag. */
export function seedFromOptions(v: SeedValues, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): SeedBuild {
  const errors: string[] = [];
  let base: OwnerSeed = { version: 1 };
  if (v.seed !== undefined) {
    let text: string | undefined;
    try {
      text = read(v.seed);
    } catch (err) {
      errors.push(`--seed ${v.seed}: ${(err as Error).message}`);
    }
    if (text !== undefined) {
      const parsed = parseSeed(text, v.seed);
      if (parsed.ok) base = parsed.value;
      else errors.push(...parsed.issues.map(formatIssue));
    }
  }
  if (v['owner-key'] !== undefined && v['ssh-key'] !== undefined && v['owner-key'] !== v['ssh-key']) errors.push('--owner-key and --ssh-key name the same thing: give one');
  const keyFile = v['owner-key'] ?? v['ssh-key'];
  let ownerKey: string | undefined;
  if (keyFile !== undefined) {
    try {
      const text = read(keyFile);
      if (/PRIVATE KEY/.test(text)) errors.push(`--owner-key ${keyFile}: this is a private key; give the public one (${keyFile}.pub)`);
      else {
        ownerKey = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
        const why = ownerKey === undefined ? 'the file holds no key' : checkPublicKey(ownerKey);
        if (why) errors.push(`--owner-key ${keyFile}: ${why}`);
      }
    } catch (err) {
      errors.push(`--owner-key ${keyFile}: ${(err as Error).message}`);
    }
  }
  const merged = {
    ...base,
    ...(v.hostname !== undefined ? { hostname: v.hostname } : {}),
    ...(v.domain !== undefined ? { domain: v.domain } : {}),
    ...(v.timezone !== undefined ? { timezone: v.timezone } : {}),
    ...(ownerKey !== undefined ? { ownerKey } : {}),
  };
  // The flags go through the same schema as the file: one set of rules.
  const checked = OwnerSeedSchema.safeParse(merged);
  if (!checked.success) {
    for (const issue of checked.error.issues) {
      const field = String(issue.path[0] ?? '');
      const flag = { hostname: '--hostname', domain: '--domain', timezone: '--timezone', ownerKey: '--owner-key' }[field];
      if (flag) errors.push(`${flag}: ${issue.message}`);
      else if (!errors.length) errors.push(`${field}: ${issue.message}`);
    }
  }
  const tool = seedWriterMissing();
  if (tool) errors.push(tool);
  if (errors.length > 0 || !checked.success) return { ok: false, errors };
  const generated = checked.data.pairingSecret === undefined;
  return { ok: true, seed: { ...checked.data, pairingSecret: checked.data.pairingSecret ?? generatePairingSecret() }, generated };
}

/** Why the seed could not be written on this computer (mtools missing), checked before a card is touched. */
export function seedWriterMissing(): string | undefined {
  const r = spawnSync('mcopy', ['-V'], { stdio: 'ignore' });
  return r.error ? 'writing the owner seed needs mtools (mcopy): apt install mtools, brew install mtools, …' : undefined;
}

/** Byte offset of the FAT boot partition (the first MBR entry, type 0x0b/0x0c/0x0e) of an image or card. */
export function bootPartitionOffset(target: string): number {
  const mbr = readAt(target, 0, 512);
  if (!hasMbrSignature(mbr)) throw new Error(`${target} has no MBR: is it a kith card?`);
  const first = readMbrEntries(mbr)[0]!;
  if (![0x0b, 0x0c, 0x0e].includes(first.type) || first.start === 0) throw new Error(`${target}: partition 1 is not FAT (type 0x${first.type.toString(16)})`);
  return first.start * 512;
}

/** Write the seed as kith-seed.yaml into the boot partition of `target` (an image file or a card). */
export function writeSeed(target: string, seed: OwnerSeed): void {
  const offset = bootPartitionOffset(target);
  const dir = mkdtempSync(join(tmpdir(), 'kith-seed-'));
  const file = join(dir, SEED_FILE);
  try {
    writeFileSync(file, renderSeed(seed), { mode: 0o600 });
    const r = spawnSync('mcopy', ['-o', '-i', `${target}@@${offset}`, file, `::/${SEED_FILE}`], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    if (r.error) throw new Error(`mcopy: ${r.error.message} (install mtools)`);
    if (r.status !== 0) throw new Error(`mcopy into ${target}'s boot partition failed: ${r.stderr.trim()}`);
    spawnSync('sync', [], { stdio: 'ignore' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The lines that end a seeding command: the pairing code, once. */
export function pairingCodeLines(seed: { pairingSecret: string }, generated: boolean): string {
  return `pairing code: ${seed.pairingSecret}\n` + (generated ? 'Keep it: pairing with the box asks for it, and it is not stored on this computer.\n' : '');
}
