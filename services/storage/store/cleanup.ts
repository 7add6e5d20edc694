/**
 * Start-up cleanup after a crash: platform/durable.ts writes `.<name>.tmp-<pid>-<hex>` and
 * renames it; a writer killed in between leaves the temp file behind (harmless to git, but
 * `git fsck` names it as garbage). Remove those whose writer is gone — never a live
 * writer's, which would make its rename fail.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

const TEMP = /^\..+\.tmp-(\d+)-[0-9a-f]+$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code !== 'ESRCH';
  }
}

async function sweep(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const m = TEMP.exec(name);
    if (m && !alive(Number(m[1]))) {
      await fsp.rm(path.join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}

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
