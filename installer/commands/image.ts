/**
 * `kith image build`: a bootable image. --target kvm builds one service as its own VM
 * (kernel + initramfs with Node 26 as PID 1 and the sealed bundle); the build prints each
 * part's size. Build products go under build/ (git-ignored).
 */
import { mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fsConfigSource } from '../../platform/config/fs-source.ts';
import { formatIssue } from '../../platform/config/spec.ts';
import { buildKvmImage } from '../../platform/kvm/cli.ts';
import { KVM_DATA_DISK } from '../../platform/kvm/plan.ts';
import { buildRpiImage } from '../../platform/rpi/cli.ts';
import { DEFAULT_LANGUAGES, parseLanguages } from '../../platform/image/plan.ts';
import { discoverServices } from '../../platform/services.ts';
import { repoRoot } from '../paths.ts';
import { defaultConfigFiles, loadDefinitions, seedConfigTree } from '../seed.ts';
import { buildAll } from './build.ts';

const HELP = `Usage: kith image build --target kvm --service NAME [options]
       kith image build --target rpi [options]

Builds a bootable image: Debian's kernel and an initramfs holding Node 26 (PID 1, no shell,
no other programs), kith's boot code and the sealed service bundles.

Options:
  --target kvm        a VM image for one service (x86_64); boot it with \`kith vm run NAME\`
  --target rpi        an SD-card image (arm64) for Raspberry Pi 3 / 4 / 400 / Zero 2 W, running
                      every service; write it to a card with kith flash
  --service NAME      kvm: the service to put in the image (${'storage, dns, …'})
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
  if (values.target === 'rpi') {
    if (!values['dry-run']) await buildAll();
    const img = await buildRpiImage({ dryRun: values['dry-run'] === true, say, languages, ...(values.out ? { out: path.resolve(values.out) } : {}) });
    if (!values['dry-run']) say(`\nSD-card image: ${path.relative(process.cwd(), img.image)} (services: ${img.services.join(', ')})`);
    return 0;
  }
  if (values.target !== 'kvm') {
    process.stderr.write(`kith image build: --target ${values.target ?? '(missing)'}: use kvm or rpi\n`);
    return 64;
  }
  const services = discoverServices(repoRoot).map((s) => s.name);
  if (!values.service || !services.includes(values.service)) {
    process.stderr.write(`kith image build: --service ${values.service ?? '(missing)'}: choose one of ${services.join(', ')}\n`);
    return 64;
  }
  const compression = (values.compression ?? 'zstd') as 'zstd' | 'gzip' | 'none';
  if (!['zstd', 'gzip', 'none'].includes(compression)) {
    process.stderr.write(`kith image build: --compression ${values.compression}: use zstd, gzip or none\n`);
    return 64;
  }
  const defs = await loadDefinitions(repoRoot);
  let configDir = values.config ? path.resolve(values.config) : undefined;
  if (!configDir) {
    // The built-in default config of every service, as `kith up` seeds it.
    configDir = mkdtempSync(path.join(repoRoot, 'build', 'config-'));
    await seedConfigTree(configDir, defaultConfigFiles(defs));
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
  if (!values['dry-run']) await buildAll([values.service]);
  if (!values['data-disk'] && !values['dry-run']) say(`note: without --data-disk, /data is in memory: what ${values.service} stores there is lost when the VM stops`);
  const dataDisk = values['data-disk'] ? { data: KVM_DATA_DISK } : {}; // buildKvmImage adds the disk's modules
  const listeners = def ? Object.keys(def.listeners) : undefined;
  const image = await buildKvmImage({ service: values.service, configDir, compression, languages, listeners, ...dataDisk, dryRun: values['dry-run'] === true, say, ...(values.out ? { out: path.resolve(values.out) } : {}) });
  if (!values['dry-run']) say(`\nimage: ${path.relative(process.cwd(), image.dir) || '.'}\nboot it: kith vm run ${values.service}`);
  return 0;
}
