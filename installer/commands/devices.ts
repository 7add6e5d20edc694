/**
 * `kith devices`: the devices paired with this kith (its data folder's pki/devices.json),
 * with their certificate serials and whether they are revoked.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadDevices } from '../../platform/pki/devices.ts';

const HELP = `Usage: kith devices [--data DIR] [--json]

Lists the devices paired with this kith (\`kith pair\` on each), newest last.

Options:
  --data DIR   the kith data folder (default: .kith)
  --json       one JSON object: {"devices": [{name, serial, pairedAt, revokedAt?}]}
  -h, --help   this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let devices;
  try {
    // The password hash stays in pki/: nothing a script needs.
    devices = loadDevices(path.join(path.resolve(values.data ?? '.kith'), 'pki')).map(({ passwordSha256: _, ...d }) => d);
  } catch (err) {
    process.stderr.write(`kith devices: ${(err as Error).message}\n`);
    return 1;
  }
  if (values.json) process.stdout.write(JSON.stringify({ devices }) + '\n');
  else if (devices.length === 0) process.stdout.write('no paired devices (pair one with `kith pair` on it)\n');
  else for (const d of devices) process.stdout.write(`${d.name.padEnd(20)} paired ${d.pairedAt}  ${d.revokedAt ? `REVOKED ${d.revokedAt}` : 'active'}  serial ${d.serial}\n`);
  return 0;
}
