/**
 * `kith repo`: the owner's git repositories on this kith (served by the storage service
 * at http://…/<name>.git). Works on the local data folder, like `git --git-dir`.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createRepo, deleteRepo, isValidRepoName, listRepos, repoExists } from '../../services/storage/git/repos.ts';

const HELP = `Usage: kith repo <create|list|delete> [NAME] [--data DIR] [--json]

  kith repo create NAME    create an empty repository (then: git push http://kith:TOKEN@HOST/NAME.git main)
  kith repo list           list repositories
  kith repo delete NAME    delete a repository and all its history (config cannot be deleted)

Options:
  --data DIR   the kith data folder (default: .kith)
  --json       machine-readable output
  -h, --help   this help
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs({ args: argv, allowPositionals: true, options: { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  const { values, positionals } = parsed;
  const [sub, name] = positionals;
  if (values.help || !sub) {
    process.stdout.write(HELP);
    return values.help ? 0 : 64;
  }
  const root = path.join(path.resolve(values.data ?? '.kith'), 'data', 'storage', 'repos');
  const out = (obj: object, text: string) => process.stdout.write(values.json ? JSON.stringify(obj) + '\n' : text + '\n');
  if (sub === 'list') {
    const repos = await listRepos(root);
    if (values.json) process.stdout.write(JSON.stringify({ repos }) + '\n');
    else process.stdout.write(repos.length ? repos.join('\n') + '\n' : 'no repositories\n');
    return 0;
  }
  if (sub !== 'create' && sub !== 'delete') {
    process.stderr.write(`kith repo: unknown subcommand '${sub}'\n\n${HELP}`);
    return 64;
  }
  if (!name || !isValidRepoName(name)) {
    process.stderr.write(`kith repo ${sub}: ${name ? `'${name}' is not a valid name` : 'a NAME is needed'}: use letters, digits, '.', '_' and '-', not starting with '.'\n`);
    return 64;
  }
  if (sub === 'create') {
    if (await repoExists(root, name)) {
      process.stderr.write(`kith repo create: '${name}' already exists\n`);
      return 1;
    }
    await createRepo(root, name);
    out({ created: name }, `created ${name}.git`);
    return 0;
  }
  if (name === 'config') {
    process.stderr.write("kith repo delete: config.git holds the live configuration and cannot be deleted\n");
    return 1;
  }
  if (!(await deleteRepo(root, name))) {
    process.stderr.write(`kith repo delete: no repository named '${name}'\n`);
    return 1;
  }
  out({ deleted: name }, `deleted ${name}.git`);
  return 0;
}
