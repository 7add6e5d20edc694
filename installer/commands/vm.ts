/**
 * `kith vm run NAME`: boot a service's kvm image under qemu (KVM when usable, else TCG),
 * forward its ports to the host, print how to reach it, and stop it on Ctrl-C. Like
 * `kith up`, it keeps the owner's token (in the image folder) and hands the guest only its
 * hash (kernel command line), so the owner signs in wherever a service takes the token.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createDataDisk, loadImage, runVm } from '../../platform/kvm/cli.ts';
import type { Forward } from '../../platform/kvm/qemu.ts';
import { discoverServices, loadDefinitions } from '../../platform/services.ts';
import { loadOrCreateOwnerToken, OWNER_TOKEN_FILE } from '../../platform/owner.ts';
import { secretSha256 } from '../../platform/passwords.ts';
import { repoRoot } from '../paths.ts';

const HELP = `Usage: kith vm run NAME [options]

Boots build/kvm/NAME (made by \`kith image build --target kvm --service NAME\`) under qemu,
with each of the service's ports forwarded to the host (not those of the services it
brought along, such as storage for calendar). Prints the owner token, kept in the image
folder (owner-token): the owner's password wherever a service takes it (CalDAV user kith).

Options:
  --image DIR        the image folder (default: build/kvm/NAME)
  --port-base N      host ports: N+10k+j for the service's j-th listener (default 7300, as kith up)
  --forward P:H:G    an extra forward, proto:hostPort:guestPort (repeatable), e.g. udp:5353:53
  --data-disk FILE   the data disk, for an image built with --data-disk (default:
                    build/kvm/NAME/data.img); created, empty, when it does not exist
  --data-size MIB    size of a data disk made now (default 1024)
  --accel A          auto (default), kvm or tcg
  --memory MIB       guest memory (default 1024)
  --quiet            do not echo the console
  -h, --help         this help
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        image: { type: 'string' },
        'port-base': { type: 'string' },
        forward: { type: 'string', multiple: true },
        'data-disk': { type: 'string' },
        'data-size': { type: 'string' },
        accel: { type: 'string' },
        memory: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [sub, name] = positionals;
  if (sub !== 'run' || !name) {
    process.stderr.write(`kith vm: expected 'run NAME'\n\n${HELP}`);
    return 64;
  }
  const slot = discoverServices(repoRoot).find((s) => s.name === name)?.slot;
  const def = (await loadDefinitions(repoRoot)).find((d) => d.name === name);
  if (slot === undefined || !def) {
    process.stderr.write(`kith vm run: no service named '${name}'\n`);
    return 64;
  }
  const image = path.resolve(values.image ?? path.join(repoRoot, 'build', 'kvm', name));
  if (!existsSync(path.join(image, 'image.json'))) {
    process.stderr.write(`kith vm run: no image at ${image}; build it: kith image build --target kvm --service ${name}\n`);
    return 1;
  }
  const base = Number(values['port-base'] ?? 7300);
  const forwards: Forward[] = [];
  const reach: string[] = [];
  Object.entries(def.listeners).forEach(([lname, l], j) => {
    const hostPort = base + slot * 10 + j;
    const protos: ('tcp' | 'udp')[] = l.protocol === 'dns' ? ['udp', 'tcp'] : l.protocol === 'udp' ? ['udp'] : ['tcp'];
    for (const proto of protos) forwards.push({ proto, hostPort, guestPort: l.port });
    const scheme = l.protocol === 'dns' ? 'udp' : l.protocol;
    reach.push(`  ${lname.padEnd(10)} ${scheme}://127.0.0.1:${hostPort}  (guest port ${l.port})`);
  });
  for (const f of values.forward ?? []) {
    const m = /^(tcp|udp):(\d{1,5}):(\d{1,5})$/.exec(f);
    if (!m) {
      process.stderr.write(`kith vm run: --forward ${f}: expected proto:hostPort:guestPort, e.g. udp:5353:53\n`);
      return 64;
    }
    forwards.push({ proto: m[1] as 'tcp' | 'udp', hostPort: Number(m[2]), guestPort: Number(m[3]) });
  }
  const built = loadImage(image);
  let dataDisk: string | undefined;
  if (built.dataDisk) {
    dataDisk = path.resolve(values['data-disk'] ?? path.join(image, 'data.img'));
    if (!existsSync(dataDisk)) {
      const size = Number(values['data-size'] ?? 1024);
      if (!Number.isInteger(size) || size < 16) {
        process.stderr.write(`kith vm run: --data-size ${values['data-size']}: a whole number of MiB, at least 16\n`);
        return 64;
      }
      try {
        createDataDisk(dataDisk, size);
      } catch (err) {
        process.stderr.write(`kith vm run: ${(err as Error).message}\n`);
        return 1;
      }
      process.stdout.write(`made a ${size} MiB data disk: ${path.relative(process.cwd(), dataDisk)}\n`);
    }
  } else if (values['data-disk']) {
    process.stderr.write(`kith vm run: the ${name} image keeps /data in memory; to use a data disk, rebuild it: kith image build --target kvm --service ${name} --data-disk\n`);
    return 64;
  }
  let ownerToken: string;
  try {
    ownerToken = await loadOrCreateOwnerToken(image);
  } catch (err) {
    process.stderr.write(`kith vm run: cannot keep the owner token in ${image}: ${(err as Error).message}\n`);
    return 1;
  }
  const accel = (values.accel ?? 'auto') as 'auto' | 'kvm' | 'tcg';
  const vm = await runVm({
    image: built,
    forwards,
    accel,
    memoryMiB: Number(values.memory ?? 1024),
    ...(dataDisk ? { dataDisk } : {}),
    ownerTokenSha256: secretSha256(ownerToken),
    ...(values.quiet ? {} : { echo: process.stderr }),
  });
  process.stdout.write(`${name} is booting under qemu (${vm.accel}); once it is up:\n${reach.join('\n')}\n  ${'token'.padEnd(10)} ${ownerToken}  (the owner's; kept in ${path.relative(process.cwd(), path.join(image, OWNER_TOKEN_FILE))})\n${dataDisk ? `data: ${path.relative(process.cwd(), dataDisk)}` : 'data: in memory (lost when the VM stops)'}\nCtrl-C stops the VM.\n`);
  return new Promise<number>((resolve) => {
    const stop = () => void vm.stop().then(() => resolve(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    vm.child.once('exit', (code) => resolve(code === 0 ? 0 : 1));
  });
}
