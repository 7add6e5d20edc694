/**
 * The owner's seed: what a person says about their box before it first boots — host name,
 * home domain, time zone, their public key, the pairing secret — as one YAML file on the
 * card's boot partition (kith-seed.yaml). `kith flash` / `kith image build` write it
 * (installer/owner-seed.ts); PID 1 validates and applies it at first boot (first-boot.ts),
 * then removes it from the FAT partition, since it holds the secret.
 *
 * Pure: parsing (zod over YAML, every problem with file, line and field), rendering, the
 * pairing secret's shape, and the config edits a seed asks for (applied by storage, which
 * owns config.git: services/storage/config/first-boot.ts).
 */
import { randomInt } from 'node:crypto';
import { stringify } from 'yaml';
import { z } from 'zod';
import { parseYamlText } from '../config/yaml.ts';
import type { ConfigResult } from '../config/spec.ts';

// What PID 1 needs on every boot lives in seed-request.ts, without zod or yaml; re-exported here.
export { configEdits, FIRST_BOOT_DONE, FIRST_BOOT_REQUEST, publicPart, SEED_FILE, sha256, type ConfigEdit, type FirstBootRequest } from './seed-request.ts';
import { SEED_FILE } from './seed-request.ts';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const Hostname = z.string().regex(new RegExp(`^${LABEL}$`), 'expected a host name: one label of letters, digits and \'-\', e.g. box1');
const Domain = z.string().max(253).regex(new RegExp(`^${LABEL}(?:\\.${LABEL})+$`), 'expected a domain of two labels or more, lower case, e.g. example.net or home.example.org');
/** An IANA time zone name (tz database), e.g. Europe/Berlin, America/Argentina/Buenos_Aires, UTC. */
const TimeZone = z.string().max(64).regex(/^(?:UTC|[A-Z][A-Za-z_-]+(?:\/[A-Za-z0-9_+-]+){1,2})$/, 'expected a tz database name such as Europe/Berlin or UTC');

/** OpenSSH public key types the owner's key may have. */
const KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com', 'ssh-rsa'];

/** One OpenSSH public key line: type, base64 blob whose first field repeats the type, optional comment. */
export function checkPublicKey(line: string): string | undefined {
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: [^\r\n]*)?$/.exec(line);
  if (!m) return 'expected one OpenSSH public key line: "ssh-ed25519 AAAA… comment" (the .pub file, not the private key)';
  if (!KEY_TYPES.includes(m[1]!)) return `key type ${m[1]} is not one of ${KEY_TYPES.join(', ')}`;
  const blob = Buffer.from(m[2]!, 'base64');
  if (blob.length < 4) return 'the key data is too short';
  const n = blob.readUInt32BE(0);
  if (4 + n > blob.length || blob.subarray(4, 4 + n).toString('latin1') !== m[1]) return `the key data does not hold a ${m[1]} key`;
  return undefined;
}
const PublicKey = z.string().max(16_384).transform((s) => s.trim()).superRefine((s, ctx) => {
  const why = checkPublicKey(s);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

/** Crockford's base32 without the letters people misread (I, L, O, U). */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Five groups of five: 25 characters, 125 bits. */
export const PAIRING_SECRET = /^[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){4}$/;
const PairingSecret = z.string().regex(PAIRING_SECRET, 'expected a pairing code of five groups of five letters and digits (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX); leave it out and kith flash makes one');

export const OwnerSeedSchema = z.object({
  version: z.literal(1).default(1),
  hostname: Hostname.optional(),
  domain: Domain.optional(),
  timezone: TimeZone.optional(),
  ownerKey: PublicKey.optional(),
  pairingSecret: PairingSecret.optional(),
}).strict();

export type OwnerSeed = z.infer<typeof OwnerSeedSchema>;

/** A fresh pairing secret from the system's CSPRNG. */
export function generatePairingSecret(): string {
  const chars = Array.from({ length: 25 }, () => ALPHABET[randomInt(ALPHABET.length)]!);
  return [0, 5, 10, 15, 20].map((i) => chars.slice(i, i + 5).join('')).join('-');
}

export function parseSeed(text: string, file = SEED_FILE): ConfigResult<OwnerSeed> {
  if (text.length > 64 * 1024) return { ok: false, issues: [{ file, message: `${text.length} bytes: a seed is at most 64 KiB` }] };
  return parseYamlText(file, text, OwnerSeedSchema);
}

export function renderSeed(seed: OwnerSeed): string {
  const body: Record<string, unknown> = { version: 1 };
  for (const k of ['hostname', 'domain', 'timezone', 'ownerKey', 'pairingSecret'] as const) if (seed[k] !== undefined) body[k] = seed[k];
  return '# kith owner seed: read and removed by the box at first boot (it holds the pairing secret)\n' + stringify(body, { lineWidth: 0 });
}

/** The seed without its secret: what may be kept, logged or shown. */
