/**
 * `kith flash TARGET`: write the Raspberry Pi SD-card image to a card (or a file), with a
 * progress bar, then read it back to verify. Refuses partitions, mounted disks, disks too
 * small, and disks that do not look removable unless --force. Checks in platform/rpi/flash.ts.
 */
import * as path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { readAt } from '../../platform/boot/blockdev.ts';
import { assessTarget, checkImage, flashImage, targetFacts, type FlashProgress } from '../../platform/rpi/flash.ts';
import { repoRoot } from '../paths.ts';
import { pairingCodeLines, SEED_HELP, SEED_OPTIONS, seedFromOptions, wantsSeed, writeSeed } from '../owner-seed.ts';

const HELP = `Usage: kith flash [--image FILE] TARGET [options]

Writes the Raspberry Pi SD-card image to a card, then reads it back to check every byte.
On first boot the card's data partition grows to fill it.

  TARGET              the whole card, e.g. /dev/sdb or /dev/mmcblk0 (not a partition such
                      as /dev/sdb1), or a file to write a copy to
  --image FILE        the image (default: build/rpi/image/kith-rpi.img, made by
                      kith image build --target rpi)
  --yes               erase the card without asking
  --force             allow a disk that is not removable, on USB or in an SD slot
  --no-verify         skip reading the card back
  --json              print one JSON object with what was written
  -h, --help          this help

${SEED_HELP}
Exit codes: 0 written (and verified), 1 writing or verifying failed, 64 usage error,
65 the image or the target was refused.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      image: { type: 'string' },
      yes: { type: 'boolean' },
      force: { type: 'boolean' },
      'no-verify': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...SEED_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`kith flash: give one TARGET (a card such as /dev/sdb, or a file)\n\n${HELP}`);
    return 64;
  }
  // The owner's seed: checked before anything is written.
  const seed = wantsSeed(values) ? seedFromOptions(values) : undefined;
  if (seed && !seed.ok) {
    for (const e of seed.errors) process.stderr.write(`kith flash: ${e}\n`);
    return 64;
  }
  const target = path.resolve(positionals[0]!);
  const image = path.resolve(values.image ?? path.join(repoRoot, 'build/rpi/image/kith-rpi.img'));
  if (!existsSync(image)) {
    process.stderr.write(`kith flash: no image at ${image}; build it with kith image build --target rpi, or give --image FILE\n`);
    return 65;
  }
  const bytes = statSync(image).size;
  const info = checkImage(readAt(image, 0, 512), bytes);
  if (!info.ok) {
    process.stderr.write(`kith flash: ${image}: ${info.error}\n`);
    return 65;
  }
  if (target === image) {
    process.stderr.write('kith flash: the target is the image itself\n');
    return 64;
  }
  const facts = targetFacts(target);
  const verdict = assessTarget(facts, { imageBytes: bytes, force: values.force === true });
  if (!verdict.ok) {
    process.stderr.write(`kith flash: ${verdict.error}\n`);
    return 65;
  }
  // Erasing a disk, or replacing a file, is asked about unless --yes.
  if (facts.kind !== 'missing' && !values.yes) {
    if (!process.stdin.isTTY) {
      process.stderr.write(`kith flash: this would erase ${verdict.value.description}; add --yes to go ahead (stdin is not a terminal to ask)\n`);
      return 64;
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(`This erases everything on ${verdict.value.description}.\nType ${facts.name ?? 'yes'} to go ahead: `);
    rl.close();
    if (answer.trim() !== (facts.name ?? 'yes')) {
      process.stderr.write('kith flash: nothing written\n');
      return 1;
    }
  }

  const say = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  say(`writing ${path.relative(process.cwd(), image) || image} (${(bytes / 1e6).toFixed(0)} MB) to ${verdict.value.description}`);
  const progress = makeProgress(values.json === true);
  try {
    const r = flashImage(image, target, { verify: !values['no-verify'], onProgress: progress.update });
    progress.stop();
    // The owner's seed goes into the boot partition once the image is written and verified.
    if (seed?.ok) writeSeed(target, seed.seed);
    const mbps = (ms: number) => (ms > 0 ? `${((bytes / 1e6) / (ms / 1000)).toFixed(1)} MB/s` : '');
    if (values.json) {
      process.stdout.write(JSON.stringify({ image, target, bytes: r.bytes, sha256: r.sha256, verified: r.verified, writeMs: Math.round(r.writeMs), verifyMs: Math.round(r.verifyMs), ...(seed?.ok ? { seeded: true, pairingCode: seed.seed.pairingSecret } : {}) }) + '\n');
    } else {
      process.stdout.write(`wrote ${(r.bytes / 1e6).toFixed(0)} MB in ${(r.writeMs / 1000).toFixed(1)} s (${mbps(r.writeMs)})${r.verified ? `, verified in ${(r.verifyMs / 1000).toFixed(1)} s` : ', not verified (--no-verify)'}\nsha256 ${r.sha256}\n`);
      if (facts.kind === 'disk') process.stdout.write(`${target} is ready: put the card in the Pi and power it on.\n`);
      if (seed?.ok) process.stdout.write(`owner seed written to the boot partition (${['hostname', 'domain', 'timezone', 'ownerKey'].filter((k) => seed.seed[k as 'hostname'] !== undefined).join(', ') || 'pairing secret only'})\n` + pairingCodeLines(seed.seed, seed.generated));
    }
    return 0;
  } catch (err) {
    progress.stop();
    process.stderr.write(`kith flash: ${(err as Error).message}\n`);
    return 1;
  }
}

/** A bar on a terminal; every 10 % as a line elsewhere; nothing with --json. */
function makeProgress(quiet: boolean): { update: (p: FlashProgress) => void; stop: () => void } {
  if (quiet) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ format: '{phase} [{bar}] {percentage}% | {doneMB}/{totalMB} MB | ETA {eta_formatted}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
    let phase = '';
    return {
      update: (p) => {
        const payload = { phase: p.phase.padEnd(6), doneMB: (p.done / 1e6).toFixed(0), totalMB: (p.total / 1e6).toFixed(0) };
        if (p.phase !== phase) {
          if (phase) bar.stop();
          phase = p.phase;
          bar.start(p.total, p.done, payload);
        } else bar.update(p.done, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = '';
  return {
    update: (p) => {
      const step = `${p.phase} ${Math.floor((p.done / p.total) * 10) * 10}%`;
      if (step !== last) process.stderr.write(`${step}\n`);
      last = step;
    },
    stop: () => {},
  };
}
