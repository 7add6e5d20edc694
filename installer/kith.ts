#!/usr/bin/env node
/**
 * `kith`: the owner's command. Each subcommand lives in installer/commands/<name>.ts.
 * Exit codes: 0 success, 1 failure, 64 usage error.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  up: { summary: 'run every service locally on loopback with a default config', load: () => import('./commands/up.ts') },
  status: { summary: 'is kith up, and is each service healthy?', load: () => import('./commands/status.ts') },
  build: { summary: 'bundle each service into one sealed-ready file under dist/', load: () => import('./commands/build.ts') },
  config: { summary: 'config.git history: who changed what, and when (kith config log)', load: () => import('./commands/config.ts') },
  calendar: { summary: 'calendar history, restore of a deleted event, password hashes', load: () => import('./commands/calendar.ts') },
  repo: { summary: 'create, list and delete git repositories served by storage', load: () => import('./commands/repo.ts') },
  image: { summary: 'build a bootable image (kith image build --target kvm --service NAME)', load: () => import('./commands/image.ts') },
  flash: { summary: 'write the Raspberry Pi image to an SD card and verify it (kith flash [IMAGE] /dev/sdX)', load: () => import('./commands/flash.ts') },
  vm: { summary: 'boot a service image under qemu with its ports forwarded (kith vm run NAME)', load: () => import('./commands/vm.ts') },
  pair: { summary: 'pair this machine with a kith on the local network, by the code it shows', load: () => import('./commands/pair.ts') },
  devices: { summary: 'the devices paired with this kith', load: () => import('./commands/devices.ts') },
  revoke: { summary: 'revoke a paired device (kith revoke NAME): refused at once, no restart', load: () => import('./commands/revoke.ts') },
  mail: { summary: 'the mail queue: list, retry and delete (kith mail queue), password hashes', load: () => import('./commands/mail.ts') },
  test: { summary: 'typecheck and run the whole test suite (installs the Debian tools it needs)', load: () => import('./commands/test.ts') },
};

export function usage(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return ['kith — a personal home cloud: DNS, mail, calendar and git-backed storage, sealed.', '', 'Usage: kith <command> [options]', '', 'Commands:', ...rows, '', 'Run `kith <command> --help` for a command\'s options.', ''].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 64;
  }
  if (name === '--version') {
    process.stdout.write(`kith 0.1.0 (node ${process.version})\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`kith: unknown command '${name}'\n\n${usage()}`);
    return 64;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (err) {
    // node:util parseArgs refuses unknown or malformed options: a usage error, said once here.
    if (String((err as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`kith ${name}: ${(err as Error).message}\n(see kith ${name} --help)\n`);
      return 64;
    }
    throw err;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: Error) => {
      process.stderr.write(`kith: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
