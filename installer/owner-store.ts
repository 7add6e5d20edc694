/**
 * The owner's store client for commands that talk to a running kith (`kith config`,
 * `kith repo`): the storage URL from <data>/run.json, the owner's access token from the
 * data root, where `kith up` keeps it (platform/owner.ts; the token it prints). These commands go through the store
 * API, never storage's repositories on disk: storage serialises and validates every change.
 */
import * as path from 'node:path';
import { OWNER_TOKEN_FILE, readOwnerToken } from '../platform/owner.ts';
import { createStoreClient, type StoreClient } from '../platform/store-client.ts';
import { pidAlive, readRunFile } from './run-file.ts';

/** The client, or a sentence saying why there is none (kith is not up, no token). */
export async function ownerStore(dataRoot: string): Promise<StoreClient | string> {
  const run = await readRunFile(dataRoot);
  const storage = run && pidAlive(run.pid) ? run.services.find((s) => s.service === 'storage') : undefined;
  const store = storage?.endpoints?.store;
  if (!store) return `kith is not up with the data folder ${dataRoot}: start it with \`kith up --data ${dataRoot}\` (this command talks to the storage service)`;
  const token = await readOwnerToken(dataRoot);
  if (!token) return `no access token in ${path.join(dataRoot, OWNER_TOKEN_FILE)}: was this data folder made by kith up?`;
  return createStoreClient({ url: store.replace(/\/store\/?$/, ''), token });
}
