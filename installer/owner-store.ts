/**
 * The owner's store client for commands that talk to a running kith (`kith config`,
 * `kith repo`): the storage URL from <data>/run.json, the owner's access token from the
 * data root, where `kith up` keeps it (platform/owner.ts; the token it prints). These commands go through the store
 * API, never storage's repositories on disk: storage serialises and validates every change.
 * Or, from the owner's paired machine (`remoteOwnerStore`), storage's https listener on the
 * appliance by mutual TLS with the client certificate `kith pair` gave it: where storage is
 * comes from the supervisor's GET /status (installer/paired.ts).
 */
import * as path from 'node:path';
import { OWNER_TOKEN_FILE, readOwnerToken } from '../platform/owner.ts';
import { createStoreClient, type StoreClient } from '../platform/store-client.ts';
import { pidAlive, readRunFile, type RunInfo } from './run-file.ts';
import { askAppliance, type FindOptions } from './paired.ts';

/** The owner's store client on a paired appliance (storage's https listener, mutual TLS), or why not. */
export async function remoteOwnerStore(o: FindOptions & { dir?: string }): Promise<StoreClient | string> {
  const asked = await askAppliance<RunInfo>(o);
  if ('error' in asked) return asked.error;
  const { target, id, status: st } = asked;
  const stores = st.services.find((s) => s.service === 'storage')?.endpoints?.stores;
  if (!stores) return `${target.name} has no storage https listener running (see kith status --remote)`;
  // Storage's URL as the appliance sees it (maybe 0.0.0.0): the address it was found at instead.
  const url = new URL(stores.replace(/\/store\/?$/, ''));
  url.hostname = target.host.includes(':') ? `[${target.host}]` : target.host;
  return createStoreClient({ url: url.origin, token: '', tls: { ...id, url: url.origin } });
}

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
