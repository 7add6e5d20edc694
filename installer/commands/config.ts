/**
 * `kith config log`: who changed the configuration, what and when — config.git's history
 * with the files each commit touched. (Edit and roll back with git itself: clone, commit,
 * `git revert`, push.)
 */
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const HELP = `Usage: kith config log [--data DIR] [-n N] [--json]

Shows config.git's history, newest first: commit, author, time, message and the files
each change touched. Every accepted push (and every DNS update) is one commit; undo one
with \`git revert COMMIT && git push\` in your clone of config.git.

Options:
  --data DIR   the kith data folder (default: .kith)
  -n N         show at most N changes (default 20)
  --json       one JSON object per change
  -h, --help   this help
`;

export interface ConfigChange {
  commit: string;
  author: string;
  email: string;
  time: string;
  message: string;
  files: { path: string; change: 'added' | 'modified' | 'deleted' }[];
}

async function changedFiles(gitdir: string, commit: string, parent: string | undefined): Promise<ConfigChange['files']> {
  const trees = parent ? [git.TREE({ ref: parent }), git.TREE({ ref: commit })] : [git.TREE({ ref: commit })];
  const out: ConfigChange['files'] = [];
  await git.walk({
    fs,
    gitdir,
    trees,
    map: async (filepath, entries) => {
      if (filepath === '.') return undefined;
      const [a, b] = parent ? entries : [null, entries[0]];
      const ta = a ? await a.type() : undefined;
      const tb = b ? await b.type() : undefined;
      if (ta === 'tree' || tb === 'tree') return true;
      const oa = a ? await a.oid() : undefined;
      const ob = b ? await b.oid() : undefined;
      if (oa === ob) return undefined;
      out.push({ path: filepath, change: !oa ? 'added' : !ob ? 'deleted' : 'modified' });
      return undefined;
    },
  });
  return out.sort((x, y) => (x.path < y.path ? -1 : 1));
}

export async function configLog(gitdir: string, depth: number): Promise<ConfigChange[]> {
  const commits = await git.log({ fs, gitdir, ref: 'refs/heads/main', depth });
  const out: ConfigChange[] = [];
  for (const c of commits) {
    out.push({
      commit: c.oid,
      author: c.commit.author.name,
      email: c.commit.author.email,
      time: new Date(c.commit.author.timestamp * 1000).toISOString(),
      message: c.commit.message.trim(),
      files: await changedFiles(gitdir, c.oid, c.commit.parent[0]),
    });
  }
  return out;
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
  const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, n: { type: 'string', short: 'n' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const gitdir = path.join(path.resolve(values.data ?? '.kith'), 'data', 'storage', 'repos', 'config.git');
  if (!fs.existsSync(path.join(gitdir, 'HEAD'))) {
    process.stderr.write(`kith config log: no config.git at ${gitdir}; has \`kith up\` run with this --data folder?\n`);
    return 1;
  }
  const n = Number(values.n ?? 20);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`kith config log: -n ${values.n}: expected a positive whole number\n`);
    return 64;
  }
  for (const c of await configLog(gitdir, n)) {
    if (values.json) {
      process.stdout.write(JSON.stringify(c) + '\n');
      continue;
    }
    process.stdout.write(`${c.commit.slice(0, 10)}  ${c.time.replace('T', ' ').slice(0, 19)}  ${c.author} <${c.email}>\n    ${c.message.split('\n')[0]}\n`);
    for (const f of c.files) process.stdout.write(`    ${f.change === 'added' ? '+' : f.change === 'deleted' ? '-' : 'M'} ${f.path}\n`);
  }
  return 0;
}
