/**
 * Start-up cleanup after a crash: platform/durable.ts writes `.<name>.tmp-<pid>-<hex>` (and
 * `tmp_obj_<pid>-<hex>` in git folders) and
 * renames it; a writer killed in between leaves the temp file behind (harmless to git, but
 * `git fsck` names it as garbage). Remove those whose writer is gone — never a live
 * writer's, which would make its rename fail.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { removeStaleTemps } from '../../../platform/durable.ts';

const sweep = removeStaleTemps;

/** Remove dead writers' temp files from a bare repository's refs/heads and objects/xx. */
export async function removeDeadTemps(gitdir: string): Promise<number> {
  let removed = (await sweep(gitdir)) + (await sweep(path.join(gitdir, 'refs', 'heads')));
  const objects = path.join(gitdir, 'objects');
  for (const name of await fsp.readdir(objects).catch(() => [] as string[])) {
    if (/^[0-9a-f]{2}$/.test(name)) removed += await sweep(path.join(objects, name));
  }
  return removed;
}

/** Bytes on disk under `dir` (files only), for the repository size limit. */
export async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await diskBytes(p);
    else if (e.isFile()) total += (await fsp.stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
