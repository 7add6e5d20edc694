/**
 * The owner's access token on a workstation (`kith up`): one secret the owner uses for git,
 * the store API, mail submission, CalDAV and remote /metrics, until pairing gives their
 * devices certificates. The supervisor keeps it in its own data root (0600) and gives each
 * service only its hash (links/owner.json, platform/links.ts provisionOwnerAccess), before
 * the service starts; no service's folder is read to learn it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileDurable } from './durable.ts';
import { newSecret } from './passwords.ts';

export const OWNER_TOKEN_FILE = 'owner-token';

async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    const t = (await fsp.readFile(file, 'utf8')).trim();
    return t.length >= 32 ? t : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The owner token under `dataRoot`, or undefined before the first `kith up`. */
export function readOwnerToken(dataRoot: string): Promise<string | undefined> {
  return readTokenFile(path.join(dataRoot, OWNER_TOKEN_FILE));
}

/**
 * The owner token, made on first use. `adopt` names an older token file (storage's own,
 * from before the supervisor kept the token) whose token is taken over, so a clone made
 * with it keeps working.
 */
export async function loadOrCreateOwnerToken(dataRoot: string, adopt?: string): Promise<string> {
  const have = await readOwnerToken(dataRoot);
  if (have) return have;
  const token = (adopt ? await readTokenFile(adopt) : undefined) ?? newSecret();
  await writeFileDurable(path.join(dataRoot, OWNER_TOKEN_FILE), token + '\n', { mode: 0o600 });
  return token;
}
