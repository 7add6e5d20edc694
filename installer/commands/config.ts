/**
 * `kith config log`: who changed the configuration, what and when — config.git's history
 * with the files each commit touched, read through the running storage service's store API
 * (platform/store-client.ts). (Edit and roll back with git itself: clone, commit,
 * `git revert`, push.)
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { StoreClient } from '../../platform/store-client.ts';
import { ownerStore, remoteOwnerStore } from '../owner-store.ts';
import { REMOTE_HELP, REMOTE_OPTIONS, wantsRemote } from '../paired.ts';

const HELP = `Usage: kith config log [--data DIR] [-n N] [--json]
       kith config log --remote|--appliance NAME|--host ADDR --port N [--dir DIR] [-n N] [--json]

Shows config.git's history, newest first: commit, author, time, message and the files
each change touched. Every accepted push (and every DNS update) is one commit; undo one
with \`git revert COMMIT && git push\` in your clone of config.git. Needs kith up, or
a paired appliance (asked by mutual TLS with this machine's certificate from \`kith pair\`).

Options:
  --data DIR         the kith data folder (default: .kith)
${REMOTE_HELP}  -n N               show at most N changes (default 20)
  --json             one JSON object per change
  -h, --help         this help
`;

export interface ConfigChange {
  commit: string;
  author: string;
  email: string;
  time: string;
  message: string;
  files: { path: string; change: 'added' | 'modified' | 'deleted' }[];
}

const CHANGE = { add: 'added', modify: 'modified', delete: 'deleted' } as const;

export async function configLog(store: StoreClient, depth: number): Promise<ConfigChange[]> {
  return (await store.history('config', undefined, { limit: depth })).map((e) => ({
    commit: e.commit,
    author: e.author.name,
    email: e.author.email,
    time: e.time,
    message: e.message.trim(),
    files: (e.changes ?? []).map((c) => ({ path: c.path, change: CHANGE[c.type] })).sort((x, y) => (x.path < y.path ? -1 : 1)),
  }));
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub ? 0 : 64;
  }
  if (sub !== 'log') {
    process.stderr.write(`kith config: unknown subcommand '${sub}' (try: kith config log)\n`);
    return 64;
  }
  const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, n: { type: 'string', short: 'n' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...REMOTE_OPTIONS } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const n = Number(values.n ?? 20);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    process.stderr.write(`kith config log: -n ${values.n}: expected a whole number from 1 to 1000\n`);
    return 64;
  }
  const store = wantsRemote(values) ? await remoteOwnerStore(values) : await ownerStore(path.resolve(values.data ?? '.kith'));
  if (typeof store === 'string') {
    process.stderr.write(`kith config log: ${store}\n`);
    return 1;
  }
  for (const c of await configLog(store, n)) {
    if (values.json) {
      process.stdout.write(JSON.stringify(c) + '\n');
      continue;
    }
    process.stdout.write(`${c.commit.slice(0, 10)}  ${c.time.replace('T', ' ').slice(0, 19)}  ${c.author} <${c.email}>\n    ${c.message.split('\n')[0]}\n`);
    for (const f of c.files) process.stdout.write(`    ${f.change === 'added' ? '+' : f.change === 'deleted' ? '-' : 'M'} ${f.path}\n`);
  }
  return 0;
}
