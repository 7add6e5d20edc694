/**
 * `kith revoke NAME`: revoke a paired device. Its certificate serials go into every TLS
 * service's data folder, where each service refuses them within a second, live connections
 * included, with no restart (platform/pki/revocation.ts).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { revokeDevice } from '../../platform/pki/devices.ts';

const HELP = `Usage: kith revoke NAME [--data DIR] [--json]

Revokes the paired device NAME (see \`kith devices\`): every service refuses its certificate
from now on, without a restart. Pair it again with \`kith pair\` to let it back in.

Options:
  --data DIR   the kith data folder (default: .kith)
  --json       {"revoked": NAME, "serials": [...]}
  -h, --help   this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const name = positionals[0];
  if (!name || positionals.length > 1) {
    process.stderr.write(`kith revoke: one device NAME is needed\n\n${HELP}`);
    return 64;
  }
  const root = path.resolve(values.data ?? '.kith');
  try {
    const serials = await revokeDevice(path.join(root, 'pki'), path.join(root, 'data'), name);
    process.stdout.write(values.json ? JSON.stringify({ revoked: name, serials }) + '\n' : `revoked ${name} (serial ${serials.join(', ')}); every service refuses it from now on\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`kith revoke: ${(err as Error).message}\n`);
    return 1;
  }
}
