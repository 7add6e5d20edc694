/**
 * `kith flash [IMAGE] TARGET`: write the Raspberry Pi SD-card image (raw, .img.gz, .img.xz or
 * .img.zst, decompressed as it streams) to a card (or a file), with a progress bar in bytes
 * of the uncompressed image, the MBR written last so a card is never half-written, then read
 * it back to verify. `--verify-only IMAGE TARGET` only compares. Refuses partitions, mounted
 * disks, disks too small, and disks that do not look removable unless --force. Checks and
 * writing in platform/rpi/flash.ts, reading images in platform/rpi/image-stream.ts.
 */
import * as path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { assessTarget, checkImage, flashImage, imageHead, IncompleteWrite, partitionsEnd, targetFacts, verifyImage, type FlashProgress } from '../../platform/rpi/flash.ts';
import { openImageStream, parseSha256File, type ImageStream } from '../../platform/rpi/image-stream.ts';
import { repoRoot } from '../paths.ts';
import { pairingCodeLines, SEED_HELP, SEED_OPTIONS, seedFromOptions, wantsSeed, writeSeed } from '../owner-seed.ts';

const HELP = `Usage: kith flash [IMAGE] TARGET [options]
       kith flash --verify-only IMAGE TARGET

Writes the Raspberry Pi SD-card image to a card, then reads it back to check every byte.
On first boot the card's data partition grows to fill it.

  IMAGE               the image: kith-rpi.img, or packed as .img.zst, .img.xz or .img.gz
                      (decompressed as it is written; .xz needs the xz program). Default:
                      build/rpi/image/kith-rpi.img, made by kith image build --target rpi.
                      When IMAGE.sha256 is beside it, the file is checked against it
  TARGET              the whole card, e.g. /dev/sdb or /dev/mmcblk0 (not a partition such
                      as /dev/sdb1), or a file to write a copy to
  --image FILE        the same as IMAGE
  --yes               erase the card without asking
  --force             allow a disk that is not removable, on USB or in an SD slot
  --no-verify         skip reading the card back
  --verify-only       write nothing: compare TARGET with IMAGE (exit 1 when they differ)
  --json              print one JSON object with what was written
  -h, --help          this help

Never half-written: the card's old partition table is erased first, the image is written
from its second MiB on, and its first MiB (the partition table) goes on last, once the
rest is on the card and the image has checked out whole. Interrupted (Ctrl-C) or failed
before that, the card does not boot, and kith flash says so.

${SEED_HELP}
Exit codes: 0 written (and verified), 1 writing or verifying failed (or the card differs,
with --verify-only), 64 usage error, 65 the image or the target was refused, 130
interrupted.
`;

export async function run(argv: string[]): Promise<number> {
  quietFfiWarning();
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      image: { type: 'string' },
      yes: { type: 'boolean' },
      force: { type: 'boolean' },
      'no-verify': { type: 'boolean' },
      'verify-only': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...SEED_OPTIONS,
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const verifyOnly = values['verify-only'] === true;
  const given = values.image !== undefined ? [values.image, ...positionals] : positionals;
  if (given.length !== 2 && !(given.length === 1 && !verifyOnly)) {
    process.stderr.write(`kith flash: ${verifyOnly ? 'give IMAGE and TARGET' : 'give one TARGET (a card such as /dev/sdb, or a file), after the IMAGE if not the default'}\n\n${HELP}`);
    return 64;
  }
  // The owner's seed: checked before anything is written.
  const seed = wantsSeed(values) ? seedFromOptions(values) : undefined;
  if (seed && !seed.ok) {
    for (const e of seed.errors) process.stderr.write(`kith flash: ${e}\n`);
    return 64;
  }
  const target = path.resolve(given[given.length - 1]!);
  const image = path.resolve(given.length === 2 ? given[0]! : defaultImage());
  if (!existsSync(image)) {
    process.stderr.write(`kith flash: no image at ${image}; build it with kith image build --target rpi, or give IMAGE\n`);
    return 65;
  }
  if (target === image || sameFile(target, image)) {
    process.stderr.write('kith flash: the target is the image itself\n');
    return 64;
  }
  let src: ImageStream;
  let head: Buffer;
  let expectedFileSha256: string | undefined;
  try {
    src = openImageStream(image);
    head = await imageHead(image);
    expectedFileSha256 = checksumBeside(image);
  } catch (err) {
    process.stderr.write(`kith flash: ${(err as Error).message}\n`);
    return 65;
  }
  // A raw image's size is its file's; a packed one's as its header says, checked once written.
  const info = checkImage(head, src.format === 'raw' ? src.fileBytes : Number.MAX_SAFE_INTEGER);
  if (!info.ok) {
    process.stderr.write(`kith flash: ${image}: ${info.error}\n`);
    return 65;
  }
  const bytes = Math.max(src.bytes ?? 0, partitionsEnd(info.value));
  const say = (s: string) => { if (!values.json) process.stderr.write(s + '\n'); };
  const rel = path.relative(process.cwd(), image);
  const shown = rel && !rel.startsWith('..') ? rel : image;

  if (verifyOnly) {
    if (!existsSync(target)) {
      process.stderr.write(`kith flash: ${target}: no such card or file to verify\n`);
      return 65;
    }
    say(`comparing ${target} with ${shown}`);
    const progress = makeProgress(values.json === true);
    const r = await verifyImage(src, target, { onProgress: progress.update, ...(expectedFileSha256 ? { expectedFileSha256 } : {}) }).catch((err: Error) => ({ ok: false as const, error: err.message, offset: undefined }));
    progress.stop();
    if (values.json) process.stdout.write(JSON.stringify({ image, target, ...r }) + '\n');
    else if (r.ok) process.stdout.write(`${target} matches ${shown} (${(r.bytes / 1e6).toFixed(0)} MB, sha256 ${r.sha256})\n`);
    if (!r.ok) process.stderr.write(`kith flash: ${r.error}\n`);
    return r.ok ? 0 : 1;
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

  const packed = src.format === 'raw' ? '' : `, ${src.format} ${(src.fileBytes / 1e6).toFixed(0)} MB`;
  say(`writing ${shown} (${src.bytes !== undefined ? `${(src.bytes / 1e6).toFixed(0)} MB` : 'size not stated'}${packed}) to ${verdict.value.description}`);
  const progress = makeProgress(values.json === true);
  // Ctrl-C stops the write between blocks; the partition table is then not on the card.
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) return;
    abort.abort();
    progress.stop();
    say('\ninterrupted: stopping…');
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await flashImage(src, target, { verify: !values['no-verify'], onProgress: progress.update, signal: abort.signal, ...(expectedFileSha256 ? { expectedFileSha256 } : {}) });
    progress.stop();
    // The owner's seed goes into the boot partition once the image is written and verified.
    const seeded = seed?.ok && !r.interrupted ? seed : undefined;
    if (seeded) writeSeed(target, seeded.seed);
    const mbps = (ms: number) => (ms > 0 ? `${((r.bytes / 1e6) / (ms / 1000)).toFixed(1)} MB/s` : '');
    if (values.json) {
      process.stdout.write(JSON.stringify({ image, format: src.format, target, bytes: r.bytes, sha256: r.sha256, fileSha256: r.fileSha256, checkedAgainstSha256File: expectedFileSha256 !== undefined, verified: r.verified, interrupted: r.interrupted, writeMs: Math.round(r.writeMs), verifyMs: Math.round(r.verifyMs), ...(seeded ? { seeded: true, pairingCode: seeded.seed.pairingSecret } : {}) }) + '\n');
    } else {
      const how = r.verified ? `, verified in ${(r.verifyMs / 1000).toFixed(1)} s` : r.interrupted ? ', not verified (interrupted after writing)' : ', not verified (--no-verify)';
      process.stdout.write(`wrote ${(r.bytes / 1e6).toFixed(0)} MB in ${(r.writeMs / 1000).toFixed(1)} s (${mbps(r.writeMs)})${how}\nsha256 ${r.sha256}\n`);
      if (r.interrupted) process.stderr.write(`kith flash: interrupted after the card was complete; check it with kith flash --verify-only ${shown} ${target}\n`);
      else if (facts.kind === 'disk') process.stdout.write(`${target} is ready: put the card in the Pi and power it on.\n`);
      if (seeded) process.stdout.write(`owner seed written to the boot partition (${['hostname', 'domain', 'timezone', 'ownerKey'].filter((k) => seeded.seed[k as 'hostname'] !== undefined).join(', ') || 'pairing secret only'})\n` + pairingCodeLines(seeded.seed, seeded.generated));
    }
    return r.interrupted ? 130 : 0;
  } catch (err) {
    progress.stop();
    if (values.json) process.stdout.write(JSON.stringify({ image, target, error: (err as Error).message, complete: false }) + '\n');
    process.stderr.write(`kith flash: ${(err as Error).message}\n`);
    return err instanceof IncompleteWrite && err.interrupted ? 130 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * Reading back drops the card's cached pages through node:ffi (platform/rpi/page-cache.ts),
 * which Node flags as experimental on first use: that one warning is not the owner's
 * concern; any other is printed as Node would.
 */
function quietFfiWarning(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name === 'ExperimentalWarning' && /FFI/i.test(w.message)) return;
    process.stderr.write(`(node) ${w.name}: ${w.message}\n`);
  });
}

/** Two names for one file (a link): writing to one would destroy the other. */
function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** The local build's raw image, else its packed copy. */
function defaultImage(): string {
  const raw = path.join(repoRoot, 'build/rpi/image/kith-rpi.img');
  const zst = `${raw}.zst`;
  return !existsSync(raw) && existsSync(zst) ? zst : raw;
}

/** The hash in IMAGE.sha256, when that file is beside the image. */
function checksumBeside(image: string): string | undefined {
  const file = `${image}.sha256`;
  if (!existsSync(file)) return undefined;
  const r = parseSha256File(readFileSync(file, 'utf8'), path.basename(image));
  if (!r.ok) throw new Error(`${file}: ${r.error}`);
  return r.value;
}

const MB = (n: number) => (n / 1e6).toFixed(0);

/** A bar on a terminal; every 10 % (or 100 MB, size unknown) as a line elsewhere; nothing with --json. */
function makeProgress(quiet: boolean): { update: (p: FlashProgress) => void; stop: () => void } {
  if (quiet) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const known = new cliProgress.SingleBar({ format: '{phase} [{bar}] {percentage}% | {doneMB}/{totalMB} MB | ETA {eta_formatted}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
    const unknown = new cliProgress.SingleBar({ format: '{phase} {doneMB} MB written (size not stated by the image)', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
    let bar: cliProgress.SingleBar | undefined;
    let phase = '';
    return {
      update: (p) => {
        const payload = { phase: p.phase.padEnd(6), doneMB: MB(p.done), totalMB: p.total !== undefined ? MB(p.total) : '?' };
        const want = p.total !== undefined ? known : unknown;
        if (p.phase !== phase || want !== bar) {
          bar?.stop();
          phase = p.phase;
          bar = want;
          bar.start(p.total ?? Number.MAX_SAFE_INTEGER, p.done, payload);
        } else {
          if (p.total !== undefined) bar.setTotal(p.total);
          bar.update(p.done, payload);
        }
      },
      stop: () => { bar?.stop(); bar = undefined; },
    };
  }
  let last = '';
  return {
    update: (p) => {
      const step = p.total !== undefined ? `${p.phase} ${Math.floor((p.done / p.total) * 10) * 10}%` : `${p.phase} ${Math.floor(p.done / 100e6) * 100} MB`;
      if (step !== last) process.stderr.write(`${step}\n`);
      last = step;
    },
    stop: () => {},
  };
}
