/**
 * `kith image build`: a bootable image. --target kvm builds one service as its own VM
 * (kernel + initramfs with Node 26 as PID 1 and the sealed bundles of the service and of
 * those its links reach, such as storage for calendar); the build prints each
 * part's size. Build products go under build/ (git-ignored).
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fsConfigSource } from '../../platform/config/fs-source.ts';
import { seedMissingFiles } from '../../platform/config/seed-tree.ts';
import { formatIssue } from '../../platform/config/spec.ts';
import { DEFAULT_LANGUAGES, parseLanguages } from '../../platform/image/plan.ts';
import { TARGETS } from '../../platform/image/targets.ts';
import { kvmCompanions } from '../../platform/appliance.ts';
import { defaultConfigFiles, discoverServices, loadDefinitions } from '../../platform/services.ts';
import { repoRoot } from '../paths.ts';
import { buildAll } from './build.ts';
import { pairingCodeLines, SEED_HELP, SEED_OPTIONS, seedFromOptions, wantsSeed, writeSeed } from '../owner-seed.ts';

const HELP = `Usage: kith image build --target kvm --service NAME [options]
       kith image build --target rpi [options]

Builds a bootable image: Debian's kernel, Node 26 as PID 1, kith's boot code and the sealed
service bundles. kvm: all in the initramfs (no shell, no other programs). rpi: on a read-only
partition of the card, which a busybox first stage in the initramfs mounts and hands over to.

Options:
  --target kvm        a VM image for one service (x86_64); boot it with \`kith vm run NAME\`
  --target rpi        an SD-card image (arm64) for Raspberry Pi 3 / 4 / 400 / Zero 2 W, running
                      every service, and kith-rpi.img.zst with its .sha256 to download or
                      share; write either to a card with kith flash
  --service NAME      kvm: the service to put in the image (${'storage, dns, …'}), with the
                      services its links reach (calendar brings storage, mail storage and dns)
  --config DIR        kvm: the config tree to bake in (default: the built-in default config);
                      checked first: an invalid one is listed and nothing is built (exit 78)
  --out DIR           where to write the image (default: build/kvm/NAME or build/rpi)
  --compression C     zstd (default), gzip or none
  --data-disk         kvm: mount a data disk (/dev/vda, ext4) on /data, so what the service
                      stores outlives the VM; without it /data is in memory. kith vm run
                      creates the disk the first time
  --languages LIST    locale data kept in Node's ICU, as language codes (default en: dates,
                      numbers and collation in English, like Node's small-icu); all keeps
                      every locale and adds about 7 MB to the compressed image
  --dry-run           print the build plan and change nothing
  -h, --help          this help

rpi: ${SEED_HELP.replace(/\n(?=.)/g, '\n  ').replace(/^/, '')}  (written into kith-rpi.img once it is built)
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        service: { type: 'string' },
        config: { type: 'string' },
        out: { type: 'string' },
        compression: { type: 'string' },
        languages: { type: 'string' },
        'data-disk': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...SEED_OPTIONS,
      },
    });
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals[0] !== 'build') {
    process.stderr.write(`kith image: expected 'build'\n\n${HELP}`);
    return 64;
  }
  const say = (line: string) => process.stdout.write(line + '\n');
  const languages = parseLanguages(values.languages ?? DEFAULT_LANGUAGES.join(','));
  if ('error' in languages) {
    process.stderr.write(`kith image build: --languages ${values.languages}: ${languages.error}\n`);
    return 64;
  }
  const target = TARGETS[values.target ?? ''];
  if (!target) {
    process.stderr.write(`kith image build: --target ${values.target ?? '(missing)'}: use ${Object.keys(TARGETS).join(' or ')}\n`);
    return 64;
  }
  const compression = (values.compression ?? 'zstd') as 'zstd' | 'gzip' | 'none';
  if (!['zstd', 'gzip', 'none'].includes(compression)) {
    process.stderr.write(`kith image build: --compression ${values.compression}: use zstd, gzip or none\n`);
    return 64;
  }
  const dryRun = values['dry-run'] === true;
  const common = { compression, languages, dryRun, say, ...(values.out ? { out: path.resolve(values.out) } : {}) };
  // The owner's seed (rpi): checked before anything is built, written into the image after.
  const seed = wantsSeed(values) ? seedFromOptions(values) : undefined;
  if (seed && !seed.ok) {
    for (const e of seed.errors) process.stderr.write(`kith image build: ${e}\n`);
    return 64;
  }
  if (seed && target.perService) {
    process.stderr.write(`kith image build: --hostname, --domain, --timezone, --owner-key and --seed are for --target rpi\n`);
    return 64;
  }
  if (!target.perService) {
    if (!dryRun) await buildAll();
    const built = await target.build(common);
    if (!dryRun) say(`\n${built.summary.join('\n')}`);
    if (seed?.ok && !dryRun) {
      writeSeed(path.join(built.dir, 'kith-rpi.img'), seed.seed);
      say(`owner seed written to ${path.relative(process.cwd(), path.join(built.dir, 'kith-rpi.img'))} (boot partition)`);
      process.stdout.write(pairingCodeLines(seed.seed, seed.generated));
    }
    return 0;
  }
  const services = discoverServices(repoRoot).map((s) => s.name);
  if (!values.service || !services.includes(values.service)) {
    process.stderr.write(`kith image build: --service ${values.service ?? '(missing)'}: choose one of ${services.join(', ')}\n`);
    return 64;
  }
  const defs = await loadDefinitions(repoRoot);
  let configDir = values.config ? path.resolve(values.config) : undefined;
  if (!configDir) {
    // The built-in default config of every service, as `kith up` seeds it. build/ may not
    // exist yet in a fresh clone.
    mkdirSync(path.join(repoRoot, 'build'), { recursive: true });
    configDir = mkdtempSync(path.join(repoRoot, 'build', 'config-'));
    seedMissingFiles(configDir, defaultConfigFiles(defs));
  }
  const def = defs.find((d) => d.name === values.service);
  if (def && values.config) {
    // The image would boot a service that refuses its config: say so now, as the service would.
    const checked = await def.config.load(fsConfigSource(configDir));
    if (!checked.ok) {
      for (const issue of checked.issues) process.stderr.write(`kith image build: ${formatIssue(issue)}\n`);
      process.stderr.write(`kith image build: --config ${values.config}: the ${def.name} config is invalid; nothing was built\n`);
      return 78;
    }
  }
  // The services its links lead to go into the image too (storage for the calendar's store).
  const companions = def ? kvmCompanions(defs, def.name).map((d) => d.name) : [];
  if (!dryRun) await buildAll([values.service, ...companions]);
  if (companions.length > 0) say(`${values.service} reaches ${companions.join(' and ')} through its links: they go into the image too (their ports are not forwarded)`);
  if (!values['data-disk'] && !dryRun) say(`note: without --data-disk, /data is in memory: what ${values.service} stores there is lost when the VM stops`);
  const built = await target.build({ ...common, service: values.service, configDir, dataDisk: values['data-disk'] === true });
  if (!dryRun) say(`\n${built.summary.join('\n')}`);
  return 0;
}
