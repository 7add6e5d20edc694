/**
 * The owner's store client for commands that talk to a running kith (`kith config`,
 * `kith repo`): the storage URL from <data>/run.json, the owner's access token from
 * storage's data folder (the token `kith up` prints). These commands go through the store
 * API, never storage's repositories on disk: storage serialises and validates every change.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createStoreClient, type StoreClient } from '../platform/store-client.ts';
import { TOKEN_FILE } from '../services/storage/auth.ts';
import { pidAlive, readRunFile } from './run-file.ts';

/** The client, or a sentence saying why there is none (kith is not up, no token). */
export async function ownerStore(dataRoot: string): Promise<StoreClient | string> {
  const run = await readRunFile(dataRoot);
  const storage = run && pidAlive(run.pid) ? run.services.find((s) => s.service === 'storage') : undefined;
  const store = storage?.endpoints.store;
  if (!store) return `kith is not up with the data folder ${dataRoot}: start it with \`kith up --data ${dataRoot}\` (this command talks to the storage service)`;
  const token = (await fsp.readFile(path.join(dataRoot, 'data', 'storage', TOKEN_FILE), 'utf8').catch(() => '')).trim();
  if (!token) return `no access token in ${path.join(dataRoot, 'data', 'storage', TOKEN_FILE)}: has storage started with this data folder?`;
  return createStoreClient({ url: store.replace(/\/store\/?$/, ''), token });
}
