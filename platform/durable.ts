/**
 * Durable file writes: whatever a service acknowledges is on disk first.
 * write to a temp file in the same folder (opened O_DSYNC) → rename over the target →
 * sync the folder, so that after a crash (even SIGKILL or power loss) the file holds
 * either the old or the new content, never a torn mix.
 *
 * Why O_DSYNC and not fsync: Node disables fsync/fdatasync entirely under the permission
 * model (nodejs/node, 2026-01 security release), and every service runs sealed. O_DSYNC
 * makes each write reach the disk before it returns. Folder entries (the rename) cannot be
 * fsynced from a sealed process, so the appliance mounts its data partition with `dirsync`
 * (directory updates synchronous); unsealed callers still fsync the folder.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as C } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { processAlive } from './process.ts';

export interface DurableWriteOptions {
  /** File mode for a new file (default 0o644). */
  mode?: number;
  /** Temp file name prefix (default '.<name>.tmp-'); git's object folders want 'tmp_obj_'. */
  tempPrefix?: string;
  /** Sync the folder after the rename (default true). False: the caller syncs each folder once after a batch of writes, before it acknowledges any of them. */
  syncDir?: boolean;
}

const tempPath = (file: string, opts: DurableWriteOptions) =>
  path.join(path.dirname(file), `${opts.tempPrefix ?? `.${path.basename(file)}.tmp-`}${process.pid}-${randomBytes(4).toString('hex')}`);

export async function writeFileDurable(file: string, data: string | Uint8Array, opts: DurableWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = tempPath(file, opts);
  const handle = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_DSYNC, opts.mode ?? 0o644);
  try {
    await handle.writeFile(data);
  } catch (err) {
    await handle.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (opts.syncDir !== false) await fsyncDir(dir);
}

/** Synchronous twin of writeFileDurable, for start-up and shutdown paths. */
export function writeFileDurableSync(file: string, data: string | Uint8Array, opts: DurableWriteOptions = {}): void {
  const dir = path.dirname(file);
  const tmp = tempPath(file, opts);
  const fd = fs.openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_DSYNC, opts.mode ?? 0o644);
  try {
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDirSync(dir);
}

// Under the permission model fsync is refused (see the header): then folder durability
// comes from the dirsync mount, and we stop asking. Decided at the first call, not when
// the module loads: a startup snapshot (platform/image/snapshot.ts) loads it unsealed.
let dirSyncAllowed: boolean | undefined;
const mayDirSync = () => (dirSyncAllowed ??= (process as { permission?: unknown }).permission === undefined);

const refused = (err: unknown) => (err as { code?: string }).code === 'ERR_ACCESS_DENIED';

/** fsync a folder so that a rename or a new entry in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  if (!mayDirSync()) return;
  const handle = await fsp.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await handle.sync();
  } catch (err) {
    if (!refused(err)) throw err;
    dirSyncAllowed = false;
  } finally {
    await handle.close();
  }
}

export function fsyncDirSync(dir: string): void {
  if (!mayDirSync()) return;
  const fd = fs.openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!refused(err)) throw err;
    dirSyncAllowed = false;
  } finally {
    fs.closeSync(fd);
  }
}

/** Temp files this module writes: `.<name>.tmp-<pid>-<hex>`, or `tmp_<what>_<pid>-<hex>` in git folders. */
export const TEMP_FILE = /^(?:\..+\.tmp-|tmp_[a-z]+_)(\d+)-[0-9a-f]{8}$/;


/**
 * Remove temp files a crash left behind in a folder: those whose writer is gone, never a
 * live writer's (its rename would fail). Call at start-up.
 */
export async function removeStaleTemps(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const m = TEMP_FILE.exec(name);
    if (m && Number(m[1]) !== process.pid && processAlive(Number(m[1])) === false) {
      await fsp.rm(path.join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}
