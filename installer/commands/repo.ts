/**
 * `kith repo`: the owner's git repositories on this kith (served by the storage service
 * at http://…/<name>.git), managed through the running storage service's store API
 * (platform/store-client.ts) with the owner's token.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { isValidRepoName, REPO_NAME_RULE } from '../../services/storage/git/repos.ts';
import { StoreClientError } from '../../platform/store-client.ts';
import { ownerStore, remoteOwnerStore } from '../owner-store.ts';
import { REMOTE_HELP, REMOTE_OPTIONS, wantsRemote } from '../paired.ts';

const HELP = `Usage: kith repo <create|list|delete> [NAME] [--data DIR] [--json]

  kith repo create NAME    create an empty repository (then: git push http://kith:TOKEN@HOST/NAME.git main)
  kith repo list           list repositories
  kith repo delete NAME    delete a repository and all its history (config cannot be deleted)

Needs kith up (the storage service does the work), or a paired appliance (--remote,
--appliance, --host: by mutual TLS with this machine's certificate from \`kith pair\`).
git reaches a paired appliance the same way, with that certificate (DIR as kith pair wrote it):
  git -c http.sslCAInfo=DIR/ca.crt -c http.sslCert=DIR/client.crt -c http.sslKey=DIR/client.key \\
      push https://NAME.local:PORT/REPO.git main      (PORT: storage's https, see kith status --remote)

Options:
  --data DIR         the kith data folder (default: .kith)
${REMOTE_HELP}  --json             machine-readable output
  -h, --help         this help
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs({ args: argv, allowPositionals: true, options: { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...REMOTE_OPTIONS } });
  const { values, positionals } = parsed;
  const [sub, name] = positionals;
  if (values.help || !sub) {
    process.stdout.write(HELP);
    return values.help ? 0 : 64;
  }
  if (sub !== 'list' && sub !== 'create' && sub !== 'delete') {
    process.stderr.write(`kith repo: unknown subcommand '${sub}'\n\n${HELP}`);
    return 64;
  }
  if (sub !== 'list' && (!name || !isValidRepoName(name))) {
    process.stderr.write(`kith repo ${sub}: ${name ? `'${name}' is not a valid name` : 'a NAME is needed'}: ${REPO_NAME_RULE}\n`);
    return 64;
  }
  if (sub === 'delete' && name === 'config') {
    process.stderr.write('kith repo delete: config.git holds the live configuration and cannot be deleted\n');
    return 1;
  }
  const store = wantsRemote(values) ? await remoteOwnerStore(values) : await ownerStore(path.resolve(values.data ?? '.kith'));
  if (typeof store === 'string') {
    process.stderr.write(`kith repo ${sub}: ${store}\n`);
    return 1;
  }
  const out = (obj: object, text: string) => process.stdout.write(values.json ? JSON.stringify(obj) + '\n' : text + '\n');
  try {
    if (sub === 'list') {
      const repos = await store.repos();
      out({ repos }, repos.length ? repos.join('\n') : 'no repositories');
    } else if (sub === 'create') {
      if (!(await store.createRepo(name!))) {
        process.stderr.write(`kith repo create: '${name}' already exists\n`);
        return 1;
      }
      out({ created: name }, `created ${name}.git`);
    } else {
      await store.deleteRepo(name!);
      out({ deleted: name }, `deleted ${name}.git`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof StoreClientError)) throw err;
    process.stderr.write(`kith repo ${sub}: ${err.code === 'no-such-repo' ? `no repository named '${name}'` : err.message}\n`);
    return 1;
  }
}
